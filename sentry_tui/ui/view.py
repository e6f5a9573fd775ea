"""What the screen shows, computed from a Snapshot without Textual.

Widgets stay thin: they ask these functions for rows and words, then paint. Keeping the
decisions here (which panes, in what order, which badge, how long ago) lets them be tested as
plain functions and lets a widget compare two row tuples to know whether anything changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sentry_tui.ansi import strip_control
from sentry_tui.durations import human
from sentry_tui.model import (
    Approval,
    JournalEntry,
    PaneState,
    PaneStatus,
    PipelineRun,
    Snapshot,
    StageState,
    StageStatus,
)
from sentry_tui.summary import BADGES

STAGE_MARKS: dict[StageStatus, tuple[str, str]] = {
    StageStatus.PENDING: ("○", "pending"),
    StageStatus.RUNNING: ("▶", "running"),
    StageStatus.WAITING_APPROVAL: ("◆", "approval"),
    StageStatus.AWAITING_EXTERNAL: ("…", "awaiting"),
    StageStatus.SUCCEEDED: ("✓", "ok"),
    StageStatus.FAILED: ("✗", "failed"),
    StageStatus.RETRYING: ("↻", "retrying"),
    StageStatus.SKIPPED: ("»", "skipped"),
    StageStatus.CANCELLED: ("⊘", "cancelled"),
}

# Stage statuses drawn in the same colour family as a pane state, so one palette serves both.
STAGE_TONE: dict[StageStatus, str] = {
    StageStatus.PENDING: "idle",
    StageStatus.RUNNING: "busy",
    StageStatus.WAITING_APPROVAL: "waiting",
    StageStatus.AWAITING_EXTERNAL: "busy",
    StageStatus.SUCCEEDED: "done",
    StageStatus.FAILED: "failed",
    StageStatus.RETRYING: "busy",
    StageStatus.SKIPPED: "idle",
    StageStatus.CANCELLED: "gone",
}


def badge(state: PaneState) -> str:
    symbol, word = BADGES.get(state, ("○", str(state)))
    return f"{symbol} {word}"


def stage_mark(status: StageStatus) -> str:
    symbol, word = STAGE_MARKS.get(status, ("?", str(status)))
    return f"{symbol} {word}"


def fmt_duration(seconds: float | None) -> str:
    return human(seconds)


# --------------------------------------------------------------------------------------------
# Counts and queues


@dataclass(frozen=True, slots=True)
class Counts:
    panes: int
    waiting: int
    failed: int
    approvals: int
    uncertain: int


def pending_approvals(snap: Snapshot) -> list[Approval]:
    """Oldest first: the one that has waited longest is the one to answer first."""
    items = [a for a in snap.state.approvals.values() if a.status == "pending"]
    return sorted(items, key=lambda a: (a.created_at, a.approval_id))


def uncertain_sends(snap: Snapshot) -> list[JournalEntry]:
    items = [j for j in snap.state.journal.values() if j.status == "uncertain"]
    return sorted(items, key=lambda j: (j.at, j.action_id))


def counts(snap: Snapshot) -> Counts:
    states = [p.state for p in snap.state.panes.values()]
    return Counts(
        panes=sum(1 for s in states if s is not PaneState.GONE),
        waiting=states.count(PaneState.WAITING),
        failed=states.count(PaneState.FAILED),
        approvals=len(pending_approvals(snap)),
        uncertain=len(uncertain_sends(snap)),
    )


# --------------------------------------------------------------------------------------------
# Panes, projects and runs


def pane_projects(pane: PaneStatus) -> list[str]:
    """Projects this pane plays a role in (roles are "project.role")."""
    return list(dict.fromkeys(r.partition(".")[0] for r in pane.roles if r))


def current_stage(run: PipelineRun) -> StageState | None:
    if not run.stages:
        return None
    return run.stages[min(max(run.current, 0), len(run.stages) - 1)]


def run_for_pane(snap: Snapshot, key: str) -> PipelineRun | None:
    pane = snap.state.panes.get(key)
    if pane is None:
        return None
    for project in pane_projects(pane):
        run = snap.state.runs.get(project)
        if run is not None:
            return run
    return None


def stage_duration(stage: StageState, now: float) -> float | None:
    if stage.started_at is None:
        return None
    end = stage.finished_at if stage.finished_at is not None else now
    return end - stage.started_at


@dataclass(frozen=True, slots=True)
class SessionRow:
    """A session heading in the pane list (not selectable)."""

    session: str
    panes: int

    @property
    def row_id(self) -> str:
        return f"session:{self.session}"


@dataclass(frozen=True, slots=True)
class PaneRow:
    """One pane line: everything it shows, so equal rows need no repaint."""

    key: str
    label: str  # session:window.pane, for messages
    name: str  # window, or window.pane when the window has several panes
    state: PaneState
    command: str
    stage: str  # "project › stage" of the run this pane plays a role in, or ""
    stage_status: StageStatus | None

    @property
    def row_id(self) -> str:
        return f"pane:{self.key}"


Row = SessionRow | PaneRow


def matches(pane: PaneStatus, query: str) -> bool:
    """The `/` filter: any word of the query found in the pane's names, command, roles or
    state (``fail``, ``wait``, ``busy``… as the badge says, or the full state name)."""
    words = query.lower().split()
    if not words:
        return True
    hay = " ".join(
        (
            pane.info.label,
            pane.info.command,
            " ".join(pane.roles),
            pane.state.value,
            BADGES.get(pane.state, ("", ""))[1],
        )
    ).lower()
    return all(w in hay for w in words)


def pane_rows(snap: Snapshot, query: str = "") -> list[Row]:
    """Sessions → windows → panes, in tmux order, filtered by ``query``."""
    panes = [p for p in snap.state.panes.values() if matches(p, query)]
    panes.sort(
        key=lambda p: (p.info.session, p.info.window_index, p.info.window, p.info.pane_index)
    )
    per_window: dict[tuple[str, int, str], int] = {}
    for p in snap.state.panes.values():
        k = (p.info.session, p.info.window_index, p.info.window)
        per_window[k] = per_window.get(k, 0) + 1
    rows: list[Row] = []
    session: str | None = None
    for p in panes:
        if p.info.session != session:
            session = p.info.session
            n = sum(1 for q in panes if q.info.session == session)
            rows.append(SessionRow(session, n))
        many = per_window[(p.info.session, p.info.window_index, p.info.window)] > 1
        name = f"{p.info.window}.{p.info.pane_index}" if many else p.info.window
        stage, status = "", None
        for project in pane_projects(p):
            run = snap.state.runs.get(project)
            cur = current_stage(run) if run else None
            if run is not None and cur is not None:
                # The session heading usually names the project already.
                where = "" if project == p.info.session else f"{project} › "
                stage, status = f"{where}{cur.name}", cur.status
                break
        rows.append(
            PaneRow(
                key=p.info.ref.key,
                label=p.info.label,
                name=name,
                state=p.state,
                command=p.info.command,
                stage=stage,
                stage_status=status,
            )
        )
    return rows


# --------------------------------------------------------------------------------------------
# Untrusted text made safe to draw

_SGR = re.compile(r"\x1b\[[0-9;:]*m")
_ANY_ESC = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[PX^_][^\x1b]*\x1b\\"
    r"|\x1b[@-Z\\-_]|\x9b[0-?]*[ -/]*[@-~]"
)


def safe_ansi(text: str) -> str:
    """Keep colour (SGR) sequences, drop every other escape and control character.

    Pane output is untrusted: cursor moves, OSC titles or links must not reach the UI.
    """
    out: list[str] = []
    pos = 0
    for m in _ANY_ESC.finditer(text):
        out.append(strip_control(text[pos : m.start()]))
        if _SGR.fullmatch(m.group(0)):
            out.append(m.group(0))
        pos = m.end()
    out.append(strip_control(text[pos:]))
    return "".join(out).replace("\t", "    ")


def tail_lines(text: str, limit: int) -> str:
    """The last ``limit`` lines, without trailing blank lines (a cleared screen's bottom)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    while lines and not strip_control(lines[-1]).strip():
        lines.pop()
    return "\n".join(lines[-limit:])


def visible(text: str) -> str:
    """Text as it will be typed, with anything invisible spelled out (for confirmations)."""
    out = []
    for ch in text:
        if ch == " " or ch.isprintable():
            out.append(ch)
        else:
            out.append(repr(ch)[1:-1])
    return "".join(out)
