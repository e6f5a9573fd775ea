"""The file-drop inbox: how the CLI, views and a phone's sync app reach the engine.

Requests are files in ``<state>/inbox/``; answers are files in ``<state>/outbox/``. A file is
the whole protocol, so it works with no engine running (the request waits), over SSH, and from
a file manager.

Request format
--------------
``<state>/inbox/<id>.json`` holds one JSON object::

    {"v": 1, "id": "<id>", "command": "approve", "approval_id": "k3x9"}

- ``v``: format version, always 1.
- ``id``: the request id, the file name without ``.json`` (letters, digits, ``_``, ``-``, up to
  64). It may be left out; the file name is used.
- ``command``: one of approve, reject, retry, skip, cancel, start, pause, resume, send, dismiss.
- the command's fields, all strings: ``approval_id`` (approve, reject), ``reason`` (reject),
  ``project`` (retry, skip, cancel, start), ``stage`` (retry, skip), ``pane`` and ``text``
  (send), ``action_id`` (dismiss). Unknown fields make the file malformed.
- ``by`` (optional): ``cli``, ``inbox``, ``ui`` or ``link``; default ``inbox``.

For a phone, a shorter form: a file named ``approve-k3x9`` (content ignored) or
``reject-k3x9`` whose content is the reason (``.txt`` may be appended to either name).

Files whose names start with a dot are ignored (temp files being written: write elsewhere or
under a dot name, then rename), and so are directories. Refused, with a one-line reason, and
moved to ``inbox/rejected/``: symlinks, anything else that is not a regular file, files not
owned by the user the engine runs as, files over 8 KiB, and files that do not parse.

Answers: ``<state>/outbox/<id>.json`` = ``{"v": 1, "id": …, "ok": true, "message": "…"}``.

Exactly once
------------
A request is *claimed* by renaming it into ``inbox/processing/<id>``: rename is atomic, so of
two readers racing for a file exactly one gets it. It stays there until :func:`answer` has
written the outbox file. The engine saves the ids of the requests whose effect is in its state
in the same atomic write as that state (``Store.mark_handled`` / ``Store.handled``). After a
crash, :func:`read_requests` with ``recover=True`` (once, at start, under the engine lock)
looks at what is left in ``processing/``: a request whose id is in ``handled`` was applied and
saved before the crash, so it is only answered and released, never applied again; any other
was claimed but its effect never reached the disk, so it is delivered again. Without
``recover`` (and ``handled``), a crash between claim and save loses the request instead of
risking a second application, and its sender hears no answer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import re
import secrets
import stat
import time
from collections.abc import Container
from pathlib import Path
from typing import Any

from sentry_tui.ansi import one_line
from sentry_tui.config import Paths
from sentry_tui.crash import crash_point
from sentry_tui.model import HUMAN_EVENTS, HookEvent, HumanEvent, Reject, Report

MAX_BYTES = 8 * 1024
VERSION = 1
BY_VALUES = frozenset({"cli", "inbox", "ui", "link"})
REJECTED_KEEP = 100
OUTBOX_MAX_AGE_S = 24 * 3600
TEMP_MAX_AGE_S = 3600
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_SHORT = re.compile(r"(approve|reject)-([A-Za-z0-9]{1,32})(?:\.txt)?", re.IGNORECASE)


class BadRequest(Exception):
    """A request file that cannot be used; the message is the one-line reason."""


def processing_dir(paths: Paths) -> Path:
    return paths.inbox / "processing"


def rejected_dir(paths: Paths) -> Path:
    return paths.inbox / "rejected"


def ensure_dirs(paths: Paths) -> None:
    for d in (paths.state_dir, paths.inbox, processing_dir(paths), rejected_dir(paths)):
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths.outbox.mkdir(mode=0o700, parents=True, exist_ok=True)


def new_request_id() -> str:
    """Sortable by time (hex milliseconds) and unguessable enough to never collide."""
    return f"{int(time.time() * 1000):x}-{secrets.token_hex(4)}"


def _write_atomic(directory: Path, name: str, data: bytes) -> Path:
    """Dot-temp file, fsync, rename, fsync the directory: a reader never sees half a file."""
    tmp = directory / f".{name}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    target = directory / name
    os.replace(tmp, target)
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return target


# --------------------------------------------------------------------------------------------
# Senders: the CLI, views, the link server


def request_doc(event: HumanEvent, request_id: str) -> dict[str, Any]:
    if HUMAN_EVENTS.get(event.kind) is not type(event):
        raise ValueError(f"not a human command: {type(event).__name__}")
    doc: dict[str, Any] = {"v": VERSION, "id": request_id, "command": event.kind}
    doc["by"] = event.by if event.by in BY_VALUES else "cli"
    for f in dataclasses.fields(event):
        if f.name not in ("by", "request_id"):
            doc[f.name] = getattr(event, f.name)
    return doc


def submit(paths: Paths, event: HumanEvent) -> str:
    """Drop a request for the engine; returns its id (wait on it with :func:`wait_answer`)."""
    ensure_dirs(paths)
    request_id = new_request_id()
    data = json.dumps(request_doc(event, request_id), ensure_ascii=False).encode("utf-8")
    if len(data) > MAX_BYTES:
        raise ValueError(f"request too large ({len(data)} bytes, limit {MAX_BYTES})")
    _write_atomic(paths.inbox, f"{request_id}.json", data)
    return request_id


def wait_answer(paths: Paths, request_id: str, timeout: float) -> Report | None:
    """The engine's answer to a request, or None when none came within ``timeout`` seconds.

    The answer file is consumed: a request has one waiter.
    """
    if not _ID.fullmatch(request_id):
        raise ValueError(f"not a request id: {request_id!r}")
    path = paths.outbox / f"{request_id}.json"
    deadline = time.monotonic() + timeout
    while True:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raw = None
        if raw is not None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            try:
                doc = json.loads(raw)
                return Report(request_id, bool(doc["ok"]), str(doc.get("message", "")))
            except (ValueError, KeyError, TypeError):
                return Report(request_id, False, "the engine's answer was unreadable")
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)


# --------------------------------------------------------------------------------------------
# The engine side


def answer(paths: Paths, report: Report) -> None:
    """Write the answer for a request and release its claim (see "Exactly once")."""
    rid = report.request_id
    if not rid or not _ID.fullmatch(rid):
        return
    ensure_dirs(paths)
    doc = {"v": VERSION, "id": rid, "ok": report.ok, "message": report.message}
    _write_atomic(paths.outbox, f"{rid}.json", json.dumps(doc, ensure_ascii=False).encode())
    crash_point("after_answer_before_release")
    _release(paths, rid)
    _prune(paths.outbox, max_age=OUTBOX_MAX_AGE_S)


def _claim_path(paths: Paths, name: str, rid: str) -> Path:
    """``<id>.json`` for the JSON form, the derived id alone for any other file name."""
    return processing_dir(paths) / (f"{rid}.json" if name == f"{rid}.json" else rid)


def _release(paths: Paths, rid: str) -> None:
    for claimed in (processing_dir(paths) / f"{rid}.json", processing_dir(paths) / rid):
        with contextlib.suppress(FileNotFoundError):
            claimed.unlink()


def queued(paths: Paths) -> int:
    """How many requests wait in the inbox (for `status`)."""
    try:
        return sum(1 for e in os.scandir(paths.inbox) if _candidate(e))
    except FileNotFoundError:
        return 0


def _candidate(entry: os.DirEntry[str]) -> bool:
    if entry.name.startswith("."):
        return False
    try:
        return not entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def read_requests(
    paths: Paths,
    *,
    handled: Container[str] | None = None,
    recover: bool = False,
    hook_key: bytes | None = None,
) -> tuple[list[HumanEvent | HookEvent], list[str]]:
    """Claim every request in the inbox and return them as events, oldest first.

    Returns (events, messages): one message per refused or recovered file. ``handled``: ids
    already applied and saved (``Store.handled``). ``recover``: also take back requests left
    in ``processing/`` by a crash; only the engine, once, under its lock.

    Agent hook files (``hook-*.json``, written by `sentry-tui hook`) come through the same
    door: claimed the same way, verified by :func:`sentry_tui.hooks.read_hook_file` with
    ``hook_key`` (default: the state dir's signing key), and released at once — a hook is a
    signal, not a request, and nobody waits for its answer.
    """
    ensure_dirs(paths)
    events: list[HumanEvent | HookEvent] = []
    messages: list[str] = []
    done = handled if handled is not None else frozenset()
    key = _KeyCache(paths, hook_key)
    if recover:
        _recover(paths, done, events, messages, key)
    now = time.time()
    entries: list[tuple[int, str, os.stat_result]] = []
    for entry in os.scandir(paths.inbox):
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        if entry.name.startswith("."):
            if stat.S_ISREG(st.st_mode) and now - st.st_mtime > TEMP_MAX_AGE_S:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)  # a sender died mid-write long ago
            continue
        if stat.S_ISDIR(st.st_mode):
            continue  # ours (processing/, rejected/) or a sync app's: not requests
        entries.append((st.st_mtime_ns, entry.name, st))
    entries.sort(key=lambda t: (t[0], t[1]))
    for _mtime, name, st in entries:
        rid = _request_id(name, st)
        claimed = _claim_path(paths, name, rid)
        if claimed.exists() or claimed.is_symlink():
            _refuse(
                paths,
                paths.inbox / name,
                name,
                "a request with this id is in progress",
                rid,
                messages,
                answer_id=None,
            )
            continue
        try:
            os.rename(paths.inbox / name, claimed)
        except FileNotFoundError:
            continue  # another reader claimed it first
        except OSError as e:
            messages.append(f"inbox: cannot claim {_show(name)}: {e.strerror}")
            continue
        crash_point("after_inbox_claim")
        if rid in done:
            _release_applied(paths, rid, messages, name)
            continue
        _take(paths, claimed, name, rid, events, messages, key)
    return events, messages


class _KeyCache:
    """The signing key, read once per call and only when a hook file is there."""

    def __init__(self, paths: Paths, key: bytes | None) -> None:
        self.paths = paths
        self.key = key
        self.error = ""

    def get(self) -> bytes | None:
        if self.key is None and not self.error:
            from sentry_tui.errors import UserError
            from sentry_tui.keys import load_key

            try:
                self.key = load_key(self.paths.state_dir)
            except UserError as e:
                self.error = str(e)
        return self.key


def _recover(
    paths: Paths,
    done: Container[str],
    events: list[HumanEvent | HookEvent],
    messages: list[str],
    key: _KeyCache,
) -> None:
    left = sorted(os.scandir(processing_dir(paths)), key=lambda e: e.name)
    for entry in left:
        if entry.name.startswith("."):
            continue
        if entry.name.endswith(".json"):
            rid, name = entry.name[:-5], entry.name
        else:  # a derived id: the original name plus "-<8 hex>"; the short forms survive it
            rid, name = entry.name, entry.name[:-9]
        if rid in done:
            _release_applied(paths, rid, messages, name)
            continue
        before = len(events)
        _take(paths, Path(entry.path), name, rid, events, messages, key)
        if len(events) > before:
            messages.append(
                f"inbox: request {_show(rid)} was claimed before a restart and not applied; "
                "applying it now"
            )


def _release_applied(paths: Paths, rid: str, messages: list[str], name: str) -> None:
    if not (paths.outbox / f"{rid}.json").exists():
        answer(paths, Report(rid, True, f"request {rid} was already applied"))
    _release(paths, rid)
    messages.append(f"inbox: request {_show(name)} was already applied; not applying it again")


def _take(
    paths: Paths,
    claimed: Path,
    name: str,
    rid: str,
    events: list[HumanEvent | HookEvent],
    messages: list[str],
    key: _KeyCache,
) -> None:
    from sentry_tui.hooks import is_hook_file_name, read_hook_file

    if is_hook_file_name(name):
        hook_key = key.get()
        got = read_hook_file(claimed, hook_key) if hook_key else f"no signing key ({key.error})"
        if isinstance(got, str):
            _refuse(paths, claimed, name, got, rid, messages, answer_id=None)
            return
        with contextlib.suppress(FileNotFoundError):
            claimed.unlink()
        events.append(got)
        return
    try:
        raw = _read_own_file(claimed)
        event = parse_request(name, raw, rid)
    except BadRequest as e:
        answer_id = rid if _ID.fullmatch(rid) and name.endswith(".json") else None
        _refuse(paths, claimed, name, str(e), rid, messages, answer_id=answer_id)
        return
    events.append(event)


def _read_own_file(path: Path) -> bytes:
    """The content of a regular file we own, at most MAX_BYTES; BadRequest otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise BadRequest("a symlink (refused: it could point anywhere)") from None
        raise BadRequest(f"cannot open: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BadRequest("not a regular file")
        if st.st_uid != os.geteuid():
            raise BadRequest(f"owned by uid {st.st_uid}, not by this user ({os.geteuid()})")
        if st.st_size > MAX_BYTES:
            raise BadRequest(f"{st.st_size} bytes, over the {MAX_BYTES}-byte limit")
        data = os.read(fd, MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            raise BadRequest(f"over the {MAX_BYTES}-byte limit")
        return data
    finally:
        os.close(fd)


def _request_id(name: str, st: os.stat_result) -> str:
    """``<id>.json`` keeps its id; any other name gets one derived from the file itself."""
    if name.endswith(".json") and _ID.fullmatch(name[:-5]):
        return name[:-5]
    short = _SHORT.fullmatch(name)
    base = f"{short.group(1)}-{short.group(2)}" if short else name  # recovery re-parses it
    stem = re.sub(r"[^A-Za-z0-9_-]", "_", base)[:40].lstrip("_-") or "file"
    digest = hashlib.sha256(f"{name}:{st.st_ino}:{st.st_mtime_ns}:{st.st_size}".encode())
    return f"{stem}-{digest.hexdigest()[:8]}"


def parse_request(name: str, raw: bytes, request_id: str) -> HumanEvent:
    """Build the event a request file asks for; BadRequest with the reason otherwise."""
    short = _SHORT.fullmatch(name)
    if short:
        command, approval_id = short.group(1).lower(), short.group(2)
        if command == "approve":
            return HUMAN_EVENTS["approve"](
                by="inbox", request_id=request_id, approval_id=approval_id
            )
        try:
            reason = one_line(raw.decode("utf-8"), 500)
        except UnicodeDecodeError:
            raise BadRequest("the reason is not UTF-8 text") from None
        return Reject(by="inbox", request_id=request_id, approval_id=approval_id, reason=reason)
    if not name.endswith(".json"):
        raise BadRequest("not a request: expected <id>.json, approve-<id> or reject-<id>")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise BadRequest(f"not valid JSON ({one_line(str(e), 80)})") from None
    if not isinstance(doc, dict):
        raise BadRequest("not a JSON object")
    if doc.get("v") != VERSION:
        raise BadRequest(f"unsupported format version {one_line(repr(doc.get('v')), 20)}")
    if "id" in doc and doc["id"] != name[:-5]:
        raise BadRequest("its id does not match the file name")
    command = doc.get("command")
    cls = HUMAN_EVENTS.get(command) if isinstance(command, str) else None
    if cls is None:
        raise BadRequest(
            f"unknown command {one_line(repr(command), 40)} "
            f"(one of: {', '.join(sorted(HUMAN_EVENTS))})"
        )
    by = doc.get("by", "inbox")
    if by not in BY_VALUES:
        raise BadRequest(f"bad 'by' {one_line(repr(by), 20)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in ("by", "request_id")}
    kwargs: dict[str, Any] = {}
    for key, value in doc.items():
        if key in ("v", "id", "command", "by"):
            continue
        f = fields.get(key)
        if f is None:
            raise BadRequest(f"unknown field {one_line(repr(key), 40)} for {command}")
        if not isinstance(value, type(f.default)) or isinstance(value, bool) is not isinstance(
            f.default, bool
        ):
            raise BadRequest(f"field {key!r} must be a {type(f.default).__name__}")
        kwargs[key] = value
    return cls(by=by, request_id=request_id, **kwargs)


def _refuse(
    paths: Paths,
    path: Path,
    name: str,
    reason: str,
    rid: str,
    messages: list[str],
    *,
    answer_id: str | None,
) -> None:
    target = rejected_dir(paths) / f"{name}.{time.strftime('%Y%m%dT%H%M%S')}-{rid[-8:]}"
    try:
        os.rename(path, target)
        where = f"moved to {target}"
    except FileNotFoundError:
        return  # another reader handled it
    except OSError as e:
        where = f"could not be moved ({e.strerror})"
    messages.append(f"inbox: refused {_show(name)}: {reason}; {where}")
    if answer_id:
        answer(paths, Report(answer_id, False, f"request refused: {reason}"))
    _prune(rejected_dir(paths), keep=REJECTED_KEEP)


def _show(name: str) -> str:
    return one_line(repr(name), 80)


def _prune(directory: Path, *, max_age: float | None = None, keep: int | None = None) -> None:
    """Bound a directory that only grows: by age and/or by count (oldest go first)."""
    try:
        entries = [(e.stat(follow_symlinks=False).st_mtime, e.path) for e in os.scandir(directory)]
    except OSError:
        return
    entries.sort()
    drop: list[str] = []
    if max_age is not None:
        cutoff = time.time() - max_age
        drop.extend(p for m, p in entries if m < cutoff)
    if keep is not None and len(entries) > keep:
        drop.extend(p for _m, p in entries[: len(entries) - keep])
    for p in set(drop):
        with contextlib.suppress(OSError):
            if not os.path.isdir(p) or os.path.islink(p):
                os.unlink(p)
