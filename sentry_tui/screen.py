"""Screens and read positions: which lines of a capture are new. Pure, no tmux.

tmux's own counters (``history_size``, the cursor) lie: they freeze while a spinner rewrites
a line, stay pinned once history is full and go backwards on ``clear``. So nothing here counts
lines. A read position is a fingerprint of the last lines already reported, found again by
content in a later capture; a screen is diffed against the previous screen by sequence
matching, which survives scrolling, redraws and clears.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from sentry_tui.ansi import strip_ansi

FINGERPRINT_LINES = 3


def normalize(line: str) -> str:
    """One line as both the stream and capture-pane agree on it (tabs vs spaces, trailing)."""
    return " ".join(strip_ansi(line).split())


def line_hash(line: str) -> str:
    return hashlib.sha1(normalize(line).encode(), usedforsecurity=False).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Position:
    """Where reading a pane stopped: the next ``seq`` and hashes of the last lines read.

    Hashes, not text, so that pane output (which may hold secrets) never lands in state.
    """

    seq: int = 0
    tail: tuple[str, ...] = ()

    def dump(self) -> str:
        return json.dumps({"seq": self.seq, "tail": list(self.tail)}, separators=(",", ":"))

    @classmethod
    def load(cls, raw: str | None) -> Position | None:
        try:
            data = json.loads(raw or "")
            seq = int(data["seq"])
            tail = tuple(str(h) for h in data.get("tail", ()))[-FINGERPRINT_LINES:]
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
        return cls(max(0, seq), tail)


def after_position(lines: Sequence[str], tail: Sequence[str]) -> list[str] | None:
    """The lines after the last occurrence of ``tail`` (line hashes), or None if absent."""
    k = len(tail)
    if k == 0:
        return None
    hashes = [line_hash(x) for x in lines]
    want = list(tail)
    for end in range(len(hashes), k - 1, -1):
        if hashes[end - k : end] == want:
            return list(lines[end:])
    return None


def cells(text: str) -> int:
    """Terminal columns ``text`` takes (CJK wide characters take two)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def split_capture(
    lines: Sequence[str], height: int, cursor_y: int, cursor_x: int = 0
) -> tuple[list[str], str]:
    """A ``capture-pane -J -S -`` capture → (complete lines, the partial line at the cursor).

    The rows below the cursor are blank screen, not output; the cursor's row is the line
    still being written (a prompt with no newline yet), kept up to the cursor so that the
    space after ``[y/N]`` survives when the answer is echoed after it.
    """
    rows = list(lines)
    below = max(0, height - 1 - cursor_y)
    if below:
        kept, dropped = rows[:-below], rows[-below:]
        if any(r.strip() for r in dropped):  # a program moved the cursor up: keep it all
            kept = rows
        rows = kept
    if not rows:
        return [], ""
    partial = rows[-1].rstrip()
    pad = cursor_x - cells(partial)
    return [r.rstrip() for r in rows[:-1]], partial + " " * max(0, pad)


def new_lines(old: Sequence[str], new: Sequence[str]) -> list[str]:
    """Lines of ``new`` that ``old`` did not show at a matching place (blank lines skipped).

    Scrolling keeps matching blocks; a line redrawn in place is not new; the same text
    printed again further down is new.
    """
    if not old:
        return [x for x in new if x.strip()]
    sm = difflib.SequenceMatcher(None, list(old), list(new), autojunk=False)
    out: list[str] = []
    for tag, _i1, _i2, j1, j2 in sm.get_opcodes():
        if tag in ("insert", "replace"):
            out.extend(x for x in new[j1:j2] if x.strip())
    return out


def text_of(ansi_rows: Sequence[str]) -> str:
    """Screen rows with ANSI kept → the plain text detectors match on."""
    return "\n".join(strip_ansi(r).rstrip() for r in ansi_rows).rstrip("\n")
