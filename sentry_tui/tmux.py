"""The tmux adapter: discover panes, stream their output as events, type into them.

Measured (DESIGN.md): a tmux command costs ~2.8 ms of CPU as a new process and ~0.07 ms over
an open control connection. So libtmux serves discovery probes and one-offs only; everything
recurring goes over one ``tmux -C attach`` client per session, whose ``%output`` stream is the
source of new lines and whose command replies carry captures.

One manager thread owns all state; one reader thread per control client parses its stdout
(control.py) and queues items in stream order. Stream order matters: output that precedes a
capture's reply is already in the capture, output after it is not, which is how a pane is
(re)synchronised without losing or repeating a line.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import select
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import libtmux

from sentry_tui.ansi import strip_ansi
from sentry_tui.control import (
    TOPOLOGY,
    Continue,
    ControlParser,
    Exit,
    Item,
    LineAssembler,
    Notice,
    Output,
    Pause,
    Reply,
)
from sentry_tui.errors import UserError
from sentry_tui.model import (
    Event,
    OutputLines,
    PaneAdded,
    PaneChanged,
    PaneGone,
    PaneInfo,
    PaneRef,
    ScreenChanged,
    ServerDown,
    ServerUp,
)
from sentry_tui.screen import (
    FINGERPRINT_LINES,
    Position,
    after_position,
    line_hash,
    new_lines,
    split_capture,
    text_of,
)

MIN_TMUX = (3, 2)  # attach -f ignore-size,pause-after

# Once output is seen, wait this long and read everything that came meanwhile in one pass.
# A pass costs two wake-ups of this thread and one of the consumer's, several times what
# reading the lines costs, so the watcher's CPU follows the number of passes. Printers rarely
# line up: with 5 busy panes a 10 ms window meant up to 50 passes a second, 25 ms about 20,
# 40 ms about 11 (half the CPU of 25 ms). 40 ms keeps a line's p95 latency near 41 ms, under
# the 50 ms the issue allows (bench/watch.py measures both).
GATHER_S = 0.04


class TmuxError(UserError):
    """tmux could not be reached or refused a command; the message is one line."""


class SendError(TmuxError):
    """Text could not be typed into a pane: unknown or dead pane, or text that is refused."""


# --------------------------------------------------------------------------------------------
# Quoting: the ONE way text reaches a pane


_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def check_sendable(text: str) -> None:
    """Refuse text that would act as keys rather than be typed: control characters.

    Enter is sent as its own key by :meth:`Watcher.send_text`, never as a newline inside
    the text, so a newline is refused too.
    """
    m = _CONTROL_CHARS.search(text)
    if m:
        raise SendError(
            f"refusing to type a control character ({ord(m.group(0)):#04x}) into a pane"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise SendError("refusing text that is not valid unicode (lone surrogate)") from e


def quote_for_tmux(text: str) -> str:
    """Quote ``text`` as one argument for tmux's command parser (``send-keys -l -- ARG``).

    Single quotes make ``;``, ``"``, ``$``, ``~``, ``#{``, ``{`` and ``\\`` literal; a single
    quote closes, is escaped, and reopens (``'\\''``), as in sh. Control characters are
    refused first (check_sendable).
    """
    check_sendable(text)
    return "'" + text.replace("'", "'\\''") + "'"


def _q(arg: str) -> str:
    """Quote our own command arguments (formats may hold the 0x1f separator)."""
    return "'" + arg.replace("'", "'\\''") + "'"


# --------------------------------------------------------------------------------------------
# One-offs (libtmux)


def _server(socket_name: str | None, socket_path: str | None) -> libtmux.Server:
    return libtmux.Server(socket_name=socket_name, socket_path=socket_path)


def _where(socket_name: str | None, socket_path: str | None) -> str:
    if socket_path:
        return f"socket {socket_path}"
    if socket_name:
        return f"socket name {socket_name!r}"
    return "the default socket"


def _oneoff(socket_name: str | None, socket_path: str | None, *args: str) -> list[str]:
    """Run one tmux command as a process; a one-line TmuxError when it fails."""
    if shutil.which("tmux") is None:
        raise TmuxError("tmux is not installed (no `tmux` on PATH)")
    try:
        res = _server(socket_name, socket_path).cmd(*args)
    except Exception as e:  # libtmux raises its own types and OSError; all mean unreachable
        raise TmuxError(f"tmux on {_where(socket_name, socket_path)}: {e}") from e
    if res.returncode != 0 or (res.stderr and not res.stdout):
        msg = " ".join(res.stderr).strip() or f"exit status {res.returncode}"
        if "error connecting" in msg or "no server running" in msg:
            msg = f"no tmux server on {_where(socket_name, socket_path)}"
        raise TmuxError(msg)
    return list(res.stdout)


def _latest_human_client(lines: list[str]) -> str | None:
    """Of `list-clients` rows (name, control flag, activity), the person's newest client."""
    humans = []
    for line in lines:
        name, _, rest = line.partition("\x1f")
        control, _, activity = rest.partition("\x1f")
        if control != "1":
            humans.append((_int(activity), name))
    return max(humans)[1] if humans else None


CLIENT_FORMAT = "#{client_name}\x1f#{client_control_mode}\x1f#{client_activity}"


def switch_client(
    ref: PaneRef, socket_name: str | None = None, socket_path: str | None = None
) -> None:
    """Show ``ref`` in the person's tmux client, as one-off commands (for a view, which has
    no control connection of its own). Raises a one-line TmuxError."""
    _oneoff(socket_name, socket_path, "select-window", "-t", ref.pane_id)
    _oneoff(socket_name, socket_path, "select-pane", "-t", ref.pane_id)
    client = _latest_human_client(
        _oneoff(socket_name, socket_path, "list-clients", "-F", CLIENT_FORMAT)
    )
    if client is not None:
        _oneoff(socket_name, socket_path, "switch-client", "-c", client, "-t", ref.pane_id)


def _die_with_parent() -> None:
    """In a control client, before exec: end when the engine that reads it dies.

    An orphaned `tmux -C` client whose reader is gone cannot be told to exit, and tmux then
    never finishes shutting its server down (kill-server leaves it running, socket unlinked).
    Linux's PR_SET_PDEATHSIG sends it SIGTERM the moment its parent dies, however it dies.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: a clean stop() still closes the client


def _hashes(lines: deque[str]) -> tuple[str, ...]:
    return tuple(line_hash(x) for x in lines)


def socket_file(socket_name: str) -> Path:
    """Where tmux puts the socket of ``tmux -L NAME``."""
    base = os.environ.get("TMUX_TMPDIR") or "/tmp"
    return Path(base) / f"tmux-{os.geteuid()}" / socket_name


def stop_private_server(socket_name: str) -> None:
    """Stop a server *we* started on a socket name of our own, and remove its socket file
    (tmux leaves it behind). Never call this on a name you did not create."""
    subprocess.run(
        ["tmux", "-L", socket_name, "kill-server"], capture_output=True, timeout=10, check=False
    )
    with contextlib.suppress(OSError):
        socket_file(socket_name).unlink()


def server_identity(socket_name: str | None = None, socket_path: str | None = None) -> str:
    """``"<pid>-<start_time>"`` of the server: pane ids mean nothing across two of these."""
    out = _oneoff(socket_name, socket_path, "display-message", "-p", "#{pid}-#{start_time}")
    ident = (out[0] if out else "").strip()
    if not re.fullmatch(r"\d+-\d+", ident):
        raise TmuxError(f"tmux answered {ident!r} for its identity")
    return ident


def tmux_version() -> tuple[int, int] | None:
    """(major, minor) of the installed tmux; None when it cannot be told (a dev build)."""
    try:
        out = subprocess.run(["tmux", "-V"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"(\d+)\.(\d+)", out)
    return (int(m[1]), int(m[2])) if m else None


_FIELDS = (
    "pane_id",
    "session_id",
    "session_name",
    "window_index",
    "pane_index",
    "pane_current_command",
    "pane_dead",
    "pane_width",
    "pane_height",
    "pane_pid",
    "alternate_on",
    "pane_current_path",
    "window_name",
)
PANE_FORMAT = "\x1f".join("#{" + f + "}" for f in _FIELDS)


@dataclass(frozen=True, slots=True)
class _Row:
    info: PaneInfo
    session_id: str
    alternate: bool


def _int(s: str) -> int:
    return int(s) if s.strip().isdigit() else 0


def _rows(lines: list[str], server: str) -> list[_Row]:
    rows = []
    for line in lines:
        f = line.split("\x1f", len(_FIELDS) - 1)
        if len(f) != len(_FIELDS) or not f[0].startswith("%"):
            continue
        info = PaneInfo(
            ref=PaneRef(server, f[0]),
            session=f[2],
            window=f[12],
            window_index=_int(f[3]),
            pane_index=_int(f[4]),
            command=f[5],
            cwd=f[11],
            dead=f[6] == "1",
            width=_int(f[7]) or 80,
            height=_int(f[8]) or 24,
            pid=_int(f[9]),
        )
        rows.append(_Row(info, f[1], f[10] == "1"))
    return rows


def discover(socket_name: str | None = None, socket_path: str | None = None) -> list[PaneInfo]:
    """Every pane of the server, once (a process; the watcher polls over its connection)."""
    ident = server_identity(socket_name, socket_path)
    lines = _oneoff(socket_name, socket_path, "list-panes", "-a", "-F", PANE_FORMAT)
    seen: dict[str, PaneInfo] = {}
    for row in _rows(lines, ident):
        seen.setdefault(row.info.ref.pane_id, row.info)
    return list(seen.values())


# --------------------------------------------------------------------------------------------
# A control client


@dataclass(frozen=True, slots=True)
class _Tag:
    """An internal command's reply, routed back to the manager in stream order."""

    what: str  # "list", "sync_info", "sync_cap", "cap_info", "cap_hist", "cap_screen", "other"
    key: str = ""
    token: int = 0


@dataclass(frozen=True, slots=True)
class _Answer:
    tag: _Tag
    reply: Reply


class _Conn:
    """``tmux -C attach`` to one session: commands in, items (in stream order) out.

    It has no thread of its own: the watcher's single loop selects on every connection's
    stdout and calls :meth:`read`, so a burst across many sessions costs one wake-up.
    """

    def __init__(self, argv: list[str], session_id: str) -> None:
        self.session_id = session_id
        self.ready = False
        self.closed = False
        self._parser = ControlParser()
        self._pending: deque[Future[Reply] | _Tag] = deque()
        self._lock = threading.Lock()
        env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        assert self.proc.stdout is not None
        self.fd = self.proc.stdout.fileno()

    def send(self, commands: list[tuple[str, Future[Reply] | _Tag]]) -> bool:
        """Write commands in one go; replies come back in this order. False if closed."""
        data = "".join(cmd + "\n" for cmd, _ in commands).encode()
        with self._lock:
            if self.closed or self.proc.stdin is None:
                return False
            self._pending.extend(h for _, h in commands)
            try:
                self.proc.stdin.write(data)
                self.proc.stdin.flush()
            except (OSError, ValueError):
                self.closed = True
                return False
        return True

    def request(self, command: str, timeout: float = 5.0) -> Reply:
        """Send one command and wait for its reply (for callers outside the manager)."""
        fut: Future[Reply] = Future()
        if not self.send([(command, fut)]):
            raise TmuxError("the tmux control connection is closed")
        try:
            return fut.result(timeout)
        except TimeoutError as e:
            raise TmuxError(f"tmux did not answer within {timeout:g}s") from e

    def read(self) -> list[Item | _Answer]:
        """What one ``read()`` brought, parsed; replies to callers' requests are delivered
        to their futures here. Ends with ``Exit`` when the client is gone."""
        try:
            data = os.read(self.fd, 1 << 16)
        except OSError:
            data = b""
        if not data:
            with self._lock:
                self.closed = True
                pending, self._pending = list(self._pending), deque()
            for h in pending:
                if isinstance(h, Future) and not h.done():
                    h.set_exception(TmuxError("the tmux control connection closed"))
            return [Exit("eof")]
        out: list[Item | _Answer] = []
        for item in self._parser.feed(data):
            if isinstance(item, Reply) and item.ours:
                with self._lock:
                    handler = self._pending.popleft() if self._pending else None
                if isinstance(handler, Future):
                    handler.set_result(item)
                elif handler is not None:
                    out.append(_Answer(handler, item))
                continue
            out.append(item)
        return out

    def close(self) -> None:
        with self._lock:
            self.closed = True
            if self.proc.stdin is not None:
                with contextlib.suppress(OSError, ValueError):
                    self.proc.stdin.close()
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=2)
        if self.proc.stdout is not None:
            with contextlib.suppress(OSError):
                self.proc.stdout.close()


