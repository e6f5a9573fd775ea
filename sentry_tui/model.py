"""The domain: what every other module speaks.

Pure data only. Nothing here imports tmux, Textual, TinyDB or the network, so the engine and
its rules can be tested in microseconds. Everything is a frozen dataclass: a state change is a
new value, which is what lets the runner persist *before* it acts and compare before/after.

Events and actions carry a ``kind`` class attribute and serialise to flat JSON dicts with
:func:`to_json`; that dict is the line `sentry-tui watch --json` prints and the record the
history file keeps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Literal, Protocol

# --------------------------------------------------------------------------------------------
# Panes


class PaneState(StrEnum):
    """What a detector thinks a pane is doing. ``gone`` is set by the watcher, not a detector."""

    UNKNOWN = "unknown"
    BUSY = "busy"
    WAITING = "waiting"  # a human is needed: a prompt, a yes/no question, a choice list
    IDLE = "idle"
    DONE = "done"
    FAILED = "failed"
    GONE = "gone"


@dataclass(frozen=True, slots=True)
class PaneRef:
    """A pane, as unique as tmux allows.

    Pane ids (``%N``) are unique only for the life of one tmux server, so the server's own
    identity (``pid`` and ``start_time``) is part of the key. After a server restart every
    old ref is stale and panes are matched again by session and window name.
    """

    server: str  # "<server pid>-<server start_time>"
    pane_id: str  # "%12"

    @property
    def key(self) -> str:
        return f"{self.server}/{self.pane_id}"

    @classmethod
    def parse(cls, key: str) -> PaneRef:
        server, _, pane_id = key.rpartition("/")
        if not server or not pane_id.startswith("%"):
            raise ValueError(f"not a pane key: {key!r} (expected SERVER/%N)")
        return cls(server, pane_id)

    def __str__(self) -> str:
        return self.key


@dataclass(frozen=True, slots=True)
class PaneInfo:
    """Where a pane lives and what runs in it, as discovery saw it."""

    ref: PaneRef
    session: str
    window: str
    window_index: int = 0
    pane_index: int = 0
    command: str = ""
    cwd: str = ""
    dead: bool = False
    width: int = 80
    height: int = 24
    pid: int = 0

    @property
    def label(self) -> str:
        """Human name, ``session:window.pane``, as tmux users write it."""
        return f"{self.session}:{self.window}.{self.pane_index}"


# --------------------------------------------------------------------------------------------
# Markers


MarkerType = Literal["STATUS", "ERROR", "ASK", "START", "END", "EVENT"]
MARKER_TYPES: tuple[str, ...] = ("STATUS", "ERROR", "ASK", "START", "END", "EVENT")


class Trust(StrEnum):
    """How far a signal can be believed (DESIGN.md: hooks and signed markers first)."""

    HOOK = "hook"  # written by `sentry-tui hook`, signed, read from the state dir
    SIGNED = "signed"  # a marker whose HMAC verified and whose nonce was new
    UNSIGNED = "unsigned"  # a plain marker: any text in the pane could have printed it
    BAD_SIGNATURE = "bad_signature"  # carried a signature that did not verify
    REPLAYED = "replayed"  # verified, but its nonce was seen before
    SCREEN = "screen"  # inferred by a detector from the screen


@dataclass(frozen=True, slots=True)
class Marker:
    """One parsed ``### SENTRY {json}`` line.

    ``fields`` holds the whole JSON object (minus ``type``), so policy conditions can match
    on any key; the common ones have properties.
    """

    type: str
    fields: Mapping[str, Any]
    raw: str = ""
    trust: Trust = Trust.UNSIGNED

    @property
    def stage(self) -> str | None:
        v = self.fields.get("stage")
        return v if isinstance(v, str) else None

    @property
    def project(self) -> str | None:
        v = self.fields.get("project")
        return v if isinstance(v, str) else None

    @property
    def ok(self) -> bool | None:
        v = self.fields.get("ok")
        return v if isinstance(v, bool) else None

    @property
    def exit(self) -> int | None:
        v = self.fields.get("exit")
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    @property
    def msg(self) -> str:
        v = self.fields.get("msg", "")
        return v if isinstance(v, str) else str(v)


# --------------------------------------------------------------------------------------------
# Events: everything that can happen, from panes, the clock, checks and humans.


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every event. ``kind`` names it on the wire (watch --json, history)."""

    kind: ClassVar[str] = "event"


