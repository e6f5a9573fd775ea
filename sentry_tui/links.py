"""Signed approve/reject links for notifications (off by default).

A token names one approval and one decision, expires (default one hour) and works once::

    <approval_id>.<decision>.<expires_at>.<signature>

The signature is HMAC-SHA256 (key from ``SENTRY_LINK_KEY`` or ``links.key`` in the state dir,
mode 0600) over the first three parts, so changing the decision, the id or the expiry breaks
it. Tokens that decided something are remembered in ``links-used.json`` (atomic write, 0600),
so a replay after a restart of `sentry-tui serve` is refused as well. The approval itself can
be decided only once anyway (the engine refuses a second answer); the used-token file makes a
replayed link say so instead of pretending to work.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets as _random
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from sentry_tui.config import Paths
from sentry_tui.errors import UserError
from sentry_tui.secrets import check_private

DECISIONS: tuple[str, ...] = ("approve", "reject")
DEFAULT_TTL_S = 3600.0
KEY_FILE = "links.key"
USED_FILE = "links-used.json"
_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_SIG = re.compile(r"^[A-Za-z0-9_-]{43}$")


class LinkError(Exception):
    """A token that must not decide anything; the message is safe to show on the page."""


@dataclass(frozen=True, slots=True)
class Claim:
    """What a verified token allows."""

    approval_id: str
    decision: str
    expires_at: int
    signature: str


def _sig(key: bytes, payload: str) -> str:
    mac = hmac.new(key, b"sentry-tui link v1\0" + payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def make_token(key: bytes, approval_id: str, decision: str, expires_at: float) -> str:
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}, not {decision!r}")
    if not _ID.match(approval_id):
        raise ValueError(f"approval id {approval_id!r} cannot go in a link")
    payload = f"{approval_id}.{decision}.{int(expires_at)}"
    return f"{payload}.{_sig(key, payload)}"


def check_token(
    key: bytes,
    token: str,
    *,
    now: float,
    decision: str | None = None,
    used: UsedTokens | None = None,
) -> Claim:
    """Verify ``token``; raise :class:`LinkError` saying why it may not decide.

    ``decision`` is what the caller is about to do (the form's button): a token signed for
    ``approve`` can never reject, and the other way round. Nothing is recorded here; the
    caller claims the token with :meth:`UsedTokens.claim` right before acting.
    """
    parts = token.split(".")
    if len(parts) != 4 or not _ID.match(parts[0]) or not _SIG.match(parts[3]):
        raise LinkError("this link is malformed")
    approval_id, signed_decision, expiry, sig = parts
    if signed_decision not in DECISIONS or not expiry.isdigit() or len(expiry) > 12:
        raise LinkError("this link is malformed")
    if not hmac.compare_digest(sig, _sig(key, f"{approval_id}.{signed_decision}.{expiry}")):
        raise LinkError("this link's signature is not valid")
    if decision is not None and decision != signed_decision:
        raise LinkError(f"this link can only {signed_decision}, not {decision}")
    if now >= int(expiry):
        raise LinkError("this link has expired")
    if used is not None and used.is_used(sig):
        raise LinkError("this link was already used")
    return Claim(approval_id, signed_decision, int(expiry), sig)


# --------------------------------------------------------------------------------------------
# Used tokens


class UsedTokens:
    """Signatures of tokens that decided something, persisted until they would expire anyway.

    Writes are atomic (temp file, fsync, rename) and serialised by a lock file, so two
    `serve` processes on one state dir cannot both spend the same token.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._lock:
            fd = os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)

    def _load(self) -> dict[str, int]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            # Fail closed: a file we cannot read might hold the token about to be replayed.
            raise LinkError(f"used-token file unreadable ({type(exc).__name__})") from None
        used = data.get("used") if isinstance(data, dict) else None
        if not isinstance(used, dict):
            raise LinkError("used-token file is malformed")
        return {str(k): int(v) for k, v in used.items() if isinstance(v, int | float)}

    def _save(self, used: Mapping[str, int]) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".links-used.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"version": 1, "used": dict(used)}, fh, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def is_used(self, signature: str) -> bool:
        with self._locked():
            return signature in self._load()

    def claim(self, claim: Claim, now: float) -> bool:
        """Record the token as spent; False if it already was (someone else won the race)."""
        with self._locked():
            used = self._load()
            if claim.signature in used:
                return False
            used = {k: v for k, v in used.items() if v > now}  # expired ones stay refused
            used[claim.signature] = claim.expires_at
            self._save(used)
            return True


