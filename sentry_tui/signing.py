"""HMAC signatures for markers and hook events (DESIGN.md: the marker protocol).

A signed object carries ``nonce`` and ``sig``; ``sig`` is HMAC-SHA256 over the canonical JSON
of every other field (sorted keys, no spaces), which includes project, stage, run and pane, so
a signature cannot be moved to another stage or pane. The engine remembers nonces, so a
verified line printed again (a redraw, a `cat` of a log) is a replay, not a new signal.
Pure: the key is passed in; reading it from the 0600 file is the caller's job.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from typing import Any


def canonical(fields: Mapping[str, Any]) -> bytes:
    body = {k: v for k, v in fields.items() if k != "sig"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(fields: Mapping[str, Any], key: bytes, nonce: str | None = None) -> dict[str, Any]:
    """Return ``fields`` plus a fresh ``nonce`` and its ``sig``."""
    out = {k: v for k, v in fields.items() if k != "sig"}
    out["nonce"] = nonce or secrets.token_hex(8)
    out["sig"] = hmac.new(key, canonical(out), hashlib.sha256).hexdigest()
    return out


def verify(fields: Mapping[str, Any], key: bytes) -> bool:
    sig = fields.get("sig")
    if not isinstance(sig, str) or not isinstance(fields.get("nonce"), str):
        return False
    expected = hmac.new(key, canonical(fields), hashlib.sha256).hexdigest()
    return hmac.compare_digest(sig, expected)
