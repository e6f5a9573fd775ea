"""The signing key: one random secret per state dir, in a 0600 file.

The wrapper signs its markers and `sentry-tui hook` signs its event files with it; the engine
verifies both. A key file that other users can read protects nothing (anyone who reads it can
forge a marker), so it is refused rather than silently used. Created atomically (temp file +
``link``) so two processes starting at once agree on one key.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from sentry_tui.config import Paths, default_state_dir
from sentry_tui.errors import UserError

KEY_BYTES = 32
STATE_DIR_ENV = "SENTRY_TUI_STATE_DIR"


def state_dir_from(arg: str | os.PathLike[str] | None = None) -> Path:
    """The state dir: an explicit argument, then ``$SENTRY_TUI_STATE_DIR``, then XDG."""
    if arg:
        return Path(arg).expanduser()
    env = os.environ.get(STATE_DIR_ENV)
    return Path(env).expanduser() if env else default_state_dir()


def load_key(state_dir: Path) -> bytes:
    """Read the key; raise :class:`UserError` if it is missing, unsafe or unreadable."""
    path = Paths(state_dir).key
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise UserError(f"{path}: no signing key yet") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read the signing key ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UserError(f"{path}: the signing key is not a regular file")
        if st.st_uid != os.getuid():
            raise UserError(f"{path}: the signing key belongs to another user; refusing it")
        if st.st_mode & 0o077:
            raise UserError(
                f"{path}: the signing key is readable by others"
                f" (mode {stat.S_IMODE(st.st_mode):o}); run `chmod 600 {path}`"
                " or delete it to make a new one"
            )
        text = os.read(fd, 4096).decode("ascii", "replace").strip()
    finally:
        os.close(fd)
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise UserError(
            f"{path}: the signing key is not hex; delete it to make a new one"
        ) from None
    if len(key) < 16:
        raise UserError(f"{path}: the signing key is too short; delete it to make a new one")
    return key


def load_or_create_key(state_dir: Path) -> bytes:
    """Read the key, creating the state dir (0700) and a fresh key (0600) when there is none."""
    path = Paths(state_dir).key
    if not path.exists() and not path.is_symlink():
        _create(state_dir, path)
    return load_key(state_dir)


def _create(state_dir: Path, path: Path) -> None:
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{state_dir}: cannot create the state dir ({exc.strerror})") from None
    tmp = state_dir / f".signing.key.{os.getpid()}.{secrets.token_hex(4)}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, (secrets.token_hex(KEY_BYTES) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(FileExistsError):  # another process won the race: use its key
            os.link(tmp, path)
    except OSError as exc:
        raise UserError(f"{path}: cannot create the signing key ({exc.strerror})") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
