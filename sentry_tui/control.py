"""The tmux control-mode protocol (``tmux -C``), parsed without touching tmux.

Pure: bytes in, typed items out, so every quirk (octal escapes, UTF-8 split across
notifications, replies bracketed by ``%begin``/``%end``) is unit-tested without a server.
tmux.py owns the processes and feeds their stdout here.

Pane output is raw terminal bytes. A UTF-8 character may be split across two ``%output``
notifications, so :class:`LineAssembler` buffers bytes per pane and decodes only after
splitting lines (``\\n`` never occurs inside a multi-byte UTF-8 sequence).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sentry_tui.ansi import strip_ansi

# --------------------------------------------------------------------------------------------
# Items


@dataclass(frozen=True, slots=True)
class Output:
    """``%output %P DATA`` or ``%extended-output %P AGE ... : DATA``; ``data`` unescaped."""

    pane: str
    data: bytes
    age_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """A command's answer: the lines between ``%begin`` and ``%end``/``%error``.

    ``ours`` is tmux's flag saying this client sent the command (the implicit attach block
    is not ours), which is what lets replies be matched to commands first-in first-out.
    """

    number: int
    ours: bool
    ok: bool
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def error(self) -> str:
        return " ".join(line.strip() for line in self.lines if line.strip()) or "tmux error"


@dataclass(frozen=True, slots=True)
class Notice:
    """Any other ``%name args`` line: ``%sessions-changed``, ``%window-add @3``, …"""

    name: str
    args: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Pause:
    pane: str


@dataclass(frozen=True, slots=True)
class Continue:
    pane: str


@dataclass(frozen=True, slots=True)
class Exit:
    """The control client is leaving (session destroyed, server exiting, detached)."""

    reason: str = ""


Item = Output | Reply | Notice | Pause | Continue | Exit

# Notifications after which the set of sessions/windows/panes may differ.
TOPOLOGY = frozenset(
    {
        "sessions-changed",
        "session-changed",
        "session-renamed",
        "window-add",
        "unlinked-window-add",
        "window-close",
        "unlinked-window-close",
        "window-renamed",
        "unlinked-window-renamed",
        "layout-change",
        "window-pane-changed",
        "linked-window-add",
    }
)

_OCTAL = re.compile(rb"\\([0-7]{3})")


def unescape(data: bytes) -> bytes:
    """Undo tmux's escaping of bytes below 0x20 and of backslash as ``\\ooo``."""
    if b"\\" not in data:
        return data
    return _OCTAL.sub(lambda m: bytes((int(m[1], 8) & 0xFF,)), data)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


class ControlParser:
    """Turns the byte stream of one control client into items, in stream order.

    Feed it whatever ``read()`` returned; it keeps the incomplete last line (and an open
    ``%begin`` block) until more arrives.
    """

    def __init__(self) -> None:
        self._buf = b""
        self._block: tuple[bytes, int, bool] | None = None  # (time+number key, number, ours)
        self._block_lines: list[str] = []

    def feed(self, data: bytes) -> list[Item]:
        self._buf += data
        if b"\n" not in data:
            return []
        *lines, self._buf = self._buf.split(b"\n")
        out: list[Item] = []
        for line in lines:
            item = self._line(line)
            if item is not None:
                out.append(item)
        return out

    def _line(self, line: bytes) -> Item | None:
        if line.endswith(b"\r"):
            line = line[:-1]
        if self._block is not None:
            key, number, ours = self._block
            if line.startswith((b"%end ", b"%error ")):
                head, _, rest = line.partition(b" ")
                if _block_key(rest) == key:
                    self._block = None
                    lines, self._block_lines = tuple(self._block_lines), []
                    return Reply(number, ours, head == b"%end", lines)
            self._block_lines.append(_text(line))
            return None
        if not line.startswith(b"%"):
            return None  # stray text (e.g. an error tmux printed before control mode began)
        if line.startswith(b"%output "):
            _, pane, data = [*line.split(b" ", 2), b""][:3]
            return Output(_text(pane), unescape(data))
        if line.startswith(b"%extended-output "):
            head, sep, data = line.partition(b" : ")
            if not sep:  # ": " with empty data ends the line
                head = head.removesuffix(b" :")
            parts = head.split(b" ")
            age = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else None
            return Output(_text(parts[1]) if len(parts) > 1 else "", unescape(data), age)
        if line.startswith(b"%begin "):
            rest = line[len(b"%begin ") :]
            fields = rest.split(b" ")
            number = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else -1
            ours = len(fields) > 2 and fields[2].isdigit() and int(fields[2]) & 1 == 1
            self._block = (_block_key(rest), number, ours)
            self._block_lines = []
            return None
        name, _, rest = _text(line[1:]).partition(" ")
        if name == "pause":
            return Pause(rest.strip())
        if name == "continue":
            return Continue(rest.strip())
        if name == "exit":
            return Exit(rest.strip())
        return Notice(name, tuple(rest.split(" ")) if rest else ())


