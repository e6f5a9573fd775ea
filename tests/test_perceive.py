"""Detection order (issue 7): hook events and signed markers first, then unsigned markers,
then the profile's screen rules — and markers counted by position, not by content."""

from __future__ import annotations

from sentry_tui import signing
from sentry_tui.markers import format_marker
from sentry_tui.model import (
    HookEvent,
    MalformedMarker,
    MarkerSeen,
    OutputLines,
    PaneInfo,
    PaneRef,
    PaneState,
    ScreenChanged,
    StateChanged,
    Trust,
)
from sentry_tui.perceive import TRUSTED_HOLD_S, Perceiver

KEY = b"k" * 32
REF = PaneRef("1-1", "%1")
INFO = PaneInfo(REF, "proj", "agent", command="claude")
PROMPT = "some output\n\n> \n"
BUSY = "✻ Thinking… (esc to interrupt)\n"


def perceiver() -> Perceiver:
    p = Perceiver(lambda info: "claude", key=KEY, idle_after_s=1.0)
    p.pane(INFO)
    return p


def states(events: list) -> list[tuple[PaneState, Trust]]:  # type: ignore[type-arg]
    return [(e.state, e.trust) for e in events if isinstance(e, StateChanged)]


def test_hook_outranks_the_screen_for_a_while_then_the_screen_speaks_again() -> None:
    p = perceiver()
    hook = HookEvent(ref=REF, tmux_pane="%1", agent="claude", hook="permission")
    assert states(p.feed(hook, now=100.0)) == [(PaneState.WAITING, Trust.HOOK)]
    # the screen settles on a prompt inside the hold: the hook's word stands
    p.feed(ScreenChanged(REF, PROMPT), now=100.5)
    assert states(p.tick(now=101.8)) == []
    # after the hold, the screen rules decide again
    later = p.tick(now=100.0 + TRUSTED_HOLD_S + 0.1)
    assert states(later) == [(PaneState.IDLE, Trust.SCREEN)]


def test_signed_unsigned_and_malformed_markers_are_told_apart() -> None:
    p = perceiver()
    signed = signing.sign({"type": "END", "stage": "test", "exit": 0}, KEY)
    lines = (
        "### SENTRY " + _compact(signed),
        format_marker("STATUS", {"stage": "code", "ok": True}),
        "### SENTRY {not json",
        '$ echo \'### SENTRY {"type":"STATUS"}\'',  # a command line is not a marker
    )
    out = p.feed(OutputLines(REF, lines, seq=10), now=1.0)
    seen = [e for e in out if isinstance(e, MarkerSeen)]
    assert [(e.marker.type, e.marker.trust, e.seq) for e in seen] == [
        ("END", Trust.SIGNED, 10),
        ("STATUS", Trust.UNSIGNED, 11),
    ]
    assert [e.reason for e in out if isinstance(e, MalformedMarker)] != []
    # the same signed line again is a replay once its nonce is known
    again = p.feed(OutputLines(REF, lines[:1], seq=20), now=2.0, seen_nonces={signed["nonce"]})
    assert [e.marker.trust for e in again if isinstance(e, MarkerSeen)] == [Trust.REPLAYED]


def test_the_same_marker_printed_twice_is_two_events() -> None:
    p = perceiver()
    line = format_marker("STATUS", {"stage": "code", "ok": True})
    out = p.feed(OutputLines(REF, (line, "x", line), seq=5), now=1.0)
    assert [e.seq for e in out if isinstance(e, MarkerSeen)] == [5, 7]


def test_a_marker_wrapped_by_the_terminal_is_joined() -> None:
    p = perceiver()
    line = format_marker("STATUS", {"stage": "code", "ok": True, "msg": "x" * 60})
    out = p.feed(OutputLines(REF, (line[:50], line[50:]), seq=0), now=1.0)
    assert [e.marker.msg for e in out if isinstance(e, MarkerSeen)] == ["x" * 60]


def test_busy_screen_then_idle_after_the_debounce() -> None:
    p = perceiver()
    assert states(p.feed(ScreenChanged(REF, BUSY), now=1.0))[0][0] is PaneState.BUSY
    p.feed(ScreenChanged(REF, PROMPT), now=2.0)
    assert states(p.tick(now=2.5)) == []  # a pause between frames is not idle
    assert states(p.tick(now=3.5)) != []


def _compact(fields: dict) -> str:  # type: ignore[type-arg]
    import json

    return json.dumps(fields, separators=(",", ":"))
