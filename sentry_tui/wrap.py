"""`sentry-tui wrap -- CMD ARGS...`: signed start and end markers around any command.

The command runs exactly as it would without the wrapper: same terminal (nothing is piped),
same process group, so it stays in the terminal's foreground and interactive agents keep
working. Only two lines are added to the pane, a START marker before and an END marker after,
carrying the exit status and duration; both are HMAC-signed with the state dir's key so text
that merely *looks* like a marker (a `cat` of a log, a web page) cannot advance a stage.

Signals: Ctrl-C and Ctrl-\\ already reach the child, because the terminal sends them to the
whole foreground process group. The wrapper only ignores them; forwarding would deliver a
second Ctrl-C, and a second Ctrl-C ends Claude Code and Codex. SIGTERM and SIGHUP come to the
wrapper alone (kill, a closed terminal), so those are forwarded.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from sentry_tui.errors import UserError
from sentry_tui.signing import sign

PREFIX = "### SENTRY "
FORWARDED = (signal.SIGTERM, signal.SIGHUP)
IGNORED = (signal.SIGINT, signal.SIGQUIT)


@dataclass(frozen=True, slots=True)
class WrapContext:
    """What the markers name: which stage of which run, in which pane."""

    stage: str | None = None
    project: str | None = None
    run: str | None = None
    pane: str | None = None


def marker_line(type_: str, fields: Mapping[str, Any], key: bytes | None) -> str:
    """``### SENTRY {"type": …}``: compact JSON, ``type`` first, signed when there is a key."""
    body: dict[str, Any] = {"type": type_, **{k: v for k, v in fields.items() if k != "type"}}
    if key is not None:
        body = sign(body, key)
    return PREFIX + json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def exit_status(returncode: int) -> int:
    """Shell convention: a child killed by signal N is reported as 128+N."""
    return 128 - returncode if returncode < 0 else returncode


def _marker_stream() -> tuple[TextIO, bool]:
    """Where markers go: the pane, never the command's data stream.

    stdout when it is the terminal; otherwise (``wrap -- cmd > file``) the controlling
    terminal, so the watcher still sees them; stderr when there is no terminal at all.
    Returns the stream and whether we opened it (and must close it).
    """
    if sys.stdout.isatty():
        return sys.stdout, False
    try:
        return open("/dev/tty", "w", encoding="utf-8"), True
    except OSError:
        return sys.stderr, False


def _emit(line: str, *, newline_first: bool) -> None:
    """Print one marker line; a closed or hung-up terminal never fails the command.

    The END marker is always preceded by a newline: the command's last output may not end
    with one (``printf abc``), and the marker must start at column 0 *of its own line*. The
    only cheap alternatives fail: asking the terminal where the cursor is (DSR) can swallow
    type-ahead or leak the answer into the shell's prompt, and the zsh ``PROMPT_SP`` trick
    (fill the line with spaces, then ``\\r``) makes tmux record a soft wrap, so a
    ``capture-pane -J`` (needed to read long signed markers whole) joins the marker onto
    the previous output. A blank line is the honest price.
    """
    stream, opened = _marker_stream()
    try:
        with contextlib.suppress(OSError, ValueError):
            stream.write(("\n" if newline_first else "") + line + "\n")
            stream.flush()
    finally:
        if opened:
            with contextlib.suppress(OSError):
                stream.close()


def _load_key(state_dir: Path) -> bytes | None:
    from sentry_tui.keys import load_or_create_key

    try:
        return load_or_create_key(state_dir)
    except UserError as exc:
        print(f"sentry-tui wrap: markers unsigned: {exc}", file=sys.stderr)
    except Exception as exc:  # never fail the command over its markers
        print(f"sentry-tui wrap: markers unsigned: {exc}", file=sys.stderr)
    return None


def run_wrapped(cmd: Sequence[str], ctx: WrapContext, key: bytes | None) -> int:
    """Run ``cmd`` in the foreground between START and END markers; return its status."""
    if not cmd:
        raise UserError("wrap: no command given (usage: sentry-tui wrap [options] -- CMD ARGS...)")
    # absent rather than null: markers.py wants strings, and the signature covers which
    # fields are present, so a marker without a project cannot be given one later
    named = {"stage": ctx.stage, "project": ctx.project, "run": ctx.run, "pane": ctx.pane}
    base = {k: v for k, v in named.items() if v is not None}

    child: subprocess.Popen[bytes] | None = None
    pending: list[int] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        if child is None:
            pending.append(signum)
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signum)

    def ignore(_signum: int, _frame: FrameType | None) -> None:
        """A Python handler rather than SIG_IGN: exec resets it, so the child gets defaults."""

    old = {s: signal.getsignal(s) for s in (*FORWARDED, *IGNORED)}
    for s in FORWARDED:
        signal.signal(s, forward)
    for s in IGNORED:
        signal.signal(s, ignore)
    try:
        _emit(marker_line("START", {**base, "cmd": _argv0(cmd)}, key), newline_first=False)
        started = time.monotonic()
        try:
            child = subprocess.Popen(list(cmd))  # inherits the terminal and the process group
        except FileNotFoundError:
            print(f"sentry-tui wrap: {cmd[0]}: command not found", file=sys.stderr)
            status = 127
        except PermissionError:
            print(f"sentry-tui wrap: {cmd[0]}: permission denied", file=sys.stderr)
            status = 126
        except OSError as exc:
            print(f"sentry-tui wrap: {cmd[0]}: {exc.strerror}", file=sys.stderr)
            status = 126
        else:
            for s in pending:
                forward(s, None)
            status = exit_status(child.wait())
        duration = round(time.monotonic() - started, 3)
        end = {**base, "exit": status, "duration_s": duration}
        _emit(marker_line("END", end, key), newline_first=True)
        return status
    finally:
        for s, handler in old.items():
            with contextlib.suppress(TypeError, ValueError):
                signal.signal(s, handler)


def _argv0(cmd: Sequence[str]) -> str:
    """Only the program's name goes into the marker: arguments can carry secrets."""
    return os.path.basename(cmd[0])


def main(
    cmd: Sequence[str],
    *,
    stage: str | None = None,
    project: str | None = None,
    run: str | None = None,
    state_dir: str | None = None,
) -> int:
    from sentry_tui.keys import state_dir_from

    ctx = WrapContext(stage=stage, project=project, run=run, pane=os.environ.get("TMUX_PANE"))
    key = _load_key(state_dir_from(state_dir))
    return run_wrapped(cmd, ctx, key)