def _block_key(rest: bytes) -> bytes:
    """``TIME NUMBER``: what pairs a ``%begin`` with its ``%end``/``%error``."""
    return b" ".join(rest.split(b" ")[:2])


# --------------------------------------------------------------------------------------------
# Lines


_TOKEN = re.compile(
    r"\x1b\[([0-?]*)[ -/]*([@-~])"  # CSI: params, final
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"  # DCS, SOS, PM, APC
    r"|\x1b[()*+][0-9A-Za-z]"  # charset designation
    r"|\x1b[ -~]?"  # other two-byte escapes (and a lone ESC)
    r"|[\r\b]"
    r"|[^\r\b\x1b]+"
)
_C0 = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def render_line(text: str) -> str:
    """What a terminal would show for one line of output, ANSI and control codes removed.

    Handles what progress bars and shells use on one line: carriage return (overwrite from
    column 0), backspace, erase-in-line and horizontal cursor moves. Anything fancier is a
    full-screen program, read from the screen instead.
    """
    if text.endswith("\r"):  # a tty ends every line with \r\n: not an overwrite
        text = text[:-1]
    if "\r" not in text and "\b" not in text and "\x1b" not in text:
        return _C0.sub("", text).rstrip()
    cells: list[str] = []
    col = 0
    for m in _TOKEN.finditer(text):
        tok = m.group(0)
        if tok == "\r":
            col = 0
        elif tok == "\b":
            col = max(0, col - 1)
        elif tok.startswith("\x1b"):
            final = m.group(2)
            if final is None:
                continue
            param = m.group(1) or ""
            n = int(param) if param.isdigit() else 0
            if final == "K":
                if n == 0:
                    del cells[col:]
                elif n == 1:
                    cells[: col + 1] = [" "] * min(col + 1, len(cells))
                else:
                    cells = [" "] * min(col, len(cells))
            elif final == "G":
                col = max(0, n - 1)
            elif final == "C":
                col += max(1, n)
            elif final == "D":
                col = max(0, col - max(1, n))
        else:
            tok = _C0.sub("", tok)
            if col > len(cells):
                cells.extend(" " * (col - len(cells)))
            cells[col : col + len(tok)] = tok
            col += len(tok)
    return strip_ansi("".join(cells)).rstrip()


class LineAssembler:
    """Per-pane bytes → complete lines. Keeps the partial last line (a prompt, a progress bar)."""

    def __init__(self, partial: str = "") -> None:
        self._pending = partial.encode()

    def feed(self, data: bytes) -> list[str]:
        if b"\n" not in data:
            self._pending += data
            if len(self._pending) > 1 << 20:  # a pane that never prints a newline
                self._pending = self._pending[-(1 << 16) :]
            return []
        *raw, self._pending = (self._pending + data).split(b"\n")
        return [render_line(_text(r)) for r in raw]

    @property
    def has_partial(self) -> bool:
        """Output after the last newline is waiting (a prompt, a progress bar)."""
        return bool(self._pending)

    @property
    def partial(self) -> str:
        return render_line(_text(self._pending))

    def reset(self, partial: str = "") -> None:
        self._pending = partial.encode()
