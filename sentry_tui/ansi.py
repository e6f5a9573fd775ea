"""Terminal text made safe to match on and safe to show.

Pane output is untrusted: escape sequences are stripped before any rule looks at it, and
control characters are removed before text from a pane reaches a notification or `status`.
"""

from __future__ import annotations

import re

# CSI (ESC [ … final), OSC (ESC ] … BEL or ST), other two-byte ESC sequences, and C1 CSI.
_ANSI = re.compile(
    r"""
    \x1b\[[0-?]*[ -/]*[@-~]          # CSI
  | \x1b\][^\x07\x1b]*(?:\x07|\x1b\\)  # OSC … BEL / ST
  | \x1b[PX^_][^\x1b]*\x1b\\          # DCS, SOS, PM, APC … ST
  | \x1b[@-Z\\-_]                     # two-byte escapes
  | \x9b[0-?]*[ -/]*[@-~]            # 8-bit CSI
    """,
    re.VERBOSE,
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def strip_ansi(text: str) -> str:
    """Remove escape sequences; keep the text a person would read."""
    return _ANSI.sub("", text)


def strip_control(text: str) -> str:
    """Remove escape sequences and every control character except newline and tab."""
    return _CONTROL.sub("", strip_ansi(text))


def one_line(text: str, limit: int = 200) -> str:
    """Control-free, single-line, bounded: for notifications, status lines and logs."""
    flat = " ".join(strip_control(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~<])")


def escape_markdown(text: str) -> str:
    """Escape markdown so pane text cannot add links, headings or mentions to a message."""
    return _MD_SPECIAL.sub(r"\\\1", strip_control(text))
