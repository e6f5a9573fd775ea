"""The pipeline state machine: ``step(policy, state, event, now) -> (state, actions)``.

Pure: no clock, no I/O, no randomness except the id generator passed in with the config. The
runner feeds it every event (pane discovery, detector states, markers, output, ticks, check
results, send results, human commands) and carries out the actions it returns, persisting the
new state first when a :class:`~sentry_tui.model.Persist` leads the list.

Rules that matter for safety, kept here in one place:

- Only a policy's ``run`` line or a human's SendText is ever typed into a pane. Text printed in
  a pane (markers included) can move a stage, never choose what is sent.
- A Send is emitted only to a pane that is matched to the stage's role, alive, and at a prompt
  by its detector, and never while sending is paused; otherwise the stage says why it waits.
- Every Send is journalled as *intended* in the same step that emits it; the runner persists
  that before typing, so a crash can never lead to a blind re-send.
- An unexpected event (or a bug while handling one) is recorded in ``state.notes``; the engine
  never raises into the loop.

Detection order (issue 7): hook events and signed markers first, then unsigned markers, then
the detector's screen rules. Concretely: a stage or project with ``require_signed`` moves only
on SIGNED markers and HOOK states; bad signatures and replays never move anything; and a state
set by an agent hook is not overridden by a screen reading for ``HOOK_HOLD_S`` unless the screen
says *busy* (the agent visibly working again is always believed).
"""

from __future__ import annotations

import functools
import re
import secrets
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from typing import Any

from sentry_tui.ansi import one_line
from sentry_tui.model import (
    Action,
    Approval,
    Approve,
    Cancel,
    CheckUpdate,
    Condition,
    Dismiss,
    Emit,
    EngineState,
    Event,
    Gate,
    HookEvent,
    HumanEvent,
    JournalEntry,
    MalformedMarker,
    Marker,
    MarkerIgnored,
    MarkerSeen,
    Notify,
    OutputLines,
    PaneAdded,
    PaneChanged,
    PaneGone,
    PaneInfo,
    PaneRef,
    PaneState,
    PaneStatus,
    Pause,
    Persist,
    PipelineRun,
    Policy,
    PolicyWarning,
    Project,
    Reject,
    Report,
    Resume,
    Retry,
    RunStatus,
    ScreenChanged,
    Send,
    SendResult,
    SendText,
    ServerDown,
    ServerUp,
    Skip,
    Stage,
    StageState,
    StageStatus,
    Start,
    StartCheck,
    StateChanged,
    StopCheck,
    Tick,
    Trust,
)
from sentry_tui.policy import format_duration

ID_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: easy to read off a phone
MAX_NOTES = 50
MAX_NONCES = 2000
MAX_USED_IDS = 5000
MAX_DECIDED = 50  # decided approvals kept for `status` and the UI; the history has them all
GONE_KEEP_S = 600.0  # a closed pane stays visible (as gone) this long
PROMPT_STATES = (PaneState.IDLE, PaneState.DONE, PaneState.FAILED)
HOOK_STATES: Mapping[str, PaneState] = {
    "stop": PaneState.DONE,
    "notify": PaneState.DONE,
    "notification": PaneState.WAITING,
    "permission": PaneState.WAITING,
}
TRUSTED = (Trust.SIGNED, Trust.HOOK)
HOOK_HOLD_S = 5.0


def new_short_id(length: int = 5) -> str:
    """A short random id from an alphabet without look-alike characters."""
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(length))


@dataclass(frozen=True)
class EngineConfig:
    """What the engine needs from outside besides the policy: how to wrap, ids, expiries."""

    wrapper: str = "sentry-tui wrap"
    approval_ttl_s: float | None = 24 * 3600
    new_id: Callable[[], str] = new_short_id


DEFAULT_CONFIG = EngineConfig()


# --------------------------------------------------------------------------------------------
# Public API


def step(
    policy: Policy,
    state: EngineState,
    event: Event,
    now: float,
    config: EngineConfig = DEFAULT_CONFIG,
) -> tuple[EngineState, list[Action]]:
    """Apply one event. Never raises: a failure is recorded in ``notes`` and the state kept."""
    work = _Work(policy, state, now, config, event)
    try:
        work.handle(event)
        work.advance_all()
    except Exception as exc:  # the loop must survive a bug; the note says what happened
        note = f"internal error on {event.kind}: {type(exc).__name__}: {exc}"
        actions: list[Action] = []
        if isinstance(event, HumanEvent) and event.request_id:
            actions.append(Report(event.request_id, False, note))
        return replace(state, notes=_bounded(state.notes, (note,), MAX_NOTES)), actions
    new = work.state()
    if new == state:
        new = state  # unchanged: the same object, so the runner skips its save and publish
    # Answers to humans go last: "approved, will run X" follows the Send it announces.
    actions = [a for a in work.actions if not isinstance(a, Report)]
    actions += [a for a in work.actions if isinstance(a, Report)]
    if durable(state) != durable(new) or any(
        not isinstance(a, Report | Emit | Persist) for a in actions
    ):
        actions = [Persist(), *actions]
    return new, actions


def role_matches(
    role_session: str, role_window: str, role_pane: int | None, info: PaneInfo
) -> bool:
    return (
        fnmatchcase(info.session, role_session)
        and fnmatchcase(info.window, role_window)
        and (role_pane is None or role_pane == info.pane_index)
    )


def roles_for(policy: Policy, info: PaneInfo) -> tuple[str, ...]:
    """``project.role`` names that a pane plays."""
    return tuple(
        f"{p.name}.{r.name}"
        for p in policy.projects
        for r in p.panes.values()
        if role_matches(r.session, r.window, r.pane, info)
    )


def unmatched_roles(policy: Policy, state: EngineState) -> list[PolicyWarning]:
    """Pane roles that match no live pane: a warning for the UI at start-up, never an error."""
    live = [s for s in state.panes.values() if _alive(s)]
    out: list[PolicyWarning] = []
    for p in policy.projects:
        for r in p.panes.values():
            if not any(role_matches(r.session, r.window, r.pane, s.info) for s in live):
                where = f"{r.session}:{r.window}" + (f".{r.pane}" if r.pane is not None else "")
                out.append(PolicyWarning(p.name, f"pane role {r.name} ({where}) matches no pane"))
    return out


def active_checks(state: EngineState, policy: Policy) -> list[StartCheck]:
    """The external checks the state is waiting on, to resume polling after a restart.

    Rebuilt from the stored stage (check id, head SHA, attempt start), so the resumed poll
    still ignores any workflow run created before the stage started.
    """
    out: list[StartCheck] = []
    for run in state.runs.values():
        project = policy.project(run.project)
        if project is None or run.status.finished:
            continue
        for stage, st in zip(project.stages, run.stages, strict=False):
            if st.status is not StageStatus.AWAITING_EXTERNAL or stage.await_ is None:
                continue
            params = dict(stage.await_.params)
            for s in state.panes.values():
                if f"{project.name}.{stage.pane}" in s.roles and _alive(s) and s.info.cwd:
                    params.setdefault("cwd", s.info.cwd)
                    break
            out.append(
                StartCheck(
                    check_id=st.check_id,
                    provider=stage.await_.provider,
                    params=params,
                    head_sha=st.head_sha,
                    created_after=st.started_at if st.started_at is not None else run.started_at,
                )
            )
    return out