# -- from the watcher -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PaneAdded(Event):
    kind: ClassVar[str] = "pane_added"
    pane: PaneInfo


@dataclass(frozen=True, slots=True)
class PaneChanged(Event):
    """Session/window renamed, command changed, died: the new info replaces the old."""

    kind: ClassVar[str] = "pane_changed"
    pane: PaneInfo


@dataclass(frozen=True, slots=True)
class PaneGone(Event):
    kind: ClassVar[str] = "pane_gone"
    ref: PaneRef


@dataclass(frozen=True, slots=True)
class ServerDown(Event):
    """The tmux server went away (or was never there); every pane is unreachable."""

    kind: ClassVar[str] = "server_down"
    reason: str


@dataclass(frozen=True, slots=True)
class ServerUp(Event):
    """A (possibly new) tmux server is reachable; ``server`` is its identity."""

    kind: ClassVar[str] = "server_up"
    server: str


@dataclass(frozen=True, slots=True)
class OutputLines(Event):
    """New complete lines printed in a pane, ANSI stripped, in order.

    For screen-read panes these are lines of the captured screen not seen in the previous
    capture. ``seq`` is the stream position of the first line: de-duplication is by position,
    never by content (the same marker printed twice is two events).
    """

    kind: ClassVar[str] = "output"
    ref: PaneRef
    lines: tuple[str, ...]
    seq: int = 0


@dataclass(frozen=True, slots=True)
class ScreenChanged(Event):
    """The visible screen of a pane, as text (ANSI stripped) and with ANSI kept for display."""

    kind: ClassVar[str] = "screen"
    ref: PaneRef
    text: str
    ansi: str = ""


@dataclass(frozen=True, slots=True)
class StateChanged(Event):
    kind: ClassVar[str] = "state"
    ref: PaneRef
    state: PaneState
    reason: str = ""  # which rule matched, for the UI and for debugging profiles
    trust: Trust = Trust.SCREEN


@dataclass(frozen=True, slots=True)
class MarkerSeen(Event):
    kind: ClassVar[str] = "marker"
    ref: PaneRef
    marker: Marker
    seq: int = 0


@dataclass(frozen=True, slots=True)
class MalformedMarker(Event):
    kind: ClassVar[str] = "malformed_marker"
    ref: PaneRef
    line: str
    reason: str


@dataclass(frozen=True, slots=True)
class MarkerIgnored(Event):
    """A marker that could have moved a stage but was not trusted enough to (with why)."""

    kind: ClassVar[str] = "marker_ignored"
    ref: PaneRef
    marker: Marker
    reason: str


@dataclass(frozen=True, slots=True)
class HookEvent(Event):
    """An agent hook (Claude Code Stop/Notification/permission, Codex notify)."""

    kind: ClassVar[str] = "hook"
    ref: PaneRef | None
    tmux_pane: str  # $TMUX_PANE as the hook saw it
    agent: str
    hook: str  # "stop", "notification", "permission", "notify"
    fields: Mapping[str, Any] = field(default_factory=dict)


# -- from the clock and the runner ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tick(Event):
    """Time passed. The engine checks timeouts, debounces and expiries on it."""

    kind: ClassVar[str] = "tick"


@dataclass(frozen=True, slots=True)
class SendResult(Event):
    """The runner reports what became of a Send action."""

    kind: ClassVar[str] = "send_result"
    action_id: str
    ok: bool
    error: str = ""


@dataclass(frozen=True, slots=True)
class CheckUpdate(Event):
    """An external check (a GitHub Actions run) reported progress or its conclusion."""

    kind: ClassVar[str] = "check"
    check_id: str
    status: str  # "waiting" (no matching run yet), "queued", "in_progress", "completed", "error"
    conclusion: str = ""  # "success", "failure", "cancelled", … when completed
    url: str = ""
    detail: str = ""
    retry_at: float | None = None  # epoch: a rate limit or outage; polled again no sooner


@dataclass(frozen=True, slots=True)
class PolicyWarning(Event):
    """A pane role that matches no pane, and similar start-up findings: shown, not fatal."""

    kind: ClassVar[str] = "policy_warning"
    project: str
    message: str


