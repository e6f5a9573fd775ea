"""The loop: the one place where the pure core meets tmux, the disk, the network and humans.

Data flows one way (DESIGN.md): the watcher's raw events become meaning in the perceiver,
the engine turns meaning into a new state and actions, and this module carries the actions
out. Every state change reaches disk *before* its side effect: a send is journalled as
intended, persisted, typed, then marked done; after a crash an intended-but-unconfirmed send
is shown as uncertain instead of being typed again.
"""

from __future__ import annotations

import logging
import os
import queue
import shlex
import shutil
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sentry_tui import engine, inbox, store
from sentry_tui.ansi import one_line
from sentry_tui.config import Paths
from sentry_tui.crash import crash_point
from sentry_tui.model import (
    Action,
    Approve,
    CheckUpdate,
    Emit,
    EngineState,
    Event,
    HookEvent,
    HumanEvent,
    Marker,
    MarkerSeen,
    Notify,
    OutputLines,
    PaneAdded,
    PaneChanged,
    PaneGone,
    PaneInfo,
    PaneRef,
    Persist,
    Policy,
    PolicyWarning,
    Report,
    ScreenChanged,
    Send,
    SendResult,
    ServerDown,
    ServerUp,
    Snapshot,
    StartCheck,
    StopCheck,
    Tick,
    plain,
    to_json,
)
from sentry_tui.perceive import Perceiver

log = logging.getLogger("sentry_tui.runner")

QUIET_KINDS = frozenset({"tick", "screen", "output"})  # too chatty for history and watch
TAIL_CHARS = 8000
MARKERS_KEPT = 8
POSITIONS_EVERY_S = 5.0  # read positions alone: a re-read after a crash changes nothing durable
SNAPSHOT_EVERY_S = 0.5  # when only pane output changed
SNAPSHOT_HEARTBEAT_S = 2.0  # when nothing changed: views tell a live engine by the file's age
PUBLISHED_TAIL_CHARS = 4000  # a view shows a screenful; the file stays small
INBOX_EVERY_S = 0.25
# The loop's longest wait when tmux is quiet: it bounds how late a timeout, a stable screen or
# a dropped file is seen. Key presses and check results wake it at once (Watcher.wake), so
# this only sets how often an idle engine wakes up: four times a second, not ten.
STEP_WAIT_S = 0.25


def wrapper_command(state_dir: Path | None) -> str:
    """How a stage's `run` is wrapped in the pane: the shortest form that will resolve there."""
    exe = shutil.which("sentry-tui")
    base = "sentry-tui" if exe else f"{shlex.quote(sys.executable)} -m sentry_tui"
    extra = f" --state-dir {shlex.quote(str(state_dir))}" if state_dir else ""
    return f"{base} wrap{extra}"


@dataclass
class RunnerOptions:
    socket_name: str | None = None
    socket_path: str | None = None
    dry_run: bool = False
    exclude_panes: frozenset[str] = frozenset()  # pane ids (%N) never watched: our own UI
    wrapper: str | None = None
    on_event: Callable[[dict[str, Any]], None] | None = None  # watch --json, tests
    messages: list[str] = field(default_factory=list)