def resolve_pane(state: EngineState, text: str) -> str | None:
    """A pane key from what a human typed: a full key, ``%N``, or ``session:window[.pane]``."""
    text = text.strip()
    if text in state.panes:
        return text
    live = [(k, s) for k, s in state.panes.items() if _alive(s)]
    if text.startswith("%"):
        hits = [k for k, s in live if s.info.ref.pane_id == text]
        return hits[0] if len(hits) == 1 else None
    hits = [k for k, s in live if text in (s.info.label, f"{s.info.session}:{s.info.window}")]
    if len(hits) > 1:
        hits = [k for k, s in live if s.info.label == text]
    return hits[0] if len(hits) == 1 else None


def wrapped_command(config: EngineConfig, project: str, stage: Stage, run_id: str) -> str:
    """What is typed for a stage: its ``run``, wrapped so the END marker reports the exit."""
    assert stage.run is not None
    if not stage.wrap:
        return stage.run
    # A compound command (`a && b`, a pipe, a redirection) must be wrapped whole, not just its
    # first part: hand it to sh -c. `npm test` or `sh "$DIR/t.sh"` stay as written.
    command = f"sh -c {shlex.quote(stage.run)}" if _SHELL_SYNTAX.search(stage.run) else stage.run
    return f"{config.wrapper} --stage {stage.name} --project {project} --run {run_id} -- {command}"


_SHELL_SYNTAX = re.compile(r"[;&|<>()`]")  # operators; expansions and quotes are fine


# --------------------------------------------------------------------------------------------
# Helpers


def _prune_decided(approvals: Mapping[str, Approval]) -> Mapping[str, Approval]:
    """Keep every pending approval and the newest decided ones: the state stays bounded."""
    decided = [a for a in approvals.values() if a.status != "pending"]
    if len(decided) <= MAX_DECIDED:
        return approvals
    decided.sort(key=lambda a: a.decided_at or a.created_at)
    drop = {a.approval_id for a in decided[: len(decided) - MAX_DECIDED]}
    return {k: v for k, v in approvals.items() if k not in drop}


def _bounded(old: tuple[str, ...], new: Iterable[str], limit: int) -> tuple[str, ...]:
    out = (*old, *new)
    return out[-limit:] if len(out) > limit else out


def durable(s: EngineState) -> tuple[Any, ...]:
    """The part of the state a crash must not lose (pane readings are re-detected)."""
    return (s.runs, s.approvals, s.journal, s.paused, s.used_ids, s.seen_nonces, s.counter)


def _alive(s: PaneStatus) -> bool:
    return s.state is not PaneState.GONE and not s.info.dead


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _exit_matches(cond: Condition, code: int) -> bool:
    if cond.exit is None:
        return False
    if cond.exit == "nonzero":
        return code != 0
    return code == cond.exit


def _is_marker_line(line: str) -> bool:
    return "### SENTRY " in line


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


class _Refused(Exception):
    """A human request that cannot be done; the message goes back in the Report."""


# --------------------------------------------------------------------------------------------
# One step's working copy


