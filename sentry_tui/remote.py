"""A view of an engine that runs in another process (DESIGN.md: one engine, many views).

The engine publishes its snapshot to a file that it replaces atomically; a view reads it and
sends human commands through the inbox, exactly like `sentry-tui approve` over SSH. Quitting a
view never stops the engine.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sentry_tui import inbox, store
from sentry_tui.config import Paths
from sentry_tui.model import HumanEvent, Marker, Policy, Snapshot, Trust

# A snapshot older than this means the engine stopped (it rewrites it twice a second).
STALE_AFTER_S = 5.0


def snapshot_from_doc(doc: dict[str, Any], policy: Policy, *, now: float) -> Snapshot:
    written = float(doc.get("written_at") or doc.get("now") or 0.0)
    return Snapshot(
        state=store.state_from_doc(doc["state"]),
        policy=policy,
        now=now,
        tails=dict(doc.get("tails") or {}),
        markers={
            k: tuple(
                Marker(m["type"], m.get("fields", {}), m.get("raw", ""), Trust(m["trust"]))
                for m in v
            )
            for k, v in (doc.get("markers") or {}).items()
        },
        last_read=doc.get("last_read"),
        hosting=False,
        engine_alive=now - written < STALE_AFTER_S,
        warnings=tuple(doc.get("warnings") or ()),
    )


def current_snapshot(paths: Paths, policy: Policy, *, now: float | None = None) -> Snapshot:
    """The freshest picture there is: the engine's published snapshot, else the saved state."""
    now = time.time() if now is None else now
    doc = store.read_snapshot(paths)
    if doc is not None and not _older_than_state(doc, paths):
        return snapshot_from_doc(doc, policy, now=now)
    state, _positions, messages = store.Store(paths).load(readonly=True)
    return Snapshot(
        state=state,
        policy=policy,
        now=now,
        hosting=False,
        engine_alive=False,
        warnings=tuple(messages),
    )


def _older_than_state(doc: dict[str, Any], paths: Paths) -> bool:
    """A snapshot left by an engine that died after its last state write is out of date:
    the state file, always written first, is then the truth."""
    try:
        state_mtime = Path(paths.db).stat().st_mtime
    except OSError:
        return False
    return float(doc.get("written_at") or 0.0) < state_mtime


class RemoteClient:
    """`EngineClient` for a view: reads the published snapshot, writes to the inbox."""

    snapshot_in_memory = False  # a file read: the UI polls it from a worker thread

    def __init__(
        self,
        paths: Paths,
        policy: Policy,
        socket: str | None = None,
        socket_path: str | None = None,
    ) -> None:
        self.paths = paths
        self.policy = policy
        self._socket = socket
        self._socket_path = socket_path
        self._cache: tuple[float, Snapshot] | None = None

    def snapshot(self) -> Snapshot:
        now = time.time()
        try:
            mtime = Path(self.paths.snapshot).stat().st_mtime
        except OSError:
            mtime = 0.0
        if self._cache is None or self._cache[0] != mtime:
            self._cache = (mtime, current_snapshot(self.paths, self.policy, now=now))
        snap = self._cache[1]
        # refresh liveness and clocks even when the file did not change
        return Snapshot(
            state=snap.state,
            policy=snap.policy,
            now=now,
            tails=snap.tails,
            markers=snap.markers,
            last_read=snap.last_read,
            hosting=False,
            engine_alive=mtime > 0 and now - mtime < STALE_AFTER_S,
            warnings=snap.warnings,
        )

    def submit(self, event: HumanEvent) -> None:
        inbox.submit(self.paths, event)

    def jump_to(self, pane_key: str) -> str:
        from sentry_tui.model import PaneRef
        from sentry_tui.tmux import switch_client

        try:
            switch_client(PaneRef.parse(pane_key), self._socket, self._socket_path)
        except Exception as exc:
            return f"cannot switch to {pane_key}: {exc}"
        return f"switched to {pane_key}"
