"""Secrets (webhook URLs, send keys, tokens): from the environment or a 0600 file, never shown.

A webhook URL *is* a credential (WeCom's carries its key in the query, ServerChan's in the
path), so every value read here is wrapped in :class:`Secret`, whose ``repr``/``str`` say
``***``; the plain value leaves the wrapper only through :meth:`Secret.reveal`, at the point an
HTTP request is made. Error text that may quote a URL goes through :func:`scrub` first.

The file is ``secrets.env`` in the config dir (``KEY=VALUE`` lines, ``#`` comments, optional
quotes: the same file works as a systemd ``EnvironmentFile``). It is refused when group or
others can read it, when it is a symlink, or when another user owns it: a secret that every
local account can read is not one.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from sentry_tui.errors import UserError

SECRETS_FILE = "secrets.env"
MAX_FILE_BYTES = 64 * 1024

# Every name this package reads as a secret. Only these are taken from the file.
SECRET_NAMES: tuple[str, ...] = (
    "SENTRY_WECOM_WEBHOOK",
    "SENTRY_SERVERCHAN_KEY",
    "SENTRY_WEBHOOK_URL",
    "SENTRY_WEBHOOK_TOKEN",
    "SENTRY_GITHUB_TOKEN",
    "GITHUB_TOKEN",
    "SENTRY_LINK_KEY",
)

REDACTED = "***"


class Secret:
    """A string that refuses to be printed. Compare with :meth:`reveal` only where needed."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, spec: str) -> str:
        return REDACTED

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret is not serialisable")

    def fragments(self) -> list[str]:
        """The substrings that would give the secret away if they appeared in a message.

        For a URL: the whole URL, its path+query, the query, each query value and each long
        path segment (ServerChan puts the key in the path). For anything else: the value.
        """
        value = self._value
        out = [value] if value else []
        if "://" in value:
            parts = urlsplit(value)
            if parts.query:
                out.append(parts.query)
                out.extend(v for _, v in parse_qsl(parts.query) if len(v) >= 4)
            if parts.path and parts.path != "/":
                out.append(parts.path + ("?" + parts.query if parts.query else ""))
                out.extend(seg for seg in parts.path.split("/") if len(seg) >= 12)
            if parts.password:
                out.append(parts.password)
        # Longest first, so a URL is replaced whole before its pieces are.
        return sorted(set(out), key=len, reverse=True)


_QUERY_VALUE = re.compile(r"([?&][A-Za-z0-9_.\-]+=)[^&\s'\"<>)]+")
_USERINFO = re.compile(r"(\w+://)[^/@\s]+@")


def scrub(text: str, secrets: Iterable[Secret | None] = ()) -> str:
    """``text`` with every known secret and every URL query value and userinfo redacted."""
    for secret in secrets:
        if secret is None:
            continue
        for frag in secret.fragments():
            text = text.replace(frag, REDACTED)
    text = _USERINFO.sub(r"\1" + REDACTED + "@", text)
    return _QUERY_VALUE.sub(r"\1" + REDACTED, text)


_REGISTERED: set[str] = set()
_REGISTERED_LOCK = threading.Lock()


def register(secret: Secret | None) -> None:
    """Remember a secret in use so that library log lines (urllib3 logs every URL it requests
    at DEBUG) are scrubbed of it too; see :func:`install_log_filter`."""
    if secret:
        with _REGISTERED_LOCK:
            _REGISTERED.update(f for f in secret.fragments() if len(f) >= 4)


class ScrubFilter(logging.Filter):
    """Rewrites a record's message with secrets and URL query values redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:
            return True
        with _REGISTERED_LOCK:
            frags = sorted(_REGISTERED, key=len, reverse=True)
        for frag in frags:
            text = text.replace(frag, REDACTED)
        record.msg, record.args = scrub(text), None
        return True


_FILTERED_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry", "requests")


def install_log_filter() -> None:
    """Scrub the HTTP libraries' own log lines (idempotent)."""
    for name in _FILTERED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, ScrubFilter) for f in logger.filters):
            logger.addFilter(ScrubFilter())


def redact_url(url: str) -> str:
    """A URL fit for a message: scheme and host kept, path and query hidden."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        return REDACTED
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    return f"{parts.scheme}://{host}/{REDACTED}"


def check_private(path: Path) -> None:
    """Refuse a secret-bearing file that is a symlink, not ours, or readable by others."""
    try:
        st = path.lstat()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        raise UserError(f"{path} is a symlink; secrets are read only from a regular file")
    if not stat.S_ISREG(st.st_mode):
        raise UserError(f"{path} is not a regular file")
    if st.st_uid != os.getuid():
        raise UserError(f"{path} is owned by another user (uid {st.st_uid}); refusing it")
    if st.st_mode & 0o077:
        mode = stat.S_IMODE(st.st_mode)
        raise UserError(
            f"{path} is readable by group/others (mode {mode:04o}); run: chmod 600 {path}"
        )


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def read_secrets_file(path: Path) -> dict[str, str]:
    """Parse ``KEY=VALUE`` lines; unknown names and malformed lines are one-line errors."""
    check_private(path)
    raw = path.read_bytes()
    if len(raw) > MAX_FILE_BYTES:
        raise UserError(f"{path} is larger than {MAX_FILE_BYTES} bytes; not a secrets file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text") from None
    out: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UserError(f"{path}:{lineno}: expected NAME=VALUE")
        if name not in SECRET_NAMES:
            raise UserError(
                f"{path}:{lineno}: unknown name {name!r} (expected one of "
                f"{', '.join(SECRET_NAMES)})"
            )
        out[name] = _unquote(value)
    return out


def secrets_path(config_dir: Path, env: Mapping[str, str]) -> Path:
    override = env.get("SENTRY_SECRETS_FILE")
    return Path(override) if override else config_dir / SECRETS_FILE


def load_secrets(config_dir: Path, env: Mapping[str, str]) -> dict[str, Secret]:
    """Secrets from the file (if present) overlaid by the environment (which wins)."""
    path = secrets_path(config_dir, env)
    values: dict[str, str] = {}
    if env.get("SENTRY_SECRETS_FILE") and not (path.exists() or path.is_symlink()):
        raise UserError(f"SENTRY_SECRETS_FILE names {path}, which does not exist")
    if path.exists() or path.is_symlink():
        values.update(read_secrets_file(path))
    for name in SECRET_NAMES:
        value = env.get(name, "").strip()
        if value:
            values[name] = value
    return {k: Secret(v) for k, v in values.items() if v}
