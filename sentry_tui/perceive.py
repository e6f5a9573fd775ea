"""From raw pane output to meaning: markers and detector states, per pane.

The watcher reports what tmux printed (`OutputLines`, `ScreenChanged`); this layer turns it
into what the engine reasons about (`MarkerSeen`, `MalformedMarker`, `StateChanged`). It is
pure and deterministic (time is passed in), so it sits in the core beside the engine.

Detection order (issue 7): hook events and signed markers first, then unsigned markers, then
the profile's screen rules. A trusted signal pins the pane's state for a short while so a
screen rule cannot immediately contradict what the agent itself reported.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass

from sentry_tui import detect, markers
from sentry_tui.model import (
    Event,
    HookEvent,
    MalformedMarker,
    Marker,
    MarkerSeen,
    OutputLines,
    PaneGone,
    PaneInfo,
    PaneRef,
    PaneState,
    ScreenChanged,
    StateChanged,
    Trust,
)

# How long a hook or marker-reported state outranks the screen rules.
TRUSTED_HOLD_S = 5.0

# Hook names → the state they report.
HOOK_STATES: dict[str, PaneState] = {
    "stop": PaneState.DONE,  # the turn finished, as the claude profile reads "✻ Worked for 47s"
    "notification": PaneState.WAITING,
    "permission": PaneState.WAITING,
    "permissionrequest": PaneState.WAITING,
    "pretooluse": PaneState.BUSY,
    "userpromptsubmit": PaneState.BUSY,
    "notify": PaneState.DONE,  # Codex: "agent-turn-complete"
}


@dataclass(slots=True)
class _PaneMind:
    detector: detect.Detector
    profile: str
    state: PaneState = PaneState.UNKNOWN
    held_until: float = 0.0


class Perceiver:
    """Keeps one detector per pane and classifies every marker it sees.

    ``profile_of`` says which detector profile a pane uses (the policy's role profile, or a
    guess from the running command); ``key`` and ``seen_nonces`` verify signed markers.
    """

    def __init__(
        self,
        profile_of: Callable[[PaneInfo], str],
        *,
        key: bytes | None = None,
        extra_rules: dict[str, dict[str, tuple[str, ...]]] | None = None,
        idle_after_s: float = 1.5,
    ) -> None:
        self._profile_of = profile_of
        self._key = key
        self._extra = extra_rules or {}
        self._idle_after_s = idle_after_s
        self._minds: dict[str, _PaneMind] = {}
        self._infos: dict[str, PaneInfo] = {}

    # -- panes ---------------------------------------------------------------------------

    def pane(self, info: PaneInfo) -> None:
        """A pane appeared or changed: (re)pick its profile when the command changed."""
        self._infos[info.ref.key] = info
        name = self._profile_of(info)
        mind = self._minds.get(info.ref.key)
        if mind is None or mind.profile != name:
            profile = detect.profile_for(name, self._extra.get(name))
            self._minds[info.ref.key] = _PaneMind(
                detect.Detector(profile, idle_after_s=self._idle_after_s), name
            )

    def forget(self, ref: PaneRef) -> None:
        self._minds.pop(ref.key, None)
        self._infos.pop(ref.key, None)

    def screen_mode(self, info: PaneInfo) -> bool:
        """Agents redraw their screen; read them as screens rather than line streams."""
        profile = detect.profile_for(self._profile_of(info), None)
        return profile.screen_mode

    def profile(self, ref: PaneRef) -> str:
        mind = self._minds.get(ref.key)
        return mind.profile if mind else "shell"

    # -- events --------------------------------------------------------------------------

    def feed(self, event: Event, now: float, seen_nonces: Container[str] = ()) -> list[Event]:
        """Derived events for one raw event (the raw event itself is not repeated)."""
        if isinstance(event, OutputLines):
            return list(self._lines(event, seen_nonces))
        if isinstance(event, ScreenChanged):
            return self._screen(event, now)
        if isinstance(event, HookEvent):
            return self._hook(event, now)
        if isinstance(event, PaneGone):
            self.forget(event.ref)
        return []

    def tick(self, now: float) -> list[Event]:
        """Let idle debounces fire on panes whose screen stopped changing."""
        out: list[Event] = []
        for key, mind in self._minds.items():
            mind.detector.tick(now)
            out.extend(self._screen_speaks(key, mind, now))
        return out

    def _screen_speaks(self, key: str, mind: _PaneMind, now: float) -> list[Event]:
        """Once no hook or marker holds the pane, the detector's current reading is its state
        (also when the detector changed its mind during the hold and has nothing new to say)."""
        if now < mind.held_until or mind.detector.state is PaneState.UNKNOWN:
            return []
        return self._set(key, mind, mind.detector.state, mind.detector.reason, Trust.SCREEN)

    def _lines(self, event: OutputLines, seen_nonces: Container[str]) -> Iterable[Event]:
        # scan() also joins a marker the terminal or an agent's UI wrapped over several lines
        for offset, parsed in markers.scan(event.lines):
            if isinstance(parsed, markers.Malformed):
                yield MalformedMarker(ref=event.ref, line=parsed.line, reason=parsed.reason)
                continue
            marker: Marker = markers.classify(parsed, self._key, seen_nonces)
            yield MarkerSeen(ref=event.ref, marker=marker, seq=event.seq + offset)

    def _screen(self, event: ScreenChanged, now: float) -> list[Event]:
        mind = self._minds.get(event.ref.key)
        if mind is None:
            return []
        mind.detector.observe(event.text, now)
        return self._screen_speaks(event.ref.key, mind, now)

    def _hook(self, event: HookEvent, now: float) -> list[Event]:
        if event.ref is None:
            return []
        mind = self._minds.get(event.ref.key)
        state = HOOK_STATES.get(event.hook.lower().replace("_", ""))
        if mind is None or state is None:
            return []
        mind.held_until = now + TRUSTED_HOLD_S
        return self._set(event.ref.key, mind, state, f"{event.agent} hook {event.hook}", Trust.HOOK)

    def _set(
        self, key: str, mind: _PaneMind, state: PaneState, reason: str, trust: Trust
    ) -> list[Event]:
        if state == mind.state:
            return []
        mind.state = state
        info = self._infos.get(key)
        ref = info.ref if info else PaneRef.parse(key)
        return [StateChanged(ref=ref, state=state, reason=reason, trust=trust)]