class Runner:
    """Hosts the engine for one state dir. Also the in-process `EngineClient` for the TUI."""

    def __init__(
        self,
        policy: Policy,
        paths: Paths,
        options: RunnerOptions | None = None,
        *,
        notifier: Any = None,
        checks: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from sentry_tui.tmux import Watcher  # adapters imported here, not by the core

        self.policy = policy
        self.paths = paths
        self.options = options or RunnerOptions()
        self.clock = clock
        self.store = store.Store(paths)
        self.lock = store.EngineLock(paths)
        self.config = engine.EngineConfig(
            wrapper=self.options.wrapper or wrapper_command(_explicit_state_dir(paths))
        )
        self.notifier = notifier
        self.checks = checks
        # Read-only until open() holds the lock: a second engine must not touch the files.
        self.state, self._positions, self.messages = self.store.load(readonly=True)
        self.perceiver = Perceiver(
            self._profile_of, key=_read_key(paths), extra_rules=_extra_rules(policy)
        )
        self._watcher_class = Watcher
        self.watcher: Watcher | None = None
        self._human: queue.Queue[HumanEvent] = queue.Queue()
        self._external: queue.Queue[Event] = queue.Queue()
        self._tails: dict[str, str] = {}
        self._history: list[dict[str, Any]] = []  # lines for history.jsonl, written per batch
        self._tails_changed = False
        self._alerts: deque[str] = deque(maxlen=3)  # the runner's own recent problems
        self._unmatched: list[PolicyWarning] = []
        self._markers: dict[str, deque[Marker]] = {}
        self._snapshot = self._make_snapshot()
        self._saved_state = self.state
        self._last_positions_save = 0.0
        self._last_snapshot_write = 0.0
        self._published_state = EngineState()
        self._last_inbox = 0.0
        self._stop = threading.Event()
        self._opened = False
        self._recovered: list[Event] = []

    # -- life ----------------------------------------------------------------------------

    def open(self) -> None:
        """Take the lock, recover the journal, start reading tmux. Raises LockHeld."""
        self.lock.acquire()
        self.state, self._positions, self.messages = self.store.load()
        self.state = store.journal_uncertain(self.state)
        for msg in self.messages:  # e.g. a corrupt state file moved aside: the human must know
            self._note(msg)
        self._save(force=True)
        # Requests claimed by a previous engine that died before saving their effect.
        requests, problems = inbox.read_requests(
            self.paths, handled=self.store.handled, recover=True
        )
        for problem in problems:
            self._note(problem)
        self._recovered = list(requests)
        self.watcher = self._watcher_class(
            self.options.socket_name,
            self.options.socket_path,
            screen_mode=self.perceiver.screen_mode,
            positions=self._positions,
        )
        self.watcher.start()
        for check in engine.active_checks(self.state, self.policy):
            self._do_start_check(check)
        self._opened = True

    def close(self) -> None:
        self._stop.set()
        if not self._opened:
            return
        self._opened = False
        try:
            if self.watcher is not None:
                self.watcher.stop()
        finally:
            if self.checks is not None:
                self.checks.close()
            if self.notifier is not None:
                self.notifier.close()
            self._save(force=True)
            self._write_snapshot(force=True)
            self.lock.release()

    def run(self, stop: threading.Event | None = None) -> None:
        """Loop until ``stop`` (or :meth:`close`) is set."""
        stop = stop or self._stop
        while not stop.is_set() and not self._stop.is_set():
            self.step_once(timeout=STEP_WAIT_S)

    # -- EngineClient --------------------------------------------------------------------

    snapshot_in_memory = True

    def snapshot(self) -> Snapshot:
        return self._snapshot

    def submit(self, event: HumanEvent) -> None:
        self._human.put(event)
        self._wake()

    def jump_to(self, pane_key: str) -> str:
        try:
            ref = PaneRef.parse(pane_key)
            if self.watcher is None:
                return "not watching tmux yet"
            self.watcher.switch_client(ref)
        except Exception as exc:  # a gone pane or no attached client: say so, keep going
            return f"cannot switch to {pane_key}: {exc}"
        return f"switched to {pane_key}"

    def _profile_of(self, info: PaneInfo) -> str:
        """The policy role's profile where the pane plays one, else a guess from its command."""
        from sentry_tui import detect

        status = self.state.panes.get(info.ref.key)
        for role_name in status.roles if status else ():
            project_name, _, role = role_name.partition(".")
            project = self.policy.project(project_name)
            profile = project.panes[role].profile if project and role in project.panes else ""
            if profile not in ("", "auto"):
                return profile
        return detect.guess_profile(foreground_command(info))

    def post(self, event: Event) -> None:
        """For adapters on other threads (check poller): queue an event for the loop."""
        self._external.put(event)
        self._wake()

    def _wake(self) -> None:
        if self.watcher is not None:
            self.watcher.wake()

    # -- the loop ------------------------------------------------------------------------

    def step_once(self, timeout: float = 0.1) -> None:
        assert self.watcher is not None, "open() first"
        raw = list(self.watcher.events(timeout))
        now = self.clock()
        raw.extend(self._recovered)
        self._recovered = []
        raw.extend(_drain(self._external))
        raw.extend(_drain(self._human))
        if now - self._last_inbox >= INBOX_EVERY_S:
            self._last_inbox = now
            raw.extend(self._read_inbox())
        raw.append(Tick())
        actions: list[Action] = []
        for event in raw:
            actions.extend(self._dispatch(event, now))
        actions.extend(self._dispatch_all(self.perceiver.tick(now), now))
        self._save()
        if actions and any(isinstance(e, Approve) for e in raw):
            crash_point("between_approval_and_start")
        self._execute(actions, now)
        self._flush_history()  # what the actions recorded (notifications, answers)
        self._snapshot = self._make_snapshot()
        self._write_snapshot()

    def _dispatch_all(self, events: list[Event], now: float) -> list[Action]:
        out: list[Action] = []
        for event in events:
            out.extend(self._dispatch(event, now))
        return out

    def _dispatch(self, event: Event, now: float) -> list[Action]:
        if isinstance(event, PaneAdded | PaneChanged):
            if event.pane.ref.pane_id in self.options.exclude_panes:
                return []
        elif isinstance(event, ScreenChanged | OutputLines):
            if event.ref.key not in self.state.panes:
                return []
            if isinstance(event, ScreenChanged):
                crash_point("mid_capture")
                self._tails[event.ref.key] = (event.ansi or event.text)[-TAIL_CHARS:]
                self._tails_changed = True
        self._record(event, now)
        actions = self._step(event, now)
        if isinstance(event, PaneAdded | PaneGone | ServerUp | ServerDown):
            self._unmatched = engine.unmatched_roles(self.policy, self.state)
        if isinstance(event, ServerDown):
            self._note(f"tmux: {event.reason}")
        elif isinstance(event, ServerUp):  # recovered: the old complaint no longer holds
            kept = [a for a in self._alerts if not a.startswith("tmux:")]
            self._alerts.clear()
            self._alerts.extend(kept)
        if isinstance(event, HumanEvent) and event.request_id:
            self.store.mark_handled([event.request_id])  # saved with the state it changed
        if isinstance(event, PaneAdded | PaneChanged):
            self.perceiver.pane(event.pane)
        elif isinstance(event, PaneGone):
            self._tails.pop(event.ref.key, None)
        for derived in self.perceiver.feed(event, now, self.state.seen_nonces):
            if isinstance(derived, MarkerSeen):
                self._markers.setdefault(derived.ref.key, deque(maxlen=MARKERS_KEPT)).append(
                    derived.marker
                )
            self._record(derived, now)
            actions.extend(self._step(derived, now))
        return actions

    def _step(self, event: Event, now: float) -> list[Action]:
        try:
            self.state, actions = engine.step(self.policy, self.state, event, now, self.config)
        except Exception:  # the engine records what it cannot handle; this is a last guard
            log.exception("engine failed on %s", event.kind)
            return []
        return list(actions)

    # -- actions -------------------------------------------------------------------------

    def _execute(self, actions: list[Action], now: float) -> None:
        pending = deque(actions)
        while pending:
            action = pending.popleft()
            try:
                follow = self._do(action, now)
            except Exception as exc:
                log.exception("action %s failed", action.kind)
                self._note(f"{action.kind} failed: {exc}")
                follow = []
            pending.extend(follow)

    def _do(self, action: Action, now: float) -> list[Action]:
        if isinstance(action, Send):
            return self._do_send(action, now)
        if isinstance(action, Persist):
            self._save()  # a no-op when step_once already saved this state
        elif isinstance(action, Notify):
            if self.notifier is not None:
                self.notifier.submit(action)
            self._record_action(action, now)
        elif isinstance(action, StartCheck):
            self._do_start_check(action)
        elif isinstance(action, StopCheck):
            if self.checks is not None:
                self.checks.stop_check(action.check_id)
        elif isinstance(action, Report):
            inbox.answer(self.paths, action)
            self._record_action(action, now)
        elif isinstance(action, Emit):
            self._record(action.event, now)
        return []

    def _do_send(self, action: Send, now: float) -> list[Action]:
        # The engine journalled this send as intended in the same step; it must be on disk
        # before a single key is typed, so that a crash now cannot lead to a second send.
        self._record_action(action, now)
        self._save()
        crash_point("after_journal_before_send")
        if self.options.dry_run:
            ok, error = True, ""
            self._emit_line({"kind": "dry_run_send", "pane": action.pane.key, "text": action.text})
        else:
            try:
                self.watcher.send_text(action.pane, action.text, enter=action.enter)
                ok, error = True, ""
            except Exception as exc:
                ok, error = False, str(exc)
        crash_point("after_send_before_done")
        result = SendResult(action_id=action.action_id, ok=ok, error=error)
        self._record(result, now)
        follow = self._step(result, now)
        self._save()
        return follow

    def _do_start_check(self, check: StartCheck) -> None:
        if self.checks is None:
            self.post(
                CheckUpdate(
                    check_id=check.check_id,
                    status="error",
                    detail="no external check provider configured",
                )
            )
            return
        self.checks.start_check(check)

    # -- inbox ---------------------------------------------------------------------------

    def _read_inbox(self) -> list[Event]:
        events: list[Event] = []
        try:
            requests, problems = inbox.read_requests(self.paths)
        except OSError as exc:
            self._note(f"inbox unreadable: {exc}")
            return events
        for problem in problems:
            self._note(problem)
        for request in requests:
            if isinstance(request, HookEvent):
                events.append(self._resolve_hook(request))
            else:
                events.append(request)
        return events

    def _resolve_hook(self, hook: HookEvent) -> HookEvent:
        """Hooks know only $TMUX_PANE (%N); bind it to this server's pane key."""
        for key, pane in self.state.panes.items():
            if pane.info.ref.pane_id == hook.tmux_pane and pane.info.ref.server == _server(key):
                return HookEvent(
                    ref=pane.info.ref,
                    tmux_pane=hook.tmux_pane,
                    agent=hook.agent,
                    hook=hook.hook,
                    fields=hook.fields,
                )
        return hook

    # -- persistence and publishing ------------------------------------------------------

    def _save(self, force: bool = False) -> None:
        """Write when something a crash must not lose changed (runs, approvals, the journal…),
        and now and then for read positions and pane readings, which only save re-reading."""
        self._flush_history()
        now = time.monotonic()
        if not force and now - self._last_positions_save < POSITIONS_EVERY_S:
            unchanged = self.state is self._saved_state
            if unchanged or engine.durable(self.state) == engine.durable(self._saved_state):
                return
        positions = self.watcher.positions() if self.watcher is not None else self._positions
        self.store.save(self.state, positions)
        self._saved_state = self.state
        self._last_positions_save = now

    def _make_snapshot(self) -> Snapshot:
        return Snapshot(
            state=self.state,
            policy=self.policy,
            now=self.clock(),
            tails=dict(self._tails),
            markers={k: tuple(v) for k, v in self._markers.items()},
            last_read=self.watcher.last_read if self.watcher is not None else None,
            hosting=True,
            engine_alive=True,
            warnings=self._warnings(),
        )

    def _warnings(self) -> tuple[str, ...]:
        found = list(self._alerts)
        found.extend(f"{w.project}: {w.message}" for w in self._unmatched)
        if self.notifier is not None:
            found.extend(f"notify {name}: {err}" for name, err in self.notifier.failing().items())
        return tuple(found)

    def _write_snapshot(self, force: bool = False) -> None:
        now = time.monotonic()
        since = now - self._last_snapshot_write
        changed = self.state is not self._published_state
        due = (
            force
            or (changed and engine.durable(self.state) != engine.durable(self._published_state))
            or ((changed or self._tails_changed) and since >= SNAPSHOT_EVERY_S)
            or since >= SNAPSHOT_HEARTBEAT_S
        )
        if not due:
            return
        self._last_snapshot_write = now
        self._published_state = self.state
        self._tails_changed = False
        try:
            store.write_snapshot(self.paths, snapshot_doc(self._snapshot))
        except OSError as exc:
            log.warning("snapshot not written: %s", exc)

    def _note(self, message: str) -> None:
        log.warning(message)
        self._alerts.append(one_line(message, 200))
        self._emit_line({"ts": round(self.clock(), 3), "kind": "note", "message": message})

    # -- history and the event stream ----------------------------------------------------

    def _record(self, event: Event, now: float) -> None:
        if event.kind in QUIET_KINDS:
            return
        line = event_line(event, now, self.state.panes)
        self._history.append(line)
        self._emit_line(line)

    def _record_action(self, action: Action, now: float) -> None:
        line = {"ts": round(now, 3), **to_json(action)}
        line["kind"] = f"action_{action.kind}"
        self._history.append(line)

    def _flush_history(self) -> None:
        """One append (and one fsync) per batch, always before the state that follows it."""
        if self._history:
            batch, self._history = self._history, []
            self.store.append_history(batch)

    def _emit_line(self, line: dict[str, Any]) -> None:
        if self.options.on_event is not None:
            self.options.on_event(line)


def event_line(event: Event, now: float, panes: Mapping[str, Any]) -> dict[str, Any]:
    """The flat JSON line of `watch --json`: ts, pane, session, window, kind, fields."""
    body = to_json(event)
    ref = getattr(event, "ref", None) or getattr(getattr(event, "pane", None), "ref", None)
    line: dict[str, Any] = {"ts": round(now, 3), "kind": body.pop("kind")}
    if isinstance(ref, PaneRef):
        info: PaneInfo | None = getattr(event, "pane", None) or getattr(
            panes.get(ref.key), "info", None
        )
        line["pane"] = ref.pane_id
        line["pane_key"] = ref.key
        line["session"] = info.session if info else ""
        line["window"] = info.window if info else ""
    body.pop("ref", None)
    if isinstance(event, MarkerSeen):
        marker = body.pop("marker")
        line.update({"type": marker["type"], "trust": marker["trust"], **marker["fields"]})
        line["kind"] = "marker"
    line.update(body)
    return line


def snapshot_doc(snap: Snapshot) -> dict[str, Any]:
    """What views of another process read (see store.write_snapshot)."""
    return {
        "state": store.state_to_doc(snap.state),
        "tails": {k: v[-PUBLISHED_TAIL_CHARS:] for k, v in snap.tails.items()},
        "markers": {k: [plain(m) for m in v] for k, v in snap.markers.items()},
        "last_read": snap.last_read,
        "warnings": list(snap.warnings),
        "now": snap.now,
        "pid": os.getpid(),
    }


RUNTIMES = frozenset({"node", "bun", "deno", "python", "python3"})


def foreground_command(info: PaneInfo) -> str:
    """The full command line of the pane's foreground process, where tmux's short name says
    too little: Codex and Gemini CLI show up as plain `node`."""
    if info.command not in RUNTIMES or info.pid <= 0:
        return info.command
    try:
        stat = Path(f"/proc/{info.pid}/stat").read_text()
        tpgid = int(stat.rsplit(")", 1)[1].split()[5])  # the terminal's foreground group
        raw = Path(f"/proc/{tpgid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return info.command
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)


def _drain(q: queue.Queue[Any]) -> list[Any]:
    out = []
    while True:
        try:
            out.append(q.get_nowait())
        except queue.Empty:
            return out


def _server(key: str) -> str:
    return key.rpartition("/")[0]


def _explicit_state_dir(paths: Paths) -> Path | None:
    from sentry_tui.config import default_state_dir

    return None if paths.state_dir == default_state_dir() else paths.state_dir


def _read_key(paths: Paths) -> bytes | None:
    from sentry_tui.keys import load_or_create_key

    try:
        return load_or_create_key(paths.state_dir)
    except Exception as exc:  # unsigned markers still work; signed ones then read as bad
        log.warning("no signing key: %s", exc)
        return None


def _extra_rules(policy: Policy) -> dict[str, dict[str, tuple[str, ...]]]:
    return {
        name: {k: tuple(v) for k, v in rules.items()} for name, rules in policy.profiles.items()
    }