# --------------------------------------------------------------------------------------------
# Per-pane reading state


_ALT = re.compile(rb"\x1b\[\?(?:1049|1047|47)([hl])")


EARLY_CAP = 4 * 1024 * 1024  # bytes of a newborn pane's stream kept until its first sync


@dataclass
class _Pane:
    info: PaneInfo
    session_id: str
    screen_mode: bool
    fresh: bool  # discovered while running: its whole history is new output
    position: Position | None = None  # saved by a previous run, used once at first sync
    asm: LineAssembler = field(default_factory=LineAssembler)
    seq: int = 0
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=FINGERPRINT_LINES))  # raw lines
    synced: bool = False  # streaming: output is read from the control client
    started: bool = False  # had its first sync (later syncs continue after ``tail``)
    syncing: int = 0  # token of the sync in flight
    sync_info: tuple[int, int, int, bool] | None = None  # cursor x, cursor y, height, alt
    in_alt: bool = False
    base_normal: list[str] = field(default_factory=list)
    base_alt: list[str] = field(default_factory=list)
    dirty_since: float | None = None
    last_output: float = 0.0
    output_gen: int = 0
    capturing: int = 0  # token of the capture in flight
    capture_gen: int = 0
    capture_alt: bool = False
    capture_hist: list[str] | None = None
    last_capture: float = 0.0
    screen_text: str | None = None
    screen_ansi: str | None = None
    # A pane born while we watch streams from its first byte: keep that stream until its
    # first sync, since the capture alone loses whatever history-limit already dropped.
    early: bytearray | None = None
    # What the consumer has taken through events(): the read position that may be saved.
    # (``seq``/``tail`` run ahead of it, by what is emitted but not yet handed over.)
    taken_set: bool = False
    taken_seq: int = 0
    taken_prefix: tuple[str, ...] = ()  # hashes from a restored position, before taken_tail
    taken_tail: deque[str] = field(default_factory=lambda: deque(maxlen=FINGERPRINT_LINES))
    early_used: bool = False