# -- from humans (UI key, CLI over SSH, dropped file: all the same events) --------------------


@dataclass(frozen=True, slots=True)
class HumanEvent(Event):
    kind: ClassVar[str] = "human"
    by: str = "ui"  # "ui", "cli", "inbox", "link"
    request_id: str = ""  # the inbox file / CLI request this came from, to report back


@dataclass(frozen=True, slots=True)
class Approve(HumanEvent):
    kind: ClassVar[str] = "approve"
    approval_id: str = ""


@dataclass(frozen=True, slots=True)
class Reject(HumanEvent):
    kind: ClassVar[str] = "reject"
    approval_id: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Retry(HumanEvent):
    kind: ClassVar[str] = "retry"
    project: str = ""
    stage: str = ""


@dataclass(frozen=True, slots=True)
class Skip(HumanEvent):
    kind: ClassVar[str] = "skip"
    project: str = ""
    stage: str = ""


@dataclass(frozen=True, slots=True)
class Cancel(HumanEvent):
    kind: ClassVar[str] = "cancel"
    project: str = ""


@dataclass(frozen=True, slots=True)
class Start(HumanEvent):
    kind: ClassVar[str] = "start"
    project: str = ""


@dataclass(frozen=True, slots=True)
class Pause(HumanEvent):
    kind: ClassVar[str] = "pause"


@dataclass(frozen=True, slots=True)
class Resume(HumanEvent):
    kind: ClassVar[str] = "resume"


@dataclass(frozen=True, slots=True)
class SendText(HumanEvent):
    """A human asked to type ``text`` into a pane (the ``i`` key, ``sentry-tui send``)."""

    kind: ClassVar[str] = "send"
    pane: str = ""  # a pane key, a pane id (%N) or session:window[.pane]
    text: str = ""


@dataclass(frozen=True, slots=True)
class Dismiss(HumanEvent):
    """Clear an uncertain send (journalled as intended, never confirmed) without resending."""

    kind: ClassVar[str] = "dismiss"
    action_id: str = ""


HUMAN_EVENTS: dict[str, type[HumanEvent]] = {
    c.kind: c
    for c in (Approve, Reject, Retry, Skip, Cancel, Start, Pause, Resume, SendText, Dismiss)
}


# --------------------------------------------------------------------------------------------
# Actions: what the engine asks the runner to do. Pure descriptions; the runner executes.


@dataclass(frozen=True, slots=True)
class Action:
    kind: ClassVar[str] = "action"


@dataclass(frozen=True, slots=True)
class Send(Action):
    """Type ``text`` into a pane, then Enter. Journalled intended → done around the send-keys."""

    kind: ClassVar[str] = "send"
    action_id: str
    pane: PaneRef
    text: str
    project: str = ""
    stage: str = ""
    run_id: str = ""
    enter: bool = True


@dataclass(frozen=True, slots=True)
class Notify(Action):
    kind: ClassVar[str] = "notify"
    event: str  # "approval", "stage_failed", "waiting", "run_finished", "uncertain_send", …
    title: str
    body: str
    project: str = ""
    stage: str = ""
    pane: str = ""
    approval_id: str = ""
    dedupe_key: str = ""
    urgent: bool = False  # breaks through quiet hours (failures)
    command: str = ""  # what approving would let run
    commit: str = ""  # the commit it would run at
    since: float | None = None  # epoch when the wait/failure began: "waited 4m"
    answer: str = ""  # the SSH one-liner, when the default for ``event`` does not fit


@dataclass(frozen=True, slots=True)
class StartCheck(Action):
    kind: ClassVar[str] = "start_check"
    check_id: str
    provider: str  # "github_actions"
    params: Mapping[str, Any]  # repo, workflow, branch, …
    head_sha: str
    created_after: float  # epoch seconds: a run created before the stage started never counts


@dataclass(frozen=True, slots=True)
class StopCheck(Action):
    kind: ClassVar[str] = "stop_check"
    check_id: str


@dataclass(frozen=True, slots=True)
class Persist(Action):
    """The state changed in a way that must reach disk before the actions after it run."""

    kind: ClassVar[str] = "persist"


@dataclass(frozen=True, slots=True)
class Emit(Action):
    """Publish a derived event (e.g. MarkerIgnored) to `watch --json` and the history."""

    kind: ClassVar[str] = "emit"
    event: Event


