"""Text typed into a real pane arrives exactly as sent: quote_for_tmux round trip."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sentry_tui.model import PaneInfo, PaneRef
from sentry_tui.tmux import (
    SendError,
    Watcher,
    check_sendable,
    quote_for_tmux,
    stop_private_server,
)
from tests.conftest import wait_for

pytestmark = pytest.mark.tmux

READER = r"""
import json, sys
out = open(sys.argv[1], "a", encoding="utf-8")
for raw in sys.stdin.buffer:
    line = raw.rstrip(b"\n").decode("utf-8", "surrogateescape")
    out.write(json.dumps(line) + "\n"); out.flush()
"""


@dataclass
class Rig:
    watcher: Watcher
    ref: PaneRef
    received: Path

    def read(self) -> list[str]:
        if not self.received.exists():
            return []
        return [json.loads(x) for x in self.received.read_text("utf-8").splitlines()]


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    name = f"sentry-test-{uuid.uuid4().hex[:10]}"
    received = tmp_path_factory.mktemp("send") / "received.jsonl"
    reader = tmp_path_factory.mktemp("send") / "reader.py"
    reader.write_text(READER)
    cmd = f"exec {sys.executable} {reader} {received}"
    subprocess.run(
        ["tmux", "-f", "/dev/null", "-L", name, "new-session", "-d", "-s", "r", "-x", "200", cmd],
        check=True,
        timeout=10,
    )
    w = Watcher(name)
    w.start()
    try:
        pane = wait_for(lambda: next(iter(w.panes().values()), None), 15)
        assert isinstance(pane, PaneInfo)
        yield Rig(w, pane.ref, received)
    finally:
        w.stop()
        stop_private_server(name)


PRINTABLE = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=80)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=PRINTABLE)
@example(text="""echo "hi"; it's $HOME ~ `id` \\ #{pane_id} {x} ;""")
@example(text="-l -- ; \\; '' \"\" ~user")
@example(text="日本語 ✓ émoji 🎉 \u200b")
@example(text="  leading and trailing  ")
def test_round_trip_through_a_real_pane(rig: Rig, text: str) -> None:
    before = len(rig.read())
    rig.watcher.send_text(rig.ref, text)
    got = wait_for(lambda: rig.read()[before:] or None, 15)
    assert got == [text]


@pytest.mark.parametrize("bad", ["a\nb", "tab\there", "\x1b[31m", "del\x7f", "c1\x9b", "\x00"])
def test_control_characters_are_refused(rig: Rig, bad: str) -> None:
    with pytest.raises(SendError, match="control character"):
        check_sendable(bad)
    with pytest.raises(SendError):
        quote_for_tmux(bad)
    with pytest.raises(SendError):
        rig.watcher.send_text(rig.ref, bad)


def test_unknown_pane_is_a_send_error(rig: Rig) -> None:
    with pytest.raises(SendError, match="gone"):
        rig.watcher.send_text(PaneRef(rig.ref.server, "%999"), "x")
    with pytest.raises(SendError, match="server"):
        rig.watcher.send_text(PaneRef("1-2", rig.ref.pane_id), "x")


def test_quote_is_single_quoted() -> None:
    assert quote_for_tmux("it's") == "'it'\\''s'"
    assert quote_for_tmux("") == "''"


def test_switch_client_moves_the_persons_real_client(server) -> None:  # type: ignore[no-untyped-def]
    """`enter` in the UI: the person's attached client (not a control client) shows the pane."""
    import os
    import uuid

    from conftest import wait_for

    from sentry_tui.model import PaneRef
    from sentry_tui.tmux import server_identity, switch_client

    session = server.new_session("work", window_name="a")
    target = session.new_window(window_name="b").active_pane
    session.windows.get(window_name="a").select()
    outer = f"sentry-test-outer-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
    subprocess.run(
        ["tmux", "-L", outer, "-f", "/dev/null", "new-session", "-d", "-x", "100", "-y", "30",
         f"tmux -L {server.socket_name} attach -t work"],
        env=env, check=True,
    )  # fmt: skip
    try:

        def client_window() -> str:
            return server.cmd("display-message", "-p", "-c", client(), "#{window_name}").stdout[0]

        def client() -> str:
            return server.cmd("list-clients", "-F", "#{client_name}").stdout[0]

        wait_for(lambda: server.cmd("list-clients", "-F", "#{client_name}").stdout, timeout=15)
        assert client_window() == "a"
        ref = PaneRef(server_identity(server.socket_name), target.pane_id or "")
        switch_client(ref, server.socket_name)  # a view's path: one-off commands
        wait_for(lambda: client_window() == "b", timeout=10)
        first = session.windows.get(window_name="a").active_pane
        watcher = Watcher(server.socket_name)  # the engine's path: its control connection
        watcher.start()
        try:
            key = PaneRef(server_identity(server.socket_name), first.pane_id or "").key
            wait_for(lambda: key in watcher.panes(), timeout=15)
            watcher.switch_client(PaneRef.parse(key))
            wait_for(lambda: client_window() == "a", timeout=10)
        finally:
            watcher.stop()
    finally:
        stop_private_server(outer)