# --------------------------------------------------------------------------------------------
# Keys, config and URLs


def load_key(paths: Paths, env: Mapping[str, str]) -> bytes:
    """The link key: ``SENTRY_LINK_KEY`` if set, else ``links.key`` (created 0600 if missing)."""
    value = env.get("SENTRY_LINK_KEY", "").strip()
    if value:
        return value.encode()
    path = paths.state_dir / KEY_FILE
    paths.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        check_private(path)
        key = path.read_bytes().strip()
        if len(key) < 32:
            raise UserError(f"{path} holds a key shorter than 32 bytes; delete it") from None
        return key
    with os.fdopen(fd, "wb") as fh:
        fh.write(_random.token_hex(32).encode())
    return path.read_bytes().strip()


def used_tokens(paths: Paths) -> UsedTokens:
    return UsedTokens(paths.state_dir / USED_FILE)


@dataclass(frozen=True, slots=True)
class LinkConfig:
    enabled: bool = False
    base_url: str = ""
    ttl_s: float = DEFAULT_TTL_S


def load_link_config(config_dir: Path) -> LinkConfig:
    """The ``links:`` section of ``config.yaml``; absent means off."""
    from sentry_tui.notify import parse_duration, read_config

    path = config_dir / "config.yaml"
    section = read_config(config_dir).get("links")
    if section is None:
        return LinkConfig()
    if not isinstance(section, dict):
        raise UserError(f"{path}: links: expected a mapping with enabled, base_url, ttl")
    unknown = set(section) - {"enabled", "base_url", "ttl"}
    if unknown:
        raise UserError(f"{path}: links: unknown key {sorted(unknown)[0]!r}")
    enabled = section.get("enabled", False)
    if not isinstance(enabled, bool):
        raise UserError(f"{path}: links.enabled: expected true or false")
    base_url = section.get("base_url", "") or ""
    if enabled and not re.match(r"^https?://[^/\s]+", str(base_url)):
        raise UserError(f"{path}: links.base_url: expected an http(s) URL, got {base_url!r}")
    ttl = parse_duration(section.get("ttl", DEFAULT_TTL_S), f"{path}: links.ttl")
    return LinkConfig(bool(enabled), str(base_url), ttl)


class LinkSigner:
    """Makes the approve/reject URLs a notification carries."""

    def __init__(
        self,
        key: bytes,
        base_url: str,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = key
        self.base_url = base_url.rstrip("/") + "/"
        self.ttl_s = ttl_s
        self.clock = clock

    def __repr__(self) -> str:
        return f"LinkSigner(base_url={self.base_url!r}, ttl_s={self.ttl_s})"

    def url(self, approval_id: str, decision: str, expires_at: float | None = None) -> str:
        expiry = self.clock() + self.ttl_s
        if expires_at is not None:
            expiry = min(expiry, expires_at)
        token = make_token(self._key, approval_id, decision, expiry)
        return f"{self.base_url}l/{quote(token, safe='.-_')}"


def signer_from_config(
    config_dir: Path, paths: Paths, env: Mapping[str, str], clock: Callable[[], float] = time.time
) -> LinkSigner | None:
    cfg = load_link_config(config_dir)
    if not cfg.enabled:
        return None
    return LinkSigner(load_key(paths, env), cfg.base_url, ttl_s=cfg.ttl_s, clock=clock)