@dataclass(frozen=True, slots=True)
class Report(Action):
    """Answer a human request (CLI/inbox) with what happened: ``ok`` and a one-line message."""

    kind: ClassVar[str] = "report"
    request_id: str
    ok: bool
    message: str


# --------------------------------------------------------------------------------------------
# Policies (policy.py turns YAML into these)


class Gate(StrEnum):
    NONE = "none"
    BEFORE = "before"
    AFTER = "after"


@dataclass(frozen=True, slots=True)
class Condition:
    """One `done`/`fail`/`trigger` condition. Exactly one of the matchers is set.

    - ``marker``: key/values the marker must carry (``type`` among them), e.g.
      ``{"type": "STATUS", "stage": "code", "ok": True}``
    - ``regex``: a pattern searched in each new output line
    - ``exit``: ``0``, an int, or ``"nonzero"`` — read from the wrapper's END marker
    - ``state``: a detector state of the stage's pane
    """

    marker: Mapping[str, Any] | None = None
    regex: str | None = None
    exit: int | Literal["nonzero"] | None = None
    state: PaneState | None = None
    line: int = 0  # where it was written, for messages


@dataclass(frozen=True, slots=True)
class PaneRole:
    """Which panes a role means: session and window by exact name or glob pattern."""

    name: str
    session: str = "*"
    window: str = "*"
    pane: int | None = None  # pane index within the window
    profile: str = "shell"
    line: int = 0


@dataclass(frozen=True, slots=True)
class Await:
    provider: Literal["github_actions"]
    params: Mapping[str, Any]  # repo, workflow, branch, base_url, sha_from ("git" or "marker")
    timeout_s: float | None = None


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    pane: str  # role name
    run: str | None = None
    done: tuple[Condition, ...] = ()
    fail: tuple[Condition, ...] = ()
    retries: int = 0
    timeout_s: float | None = None
    approve: Gate = Gate.NONE
    await_: Await | None = None
    require_signed: bool = False
    wrap: bool = True  # send `run` wrapped by `sentry-tui wrap` so exit conditions work
    line: int = 0


@dataclass(frozen=True, slots=True)
class Project:
    name: str
    panes: Mapping[str, PaneRole]
    stages: tuple[Stage, ...]
    trigger: tuple[Condition, ...] = ()  # start a run when one matches; empty = by hand only
    trigger_pane: str | None = None  # role the trigger watches (default: any role's pane)
    require_signed: bool = False
    notify_waiting_after_s: float = 120.0
    notify_failed: bool = False  # notify when a matched pane's detector says failed
    source: str = ""  # the file it came from
    line: int = 0


@dataclass(frozen=True, slots=True)
class Policy:
    projects: tuple[Project, ...] = ()
    # profiles: extra regexes per detector profile, merged over the built-ins
    profiles: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)
    sources: tuple[str, ...] = ()

    def project(self, name: str) -> Project | None:
        return next((p for p in self.projects if p.name == name), None)


# --------------------------------------------------------------------------------------------
# Engine state (engine.py steps it; store.py persists it; the UI renders it)


class StageStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    WAITING_APPROVAL = "waiting_approval"
    AWAITING_EXTERNAL = "awaiting_external"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRYING = "retrying"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (
            StageStatus.SUCCEEDED,
            StageStatus.FAILED,
            StageStatus.SKIPPED,
            StageStatus.CANCELLED,
        )


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self is not RunStatus.RUNNING


@dataclass(frozen=True, slots=True)
class StageState:
    name: str
    status: StageStatus = StageStatus.PENDING
    attempts: int = 0
    started_at: float | None = None  # of the current attempt
    finished_at: float | None = None
    waiting_for: str = ""  # why a send is held: "pane busy", "pane not matched", "paused"
    message: str = ""  # last result line: "exit 1", "rejected: not today", …
    done_seen: bool = False  # `done` matched; `fail` after it still fails the stage
    send_id: str = ""  # the Send action of the current attempt
    check_id: str = ""
    head_sha: str = ""
    awaiting_since: float | None = None  # when the external check started (await timeout)


@dataclass(frozen=True, slots=True)
class PipelineRun:
    run_id: str
    project: str
    status: RunStatus
    stages: tuple[StageState, ...]
    started_at: float
    finished_at: float | None = None
    current: int = 0  # index of the stage in progress

    def stage(self, name: str) -> StageState | None:
        return next((s for s in self.stages if s.name == name), None)


