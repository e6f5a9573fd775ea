"""Durable engine state: TinyDB on an atomic storage, an append-only history, the engine lock.

Why it is shaped like this:

- TinyDB rewrites its whole file on every write, and its stock ``JSONStorage`` does so *in
  place*: a kill in the middle leaves half a file. :class:`AtomicJSONStorage` writes a temp
  file in the same directory, fsyncs it, renames it over the old one and fsyncs the directory,
  so the file on disk is always either the old state or the new one.
- Before the rename the old file is hard-linked to ``state.json.bak``: a free last-good copy
  (no data is copied) that :meth:`Store.load` falls back to when the main file is corrupt,
  truncated, or from a newer schema version. The bad file is moved aside, never deleted, and
  the message names both paths.
- Because the whole file is rewritten on each save, the TinyDB document holds only what the
  engine needs to resume (bounded: open sends, latest run per project, recent ids). History and
  the audit trail go to ``history.jsonl``, appended and rotated by size.
- One engine per state dir: :class:`EngineLock` is an ``flock`` on ``engine.lock``, which the
  kernel drops when the holder dies, however it dies. No stale-pid guessing.

The serialisation (:func:`state_to_doc` / :func:`state_from_doc`) is driven by the dataclass
type hints of :mod:`sentry_tui.model`, so a field added there with a default is persisted
without touching this module, and an old file without it still loads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import time
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from pathlib import Path
from typing import Any

from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Document

from sentry_tui import model
from sentry_tui.config import Paths
from sentry_tui.crash import crash_point
from sentry_tui.errors import UserError
from sentry_tui.model import EngineState, JournalEntry, Snapshot

SCHEMA_VERSION = 1
TABLE = "engine"
DOC_ID = 1
HANDLED_KEEP = 500  # inbox request ids remembered as applied (see inbox.py)
HISTORY_MAX_BYTES = 5 * 1024 * 1024
HISTORY_KEEP = 3  # rotated files kept besides the current one


class StateFileError(Exception):
    """The state file cannot be used; the message says why in a few words."""


# --------------------------------------------------------------------------------------------
# Atomic file writes


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temp(path: Path, data: bytes, *, fsync: bool) -> Path:
    """Write ``data`` to a dot-temp file beside ``path`` (0600) and return its name."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    return tmp


