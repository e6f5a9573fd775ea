"""`sentry-tui status`: the snapshot as plain text for a phone's 60-column SSH screen.

Pure: it renders a :class:`Snapshot`, so the TUI, `status` and tests agree on what matters —
who waits for a human, what failed, which approvals are open and how to answer them.
"""

from __future__ import annotations

from typing import Any

from sentry_tui.ansi import one_line
from sentry_tui.durations import human
from sentry_tui.model import PaneState, Snapshot, StageStatus

WIDTH = 60

# A state is told apart by symbol and word as well as colour (16 colours, NO_COLOR, a phone);
# the TUI's badges and this text use the same pairs.
BADGES: dict[PaneState, tuple[str, str]] = {
    PaneState.BUSY: ("●", "busy"),
    PaneState.WAITING: ("?", "wait"),
    PaneState.IDLE: ("·", "idle"),
    PaneState.DONE: ("✓", "done"),
    PaneState.FAILED: ("✗", "fail"),
    PaneState.GONE: ("⊘", "gone"),
    PaneState.UNKNOWN: ("○", "new"),
}


def _fit(text: str, width: int = WIDTH) -> str:
    return one_line(text, width)


def render(snap: Snapshot) -> str:
    state, now = snap.state, snap.now
    pending = sorted(
        (a for a in state.approvals.values() if a.status == "pending"),
        key=lambda a: a.created_at,
    )
    waiting = [p for p in state.panes.values() if p.state is PaneState.WAITING]
    failed_panes = [p for p in state.panes.values() if p.state is PaneState.FAILED]
    lines = [
        _fit(
            f"sentry · {len(state.panes)} panes · {len(waiting)} waiting · "
            f"{len(pending)} approvals{' · PAUSED' if state.paused else ''}"
        )
    ]
    if not snap.engine_alive:
        lines.append("! engine not running: commands wait in the inbox")
    if pending:
        lines.append("")
        lines.append("APPROVALS")
        for a in pending:
            lines.append(
                _fit(
                    f" {a.approval_id}  {a.project}/{a.stage}  waiting {human(now - a.created_at)}"
                )
            )
            if a.command:
                lines.append(_fit(f"   runs: {a.command}"))
            if a.commit:
                lines.append(_fit(f"   commit: {a.commit[:12]}"))
            if a.last_result:
                lines.append(_fit(f"   last: {a.last_result}"))
            lines.append(_fit(f"   sentry-tui approve {a.approval_id}"))
    uncertain = [j for j in state.journal.values() if j.status == "uncertain"]
    if uncertain:
        lines.append("")
        lines.append("UNCERTAIN SENDS (retry or dismiss)")
        for j in uncertain:
            lines.append(_fit(f" {j.action_id}  {j.project}/{j.stage}: {j.text}"))
    if waiting or failed_panes:
        lines.append("")
        lines.append("NEEDS YOU")
        for p in waiting + failed_panes:
            badge = " ".join(BADGES[p.state])
            waited = human(now - p.since)
            lines.append(_fit(f" {badge} {p.info.label} {waited} {p.last_line}"))
    if state.runs:
        lines.append("")
        lines.append("PIPELINES")
        for run in state.runs.values():
            stage = run.stages[run.current] if run.current < len(run.stages) else None
            where = f"{stage.name}: {stage.status.value}" if stage else ""
            lines.append(_fit(f" {run.project} [{run.status.value}] {where}"))
            failed = [s for s in run.stages if s.status is StageStatus.FAILED]
            for s in failed:
                lines.append(
                    _fit(f"   ✗ {s.name} {s.message}  sentry-tui retry {run.project} {s.name}")
                )
            if stage and stage.waiting_for:
                lines.append(_fit(f"   held: {stage.waiting_for}"))
    for warning in snap.warnings:
        lines.append(_fit(f"! {warning}"))
    return "\n".join(lines)


def as_json(snap: Snapshot) -> dict[str, Any]:
    """`status --json`: the same facts for scripts."""
    from sentry_tui.model import plain

    state = snap.state
    return {
        "paused": state.paused,
        "engine_alive": snap.engine_alive,
        "panes": [
            {
                "pane": p.info.ref.pane_id,
                "pane_key": key,
                "session": p.info.session,
                "window": p.info.window,
                "state": p.state.value,
                "since": p.since,
                "last_line": p.last_line,
            }
            for key, p in state.panes.items()
        ],
        "approvals": [plain(a) for a in state.approvals.values() if a.status == "pending"],
        "runs": [plain(r) for r in state.runs.values()],
        "uncertain": [plain(j) for j in state.journal.values() if j.status == "uncertain"],
        "warnings": list(snap.warnings),
    }
