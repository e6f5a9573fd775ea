"""Named crash points, so tests can kill the engine where it hurts most.

A crash test sets ``SENTRY_TUI_CRASH_AT`` to a comma-separated list of point names (``name`` =
the first time the point is hit, ``name@N`` = the N-th time) and ``SENTRY_TUI_CRASH_LOG`` to a
file. When a listed point is reached, its name is appended to the log and fsynced — so the test
can tell the crash happened *there* and not somewhere else — and the process sends itself
SIGKILL: no ``finally``, no ``atexit``, no flush, exactly like the OOM killer or a power cut.

Without the environment variable a crash point costs one dict lookup. Unknown names raise at
once, so a typo in a point name fails every run instead of silently never crashing.
"""

from __future__ import annotations

import os
import signal

ENV_AT = "SENTRY_TUI_CRASH_AT"
ENV_LOG = "SENTRY_TUI_CRASH_LOG"

KNOWN_POINTS: frozenset[str] = frozenset(
    {
        # store.py: a state write after the temp file is complete and fsynced, before rename
        "mid_state_write",
        # store.py: after the rename, before the directory is fsynced
        "after_state_rename",
        # store.py: a history batch half written (a torn last line, skipped on read)
        "mid_history_append",
        # inbox.py: a request claimed into inbox/processing/, not yet handed to the engine
        "after_inbox_claim",
        # inbox.py: the answer written to the outbox, the processing file not yet removed
        "after_answer_before_release",
        # runner.py (the lead's loop)
        "after_journal_before_send",
        "after_send_before_done",
        "between_approval_and_start",
        "mid_capture",
    }
)

_hits: dict[str, int] = {}


def _targets(spec: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        name, _, nth = item.partition("@")
        out[name] = int(nth) if nth.isdigit() and int(nth) > 0 else 1
    return out


def crash_point(name: str) -> None:
    """Die here with SIGKILL if the environment says so (tests only)."""
    if name not in KNOWN_POINTS:
        raise ValueError(f"unknown crash point {name!r}; add it to crash.KNOWN_POINTS")
    spec = os.environ.get(ENV_AT)
    if not spec:
        return
    wanted = _targets(spec).get(name)
    if wanted is None:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] != wanted:
        return
    log = os.environ.get(ENV_LOG)
    if log:
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{name}\n".encode())
            os.fsync(fd)
        finally:
            os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)