def atomic_write(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Replace ``path`` with ``data`` so a reader sees the old or the new file, never half.

    With ``fsync`` the new content is also durable when this returns (file and directory).
    """
    tmp = _write_temp(path, data, fsync=fsync)
    os.replace(tmp, path)
    if fsync:
        _fsync_dir(path.parent)


class AtomicJSONStorage(Storage):
    """A TinyDB storage that never writes in place (see the module docstring).

    ``read`` serves the last written data from memory after the first read, so TinyDB's
    read-modify-write on every update neither re-reads nor re-parses the file. A file that
    exists but is empty is an error here, not an empty database: this storage never writes an
    empty file, so an empty one was truncated by something else.
    """

    def __init__(self, path: str | os.PathLike[str], *, keep_backup: bool = True) -> None:
        super().__init__()
        self.path = Path(path)
        self.backup = self.path.with_name(self.path.name + ".bak")
        self.keep_backup = keep_backup
        self._data: dict[str, dict[str, Any]] | None = None

    def read(self) -> dict[str, dict[str, Any]] | None:
        if self._data is None:
            try:
                raw = self.path.read_bytes()
            except FileNotFoundError:
                return None
            if not raw:
                raise StateFileError("empty file")
            try:
                data = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise StateFileError(f"not valid JSON ({e})") from None
            if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
                raise StateFileError("not a TinyDB document")
            self._data = data
        # TinyDB replaces documents and updates their top-level fields in place: copying the
        # tables and documents (not their contents) keeps the cache what is on disk.
        return {
            name: {doc_id: dict(doc) for doc_id, doc in table.items()}
            for name, table in self._data.items()
        }

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        tmp = _write_temp(self.path, text.encode("utf-8"), fsync=True)
        crash_point("mid_state_write")
        if self.keep_backup:
            self._link_backup()
        os.replace(tmp, self.path)
        crash_point("after_state_rename")
        _fsync_dir(self.path.parent)
        self._data = data

    def _link_backup(self) -> None:
        """Make the current file the last-good copy: a hard link, so nothing is copied."""
        bak_tmp = self.backup.with_name(f".{self.backup.name}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            bak_tmp.unlink()
        try:
            os.link(self.path, bak_tmp)
        except FileNotFoundError:
            return  # first write, or the main file was moved aside: keep the old .bak
        except OSError:  # a filesystem without hard links: copy instead
            try:
                data = self.path.read_bytes()
            except FileNotFoundError:
                return
            bak_tmp = _write_temp(self.backup, data, fsync=True)
        os.replace(bak_tmp, self.backup)

    def forget(self) -> None:
        """Drop the cache: the next read goes to the disk again."""
        self._data = None


# --------------------------------------------------------------------------------------------
# Domain values <-> JSON documents


_SCALARS = (str, int, float, bool, type(None))
_FIELDS: dict[type, tuple[str, ...]] = {}


def encode(value: Any) -> Any:
    """Any model value as JSON-ready data: refs as keys, enums as values, tuples as lists."""
    if type(value) in _SCALARS:  # most values: answer before the slower checks
        return value
    if isinstance(value, model.PaneRef):
        return value.key
    if isinstance(value, Enum):
        return value.value
    names = _FIELDS.get(type(value))
    if names is None and dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = _FIELDS[type(value)] = tuple(f.name for f in dataclasses.fields(value))
    if names is not None:
        return {name: encode(getattr(value, name)) for name in names}
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        if all(type(v) is str for v in value):  # nonces, ids, notes: long and flat
            return list(value)
        return [encode(v) for v in value]
    return value


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        module = __import__(cls.__module__, fromlist=["_"])
        hints = typing.get_type_hints(cls, vars(module))
        _HINTS[cls] = hints
    return hints


def decode(tp: Any, data: Any) -> Any:
    """Rebuild a value of type ``tp`` from :func:`encode`'s output; ValueError when it cannot.

    Fields missing from ``data`` take their dataclass default (an older file); unknown keys
    are ignored (a newer file carries a higher schema version and never gets here).
    """
    if tp is Any:
        return data
    origin = typing.get_origin(tp)
    if origin is types.UnionType or origin is typing.Union:
        args = typing.get_args(tp)
        if data is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return decode(arg, data)
            except (ValueError, TypeError) as e:
                errors.append(str(e))
        raise ValueError(f"{data!r} fits none of {tp}: {'; '.join(errors)}")
    if origin is typing.Literal:
        if data in typing.get_args(tp) and type(data) in {type(a) for a in typing.get_args(tp)}:
            return data
        raise ValueError(f"{data!r} is not one of {typing.get_args(tp)}")
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(data, list):
            raise ValueError(f"expected a list, got {type(data).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(decode(args[0], v) for v in data)
        if len(args) != len(data):
            raise ValueError(f"expected {len(args)} items, got {len(data)}")
        return tuple(decode(a, v) for a, v in zip(args, data, strict=True))
    if origin in (Mapping, dict, typing.Mapping):
        key_t, val_t = typing.get_args(tp) or (str, Any)
        if not isinstance(data, dict):
            raise ValueError(f"expected an object, got {type(data).__name__}")
        return {decode(key_t, k): decode(val_t, v) for k, v in data.items()}
    if tp is model.PaneRef:
        if not isinstance(data, str):
            raise ValueError(f"expected a pane key, got {data!r}")
        return model.PaneRef.parse(data)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(data)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(data, dict):
            raise ValueError(f"expected an object for {tp.__name__}, got {type(data).__name__}")
        hints = _hints(tp)
        kwargs = {
            f.name: decode(hints[f.name], data[f.name])
            for f in dataclasses.fields(tp)
            if f.name in data
        }
        return tp(**kwargs)
    if tp is float:
        if isinstance(data, int | float) and not isinstance(data, bool):
            return float(data) if isinstance(data, int) else data
        raise ValueError(f"expected a number, got {data!r}")
    if tp is bool:
        if isinstance(data, bool):
            return data
        raise ValueError(f"expected true/false, got {data!r}")
    if tp is int:
        if isinstance(data, int) and not isinstance(data, bool):
            return data
        raise ValueError(f"expected an integer, got {data!r}")
    if tp is str:
        if isinstance(data, str):
            return data
        raise ValueError(f"expected a string, got {data!r}")
    if tp is type(None):
        if data is None:
            return None
        raise ValueError(f"expected null, got {data!r}")
    raise TypeError(f"cannot decode {tp}")


def state_to_doc(state: EngineState) -> dict[str, Any]:
    return encode(state)


def state_from_doc(doc: Mapping[str, Any]) -> EngineState:
    """Raises ValueError/TypeError (with the bad value) when the document does not fit."""
    return decode(EngineState, dict(doc))


def snapshot_to_doc(snapshot: Snapshot) -> dict[str, Any]:
    """A Snapshot as JSON data, for :func:`write_snapshot`."""
    return encode(snapshot)


def snapshot_from_doc(doc: Mapping[str, Any]) -> Snapshot:
    """The Snapshot a view renders, from :func:`read_snapshot`'s answer (extra keys ignored)."""
    return decode(Snapshot, dict(doc))


def _verify_round_trip(state: EngineState, doc: dict[str, Any]) -> None:
    """Under tests: a value of the wrong type in the state (an int where the model says str)
    would make the next start refuse the whole file, so catch it when it is written."""
    try:
        back = state_from_doc(json.loads(json.dumps(doc)))
    except (ValueError, TypeError) as e:
        raise AssertionError(f"state does not fit the model, it would not load: {e}") from None
    if back != state:
        raise AssertionError("state does not survive a save/load round trip")


def journal_uncertain(state: EngineState) -> EngineState:
    """After a restart: a send journalled as intended may or may not have reached the pane.

    It is never re-sent; it becomes ``uncertain`` and the human retries or dismisses it.
    """
    changed = {
        k: dataclasses.replace(e, status="uncertain")
        for k, e in state.journal.items()
        if e.status == "intended"
    }
    if not changed:
        return state
    journal: dict[str, JournalEntry] = {**state.journal, **changed}
    return dataclasses.replace(state, journal=journal)


# --------------------------------------------------------------------------------------------
# Schema versions


def _v0_to_v1(doc: dict[str, Any]) -> dict[str, Any]:
    """Version 0 (never released): the state at the top level, no positions."""
    state = {k: v for k, v in doc.items() if k != "schema"}
    return {"schema": 1, "state": state, "positions": {}, "handled": []}


MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {0: _v0_to_v1}


def migrate(doc: dict[str, Any]) -> dict[str, Any]:
    """Bring a stored document up to :data:`SCHEMA_VERSION`, one version at a time.

    Raises StateFileError for a version this code does not know (newer, or not an integer).
    """
    version = doc.get("schema", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise StateFileError(f"bad schema version {version!r}")
    if version > SCHEMA_VERSION:
        raise StateFileError(
            f"schema version {version} is newer than this sentry-tui understands ({SCHEMA_VERSION})"
        )
    while version < SCHEMA_VERSION:
        doc = MIGRATIONS[version](doc)
        version = doc["schema"]
    return doc


# --------------------------------------------------------------------------------------------
# The store


def ensure_dir(path: Path) -> None:
    """Create a private directory (0700); an existing one keeps its mode."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


class Store:
    """The engine's state file and history. Only the process holding :class:`EngineLock`
    should :meth:`load` (it may move a bad file aside) or :meth:`save`."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        ensure_dir(paths.state_dir)
        self._storage: AtomicJSONStorage | None = None
        self._db: TinyDB | None = None
        # what is on disk, to skip a write that would change nothing (cheap: the model's
        # values are frozen, so an unchanged state is usually the very same object)
        self._last: tuple[EngineState, dict[str, str], tuple[str, ...]] | None = None
        self._handled: list[str] = []

    # -- state ---------------------------------------------------------------------------------

    def _open(self) -> TinyDB:
        if self._db is None:
            self._db = TinyDB(str(self.paths.db), storage=AtomicJSONStorage)
            self._storage = typing.cast(AtomicJSONStorage, self._db.storage)
        return self._db

    def _read_file(self, path: Path) -> dict[str, Any] | None:
        """The migrated document in ``path`` (None: no file); StateFileError when unusable."""
        db = TinyDB(str(path), storage=AtomicJSONStorage)
        try:
            try:
                raw = db.table(TABLE).get(doc_id=DOC_ID)
            except StateFileError:
                raise
            except Exception as e:  # TinyDB on a foreign JSON shape
                raise StateFileError(f"not a sentry-tui state file ({e})") from None
        finally:
            db.close()
        if raw is None:
            if path.exists():
                raise StateFileError("no engine document in it")
            return None
        doc = migrate(dict(raw))
        try:
            state_from_doc(doc["state"])
            positions = doc.get("positions", {})
            if not isinstance(positions, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in positions.items()
            ):
                raise ValueError("positions must map pane keys to strings")
            handled = doc.get("handled", [])
            if not isinstance(handled, list) or not all(isinstance(h, str) for h in handled):
                raise ValueError("handled must be a list of request ids")
        except (KeyError, ValueError, TypeError) as e:
            raise StateFileError(f"does not match schema {SCHEMA_VERSION} ({e})") from None
        return doc

    def _move_aside(self, path: Path, why: str) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        tag = "newer" if "newer" in why else "corrupt"
        target = path.with_name(f"{path.name}.{tag}-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = path.with_name(f"{path.name}.{tag}-{stamp}-{n}")
        os.replace(path, target)
        return target

    @property
    def backup_path(self) -> Path:
        return self.paths.db.with_name(self.paths.db.name + ".bak")

    def _fallback(self, bak: Path, readonly: bool) -> tuple[dict[str, Any] | None, str]:
        """The last good copy's document and how it went, in words for the message."""
        try:
            doc = self._read_file(bak)
        except StateFileError as e:
            if readonly:
                return None, f"last good copy {bak} unusable too ({e}); showing an empty state"
            aside = self._move_aside(bak, str(e))
            tail = f"last good copy {bak} unusable too ({e}), moved to {aside}"
            return None, f"{tail}; starting with an empty state"
        if doc is None:
            return None, "no last good copy; starting with an empty state"
        return doc, f"using last good copy {bak}"

    def load(self, *, readonly: bool = False) -> tuple[EngineState, dict[str, str], list[str]]:
        """The saved state, per-pane read positions, and messages for the human.

        A main file that cannot be used is moved aside and the last good copy is used (or an
        empty state when there is none); each step is said in one message naming the paths.
        Open sends come back as they were saved: :func:`journal_uncertain` is the caller's
        step, so a view can also show what was in flight.

        ``readonly`` (views, `status`, or whenever another process holds the engine lock):
        nothing is moved or written, the fallback happens in memory only.
        """
        holder = lock_holder(self.paths)
        readonly = readonly or holder not in (None, os.getpid())
        messages: list[str] = []
        main, bak = self.paths.db, self.backup_path
        recovered = False
        try:
            doc = self._read_file(main)
        except StateFileError as e:
            doc, tail = self._fallback(bak, readonly)
            recovered = doc is not None
            if readonly:
                messages.append(f"state file {main} is unusable: {e}; {tail}")
            else:
                aside = self._move_aside(main, str(e))
                messages.append(f"state file {main} was unusable: {e}; moved to {aside}; {tail}")
        else:
            if doc is None and bak.exists():  # moved aside earlier, never saved since
                doc, tail = self._fallback(bak, readonly)
                recovered = doc is not None
                messages.append(f"state file {main} is missing; {tail}")
        if doc is None:
            state, positions, handled = EngineState(), {}, []
        else:
            state = state_from_doc(doc["state"])
            positions = dict(doc.get("positions", {}))
            handled = list(doc.get("handled", []))
        if readonly:
            return state, positions, messages
        self._handled = handled[-HANDLED_KEEP:]
        self._remove_stale_temps()
        self._open()
        if recovered:
            self.save(state, positions, force=True)
        elif doc is not None:
            self._last = (state, dict(positions), tuple(self._handled))
        return state, positions, messages

    def _remove_stale_temps(self) -> None:
        """Temp files of writers killed before their rename (never the live file)."""
        for pattern in (f".{self.paths.db.name}.*.tmp", f".{self.backup_path.name}.*.tmp"):
            for tmp in self.paths.state_dir.glob(pattern):
                with contextlib.suppress(OSError):
                    tmp.unlink()

    def _doc(self, state: EngineState, positions: Mapping[str, str]) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "state": state_to_doc(state),
            "positions": dict(positions),
            "handled": list(self._handled),
        }

    def mark_handled(self, request_ids: Iterable[str]) -> None:
        """Inbox requests whose effect is now in the engine state: saved with the next save."""
        new_ids = [h for h in request_ids if h and h not in self._handled]
        if new_ids:
            self._handled = (self._handled + new_ids)[-HANDLED_KEEP:]

    @property
    def handled(self) -> frozenset[str]:
        """Inbox request ids whose effect is in the saved state (pass to inbox.read_requests)."""
        return frozenset(self._handled)

    def save(
        self,
        state: EngineState,
        positions: Mapping[str, str],
        *,
        handled: Iterable[str] = (),
        force: bool = False,
    ) -> bool:
        """Persist in one atomic write; returns False when nothing changed (no write).

        ``handled``: request ids of the inbox events whose effect ``state`` includes. They are
        saved in the same write, so a restart can tell an applied request from one that was
        claimed but not applied (exactly once, see inbox.py).
        """
        self.mark_handled(handled)
        current = (state, dict(positions), tuple(self._handled))
        last = self._last
        if (
            not force
            and last is not None
            and (last[0] is state or last[0] == state)
            and last[1:] == current[1:]
        ):
            return False
        bad = [k for k, v in current[1].items() if not isinstance(k, str) or not isinstance(v, str)]
        if bad:
            raise TypeError(f"read positions must map pane keys to strings: {bad[:3]}")
        doc = self._doc(state, positions)
        if os.environ.get("SENTRY_TUI_TEST"):
            _verify_round_trip(state, doc["state"])
        db = self._open()
        try:
            db.table(TABLE).upsert(Document({**doc, "saved_at": time.time()}, doc_id=DOC_ID))
        except BaseException:
            if self._storage is not None:
                self._storage.forget()
            self._last = None
            raise
        self._last = current
        return True

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # -- history -------------------------------------------------------------------------------

    def append_history(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Append JSON lines with one write and one fsync per batch; rotate by size."""
        blob = "".join(
            json.dumps(r, separators=(",", ":"), ensure_ascii=False) + "\n" for r in records
        ).encode("utf-8")
        if not blob:
            return
        path = self.paths.history
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            size = 0
        if size and size + len(blob) > HISTORY_MAX_BYTES:
            self._rotate()
            size = 0
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            if size and os.pread(fd, 1, size - 1) != b"\n":
                blob = b"\n" + blob  # a torn line from a crash: never glue a record to it
            if os.environ.get("SENTRY_TUI_CRASH_AT"):
                os.write(fd, blob[: len(blob) // 2])
                crash_point("mid_history_append")
                blob = blob[len(blob) // 2 :]
            view = memoryview(blob)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)

    def _rotate(self) -> None:
        path = self.paths.history
        for n in range(HISTORY_KEEP, 0, -1):
            src = path if n == 1 else path.with_name(f"{path.name}.{n - 1}")
            with contextlib.suppress(FileNotFoundError):
                os.replace(src, path.with_name(f"{path.name}.{n}"))
        _fsync_dir(path.parent)

    def history_files(self) -> list[Path]:
        """Newest first: the current file, then .1, .2, …"""
        path = self.paths.history
        files = [path] + [path.with_name(f"{path.name}.{n}") for n in range(1, HISTORY_KEEP + 1)]
        return [f for f in files if f.exists()]

    def read_history(self, limit: int = 200) -> list[dict[str, Any]]:
        """The last ``limit`` records, oldest first. Torn or foreign lines are skipped."""
        out: list[dict[str, Any]] = []
        for f in self.history_files():
            for line in _tail_lines(f):
                if len(out) >= limit:
                    break
                try:
                    rec = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    continue
                if isinstance(rec, dict):
                    out.append(rec)
            if len(out) >= limit:
                break
        out.reverse()
        return out


def _tail_lines(path: Path, block: int = 64 * 1024) -> Iterable[bytes]:
    """Lines of ``path`` from the last to the first, reading backwards in blocks."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except (FileNotFoundError, OSError):
        return
    try:
        pos = os.fstat(fd).st_size
        rest = b""
        while pos > 0:
            step = min(block, pos)
            pos -= step
            chunk = os.pread(fd, step, pos) + rest
            lines = chunk.split(b"\n")
            rest = lines[0]
            for line in reversed(lines[1:]):
                if line.strip():
                    yield line
        if rest.strip():
            yield rest
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------
# One engine per state dir


class LockHeld(UserError):
    def __init__(self, pid: int, state_dir: Path) -> None:
        who = f"pid {pid}" if pid else "pid unknown"
        super().__init__(f"another engine ({who}) is running for {state_dir}")
        self.pid = pid
        self.state_dir = state_dir


def _read_pid(fd: int) -> int:
    try:
        return int(os.pread(fd, 32, 0).decode().strip() or 0)
    except (ValueError, UnicodeDecodeError):
        return 0


class EngineLock:
    """``flock`` on ``engine.lock`` holding the owner's PID. The kernel releases it when the
    process dies (even by SIGKILL), so a stale file never blocks a restart."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self._fd: int | None = None

    def acquire(self) -> None:
        ensure_dir(self.paths.state_dir)
        fd = os.open(self.paths.lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _wait_pid(fd)
            os.close(fd)
            raise LockHeld(pid, self.paths.state_dir) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def holder(self) -> int | None:
        """PID of the engine holding the lock (0: held, PID not yet written), None: free."""
        return lock_holder(self.paths)

    def __enter__(self) -> EngineLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _wait_pid(fd: int, timeout: float = 1.0) -> int:
    """The holder writes its PID right after locking; give it a moment."""
    deadline = time.monotonic() + timeout
    pid = _read_pid(fd)
    while not pid and time.monotonic() < deadline:
        time.sleep(0.01)
        pid = _read_pid(fd)
    return pid


def lock_holder(paths: Paths) -> int | None:
    """For views and `status`: the running engine's PID, or None when no engine runs."""
    try:
        fd = os.open(paths.lock, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _wait_pid(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------
# The published snapshot (engine -> views)


def write_snapshot(paths: Paths, snapshot_doc: Mapping[str, Any]) -> None:
    """Atomically replace the snapshot file. Not fsynced: it is rewritten often and a view
    only needs never to see half of it; after a crash the engine publishes a fresh one."""
    ensure_dir(paths.state_dir)
    doc = {**snapshot_doc, "written_at": time.time(), "pid": os.getpid()}
    atomic_write(paths.snapshot, json.dumps(doc, separators=(",", ":")).encode(), fsync=False)


def read_snapshot(paths: Paths) -> dict[str, Any] | None:
    """The last published snapshot (with ``written_at`` and ``pid``), None when absent/bad."""
    try:
        doc = json.loads(paths.snapshot.read_bytes())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None