@dataclass(frozen=True, slots=True)
class Approval:
    approval_id: str  # short, random, never reused
    project: str
    stage: str
    run_id: str
    gate: Gate
    created_at: float
    command: str = ""  # what approving lets run
    commit: str = ""
    last_result: str = ""  # e.g. the last test result line
    status: Literal["pending", "approved", "rejected", "expired", "cancelled"] = "pending"
    decided_at: float | None = None
    decided_by: str = ""
    reason: str = ""
    expires_at: float | None = None


@dataclass(frozen=True, slots=True)
class PaneStatus:
    """What the engine knows of a pane: its info, state and which project role it plays."""

    info: PaneInfo
    state: PaneState = PaneState.UNKNOWN
    since: float = 0.0
    reason: str = ""
    last_line: str = ""
    roles: tuple[str, ...] = ()  # "project.role" names this pane matched
    trust: Trust = Trust.SCREEN  # who set ``state``: a hook outranks the screen for a moment
    alerted: bool = False  # a waiting/failed notification went out for this state and since


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """A send, journalled as intended before send-keys and done after (at most once)."""

    action_id: str
    pane: str  # pane key
    text: str
    status: Literal["intended", "done", "failed", "uncertain", "dismissed"]
    at: float
    project: str = ""
    stage: str = ""
    run_id: str = ""


@dataclass(frozen=True, slots=True)
class EngineState:
    runs: Mapping[str, PipelineRun] = field(default_factory=dict)  # latest run per project
    approvals: Mapping[str, Approval] = field(default_factory=dict)
    panes: Mapping[str, PaneStatus] = field(default_factory=dict)  # by pane key
    journal: Mapping[str, JournalEntry] = field(default_factory=dict)  # open sends only
    paused: bool = False
    seen_nonces: tuple[str, ...] = ()  # bounded; replayed signed markers are refused
    used_ids: tuple[str, ...] = ()  # approval ids ever issued (never reused)
    counter: int = 0  # for deterministic action ids
    notes: tuple[str, ...] = ()  # recent warnings for the UI (bounded)


# --------------------------------------------------------------------------------------------
# Serialisation


def _plain(value: Any) -> Any:
    if isinstance(value, PaneRef):
        return value.key
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def to_json(item: Event | Action) -> dict[str, Any]:
    """Flat JSON-ready dict: ``kind`` first, then the fields."""
    out: dict[str, Any] = {"kind": item.kind}
    out.update(_plain(item))
    return out


def plain(value: Any) -> Any:
    """Any domain value as JSON-ready data (enums as strings, refs as keys)."""
    return _plain(value)


# --------------------------------------------------------------------------------------------
# What views see


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything a view (the TUI, `status`, a view of another engine) renders, in one value.

    The engine host publishes it; views never reach into tmux or the store themselves.
    """

    state: EngineState
    policy: Policy
    now: float
    tails: Mapping[str, str] = field(default_factory=dict)  # pane key -> recent output, ANSI kept
    markers: Mapping[str, tuple[Marker, ...]] = field(default_factory=dict)  # recent, per pane
    last_read: float | None = None  # when tmux was last read successfully
    hosting: bool = True  # this process runs the engine (False: a view of another one)
    engine_alive: bool = True  # for views: the engine's snapshot is fresh
    warnings: tuple[str, ...] = ()  # policy warnings, failing channels, server down, …


class EngineClient(Protocol):
    """How a view talks to the engine, whether it hosts it or watches another process's.

    The TUI and `status` only ever use this: they never reach tmux or the store themselves.
    """

    # True when snapshot() only reads memory (the engine runs in this process): the UI then
    # calls it on its own thread. False when it reads a file, which a worker thread must do.
    snapshot_in_memory: bool

    def snapshot(self) -> Snapshot:
        """The latest published state (cheap: a view calls it on every refresh)."""
        ...

    def submit(self, event: HumanEvent) -> None:
        """Queue a human command; the answer comes back as a change in the snapshot."""
        ...

    def jump_to(self, pane_key: str) -> str:
        """Switch the user's tmux client to the pane; returns a one-line result to show."""
        ...
