"""The human commands over SSH: approve, reject, retry, skip, cancel, start, pause, resume,
send, dismiss. Each becomes the same event the UI's keys produce and travels through the
inbox, so it works whether the engine runs now or starts later."""

from __future__ import annotations

import argparse
import sys
import time

from sentry_tui.cli import common_options
from sentry_tui.cmd._common import paths_from
from sentry_tui.errors import UserError
from sentry_tui.model import (
    Approve,
    Cancel,
    Dismiss,
    HumanEvent,
    Pause,
    Reject,
    Resume,
    Retry,
    SendText,
    Skip,
    Start,
)

WAIT_S = 5.0


def register(sub: argparse._SubParsersAction) -> None:
    parent = common_options()
    for name, help_text, build in (
        ("approve", "approve a pending approval by its id", _approval),
        ("reject", "reject a pending approval (optionally with --reason)", _approval),
        ("retry", "run a stage again (also what an uncertain send was for)", _stage),
        ("skip", "skip a stage of a project", _stage),
        ("cancel", "cancel a project's current run", _project),
        ("start", "start a new run of a project", _project),
        ("pause", "hold every send until resume", _none),
        ("resume", "release held sends", _none),
        ("send", "type TEXT into a pane (then Enter)", _send),
        ("dismiss", "forget an uncertain send without sending it again", _dismiss),
    ):
        p = sub.add_parser(name, parents=[parent], help=help_text, description=help_text)
        build(p, name)
        p.add_argument("--no-wait", action="store_true", help="do not wait for the engine's answer")
        p.set_defaults(func=run, human=name)


def _approval(p: argparse.ArgumentParser, name: str) -> None:
    p.add_argument("approval_id", metavar="ID")
    if name == "reject":
        p.add_argument("--reason", default="", help="one line saying why")


def _stage(p: argparse.ArgumentParser, name: str) -> None:
    p.add_argument("project")
    p.add_argument("stage")


def _project(p: argparse.ArgumentParser, name: str) -> None:
    p.add_argument("project")


def _none(p: argparse.ArgumentParser, name: str) -> None:
    pass


def _send(p: argparse.ArgumentParser, name: str) -> None:
    p.add_argument("pane", help="%%N, session:window[.pane] or a pane key")
    p.add_argument("text")


def _dismiss(p: argparse.ArgumentParser, name: str) -> None:
    p.add_argument("action_id", metavar="ID")


def event_from(args: argparse.Namespace) -> HumanEvent:
    name = args.human
    if name == "approve":
        return Approve(by="cli", approval_id=args.approval_id)
    if name == "reject":
        return Reject(by="cli", approval_id=args.approval_id, reason=args.reason)
    if name in ("retry", "skip"):
        cls = Retry if name == "retry" else Skip
        return cls(by="cli", project=args.project, stage=args.stage)
    if name in ("cancel", "start"):
        cls = Cancel if name == "cancel" else Start
        return cls(by="cli", project=args.project)
    if name == "send":
        if not args.text.strip():
            raise UserError("nothing to send: the text is empty")
        return SendText(by="cli", pane=args.pane, text=args.text)
    if name == "dismiss":
        return Dismiss(by="cli", action_id=args.action_id)
    return Pause(by="cli") if name == "pause" else Resume(by="cli")


def run(args: argparse.Namespace) -> int:
    from sentry_tui import inbox, store

    paths = paths_from(args)
    event = event_from(args)
    engine_pid = store.EngineLock(paths).holder()
    if engine_pid is None:
        problem = precheck_offline(paths, event)
        if problem:
            raise UserError(problem)
    request_id = inbox.submit(paths, event)
    if engine_pid is None:
        print(f"queued {args.human} ({request_id}): no engine is running; it applies on start")
        return 0
    if args.no_wait:
        print(f"sent {args.human} ({request_id}) to the engine (pid {engine_pid})")
        return 0
    report = inbox.wait_answer(paths, request_id, WAIT_S)
    if report is None:
        print(
            f"sent {args.human} ({request_id}); the engine (pid {engine_pid}) has not answered "
            f"within {WAIT_S:.0f}s — check `sentry-tui status`",
            file=sys.stderr,
        )
        return 3
    print(report.message, file=sys.stdout if report.ok else sys.stderr)
    return 0 if report.ok else 1


def precheck_offline(paths, event: HumanEvent) -> str:  # type: ignore[no-untyped-def]
    """With no engine to ask, refuse what the saved state already says cannot work."""
    from sentry_tui import store

    if not isinstance(event, Approve | Reject):
        return ""
    state, _positions, _messages = store.Store(paths).load(readonly=True)
    approval = state.approvals.get(event.approval_id)
    if approval is None:
        return f"unknown approval id {event.approval_id!r} (see `sentry-tui status`)"
    if approval.status != "pending":
        return f"approval {event.approval_id} is already {approval.status}"
    if approval.expires_at is not None and approval.expires_at < time.time():
        return (
            f"approval {event.approval_id} has expired; start the stage again with "
            f"`sentry-tui retry {approval.project} {approval.stage}`"
        )
    return ""
