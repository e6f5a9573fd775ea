"""Where things live. Paths follow XDG; secrets never come from here but from the environment.

Pure: no I/O beyond reading environment variables, so the core may import it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / fallback


def default_state_dir() -> Path:
    return _xdg("XDG_STATE_HOME", ".local/state") / "sentry-tui"


def default_config_dir() -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config") / "sentry-tui"


def bundled_policy_dir() -> Path:
    return Path(__file__).parent / "policies"


@dataclass(frozen=True, slots=True)
class Paths:
    """Every file of one state dir, so no module invents its own names."""

    state_dir: Path

    @property
    def db(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def history(self) -> Path:
        return self.state_dir / "history.jsonl"

    @property
    def lock(self) -> Path:
        return self.state_dir / "engine.lock"

    @property
    def snapshot(self) -> Path:
        return self.state_dir / "snapshot.json"

    @property
    def inbox(self) -> Path:
        return self.state_dir / "inbox"

    @property
    def outbox(self) -> Path:
        """Answers to inbox requests, one file per request id, for the CLI to wait on."""
        return self.state_dir / "outbox"

    @property
    def key(self) -> Path:
        return self.state_dir / "signing.key"

    @property
    def log(self) -> Path:
        return self.state_dir / "sentry.log"