class _Work:
    def __init__(
        self, policy: Policy, state: EngineState, now: float, config: EngineConfig, event: Event
    ) -> None:
        self.policy = policy
        self.now = now
        self.cfg = config
        self.runs = dict(state.runs)
        self.approvals = dict(state.approvals)
        self.panes = dict(state.panes)
        self.journal = dict(state.journal)
        self.paused = state.paused
        self.nonces = list(state.seen_nonces)
        self.used = list(state.used_ids)
        self.counter = state.counter
        self.notes = list(state.notes)
        self.actions: list[Action] = []
        self.resend_failed = False  # a held "send failed" stage may try again on this event
        if isinstance(event, ServerUp | PaneAdded | PaneChanged):
            self._refresh_roles()  # the policy may differ from the one the state was saved with

    def state(self) -> EngineState:
        return EngineState(
            runs=self.runs,
            approvals=_prune_decided(self.approvals),
            panes=self.panes,
            journal=self.journal,
            paused=self.paused,
            seen_nonces=tuple(self.nonces[-MAX_NONCES:]),
            used_ids=tuple(self.used[-MAX_USED_IDS:]),
            counter=self.counter,
            notes=tuple(self.notes[-MAX_NOTES:]),
        )

    # -- small utilities ------------------------------------------------------------------

    def note(self, text: str) -> None:
        self.notes.append(one_line(text, 300))

    def next_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def fresh_id(self) -> str:
        """A short random id never issued before (approvals and runs share the namespace)."""
        used = set(self.used) | set(self.approvals) | set(self.runs_ids())
        for _ in range(1000):
            candidate = self.cfg.new_id()
            if candidate and candidate not in used:
                self.used.append(candidate)
                return candidate
        raise RuntimeError("could not find an unused id")

    def runs_ids(self) -> list[str]:
        return [r.run_id for r in self.runs.values()]

    def _refresh_roles(self) -> None:
        for key, status in self.panes.items():
            roles = roles_for(self.policy, status.info)
            if roles != status.roles:
                self.panes[key] = replace(status, roles=roles)

    def project(self, name: str) -> Project | None:
        return self.policy.project(name)

    def active_run(self, name: str) -> PipelineRun | None:
        run = self.runs.get(name)
        return run if run is not None and not run.status.finished else None

    def set_stage(self, project: str, index: int, **changes: Any) -> StageState:
        run = self.runs[project]
        stages = list(run.stages)
        stages[index] = replace(stages[index], **changes)
        self.runs[project] = replace(run, stages=tuple(stages))
        return stages[index]

    def set_run(self, project: str, **changes: Any) -> None:
        self.runs[project] = replace(self.runs[project], **changes)

    def pane_label(self, key: str) -> str:
        s = self.panes.get(key)
        return s.info.label if s else key

    def role_panes(self, project: Project, role: str) -> list[str]:
        tag = f"{project.name}.{role}"
        return sorted(
            (k for k, s in self.panes.items() if tag in s.roles and _alive(s)),
            key=lambda k: self.panes[k].info.label,
        )

    def target(self, project: Project, role: str) -> tuple[str | None, str]:
        keys = self.role_panes(project, role)
        if not keys:
            r = project.panes.get(role)
            where = f"{r.session}:{r.window}" if r else "?"
            return None, f"pane role {role} not matched ({where})"
        if len(keys) > 1:
            labels = ", ".join(self.pane_label(k) for k in keys[:3])
            return None, f"pane role {role} matches {len(keys)} panes ({labels}); narrow it"
        return keys[0], ""

    def pane_in_role(self, key: str, project: Project, role: str) -> bool:
        s = self.panes.get(key)
        return s is not None and f"{project.name}.{role}" in s.roles

    def report(self, event: HumanEvent, ok: bool, message: str) -> None:
        if event.request_id:
            self.actions.append(Report(event.request_id, ok, message))
        if not ok:
            self.note(f"{event.kind} refused: {message}")

    # -- dispatch -------------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        handler = _HANDLERS.get(type(event))
        if handler is None:
            self.note(f"ignored unexpected event {event.kind} ({type(event).__name__})")
            return
        if isinstance(event, HumanEvent):
            try:
                handler(self, event)
            except _Refused as exc:
                self.report(event, False, str(exc))
            return
        handler(self, event)

    # -- panes ----------------------------------------------------------------------------

    def on_pane(self, event: PaneAdded | PaneChanged) -> None:
        info = event.pane
        key = info.ref.key
        old = self.panes.get(key)
        roles = roles_for(self.policy, info)
        if old is None or old.state is PaneState.GONE:
            self.panes[key] = PaneStatus(info=info, since=self.now, roles=roles)
        else:
            self.panes[key] = replace(old, info=info, roles=roles)
        self.resend_failed = True

    def on_pane_gone(self, event: PaneGone) -> None:
        self.mark_gone(event.ref.key, "pane closed")

    def mark_gone(self, key: str, reason: str) -> None:
        old = self.panes.get(key)
        if old is None:
            return
        if old.state is not PaneState.GONE:
            self.panes[key] = replace(
                old, state=PaneState.GONE, since=self.now, reason=reason, alerted=False
            )

    def on_server_down(self, event: ServerDown) -> None:
        for key in list(self.panes):
            self.mark_gone(key, f"tmux server down: {event.reason}")

    def on_server_up(self, event: ServerUp) -> None:
        stale = [k for k in self.panes if k.rpartition("/")[0] != event.server]
        for key in stale:
            del self.panes[key]
        if stale:
            self.note(f"tmux server {event.server}: forgot {len(stale)} panes of the old server")

    def on_state(self, event: StateChanged) -> None:
        self.apply_state(event.ref.key, event.state, event.reason, event.trust)

    def apply_state(self, key: str, state: PaneState, reason: str, trust: Trust) -> None:
        old = self.panes.get(key)
        if old is None:
            self.note(f"state {state.value} for unknown pane {key}")
            return
        if (
            old.trust is Trust.HOOK
            and trust is Trust.SCREEN
            and state is not PaneState.BUSY
            and state is not old.state
            and self.now - old.since < HOOK_HOLD_S
        ):
            return  # the hook said so a moment ago; the screen may lag behind it
        if old.state is state:
            self.panes[key] = replace(old, reason=reason, trust=trust)
        else:
            self.panes[key] = replace(
                old, state=state, since=self.now, reason=reason, trust=trust, alerted=False
            )
        self.resend_failed = True
        if old.state is state:
            return
        status = self.panes[key]
        for project in self.policy.projects:
            if not any(r.startswith(f"{project.name}.") for r in status.roles):
                continue
            self.state_trigger(project, key, state, trust)
            self.state_conditions(project, key, state, trust)
        if state is PaneState.FAILED and not status.alerted:
            projects = [p for p in self.policy.projects if p.notify_failed]
            if any(any(r.startswith(f"{p.name}.") for r in status.roles) for p in projects):
                self.alert(key, "failed")

    def state_trigger(self, project: Project, key: str, state: PaneState, trust: Trust) -> None:
        if self.active_run(project.name) is not None or not project.stages:
            return
        if project.trigger_pane and not self.pane_in_role(key, project, project.trigger_pane):
            return
        for cond in project.trigger:
            if cond.state is state:
                if project.require_signed and trust not in TRUSTED:
                    self.note(
                        f"{project.name}: trigger state {state.value} from the screen "
                        f"ignored (signed signals required)"
                    )
                    return
                self.start_run(project, f"trigger: pane {self.pane_label(key)} {state.value}")
                return

    def state_conditions(self, project: Project, key: str, state: PaneState, trust: Trust) -> None:
        found = self.current(project)
        if found is None:
            return
        i, stage, st, _run = found
        if not self.listening(stage, st) or not self.pane_in_role(key, project, stage.pane):
            return
        signed = project.require_signed or stage.require_signed
        fail = any(c.state is state for c in stage.fail)
        done = any(c.state is state for c in stage.done)
        if (fail or done) and signed and trust not in TRUSTED:
            self.note(
                f"{project.name}/{stage.name}: state {state.value} from the screen ignored "
                f"(signed signals required)"
            )
            return
        if fail:
            self.fail_attempt(project, i, f"pane {state.value}")
        elif done:
            self.own_part_done(project, i, f"pane {state.value}", final=not self.wrapped(stage))

    def on_hook(self, event: HookEvent) -> None:
        key = event.ref.key if event.ref else None
        if key is None or key not in self.panes:
            hits = [
                k
                for k, s in self.panes.items()
                if s.info.ref.pane_id == event.tmux_pane and _alive(s)
            ]
            key = hits[0] if len(hits) == 1 else None
        if key is None:
            self.note(f"{event.agent} hook {event.hook} for unknown pane {event.tmux_pane}")
            return
        state = HOOK_STATES.get(event.hook.lower())
        if state is None:
            self.note(f"{event.agent} hook {event.hook}: not a hook sentry-tui knows")
            return
        message = event.fields.get("message") or event.fields.get("title") or ""
        reason = f"{event.agent} hook {event.hook}" + (
            f": {one_line(str(message), 80)}" if message else ""
        )
        self.apply_state(key, state, reason, Trust.HOOK)

    def on_output(self, event: OutputLines) -> None:
        key = event.ref.key
        status = self.panes.get(key)
        if status is None:
            return
        text_lines = [ln for ln in event.lines if ln.strip() and not _is_marker_line(ln)]
        if text_lines:
            self.panes[key] = replace(status, last_line=one_line(text_lines[-1], 200))
        for project in self.policy.projects:
            found = self.current(project)
            if found is None:
                continue
            i, stage, st, _run = found
            if not self.listening(stage, st) or not self.pane_in_role(key, project, stage.pane):
                continue
            lines = self.not_echo(project, stage, event.lines)
            fail = self.first_regex(stage.fail, lines)
            done = self.first_regex(stage.done, lines)
            if fail is not None or done is not None:
                self.confirm_send(project, i)
            if fail is not None:
                self.fail_attempt(project, i, f"matched {one_line(fail, 120)!r}")
            elif done is not None:
                self.own_part_done(
                    project, i, f"matched {one_line(done, 120)!r}", final=not self.wrapped(stage)
                )

    def not_echo(self, project: Project, stage: Stage, lines: Iterable[str]) -> list[str]:
        """Drop the shell's echo of the command we typed: it is not the command's output."""
        if stage.run is None:
            return list(lines)
        sent = wrapped_command(self.cfg, project.name, stage, self.runs[project.name].run_id)
        out = []
        for line in lines:
            text = line.strip()
            head = line.find(sent[:16])  # a prompt, then the start of the typed command
            if (
                sent in line
                or (len(text) >= 8 and text in sent)
                or (head >= 0 and sent.startswith(line[head:].rstrip()))
            ):
                continue
            out.append(line)
        return out

    @staticmethod
    def first_regex(conds: Iterable[Condition], lines: Iterable[str]) -> str | None:
        patterns = [_compiled(c.regex) for c in conds if c.regex]
        if not patterns:
            return None
        for line in lines:
            if _is_marker_line(line):
                continue
            if any(p.search(line) for p in patterns):
                return line
        return None

    def on_screen(self, event: ScreenChanged) -> None:
        """Screens are the detector's business; the engine only reads their verdicts."""

    def on_malformed(self, event: MalformedMarker) -> None:
        self.note(f"malformed marker in {self.pane_label(event.ref.key)}: {event.reason}")

    def on_policy_warning(self, event: PolicyWarning) -> None:
        self.note(f"{event.project}: {event.message}")

    # -- markers --------------------------------------------------------------------------

    def on_marker(self, event: MarkerSeen) -> None:
        marker = event.marker
        trust = marker.trust
        nonce = marker.fields.get("nonce")
        if trust is Trust.SIGNED and isinstance(nonce, str):
            if nonce in self.nonces:
                trust = Trust.REPLAYED
            else:
                self.nonces.append(nonce)
        if trust is Trust.SIGNED:
            pane_field = marker.fields.get("pane")
            if isinstance(pane_field, str) and pane_field and pane_field != event.ref.pane_id:
                trust = Trust.BAD_SIGNATURE
        marker = replace(marker, trust=trust)
        key = event.ref.key
        status = self.panes.get(key)
        if status is None:
            self.note(f"marker {marker.type} from unknown pane {key}")
            return
        for project in self.policy.projects:
            if not any(r.startswith(f"{project.name}.") for r in status.roles):
                continue
            if self.active_run(project.name) is None:
                self.marker_trigger(project, event.ref, marker)
            self.advance(project)
            self.marker_conditions(project, event.ref, marker)

    def ignored(self, ref: PaneRef, marker: Marker, reason: str) -> None:
        self.actions.append(Emit(MarkerIgnored(ref, marker, reason)))
        self.note(f"ignored {marker.type} marker in {self.pane_label(ref.key)}: {reason}")

    def trust_problem(self, marker: Marker, signed_required: bool, who: str) -> str | None:
        """Why a marker may not move ``who``, or None when it may."""
        if marker.trust is Trust.BAD_SIGNATURE:
            return "signature does not verify"
        if marker.trust is Trust.REPLAYED:
            return "signed marker seen before (replay)"
        if signed_required and marker.trust not in TRUSTED:
            return f"unsigned marker; {who} requires signed markers"
        return None

    def marker_trigger(self, project: Project, ref: PaneRef, marker: Marker) -> None:
        if not project.stages:
            return
        if project.trigger_pane and not self.pane_in_role(ref.key, project, project.trigger_pane):
            return
        if not any(
            c.marker is not None and self.marker_fits(c, marker, project.name, None)
            for c in project.trigger
        ):
            return
        problem = self.trust_problem(marker, project.require_signed, f"project {project.name}")
        if problem:
            self.ignored(ref, marker, problem)
            return
        self.start_run(project, f"trigger: {marker.type} marker in {self.pane_label(ref.key)}")

    def marker_fits(
        self, cond: Condition, marker: Marker, project: str, run_id: str | None
    ) -> bool:
        if cond.marker is None or not self.marker_scope(marker, project, run_id):
            return False
        for k, v in cond.marker.items():
            have = marker.type if k == "type" else marker.fields.get(k)
            if not _same(have, v):
                return False
        return True

    @staticmethod
    def marker_scope(marker: Marker, project: str, run_id: str | None) -> bool:
        """A marker naming another project, or another run of this one, is not for us."""
        if marker.project is not None and marker.project != project:
            return False
        for field_name in ("run", "run_id"):
            value = marker.fields.get(field_name)
            if run_id is not None and value is not None and value != run_id:
                return False
        return True

    def marker_conditions(self, project: Project, ref: PaneRef, marker: Marker) -> None:
        found = self.current(project)
        if found is None:
            return
        i, stage, st, run = found
        if not self.listening(stage, st):
            return
        if not self.pane_in_role(ref.key, project, stage.pane):
            # A line claiming this stage from elsewhere (an agent `cat`ing a web page) is
            # exactly what a forgery looks like: say so rather than drop it silently.
            if marker.stage == stage.name and marker.project in (None, project.name):
                self.ignored(ref, marker, f"not printed in the pane of stage {stage.name}")
            return
        if marker.stage == stage.name and marker.trust in (Trust.REPLAYED, Trust.BAD_SIGNATURE):
            self.ignored(ref, marker, self.trust_problem(marker, True, "") or "untrusted")
            return
        if not self.marker_scope(marker, project.name, run.run_id):
            return
        is_end = (
            marker.type == "END"
            and self.wrapped(stage)
            and marker.stage == stage.name
            and marker.exit is not None
        )
        done = [c for c in stage.done if self.marker_fits(c, marker, project.name, run.run_id)]
        fail = [c for c in stage.fail if self.marker_fits(c, marker, project.name, run.run_id)]
        sha = marker.fields.get("head_sha") or marker.fields.get("sha")
        if not (is_end or done or fail):
            if isinstance(sha, str) and sha and marker.stage in (None, stage.name):
                self.set_stage(project.name, i, head_sha=one_line(sha, 64))
            return
        signed = project.require_signed or stage.require_signed
        problem = self.trust_problem(marker, signed, f"stage {stage.name}")
        if problem:
            self.ignored(ref, marker, problem)
            return
        self.confirm_send(project, i)
        if isinstance(sha, str) and sha:
            st = self.set_stage(project.name, i, head_sha=one_line(sha, 64))
        what = f"{marker.type} marker" + (f": {one_line(marker.msg, 80)}" if marker.msg else "")
        if fail:
            self.fail_attempt(project, i, what)
            return
        if is_end:
            self.end_marker(project, i, stage, st, marker.exit or 0)
            return
        self.own_part_done(project, i, what, final=not self.wrapped(stage))

    def end_marker(self, project: Project, i: int, stage: Stage, st: StageState, code: int) -> None:
        """The wrapped command ended: this decides the attempt, whatever came before."""
        last = self.panes_last_line(project, stage)
        result = f"exit {code}" + (f" · {last}" if last else "")
        if any(_exit_matches(c, code) for c in stage.fail):
            self.fail_attempt(project, i, result)
        elif st.done_seen or any(_exit_matches(c, code) for c in stage.done):
            self.own_part_done(project, i, result, final=True)
        elif code != 0:
            self.fail_attempt(project, i, result)
        elif stage.done:
            self.fail_attempt(project, i, f"exit 0 but no done condition was seen · {last}")
        else:
            self.own_part_done(project, i, result, final=True)

    def panes_last_line(self, project: Project, stage: Stage) -> str:
        keys = self.role_panes(project, stage.pane)
        return self.panes[keys[0]].last_line if len(keys) == 1 else ""

    # -- stage machinery ------------------------------------------------------------------

    @staticmethod
    def wrapped(stage: Stage) -> bool:
        return stage.run is not None and stage.wrap

    @staticmethod
    def listening(stage: Stage, st: StageState) -> bool:
        """The attempt is under way: conditions count only after the stage's send."""
        if st.status is not StageStatus.RUNNING or st.started_at is None:
            return False
        return stage.run is None or bool(st.send_id)

    def current(self, project: Project) -> tuple[int, Stage, StageState, PipelineRun] | None:
        run = self.active_run(project.name)
        if run is None or run.current >= len(run.stages) or run.current >= len(project.stages):
            return None
        i = run.current
        return i, project.stages[i], run.stages[i], run

    def start_run(self, project: Project, why: str) -> PipelineRun:
        run_id = self.fresh_id()
        run = PipelineRun(
            run_id=run_id,
            project=project.name,
            status=RunStatus.RUNNING,
            stages=tuple(StageState(s.name) for s in project.stages),
            started_at=self.now,
        )
        self.runs[project.name] = run
        self.note(f"{project.name}: run {run_id} started ({why})")
        self.advance(project)
        return self.runs[project.name]

    def advance_all(self) -> None:
        for project in self.policy.projects:
            self.advance(project)
        self.resend_failed = False

    def advance(self, project: Project) -> None:
        """Move the project's run as far as it can go now; stop where it must wait."""
        for _ in range(3 * len(project.stages) + 3):
            run = self.active_run(project.name)
            if run is None:
                return
            if tuple(s.name for s in run.stages) != tuple(s.name for s in project.stages):
                self.note(f"{project.name}: policy stages changed; run {run.run_id} cancelled")
                self.finish_run(project, RunStatus.CANCELLED, "policy changed")
                return
            i = run.current
            if i >= len(project.stages):
                self.finish_run(project, RunStatus.SUCCEEDED, "")
                return
            stage, st = project.stages[i], run.stages[i]
            if st.status in (StageStatus.SUCCEEDED, StageStatus.SKIPPED):
                self.set_run(project.name, current=i + 1)
                continue
            if st.status is StageStatus.PENDING:
                if stage.approve is Gate.BEFORE:
                    self.open_approval(project, i, Gate.BEFORE)
                    return
                self.set_stage(project.name, i, status=StageStatus.RUNNING)
                continue
            if st.status in (StageStatus.RUNNING, StageStatus.RETRYING):
                if stage.run is not None:
                    if not st.send_id:
                        self.try_send(project, i)
                    return
                if st.started_at is None or st.status is StageStatus.RETRYING:
                    self.set_stage(
                        project.name,
                        i,
                        status=StageStatus.RUNNING,
                        attempts=st.attempts + 1,
                        started_at=self.now,
                        done_seen=False,
                    )
                    if not stage.done:
                        self.own_part_done(project, i, "nothing to wait for", final=True)
                        continue
                return
            return  # waiting for a human or a check, or finished

    def try_send(self, project: Project, i: int) -> None:
        stage = project.stages[i]
        run = self.runs[project.name]
        st = run.stages[i]
        if st.waiting_for.startswith("send failed") and not self.resend_failed:
            return
        if self.paused:
            self.set_stage(project.name, i, waiting_for="paused")
            return
        key, why = self.target(project, stage.pane)
        if key is None:
            self.set_stage(project.name, i, waiting_for=why)
            return
        pane = self.panes[key]
        role = project.panes[stage.pane]
        at_prompt = pane.state in PROMPT_STATES or (
            pane.state is PaneState.UNKNOWN and role.profile == "shell"
        )
        if not at_prompt:
            label = pane.info.label
            what = {
                PaneState.BUSY: "pane busy",
                PaneState.WAITING: "pane waiting for a human",
                PaneState.UNKNOWN: "pane state not known yet",
            }.get(pane.state, f"pane {pane.state.value}")
            self.set_stage(project.name, i, waiting_for=f"{what} ({label})")
            return
        text = wrapped_command(self.cfg, project.name, stage, run.run_id)
        self.emit_send(key, text, project.name, stage.name, run.run_id)
        action_id = self.actions[-1].action_id  # type: ignore[attr-defined]
        self.set_stage(
            project.name,
            i,
            status=StageStatus.RUNNING,
            attempts=st.attempts + 1,
            started_at=self.now,
            send_id=action_id,
            waiting_for="",
            done_seen=False,
        )

    def emit_send(self, key: str, text: str, project: str, stage: str, run_id: str) -> str:
        """Journal the send as intended and emit it, in this same step."""
        action_id = self.next_id("s")
        self.journal[action_id] = JournalEntry(
            action_id=action_id,
            pane=key,
            text=text,
            status="intended",
            at=self.now,
            project=project,
            stage=stage,
            run_id=run_id,
        )
        self.actions.append(
            Send(
                action_id=action_id,
                pane=PaneRef.parse(key),
                text=text,
                project=project,
                stage=stage,
                run_id=run_id,
            )
        )
        return action_id

    def confirm_send(self, project: Project, i: int) -> None:
        """Output of the attempt arrived: an uncertain send evidently happened."""
        send_id = self.runs[project.name].stages[i].send_id
        entry = self.journal.get(send_id)
        if entry is not None and entry.status == "uncertain":
            del self.journal[send_id]
            self.note(f"{project.name}/{entry.stage}: uncertain send {send_id} confirmed by output")

    def own_part_done(self, project: Project, i: int, message: str, final: bool) -> None:
        """Done matched. Wrapped commands wait for their END marker before this is final."""
        if not final:
            self.set_stage(project.name, i, done_seen=True, message=message)
            return
        self.set_stage(project.name, i, done_seen=True, message=message, waiting_for="")
        stage = project.stages[i]
        if stage.approve is Gate.AFTER:
            self.open_approval(project, i, Gate.AFTER)
            return
        self.after_gate(project, i)

    def after_gate(self, project: Project, i: int) -> None:
        stage = project.stages[i]
        run = self.runs[project.name]
        st = run.stages[i]
        if stage.await_ is None:
            self.succeed(project, i)
            return
        check_id = self.next_id("c")
        sha = st.head_sha or next((s.head_sha for s in reversed(run.stages[:i]) if s.head_sha), "")
        params = dict(stage.await_.params)
        keys = self.role_panes(project, stage.pane)
        if len(keys) == 1 and self.panes[keys[0]].info.cwd:
            params.setdefault("cwd", self.panes[keys[0]].info.cwd)
        self.actions.append(
            StartCheck(
                check_id=check_id,
                provider=stage.await_.provider,
                params=params,
                head_sha=sha,
                created_after=st.started_at if st.started_at is not None else self.now,
            )
        )
        self.set_stage(
            project.name,
            i,
            status=StageStatus.AWAITING_EXTERNAL,
            check_id=check_id,
            awaiting_since=self.now,
            head_sha=sha,
            waiting_for=f"GitHub Actions {params.get('workflow', '')}".rstrip(),
        )

    def succeed(self, project: Project, i: int) -> None:
        self.set_stage(
            project.name,
            i,
            status=StageStatus.SUCCEEDED,
            finished_at=self.now,
            waiting_for="",
        )
        self.set_run(project.name, current=i + 1)

    def fail_attempt(self, project: Project, i: int, message: str, stop_check: bool = True) -> None:
        stage = project.stages[i]
        st = self.runs[project.name].stages[i]
        if stop_check and st.check_id and st.status is StageStatus.AWAITING_EXTERNAL:
            self.actions.append(StopCheck(st.check_id))
        if st.attempts < 1 + stage.retries:
            self.set_stage(
                project.name,
                i,
                status=StageStatus.RETRYING,
                send_id="",
                started_at=None,
                done_seen=False,
                check_id="",
                awaiting_since=None,
                message=message,
                waiting_for="",
            )
            self.note(
                f"{project.name}/{stage.name}: attempt {st.attempts} failed ({message}); retrying"
            )
            return
        self.fail_stage(project, i, message, notify=True)

    def fail_stage(self, project: Project, i: int, message: str, notify: bool) -> None:
        stage = project.stages[i]
        st = self.set_stage(
            project.name,
            i,
            status=StageStatus.FAILED,
            finished_at=self.now,
            message=message,
            waiting_for="",
            send_id="",
            awaiting_since=None,
        )
        run = self.runs[project.name]
        self.finish_run(project, RunStatus.FAILED, message)
        if notify:
            pane_keys = self.role_panes(project, stage.pane)
            pane = self.pane_label(pane_keys[0]) if len(pane_keys) == 1 else stage.pane
            tries = f"{st.attempts} attempt{'s' if st.attempts != 1 else ''}"
            self.actions.append(
                Notify(
                    event="stage_failed",
                    title=f"{project.name}: {stage.name} failed",
                    body=(
                        f"Stage {stage.name} of {project.name} (run {run.run_id}) failed after "
                        f"{tries}: {one_line(message)}\n"
                        f"Pane: {pane}\n"
                        f"Retry: sentry-tui retry {project.name} {stage.name}"
                    ),
                    project=project.name,
                    stage=stage.name,
                    pane=pane,
                    dedupe_key=f"failed:{run.run_id}:{stage.name}:{st.attempts}",
                    urgent=True,
                )
            )

    def finish_run(self, project: Project, status: RunStatus, message: str) -> None:
        run = self.runs[project.name]
        self.runs[project.name] = replace(run, status=status, finished_at=self.now)
        for aid, a in list(self.approvals.items()):
            if a.run_id == run.run_id and a.status == "pending":
                self.approvals[aid] = replace(a, status="cancelled", decided_at=self.now)
        if status is RunStatus.SUCCEEDED:
            took = format_duration(self.now - run.started_at)
            names = " → ".join(s.name for s in run.stages)
            self.actions.append(
                Notify(
                    event="run_finished",
                    title=f"{project.name}: run {run.run_id} succeeded",
                    body=f"Pipeline {project.name} ({names}) finished in {took}.",
                    project=project.name,
                    dedupe_key=f"run:{run.run_id}",
                )
            )
        self.note(
            f"{project.name}: run {run.run_id} {status.value}"
            + (f" ({message})" if message else "")
        )

    # -- approvals ------------------------------------------------------------------------

    def open_approval(self, project: Project, i: int, gate: Gate) -> None:
        stage = project.stages[i]
        run = self.runs[project.name]
        aid = self.fresh_id()
        command = stage.run or ""
        commit = run.stages[i].head_sha or next(
            (s.head_sha for s in reversed(run.stages[: i + 1]) if s.head_sha), ""
        )
        last = ""
        if gate is Gate.AFTER and run.stages[i].message:
            last = f"{stage.name}: {run.stages[i].message}"
        else:
            prev = next((s for s in reversed(run.stages[:i]) if s.message), None)
            if prev is not None:
                last = f"{prev.name}: {prev.message}"
        expires = self.now + self.cfg.approval_ttl_s if self.cfg.approval_ttl_s else None
        self.approvals[aid] = Approval(
            approval_id=aid,
            project=project.name,
            stage=stage.name,
            run_id=run.run_id,
            gate=gate,
            created_at=self.now,
            command=command,
            commit=commit,
            last_result=one_line(last),
            expires_at=expires,
        )
        self.set_stage(
            project.name,
            i,
            status=StageStatus.WAITING_APPROVAL,
            waiting_for=f"approval {aid}",
        )
        when = "before it runs" if gate is Gate.BEFORE else "after it finished"
        keys = self.role_panes(project, stage.pane)
        pane = self.pane_label(keys[0]) if len(keys) == 1 else stage.pane
        lines = [f"Stage {stage.name} of {project.name} (run {run.run_id}) needs approval {when}."]
        if command:
            lines.append(f"Command: {command}")
        if commit:
            lines.append(f"Commit: {commit}")
        if last:
            lines.append(f"Last result: {one_line(last)}")
        lines.append(f"Pane: {pane}")
        lines.append(f"Approve: sentry-tui approve {aid}")
        lines.append(f"Reject: sentry-tui reject {aid} --reason 'why'")
        self.actions.append(
            Notify(
                event="approval",
                title=f"{project.name}: approve {stage.name}? ({aid})",
                body="\n".join(lines),
                project=project.name,
                stage=stage.name,
                pane=pane,
                approval_id=aid,
                dedupe_key=f"approval:{aid}",
                command=command,
                commit=commit,
                since=self.now,
            )
        )

    def find_approval(self, raw: str) -> Approval:
        aid = raw.strip().lower()
        if not aid:
            raise _Refused("which approval? give its id")
        a = self.approvals.get(aid)
        if a is None:
            raise _Refused(f"no approval {aid!r} (see `sentry-tui status` for pending ones)")
        if a.status == "pending" and a.expires_at is not None and self.now >= a.expires_at:
            self.expire(a)
            a = self.approvals[aid]
        if a.status != "pending":
            by = f" by {a.decided_by}" if a.decided_by else ""
            raise _Refused(f"approval {aid} was already {a.status}{by}; nothing changed")
        return a

    def stage_of(self, a: Approval) -> tuple[Project, int] | None:
        project = self.project(a.project)
        run = self.runs.get(a.project)
        if project is None or run is None or run.run_id != a.run_id:
            return None
        i = next((j for j, s in enumerate(project.stages) if s.name == a.stage), None)
        if i is None or run.stages[i].status is not StageStatus.WAITING_APPROVAL:
            return None
        return project, i

    def expire(self, a: Approval) -> None:
        self.approvals[a.approval_id] = replace(a, status="expired", decided_at=self.now)
        found = self.stage_of(a)
        if found is None:
            return
        project, i = found
        self.fail_stage(project, i, "approval expired", notify=False)
        self.actions.append(
            Notify(
                event="approval_expired",
                title=f"{a.project}: approval {a.approval_id} for {a.stage} expired",
                body=f"Nobody answered approval {a.approval_id}; stage {a.stage} did not run.\n"
                f"Start again: sentry-tui retry {a.project} {a.stage}",
                project=a.project,
                stage=a.stage,
                approval_id=a.approval_id,
                dedupe_key=f"expired:{a.approval_id}",
            )
        )

    def on_approve(self, event: Approve) -> None:
        a = self.find_approval(event.approval_id)
        found = self.stage_of(a)
        if found is None:
            self.approvals[a.approval_id] = replace(a, status="cancelled", decided_at=self.now)
            raise _Refused(f"approval {a.approval_id}: its run is no longer waiting for it")
        project, i = found
        self.approvals[a.approval_id] = replace(
            a, status="approved", decided_at=self.now, decided_by=event.by
        )
        if a.gate is Gate.BEFORE:
            self.set_stage(project.name, i, status=StageStatus.RUNNING, waiting_for="")
            what = f"will run `{a.command}`" if a.command else "will start"
        else:
            self.after_gate(project, i)
            what = "is approved and moves on"
        self.report(event, True, f"approved {a.approval_id}: {a.project} {a.stage} {what}")

    def on_reject(self, event: Reject) -> None:
        a = self.find_approval(event.approval_id)
        reason = one_line(event.reason, 200)
        self.approvals[a.approval_id] = replace(
            a, status="rejected", decided_at=self.now, decided_by=event.by, reason=reason
        )
        found = self.stage_of(a)
        if found is not None:
            project, i = found
            msg = "rejected" + (f": {reason}" if reason else "") + f" (by {event.by})"
            self.fail_stage(project, i, msg, notify=False)
        self.report(event, True, f"rejected {a.approval_id}: {a.project} {a.stage} will not run")

    # -- other human commands -------------------------------------------------------------

    def need_project(self, name: str) -> Project:
        if not name:
            with_stages = [p for p in self.policy.projects if p.stages]
            if len(with_stages) == 1:
                return with_stages[0]
            raise _Refused("which project? name one")
        project = self.project(name)
        if project is None:
            known = ", ".join(p.name for p in self.policy.projects) or "none"
            raise _Refused(f"no project {name!r} in the policy (projects: {known})")
        return project

    def stage_index(self, project: Project, name: str) -> int:
        run = self.runs.get(project.name)
        if not name:
            if run is None:
                raise _Refused(f"{project.name} has no run yet")
            return min(run.current, len(project.stages) - 1)
        for i, s in enumerate(project.stages):
            if s.name == name:
                return i
        known = ", ".join(s.name for s in project.stages)
        raise _Refused(f"no stage {name!r} in {project.name} (stages: {known})")

    def on_start(self, event: Start) -> None:
        project = self.need_project(event.project)
        if not project.stages:
            raise _Refused(f"{project.name} has no stages to run")
        active = self.active_run(project.name)
        if active is not None:
            raise _Refused(f"{project.name}: run {active.run_id} is still running")
        run = self.start_run(project, f"started by {event.by}")
        self.report(event, True, f"{project.name}: run {run.run_id} started")

    def named_stage(
        self, project_name: str, stage_name: str
    ) -> tuple[Project, int, Stage, PipelineRun, StageState]:
        """What a human's retry/skip names, or a refusal saying what is missing."""
        project = self.need_project(project_name)
        i = self.stage_index(project, stage_name)
        run = self.runs.get(project.name)
        if run is None:
            raise _Refused(f"{project.name} has no run yet; start it")
        return project, i, project.stages[i], run, run.stages[i]

    def on_retry(self, event: Retry) -> None:
        project, i, stage, run, st = self.named_stage(event.project, event.stage)
        uncertain = [
            e
            for e in self.journal.values()
            if e.status == "uncertain"
            and e.project == project.name
            and e.stage == stage.name
            and e.run_id == run.run_id
        ]
        if uncertain and not run.status.finished and run.current == i:
            entry = uncertain[-1]
            if self.paused:
                raise _Refused("sending is paused; resume first")
            status = self.panes.get(entry.pane)
            if status is None or not _alive(status):
                raise _Refused(f"pane {entry.pane} is gone; cannot send again")
            for e in uncertain:
                del self.journal[e.action_id]
            aid = self.emit_send(entry.pane, entry.text, project.name, stage.name, run.run_id)
            self.set_stage(
                project.name,
                i,
                status=StageStatus.RUNNING,
                send_id=aid,
                started_at=self.now,
                waiting_for="",
                done_seen=False,
            )
            self.report(event, True, f"{project.name} {stage.name}: sent again")
            return
        if not run.status.finished:
            if i != run.current:
                raise _Refused(
                    f"run {run.run_id} is at stage {project.stages[run.current].name}; "
                    f"cancel it first to retry {stage.name}"
                )
            if st.status is StageStatus.WAITING_APPROVAL:
                raise _Refused(f"{stage.name} waits for {st.waiting_for}; approve or reject it")
            if st.waiting_for.startswith("send failed"):
                self.resend_failed = True
                self.report(event, True, f"{project.name} {stage.name}: will send again")
                return
            raise _Refused(f"{stage.name} is {st.status.value}; nothing to retry")
        # A finished run: continue it from this stage, with a fresh retry budget. The human
        # asking is the decision, so a `before` gate is not asked again.
        stages = list(run.stages)
        for j in range(i, len(stages)):
            stages[j] = StageState(stages[j].name)
        stages[i] = StageState(stage.name, status=StageStatus.RUNNING)
        self.runs[project.name] = replace(
            run, status=RunStatus.RUNNING, finished_at=None, current=i, stages=tuple(stages)
        )
        self.resend_failed = True
        self.report(event, True, f"{project.name}: run {run.run_id} retries from {stage.name}")

    def on_skip(self, event: Skip) -> None:
        project, i, stage, run, st = self.named_stage(event.project, event.stage)
        if st.status in (StageStatus.SUCCEEDED, StageStatus.SKIPPED):
            raise _Refused(f"{stage.name} already {st.status.value}")
        if i < run.current and not run.status.finished:
            raise _Refused(f"{stage.name} is already behind the run")
        if st.check_id and st.status is StageStatus.AWAITING_EXTERNAL:
            self.actions.append(StopCheck(st.check_id))
        for aid, a in list(self.approvals.items()):
            if a.run_id == run.run_id and a.stage == stage.name and a.status == "pending":
                self.approvals[aid] = replace(a, status="cancelled", decided_at=self.now)
        self.set_stage(
            project.name,
            i,
            status=StageStatus.SKIPPED,
            finished_at=self.now,
            waiting_for="",
            message=f"skipped by {event.by}",
        )
        if run.status.finished and i >= run.current:
            self.runs[project.name] = replace(
                self.runs[project.name], status=RunStatus.RUNNING, finished_at=None, current=i
            )
        self.report(event, True, f"{project.name}: {stage.name} skipped")

    def on_cancel(self, event: Cancel) -> None:
        project = self.need_project(event.project)
        run = self.active_run(project.name)
        if run is None:
            raise _Refused(f"{project.name} has no run in progress")
        stages = []
        for st in run.stages:
            if st.check_id and st.status is StageStatus.AWAITING_EXTERNAL:
                self.actions.append(StopCheck(st.check_id))
            if not st.status.finished:
                st = replace(st, status=StageStatus.CANCELLED, waiting_for="", finished_at=self.now)
            stages.append(st)
        self.runs[project.name] = replace(run, stages=tuple(stages))
        self.finish_run(project, RunStatus.CANCELLED, f"cancelled by {event.by}")
        self.report(event, True, f"{project.name}: run {run.run_id} cancelled")

    def on_pause(self, event: Pause) -> None:
        self.paused = True
        self.report(event, True, "paused: nothing will be sent until resume")

    def on_resume(self, event: Resume) -> None:
        self.paused = False
        self.resend_failed = True
        for name, run in list(self.runs.items()):
            stages = tuple(
                replace(s, waiting_for="") if s.waiting_for == "paused" else s for s in run.stages
            )
            self.runs[name] = replace(run, stages=stages)
        self.report(event, True, "resumed: held sends go out when their panes are ready")

    def on_send_text(self, event: SendText) -> None:
        if self.paused:
            raise _Refused("sending is paused; resume first")
        if not event.text:
            raise _Refused("nothing to send")
        if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in event.text):
            raise _Refused("the text has control characters; refusing to type it")
        key = resolve_pane(self.state(), event.pane)
        if key is None:
            raise _Refused(f"no single live pane matches {event.pane!r}")
        self.emit_send(key, event.text, "", "", "")
        self.report(event, True, f"sending to {self.pane_label(key)}")

    def on_dismiss(self, event: Dismiss) -> None:
        entry = self.journal.get(event.action_id)
        if entry is None:
            raise _Refused(f"no open send {event.action_id!r}")
        if entry.status == "intended":
            raise _Refused(f"send {event.action_id} is in flight; wait for it")
        del self.journal[event.action_id]
        self.report(event, True, f"dismissed send {event.action_id}")

    # -- runner feedback ------------------------------------------------------------------

    def on_send_result(self, event: SendResult) -> None:
        entry = self.journal.pop(event.action_id, None)
        if entry is None:
            self.note(f"result for unknown send {event.action_id}")
        for project in self.policy.projects:
            run = self.runs.get(project.name)
            if run is None:
                continue
            for i, st in enumerate(run.stages):
                if st.send_id != event.action_id:
                    continue
                if event.ok:
                    return
                self.set_stage(
                    project.name,
                    i,
                    attempts=max(0, st.attempts - 1),
                    started_at=None,
                    send_id="",
                    waiting_for=f"send failed: {one_line(event.error, 120)}",
                )
                self.note(f"{project.name}/{st.name}: send failed: {event.error}")
                return
        if not event.ok:
            self.note(f"send {event.action_id} failed: {event.error}")

    def on_check(self, event: CheckUpdate) -> None:
        for project in self.policy.projects:
            run = self.active_run(project.name)
            if run is None:
                continue
            for i, st in enumerate(run.stages):
                if st.check_id != event.check_id or st.status is not StageStatus.AWAITING_EXTERNAL:
                    continue
                url = f" {event.url}" if event.url else ""
                if event.status == "completed":
                    if event.conclusion == "success":
                        self.set_stage(project.name, i, message=f"GitHub Actions success{url}")
                        self.succeed(project, i)
                    else:
                        conclusion = event.conclusion or "unknown"
                        self.fail_attempt(
                            project, i, f"GitHub Actions {conclusion}{url}", stop_check=False
                        )
                elif event.status == "error":
                    self.set_stage(project.name, i, message=f"check error: {event.detail}")
                    self.note(f"{project.name}/{st.name}: check error: {event.detail}")
                else:
                    self.set_stage(
                        project.name, i, waiting_for=f"GitHub Actions run {event.status}{url}"
                    )
                return
        self.note(f"update for a check nobody awaits: {event.check_id}")

    # -- the clock ------------------------------------------------------------------------

    def on_tick(self, event: Tick) -> None:
        for project in self.policy.projects:
            found = self.current(project)
            if found is None:
                continue
            i, stage, st, _run = found
            if (
                st.status is StageStatus.RUNNING
                and stage.timeout_s is not None
                and self.listening(stage, st)
                and st.started_at is not None
                and self.now > st.started_at + stage.timeout_s
            ):
                self.fail_attempt(project, i, f"timed out after {format_duration(stage.timeout_s)}")
            elif (
                st.status is StageStatus.AWAITING_EXTERNAL
                and stage.await_ is not None
                and stage.await_.timeout_s is not None
                and st.awaiting_since is not None
                and self.now > st.awaiting_since + stage.await_.timeout_s
            ):
                limit = format_duration(stage.await_.timeout_s)
                self.fail_attempt(project, i, f"no GitHub Actions result after {limit}")
        for a in list(self.approvals.values()):
            if a.status == "pending" and a.expires_at is not None and self.now >= a.expires_at:
                self.expire(a)
        for key, status in list(self.panes.items()):
            if status.state is PaneState.GONE and self.now - status.since > GONE_KEEP_S:
                del self.panes[key]
            elif status.state is PaneState.WAITING and not status.alerted:
                limits = [
                    p.notify_waiting_after_s
                    for p in self.policy.projects
                    if any(r.startswith(f"{p.name}.") for r in status.roles)
                ]
                if limits and self.now - status.since >= min(limits):
                    self.alert(key, "waiting")

    def alert(self, key: str, what: str) -> None:
        status = self.panes[key]
        self.panes[key] = replace(status, alerted=True)
        label = status.info.label
        waited = format_duration(self.now - status.since)
        lines = [f"Pane {label} ({status.info.command or 'unknown command'})"]
        if status.reason:
            lines.append(f"Why: {one_line(status.reason, 120)}")
        if status.last_line:
            lines.append(f"Last line: {one_line(status.last_line, 160)}")
        if what == "waiting":
            lines.append(f"Waiting for {waited}.")
            lines.append(f"Answer: sentry-tui send {label} 'TEXT'")
        projects = sorted({r.split(".", 1)[0] for r in status.roles})
        self.actions.append(
            Notify(
                event=what if what == "waiting" else "pane_failed",
                title=f"{label} is waiting for you" if what == "waiting" else f"{label} failed",
                body="\n".join(lines),
                project=projects[0] if len(projects) == 1 else "",
                pane=label,
                dedupe_key=f"{what}:{key}:{status.since}",
                since=status.since,
                urgent=what != "waiting",
            )
        )


_HANDLERS: dict[type, Callable[[_Work, Any], None]] = {
    PaneAdded: _Work.on_pane,
    PaneChanged: _Work.on_pane,
    PaneGone: _Work.on_pane_gone,
    ServerDown: _Work.on_server_down,
    ServerUp: _Work.on_server_up,
    StateChanged: _Work.on_state,
    HookEvent: _Work.on_hook,
    OutputLines: _Work.on_output,
    ScreenChanged: _Work.on_screen,
    MarkerSeen: _Work.on_marker,
    MalformedMarker: _Work.on_malformed,
    PolicyWarning: _Work.on_policy_warning,
    Tick: _Work.on_tick,
    SendResult: _Work.on_send_result,
    CheckUpdate: _Work.on_check,
    Approve: _Work.on_approve,
    Reject: _Work.on_reject,
    Retry: _Work.on_retry,
    Skip: _Work.on_skip,
    Cancel: _Work.on_cancel,
    Start: _Work.on_start,
    Pause: _Work.on_pause,
    Resume: _Work.on_resume,
    SendText: _Work.on_send_text,
    Dismiss: _Work.on_dismiss,
}