class Watcher:
    """Every pane of one tmux server as a stream of events (see module docstring).

    ``screen_mode(pane)`` says which panes are read as screens (full-screen agents) rather
    than line by line; a pane in the alternate screen is always read as a screen.
    """

    def __init__(
        self,
        socket_name: str | None = None,
        socket_path: str | None = None,
        *,
        screen_mode: Callable[[PaneInfo], bool] = lambda p: False,
        debounce_s: float = 0.05,
        positions: Mapping[str, str] | None = None,
        line_screen_interval_s: float = 0.5,
        line_idle_interval_s: float = 5.0,
        screen_interval_s: float = 0.1,
        max_delay_s: float = 0.25,
        poll_s: float = 3.0,
        retry_s: float = 1.0,
        pause_after_s: int = 2,
        gather_s: float = GATHER_S,
        flush_s: float = 0.0,
    ) -> None:
        if not socket_name and not socket_path and os.environ.get("TMUX"):
            # inside tmux, "the default server" is the one we run in; the control clients
            # are started without $TMUX (attach refuses to nest), so name its socket
            socket_path = os.environ["TMUX"].split(",")[0] or None
        self.socket_name = socket_name
        self.socket_path = socket_path
        self._screen_mode = screen_mode
        self._debounce = debounce_s
        self._line_interval = line_screen_interval_s
        self._line_idle_interval = line_idle_interval_s
        self._screen_interval = screen_interval_s
        self._max_delay = max_delay_s
        self._poll = poll_s
        self._retry = retry_s
        self._pause_after = pause_after_s
        self._saved: dict[str, str] = dict(positions or {})

        self._wake_r, self._wake_w = -1, -1  # stop() wakes the loop through this pipe
        self._next_tick = 0.0
        self._gather = gather_s
        self._flush_s = flush_s
        self._last_flush = 0.0
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._events: list[Event] = []
        self._woken = False  # wake() was called: the next events() returns without waiting
        self._outbox: list[Event] = []  # the manager's events not yet handed over
        self._dirty: set[str] = set()  # panes with output not yet captured as a screen
        self._panes: dict[str, _Pane] = {}
        self._conns: dict[str, _Conn] = {}  # by session id
        self._identity: str | None = None
        self._down_reason: str | None = None
        self._first_list_done = False
        self._early: dict[str, bytearray] = {}  # output of panes not yet discovered
        self._list_due: float | None = None
        self._list_inflight = False
        self._next_poll = 0.0
        self._token = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_read: float | None = None
        self._version_error: str | None = None
        self.last_error = ""  # the last unexpected problem, one line, for the UI

    # -- public -------------------------------------------------------------------------------

    @property
    def last_read(self) -> float | None:
        return self._last_read

    @property
    def identity(self) -> str | None:
        return self._identity

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="tmux-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is None:
            return
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        self._thread.join(timeout=5)
        self._thread = None
        for conn in list(self._conns.values()):
            conn.close()
        self._conns.clear()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def events(self, timeout: float) -> list[Event]:
        """What happened since the last call; waits up to ``timeout`` for something, or
        until :meth:`wake`."""
        with self._cond:
            if not self._events and not self._woken:
                self._cond.wait(timeout)
            self._woken = False
            out, self._events = self._events, []
            for ev in out:  # from here on these lines are the consumer's: positions() says so
                if isinstance(ev, OutputLines):
                    p = self._panes.get(ev.ref.key)
                    if p is not None:
                        p.taken_seq = ev.seq + len(ev.lines)
                        p.taken_tail.extend(ev.lines[-FINGERPRINT_LINES:])
        return out

    def wake(self) -> None:
        """End the consumer's current (or next) :meth:`events` wait at once: it has work that
        did not come from tmux (a key press in the UI, a GitHub check's answer)."""
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    def panes(self) -> dict[str, PaneInfo]:
        with self._lock:
            return {k: p.info for k, p in self._panes.items()}

    def positions(self) -> dict[str, str]:
        with self._lock:
            out = dict(self._saved)
            for key, p in self._panes.items():
                if p.taken_set:
                    tail = (*p.taken_prefix, *_hashes(p.taken_tail))[-FINGERPRINT_LINES:]
                    out[key] = Position(p.taken_seq, tail).dump()
                elif p.position is not None:
                    out[key] = p.position.dump()
            return out

    def send_text(self, ref: PaneRef, text: str, enter: bool = True) -> None:
        quoted = quote_for_tmux(text)
        conn = self._conn_for(ref, SendError)
        target = ref.pane_id
        try:
            if text:
                r = conn.request(f"send-keys -t {target} -l -- {quoted}")
                if not r.ok:
                    raise SendError(f"pane {ref.pane_id}: {r.error}")
            if enter:
                r = conn.request(f"send-keys -t {target} Enter")
                if not r.ok:
                    raise SendError(f"pane {ref.pane_id}: {r.error}")
        except SendError:
            raise
        except TmuxError as e:
            raise SendError(f"pane {ref.pane_id}: {e}") from e

    def capture(self, ref: PaneRef, ansi: bool = False) -> str:
        conn = self._conn_for(ref, TmuxError)
        r = conn.request(f"capture-pane -p {'-e ' if ansi else ''}-t {ref.pane_id}")
        if not r.ok:
            raise TmuxError(f"pane {ref.pane_id}: {r.error}")
        return r.text

    def switch_client(self, ref: PaneRef) -> None:
        conn = self._conn_for(ref, TmuxError)
        r = conn.request(f"list-clients -F {_q(CLIENT_FORMAT)}")
        client = _latest_human_client(list(r.lines) if r.ok else [])
        cmds = [f"select-window -t {ref.pane_id}", f"select-pane -t {ref.pane_id}"]
        if client is not None:
            cmds.append(f"switch-client -c {_q(client)} -t {ref.pane_id}")
        for cmd in cmds:
            r = conn.request(cmd)
            if not r.ok:
                raise TmuxError(f"pane {ref.pane_id}: {r.error}")

    # -- helpers for callers ------------------------------------------------------------------

    def _conn_for(self, ref: PaneRef, err: type[TmuxError]) -> _Conn:
        with self._lock:
            if self._identity is None:
                raise err(f"no tmux server on {_where(self.socket_name, self.socket_path)}")
            if ref.server != self._identity:
                raise err(f"pane {ref.key} belongs to a tmux server that is gone")
            pane = self._panes.get(ref.key)
            if pane is None:
                raise err(f"pane {ref.pane_id} is gone")
            if pane.info.dead:
                raise err(f"pane {ref.pane_id} is dead (its program exited)")
            conn = self._conns.get(pane.session_id)
            if conn is None or conn.closed:
                conn = next((c for c in self._conns.values() if not c.closed), None)
            if conn is None:
                raise err("no tmux control connection")
            return conn

    # -- manager thread -----------------------------------------------------------------------

    def _emit(self, *events: Event) -> None:
        """Queue events; :meth:`_flush` hands them over in one go (one wake-up per batch)."""
        self._outbox.extend(events)

    def _flush(self, force: bool = False) -> None:
        """Hand events over, at most once per ``flush_s``: waking the consumer thread costs
        several times what reading a line does, so a trickle is delivered in small batches."""
        if not self._outbox:
            return
        now = time.monotonic()
        if not force and now - self._last_flush < self._flush_s:
            self._wake_at(self._last_flush + self._flush_s)
            return
        self._last_flush = now
        with self._cond:
            self._events.extend(self._outbox)
            self._cond.notify_all()
        self._outbox = []

    def _run(self) -> None:
        next_try = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if self._identity is None:
                if now >= next_try:
                    try:
                        self._connect()
                    except Exception as e:  # never let the thread die: report and retry
                        self._server_down(_one_line(e))
                    self._flush(force=True)
                    next_try = time.monotonic() + self._retry
                wait = max(0.0, next_try - time.monotonic())
            else:
                if now >= self._next_tick:
                    try:
                        self._tick(now)
                    except Exception as e:  # e.g. a probe that failed: report, keep going
                        self.last_error = _one_line(e)
                        self._next_tick = now + self._retry
                    self._flush()
                wait = max(0.0, self._next_tick - time.monotonic())
            conns = {c.fd: c for c in list(self._conns.values()) if not c.closed}
            try:
                ready, _, _ = select.select([self._wake_r, *conns], [], [], wait)
                if self._gather and self._wake_r not in ready and ready:
                    # Output is arriving: let it gather for a few ms and take what every
                    # client has in one pass. Waking this thread and the consumer once
                    # per line costs far more CPU than reading the line does.
                    time.sleep(self._gather)
                    ready, _, _ = select.select([self._wake_r, *conns], [], [], 0)
            except (OSError, ValueError):
                ready = []
            for fd in ready:
                if fd == self._wake_r:
                    with contextlib.suppress(OSError):
                        os.read(self._wake_r, 4096)
                    continue
                conn = conns[fd]
                for item in conn.read():
                    if self._stop.is_set():
                        break
                    try:
                        self._handle(conn, item)
                    except Exception as e:  # one bad item must not stop the watcher
                        self.last_error = _one_line(e)
                        self._reset()
            self._flush()

    def _connect(self) -> None:
        if self._version_error is None:
            if shutil.which("tmux") is None:
                self._version_error = "tmux is not installed (no `tmux` on PATH)"
            else:
                v = tmux_version()
                if v is not None and v < MIN_TMUX:
                    self._version_error = (
                        f"tmux {v[0]}.{v[1]} is too old: sentry-tui needs tmux "
                        f"{MIN_TMUX[0]}.{MIN_TMUX[1]} or newer"
                    )
                else:
                    self._version_error = ""
        if self._version_error:
            raise TmuxError(self._version_error)
        ident = server_identity(self.socket_name, self.socket_path)
        lines = _oneoff(self.socket_name, self.socket_path, "list-panes", "-a", "-F", PANE_FORMAT)
        with self._lock:
            self._identity = ident
            self._next_tick = 0.0
            self._down_reason = None
            self._first_list_done = False
            self._early.clear()
            self._saved = {k: v for k, v in self._saved.items() if k.rpartition("/")[0] == ident}
        self._emit(ServerUp(ident))
        self._last_read = time.time()
        self._reconcile(_rows(lines, ident))
        self._first_list_done = True

    def _server_down(self, reason: str) -> None:
        with self._lock:
            was_up = self._identity is not None
            gone = list(self._panes.values())
            self._identity = None
            self._panes.clear()
            conns, self._conns = list(self._conns.values()), {}
        for conn in conns:
            conn.close()
        if was_up or self._down_reason != reason:
            self._emit(ServerDown(reason), *(PaneGone(p.info.ref) for p in gone))
        self._down_reason = reason

    def _reset(self) -> None:
        """Forget every pane's read state and resynchronise (keeps positions)."""
        with self._lock:
            for p in self._panes.values():
                p.synced = False
                p.syncing = 0
                p.capturing = 0
        self._list_soon()

    def _wake_at(self, t: float) -> None:
        self._next_tick = min(self._next_tick, t)

    def _list_soon(self, delay: float = 0.0) -> None:
        due = time.monotonic() + delay
        self._list_due = due if self._list_due is None else min(self._list_due, due)
        self._wake_at(due)

    def _tick(self, now: float) -> None:
        """Start what is due (discovery, captures) and note when to look again."""
        wake = now + self._poll
        if now >= self._next_poll:
            self._list_due = now if self._list_due is None else min(self._list_due, now)
            self._next_poll = now + self._poll
        wake = min(wake, self._next_poll)
        if self._list_due is not None:
            if now >= self._list_due and not self._list_inflight:
                conn = self._any_ready()
                if conn is not None:
                    cmd = f"list-panes -a -F {_q(PANE_FORMAT)}"
                    if conn.send([(cmd, _Tag("list"))]):
                        self._list_inflight = True
                        self._list_due = None
                elif not self._conns:
                    self._list_due = now + self._retry
                    self._next_tick = now + self._retry
                    self._lost_all()
                    return
            if self._list_due is not None:
                wake = min(wake, max(self._list_due, now + 0.05))
        for key in list(self._dirty):
            p = self._panes.get(key)
            if p is None or p.dirty_since is None:
                self._dirty.discard(key)
                continue
            if p.capturing or p.syncing or not p.synced:
                continue
            conn = self._conns.get(p.session_id)
            if conn is None or not conn.ready:
                continue
            if self._reads_screen(p):
                interval = self._screen_interval
            elif p.asm.has_partial:  # a prompt or progress bar: the screen says more
                interval = self._line_interval
            else:  # every line ended: the lines said it all, the screen can wait
                interval = self._line_idle_interval
            due = max(
                min(p.last_output + self._debounce, p.dirty_since + self._max_delay),
                p.last_capture + interval,
            )
            if now >= due:
                self._start_capture(key, p, conn, now)
            else:
                wake = min(wake, due)
        self._next_tick = wake

    def _any_ready(self) -> _Conn | None:
        return next((c for c in self._conns.values() if c.ready and not c.closed), None)

    def _reads_screen(self, p: _Pane) -> bool:
        return p.screen_mode or p.in_alt

    def _lost_all(self) -> None:
        """Every control client ended: is the server gone, or did it restart?"""
        try:
            ident = server_identity(self.socket_name, self.socket_path)
        except TmuxError as e:
            self._server_down(str(e))
            return
        if ident != self._identity:
            self._server_down("the tmux server restarted")
            return
        lines = _oneoff(self.socket_name, self.socket_path, "list-panes", "-a", "-F", PANE_FORMAT)
        self._reconcile(_rows(lines, ident))

    # -- items --------------------------------------------------------------------------------

    def _handle(self, conn: _Conn, item: Item | _Answer) -> None:
        if conn is not None and conn is not self._conns.get(conn.session_id):
            return  # a connection we already dropped
        self._last_read = time.time()
        if isinstance(item, Output):
            self._on_output(conn, item)
        elif isinstance(item, _Answer):
            self._on_answer(conn, item)
        elif isinstance(item, Reply):  # the attach's own block: the client is attached
            self._on_ready(conn)
        elif isinstance(item, Notice):
            if item.name == "session-changed" and item.args:
                self._on_session_changed(conn, item.args[0])
            if item.name in TOPOLOGY:
                self._list_soon(0.02)
        elif isinstance(item, Pause):
            self._on_pause(conn, item.pane)
        elif isinstance(item, Continue):
            pass
        elif isinstance(item, Exit):
            self._on_exit(conn)

    def _on_ready(self, conn: _Conn) -> None:
        if conn.ready:
            return
        conn.ready = True
        for key, p in self._panes.items():
            if p.session_id == conn.session_id and not p.synced and not p.syncing:
                self._start_sync(key, p, conn)

    def _on_session_changed(self, conn: _Conn, session_id: str) -> None:
        if session_id == conn.session_id:
            self._on_ready(conn)
            return
        # detach-on-destroy off moved this client to another session
        with self._lock:
            self._conns.pop(conn.session_id, None)
            if session_id in self._conns:
                conn.close()
                return
            conn.session_id = session_id
            self._conns[session_id] = conn
        self._list_soon()

    def _on_exit(self, conn: _Conn) -> None:
        with self._lock:
            if self._conns.get(conn.session_id) is conn:
                del self._conns[conn.session_id]
        conn.close()
        for p in self._panes.values():
            if p.session_id == conn.session_id:
                p.synced = False
                p.syncing = 0
                p.capturing = 0
        if self._list_inflight and not self._conns:
            self._list_inflight = False
        self._list_soon()

    def _on_pause(self, conn: _Conn, pane_id: str) -> None:
        key = f"{self._identity}/{pane_id}"
        conn.send([(f"refresh-client -A {_q(pane_id + ':continue')}", _Tag("other"))])
        p = self._panes.get(key)
        if p is not None and p.session_id == conn.session_id:
            p.synced = False
            self._start_sync(key, p, conn)

    def _on_output(self, conn: _Conn, item: Output) -> None:
        key = f"{self._identity}/{item.pane}"
        p = self._panes.get(key)
        if p is None:
            if conn.ready and self._first_list_done:  # newborn: its stream starts here
                buf = self._early.setdefault(key, bytearray())
                if len(buf) + len(item.data) <= EARLY_CAP:
                    buf += item.data
            self._list_soon(0.02)  # a pane we have not met: discover it
            return
        if p.session_id != conn.session_id:
            return  # a linked window's second copy
        if not p.synced or p.syncing:
            if p.early is not None:  # kept for the first sync; else the capture covers it
                if len(p.early) + len(item.data) <= EARLY_CAP:
                    p.early += item.data
                else:
                    p.early = None  # too much to keep: the capture will have to do
            return
        now = time.monotonic()
        p.last_output = now
        p.output_gen += 1
        if p.dirty_since is None:
            p.dirty_since = now
            self._dirty.add(key)
            self._wake_at(now + self._debounce)
        data = item.data
        lines: list[str] = []
        if b"\x1b[?" in data and _ALT.search(data):
            pos = 0
            for m in _ALT.finditer(data):
                if not p.in_alt and not p.screen_mode:
                    lines += p.asm.feed(data[pos : m.start()])
                entering = m.group(1) == b"h"
                if entering and not p.in_alt:
                    p.base_alt = []
                elif not entering and p.in_alt:
                    p.asm.reset()
                p.in_alt = entering
                pos = m.end()
            data = data[pos:]
        if not p.in_alt and not p.screen_mode:
            lines += p.asm.feed(data)
        if lines:
            self._emit_lines(p, lines)

    def _emit_lines(self, p: _Pane, lines: list[str]) -> None:
        ev = OutputLines(p.info.ref, tuple(lines), p.seq)
        with self._lock:
            p.seq += len(lines)
            p.tail.extend(lines[-FINGERPRINT_LINES:])  # hashed only when a position is taken
        self._emit(ev)

    # -- discovery ----------------------------------------------------------------------------

    def _reconcile(self, rows: list[_Row]) -> None:
        assert self._identity is not None
        by_pane: dict[str, _Row] = {}
        sessions: set[str] = set()
        for row in rows:
            sessions.add(row.session_id)
            key = row.info.ref.key
            prev = self._panes.get(key)
            # a linked window shows in several sessions: keep the session already read
            if key not in by_pane or (prev is not None and row.session_id == prev.session_id):
                by_pane[key] = row
        for sid in sessions:
            if sid not in self._conns:
                self._attach(sid)
        for sid in [s for s in self._conns if s not in sessions]:
            conn = self._conns.pop(sid)
            conn.close()
        events: list[Event] = []
        with self._lock:
            for key in [k for k in self._panes if k not in by_pane]:
                p = self._panes.pop(key)
                events.append(PaneGone(p.info.ref))
            for key in [k for k in self._early if k not in by_pane]:
                del self._early[key]  # gone before we met it (or too new: the capture covers)
            for key, row in by_pane.items():
                p = self._panes.get(key)
                if p is None:
                    p = _Pane(
                        info=row.info,
                        session_id=row.session_id,
                        screen_mode=self._safe_screen_mode(row.info),
                        fresh=self._first_list_done,
                        position=Position.load(self._saved.get(key)),
                        in_alt=row.alternate,
                        early=self._early.pop(key, bytearray()) if self._first_list_done else None,
                    )
                    self._panes[key] = p
                    events.append(PaneAdded(row.info))
                else:
                    if p.info != row.info:
                        p.info = row.info
                        p.screen_mode = self._safe_screen_mode(row.info)
                        events.append(PaneChanged(row.info))
                    if p.session_id != row.session_id:
                        p.session_id = row.session_id
                        p.synced = False
                        p.syncing = 0
                    if row.alternate != p.in_alt and p.synced:
                        if row.alternate:
                            p.base_alt = []
                        else:
                            p.asm.reset()
                        p.in_alt = row.alternate
                        p.dirty_since = p.dirty_since or time.monotonic()
                        self._dirty.add(key)
                        self._wake_at(p.dirty_since)
        if events:
            self._emit(*events)
        for key, p in self._panes.items():
            conn = self._conns.get(p.session_id)
            if not p.synced and not p.syncing and conn is not None and conn.ready:
                self._start_sync(key, p, conn)

    def _safe_screen_mode(self, info: PaneInfo) -> bool:
        try:
            return bool(self._screen_mode(info))
        except Exception:
            return False

    def _attach(self, session_id: str) -> None:
        argv = ["tmux"]
        if self.socket_path:
            argv += ["-S", self.socket_path]
        elif self.socket_name:
            argv += ["-L", self.socket_name]
        flags = f"ignore-size,pause-after={self._pause_after}"
        argv += ["-C", "attach-session", "-f", flags, "-t", session_id]
        try:
            conn = _Conn(argv, session_id)
        except OSError as e:
            self._emit(ServerDown(f"cannot start a tmux control client: {e}"))
            return
        with self._lock:
            self._conns[session_id] = conn

    # -- sync and capture ---------------------------------------------------------------------

    def _next_token(self) -> int:
        self._token += 1
        return self._token

    def _start_sync(self, key: str, p: _Pane, conn: _Conn) -> None:
        tok = self._next_token()
        fmt = "#{history_size} #{cursor_y} #{pane_height} #{alternate_on} #{cursor_x}"
        pid = p.info.ref.pane_id
        ok = conn.send(
            [
                (f"display-message -p -t {pid} {_q(fmt)}", _Tag("sync_info", key, tok)),
                (f"capture-pane -p -J -t {pid} -S - -E -", _Tag("sync_cap", key, tok)),
            ]
        )
        if ok:
            p.syncing = tok
            p.sync_info = None

    def _start_capture(self, key: str, p: _Pane, conn: _Conn, now: float) -> None:
        tok = self._next_token()
        pid = p.info.ref.pane_id
        cmds: list[tuple[str, Future[Reply] | _Tag]] = []
        if self._reads_screen(p):
            hist = max(1, p.info.height)
            cmds += [
                (f"display-message -p -t {pid} '#{{alternate_on}}'", _Tag("cap_info", key, tok)),
                (f"capture-pane -p -J -t {pid} -S -{hist}", _Tag("cap_hist", key, tok)),
            ]
        cmds.append((f"capture-pane -p -e -t {pid}", _Tag("cap_screen", key, tok)))
        if conn.send(cmds):
            p.capturing = tok
            p.capture_gen = p.output_gen
            p.capture_alt = p.in_alt
            p.capture_hist = None
            p.last_capture = now

    def _on_answer(self, conn: _Conn, ans: _Answer) -> None:
        tag, reply = ans.tag, ans.reply
        if tag.what == "list":
            self._list_inflight = False
            if reply.ok and self._identity is not None:
                self._reconcile(_rows(list(reply.lines), self._identity))
            return
        p = self._panes.get(tag.key)
        if p is None:
            return
        if tag.what in ("sync_info", "sync_cap"):
            if p.syncing != tag.token:
                return
            if not reply.ok:  # pane gone mid-sync: discovery will tell
                p.syncing = 0
                self._list_soon()
                return
            if tag.what == "sync_info":
                f = (reply.lines[0] if reply.lines else "").split()
                if len(f) == 5:
                    p.sync_info = (_int(f[4]), _int(f[1]), _int(f[2]), f[3] == "1")
                return
            self._finish_sync(p, list(reply.lines))
            return
        if p.capturing != tag.token:
            return
        if not reply.ok:
            p.capturing = 0
            self._list_soon()
            return
        if tag.what == "cap_info":
            alt = (reply.lines[0].strip() if reply.lines else "") == "1"
            if alt != p.in_alt:
                if alt:
                    p.base_alt = []
                p.in_alt = alt
            p.capture_alt = alt
        elif tag.what == "cap_hist":
            p.capture_hist = _trim([strip_ansi(x).rstrip() for x in reply.lines])
        elif tag.what == "cap_screen":
            self._finish_capture(p, list(reply.lines))

    def _finish_sync(self, p: _Pane, rows: list[str]) -> None:
        """The capture answering a sync: what of it is news, and where reading resumes."""
        p.syncing = 0
        cursor_x, cursor_y, height, alt = p.sync_info or (0, 0, p.info.height, False)
        p.in_alt = alt
        if alt:
            complete, partial = _trim(rows), ""
        else:
            complete, partial = split_capture(rows, height, cursor_y, cursor_x)
        screen = self._reads_screen(p)
        new: list[str]
        if p.started:  # after a pause or a lost connection: continue after what we read
            found = after_position(complete, _hashes(p.tail))
            new = [] if screen else (found if found is not None else list(complete))
        elif p.position is not None:  # a previous run read this pane up to here
            p.seq = p.position.seq
            found = after_position(complete, p.position.tail)
            new = found if found is not None else ([] if screen else list(complete))
            self._take_baseline(p, p.position.seq, p.position.tail, ())
        elif p.fresh:  # born while we watched: all of it is news
            streamed = self._early_lines(p, alt, screen)
            new = list(complete) if streamed is None else streamed
            self._take_baseline(p, 0, (), ())
        else:  # first sight at start-up: history is the past
            new = []
            p.seq = len(complete)
            self._take_baseline(p, p.seq, (), complete[-FINGERPRINT_LINES:])
        p.position = None
        p.early = None
        base = _trim([*complete, partial])[-2 * max(1, height) :]
        if alt:
            p.base_alt = base
        else:
            p.base_normal = base
        if not p.early_used:  # else the assembler already holds the stream's partial line
            p.asm.reset("" if alt else partial)
        p.early_used = False
        if new:
            self._emit_lines(p, new)
        with self._lock:
            p.tail = deque(complete[-FINGERPRINT_LINES:], maxlen=FINGERPRINT_LINES)
            p.synced = p.started = True
        now = time.monotonic()
        p.dirty_since = now
        p.last_output = now - self._debounce
        self._dirty.add(p.info.ref.key)
        self._wake_at(now)

    def _take_baseline(
        self, p: _Pane, seq: int, hashes: tuple[str, ...], lines: list[str] | tuple[str, ...]
    ) -> None:
        """Where the consumer stands before this pane's first emitted line."""
        with self._lock:
            p.taken_set = True
            p.taken_seq = seq
            p.taken_prefix = tuple(hashes)
            p.taken_tail = deque(lines, maxlen=FINGERPRINT_LINES)

    def _early_lines(self, p: _Pane, alt: bool, screen: bool) -> list[str] | None:
        """The complete lines a newborn pane streamed before its first sync, or None when the
        stream cannot be trusted to be whole (too big, a full-screen program, screen mode)."""
        data = p.early
        if data is None or alt or screen or _ALT.search(bytes(data)):
            return None
        asm = LineAssembler()
        lines = asm.feed(bytes(data))
        p.asm = asm  # the partial line (a prompt) continues from the stream, not the capture
        p.early_used = True
        return lines

    def _finish_capture(self, p: _Pane, ansi_rows: list[str]) -> None:
        p.capturing = 0
        if p.output_gen == p.capture_gen:
            p.dirty_since = None
        else:
            p.dirty_since = time.monotonic()
            self._dirty.add(p.info.ref.key)
            self._wake_at(p.dirty_since)
        if p.capture_hist is not None:
            rows = p.capture_hist
            if p.capture_alt:
                old, p.base_alt = p.base_alt, rows
            else:
                old, p.base_normal = p.base_normal, rows
            fresh = new_lines(old, rows)
            if fresh:
                self._emit_lines(p, fresh)
        ansi = "\n".join(ansi_rows)
        text = text_of(ansi_rows)
        if text != p.screen_text or ansi != p.screen_ansi:
            p.screen_text, p.screen_ansi = text, ansi
            self._emit(ScreenChanged(p.info.ref, text, ansi))


def _trim(rows: list[str]) -> list[str]:
    """Drop the blank rows below the last written one."""
    end = len(rows)
    while end and not rows[end - 1].strip():
        end -= 1
    return rows[:end]


def _one_line(e: BaseException) -> str:
    msg = " ".join(str(e).split()) or type(e).__name__
    return msg if isinstance(e, UserError) else f"{type(e).__name__}: {msg}"


__all__ = [
    "PANE_FORMAT",
    "SendError",
    "TmuxError",
    "Watcher",
    "check_sendable",
    "discover",
    "quote_for_tmux",
    "server_identity",
    "tmux_version",
]
