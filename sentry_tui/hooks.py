"""Agent hooks: the signals an agent reports on purpose, instead of what its screen suggests.

Two halves:

- ``sentry-tui hook AGENT [EVENT]`` runs inside the agent (Claude Code runs it on Stop,
  Notification and PermissionRequest; Codex runs it as its ``notify`` program). It writes one
  small signed file into the state dir's inbox and exits 0 at once, whatever goes wrong: a
  hook that fails or hangs would slow or break the agent it reports on. So it imports little,
  reads stdin with a deadline and a size cap, and swallows every error.
- ``sentry-tui hooks install|uninstall claude|codex`` edits the agents' own settings: merged,
  shown as a diff, idempotent, and undone exactly.

The engine side calls :func:`read_hook_file` for each ``hook-*.json`` it finds in the inbox.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import select
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sentry_tui.model import HookEvent

HOOK_FILE_VERSION = 1
HOOK_FILE_MAX = 16 * 1024  # an event file is a few hundred bytes; anything bigger is refused
STDIN_MAX = 1024 * 1024  # Claude's PermissionRequest input carries the tool input (a Write's text)
STDIN_DEADLINE_S = 0.5
HOOK_DEADLINE_S = 1.5
MESSAGE_MAX = 500
EXTRA_MAX = 200

# Claude Code hook event -> our hook name (HookEvent.hook)
CLAUDE_EVENTS: dict[str, str] = {
    "Stop": "stop",
    "Notification": "notification",
    "PermissionRequest": "permission",
}
# fields of the agent's JSON worth keeping (bounded); everything else stays with the agent
_EXTRA_KEYS = (
    "hook_event_name",
    "session_id",
    "cwd",
    "tool_name",
    "notification_type",
    "type",
    "thread-id",
    "turn-id",
)


# --------------------------------------------------------------------------------------------
# `sentry-tui hook`: the fast path


def run_hook(argv: Sequence[str], stdin: Any = None) -> int:
    """Record one hook event; run the chained command, if any. Always returns 0.

    Meant to be the whole process (`sentry-tui hook`): past :data:`HOOK_DEADLINE_S` it
    leaves with ``os._exit(0)``, so a hung filesystem never hangs the agent.
    """
    import signal

    timer = hasattr(signal, "setitimer")
    with contextlib.suppress(BaseException):  # never break or slow the agent
        if timer:
            signal.signal(signal.SIGALRM, lambda *_: os._exit(0))
            signal.setitimer(signal.ITIMER_REAL, HOOK_DEADLINE_S)
        try:
            _hook(list(argv), sys.stdin if stdin is None else stdin)
        finally:
            if timer:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, signal.SIG_DFL)
    return 0


def _hook(argv: list[str], stdin: Any) -> None:
    agent, event, rest, chain, state_arg = _parse_hook_args(argv)
    if chain:
        _start_chain(chain, rest)
    payload = _agent_payload(agent, rest, stdin)
    record = hook_record(agent, event, payload, os.environ.get("TMUX_PANE", ""))
    from sentry_tui.keys import load_or_create_key, state_dir_from

    state = state_dir_from(state_arg)
    write_hook_file(state, record, load_or_create_key(state))


def _parse_hook_args(
    argv: list[str],
) -> tuple[str, str, list[str], list[str], str | None]:
    """``AGENT [EVENT] [--chain JSON] [--state-dir DIR] [ARGS...]`` (options anywhere).

    Codex appends its JSON payload as the last argument of its notify command, so for codex a
    JSON-looking argument is payload, not an event name.
    """
    positional: list[str] = []
    chain: list[str] = []
    state: str | None = None
    it = iter(argv)
    for a in it:
        name, eq, inline = a.partition("=")
        if name not in ("--chain", "--state-dir"):
            positional.append(a)
            continue
        value = inline if eq else next(it, "")
        if name == "--state-dir":
            state = value or None
        else:
            chain = _chain_value(value)
    agent = positional[0].lower() if positional else "unknown"
    rest = positional[1:]
    event = ""
    if rest and not rest[0].lstrip().startswith("{"):
        event, rest = rest[0], rest[1:]
    return agent, event, rest, chain, state


def _chain_value(text: str) -> list[str]:
    """The chained command, or none if it is not a JSON list of strings (the event still counts)."""
    try:
        value = json.loads(text)
    except ValueError:
        return []
    ok = isinstance(value, list) and value and all(isinstance(v, str) for v in value)
    return list(value) if ok else []


def _start_chain(chain: list[str], args: list[str]) -> None:
    """Call the notify command that was there before us, with the same arguments, detached."""
    with contextlib.suppress(OSError, ValueError):
        subprocess.Popen(
            [*chain, *args],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )


def _agent_payload(agent: str, rest: list[str], stdin: Any) -> dict[str, Any]:
    """The agent's own JSON: Codex passes it as an argument, Claude Code on stdin."""
    for arg in reversed(rest):
        with contextlib.suppress(ValueError):
            value = json.loads(arg)
            if isinstance(value, dict):
                return value
    raw = read_stdin(stdin)
    if raw:
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            value = json.loads(raw)
            if isinstance(value, dict):
                return value
    return {}


def read_stdin(stdin: Any, limit: int = STDIN_MAX, deadline_s: float = STDIN_DEADLINE_S) -> bytes:
    """Read what the agent wrote, but never wait long for it or take more than ``limit``.

    A terminal is never read (a person running the hook by hand would be stuck), and a pipe
    the agent leaves open is abandoned at the deadline.
    """
    try:
        fd = stdin.fileno()
        if os.isatty(fd):
            return b""
    except (AttributeError, OSError, ValueError):
        return b""
    chunks: list[bytes] = []
    size = 0
    end = time.monotonic() + deadline_s
    while size < limit:
        left = end - time.monotonic()
        if left <= 0:
            break
        try:
            ready, _, _ = select.select([fd], [], [], left)
        except (OSError, ValueError):
            break
        if not ready:
            break
        try:
            chunk = os.read(fd, min(65536, limit - size))
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _bounded(value: Any, limit: int) -> str:
    from sentry_tui.ansi import one_line

    return one_line(value if isinstance(value, str) else json.dumps(value), limit)


def hook_record(
    agent: str, event: str, payload: Mapping[str, Any], tmux_pane: str, now: float | None = None
) -> dict[str, Any]:
    """The unsigned content of one event file: small, bounded, control characters stripped."""
    claude_name = payload.get("hook_event_name")
    if event:
        hook = event.lower()
    elif isinstance(claude_name, str) and claude_name in CLAUDE_EVENTS:
        hook = CLAUDE_EVENTS[claude_name]
    elif agent == "codex":
        hook = "stop" if payload.get("type") == "agent-turn-complete" else "notify"
    else:
        hook = "notify"
    message = payload.get("message") or payload.get("last-assistant-message") or ""
    if hook == "permission" and not message:
        tool = payload.get("tool_name") or "a tool"
        detail = payload.get("tool_input")
        if isinstance(detail, Mapping):
            detail = detail.get("command") or detail.get("file_path") or ""
        message = f"{tool} needs permission" + (f": {detail}" if detail else "")
    extra = {k: _bounded(payload[k], EXTRA_MAX) for k in _EXTRA_KEYS if k in payload}
    return {
        "v": HOOK_FILE_VERSION,
        "kind": "hook",
        "agent": _bounded(agent, 40),
        "hook": _bounded(hook, 40),
        "tmux_pane": _bounded(tmux_pane, 40),
        "message": _bounded(message, MESSAGE_MAX),
        "ts": round(time.time() if now is None else now, 3),
        "extra": extra,
    }


def write_hook_file(state_dir: Path, record: Mapping[str, Any], key: bytes) -> Path:
    """Sign ``record`` and drop it into the inbox atomically (temp file, then rename)."""
    from sentry_tui.config import Paths
    from sentry_tui.signing import sign

    inbox = Paths(state_dir).inbox
    inbox.mkdir(mode=0o700, parents=True, exist_ok=True)
    body = json.dumps(sign(record, key), separators=(",", ":"), ensure_ascii=False).encode()
    name = f"{HOOK_FILE_PREFIX}{int(time.time() * 1000)}-{secrets.token_hex(4)}.json"
    tmp = inbox / f".{name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, body)
    finally:
        os.close(fd)
    final = inbox / name
    os.rename(tmp, final)
    return final


# --------------------------------------------------------------------------------------------
# The engine side: reading an event file safely


HOOK_FILE_PREFIX = "hook-"


def is_hook_file_name(name: str) -> bool:
    """``hook-<ms>-<rand>.json``: what the inbox reader hands to :func:`read_hook_file`."""
    return name.startswith(HOOK_FILE_PREFIX) and name.endswith(".json")


def read_hook_file(path: Path | str, key: bytes) -> HookEvent | str:
    """A verified :class:`HookEvent`, or the reason the file was refused (one line).

    The inbox is a door into the engine, so: no symlinks followed, regular files only, a size
    cap, and a valid signature; ``fields`` keeps ``nonce`` so the engine can refuse a replay.
    The event's ``ref`` is None: the caller resolves ``tmux_pane`` against the live server.
    """
    from sentry_tui.model import HookEvent
    from sentry_tui.signing import verify

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == 40:  # ELOOP: the last component is a symlink
            return "refused: a symlink"
        return f"unreadable: {exc.strerror}"
    try:
        import stat

        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return "refused: not a regular file"
        if st.st_uid != os.getuid():
            return "refused: owned by another user"
        if st.st_size > HOOK_FILE_MAX:
            return f"refused: too large ({st.st_size} bytes > {HOOK_FILE_MAX})"
        raw = os.read(fd, HOOK_FILE_MAX + 1)
    except OSError as exc:
        return f"unreadable: {exc.strerror}"
    finally:
        os.close(fd)
    if len(raw) > HOOK_FILE_MAX:
        return f"refused: too large (> {HOOK_FILE_MAX} bytes)"
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return f"bad JSON: {exc}"
    if not isinstance(data, dict):
        return "bad event: not a JSON object"
    if data.get("kind") != "hook" or data.get("v") != HOOK_FILE_VERSION:
        return "bad event: not a version 1 hook event"
    if not verify(data, key):
        return "bad signature" if "sig" in data else "unsigned"
    agent, hook, pane = data.get("agent"), data.get("hook"), data.get("tmux_pane")
    if not all(isinstance(v, str) for v in (agent, hook, pane)):
        return "bad event: agent, hook and tmux_pane must be strings"
    fields = {k: v for k, v in data.items() if k not in ("v", "kind", "agent", "hook", "sig")}
    return HookEvent(ref=None, tmux_pane=pane, agent=agent, hook=hook, fields=fields)


# --------------------------------------------------------------------------------------------
# `sentry-tui hooks install|uninstall`: editing the agents' settings


def hook_program() -> str:
    """The absolute path of our console script when known: agents run hooks with their PATH."""
    import shutil

    argv0 = Path(sys.argv[0])
    if argv0.name == "sentry-tui" and argv0.is_file():
        return str(argv0.resolve())
    return shutil.which("sentry-tui") or "sentry-tui"


def is_our_argv(argv: Sequence[str]) -> bool:
    return len(argv) >= 2 and Path(argv[0]).name == "sentry-tui" and argv[1] == "hook"


def is_our_command(command: Any) -> bool:
    import shlex

    if not isinstance(command, str):
        return False
    try:
        return is_our_argv(shlex.split(command))
    except ValueError:
        return False


# -- Claude Code: JSON settings ----------------------------------------------------------------


def claude_command(program: str, event: str, state_dir: str | None = None) -> str:
    import shlex

    opts = ["--state-dir", state_dir] if state_dir else []
    return shlex.join([program, "hook", *opts, "claude", event])


def claude_install(
    settings: Mapping[str, Any], program: str, state_dir: str | None = None
) -> dict[str, Any]:
    """``settings`` with our Stop/Notification/PermissionRequest hooks merged in.

    Each of ours is its own matcher group, never mixed into a user's group, so uninstall can
    take out exactly what was added. An existing entry of ours is updated in place.
    """
    import copy

    from sentry_tui.errors import UserError

    out = copy.deepcopy(dict(settings))
    hooks = out.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise UserError('"hooks" in the settings is not an object; fix it by hand first')
    for event, name in CLAUDE_EVENTS.items():
        groups = hooks.setdefault(event, [])
        if not isinstance(groups, list):
            raise UserError(f'"hooks.{event}" in the settings is not a list; fix it by hand first')
        command = claude_command(program, name, state_dir)
        found = False
        for group in groups:
            inner = group.get("hooks") if isinstance(group, dict) else None
            for h in inner if isinstance(inner, list) else []:
                if isinstance(h, dict) and is_our_command(h.get("command")):
                    h["command"] = command
                    found = True
        if not found:
            groups.append(
                {"matcher": "", "hooks": [{"type": "command", "command": command, "timeout": 10}]}
            )
    return out


def claude_uninstall(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` without any hook of ours; containers we emptied are removed too."""
    import copy

    out = copy.deepcopy(dict(settings))
    hooks = out.get("hooks")
    if not isinstance(hooks, dict):
        return out
    for event in list(hooks):
        groups = hooks[event]
        if not isinstance(groups, list):
            continue
        kept = []
        for group in groups:
            inner = group.get("hooks") if isinstance(group, dict) else None
            if isinstance(inner, list) and inner:
                left = [
                    h
                    for h in inner
                    if not (isinstance(h, dict) and is_our_command(h.get("command")))
                ]
                if not left:
                    continue
                group["hooks"] = left
            kept.append(group)
        if groups and not kept:
            del hooks[event]
        else:
            hooks[event] = kept
    if not hooks and settings.get("hooks"):
        del out["hooks"]
    return out


# -- Codex CLI: TOML, edited line by line --------------------------------------------------------

CODEX_REPLACED = (
    "# sentry-tui hooks install: notify now calls the previous command; uninstall restores:"
)
CODEX_ADDED = "# sentry-tui hooks install: added notify; uninstall removes it"
CODEX_QUOTE = "# | "


def codex_notify_argv(
    program: str, old: Sequence[str] | None, state_dir: str | None = None
) -> list[str]:
    opts = ["--state-dir", state_dir] if state_dir else []
    chain = ["--chain", json.dumps(list(old), ensure_ascii=False)] if old else []
    return [program, "hook", *opts, "codex", *chain]


def toml_string(value: str) -> str:
    """A TOML basic string. JSON's escapes are TOML's, except DEL must be escaped too."""
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_array(values: Sequence[str]) -> str:
    return "[" + ", ".join(toml_string(v) for v in values) + "]"


def _lines(text: str) -> list[str]:
    """Lines with their endings, split on ``\n`` only (str.splitlines also splits on NEL,
    form feed and others that TOML keeps inside strings)."""
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _ending(line: str) -> str:
    return "\r\n" if line.endswith("\r\n") else "\n" if line.endswith("\n") else ""


def _statements(lines: list[str], source: str) -> list[tuple[int, int, dict[str, Any] | None]]:
    """Split TOML into statements (a key/value may span lines): (start, end, parsed).

    ``parsed`` is None for a table header; blank and comment lines parse to ``{}``.
    """
    import tomllib

    from sentry_tui.errors import UserError

    out: list[tuple[int, int, dict[str, Any] | None]] = []
    i = 0
    while i < len(lines):
        if lines[i].lstrip().startswith("["):
            out.append((i, i + 1, None))
            i += 1
            continue
        for j in range(i + 1, len(lines) + 1):
            try:
                parsed = tomllib.loads("".join(lines[i:j]))
            except tomllib.TOMLDecodeError:
                continue
            out.append((i, j, parsed))
            i = j
            break
        else:
            raise UserError(f"{source}:{i + 1}: cannot read this TOML statement")
    return out


def _top_level_notify(lines: list[str], source: str) -> tuple[int, int] | None:
    for start, end, parsed in _statements(lines, source):
        if parsed is None:
            return None  # past the top level: notify is a top-level key
        if "notify" in parsed:
            return start, end
    return None


def _load_toml(text: str, source: str) -> dict[str, Any]:
    import tomllib

    from sentry_tui.errors import UserError

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{source}: not valid TOML ({exc}); fix it by hand first") from None


def codex_install(
    text: str, program: str, source: str = "config.toml", state_dir: str | None = None
) -> str:
    """``text`` with notify pointing at `sentry-tui hook codex`, chaining the old command.

    The replaced lines are kept as comments right above, so uninstall restores them byte for
    byte; everything else in the file is untouched.
    """
    from sentry_tui.errors import UserError

    data = _load_toml(text, source)
    old = data.get("notify")
    if old is not None and not (isinstance(old, list) and all(isinstance(v, str) for v in old)):
        raise UserError(f"{source}: notify is not a list of strings; fix it by hand first")
    lines = _lines(text)
    span = _top_level_notify(lines, source)
    if old and is_our_argv(old):
        if span is None:
            return text
        chain = _chain_of(old)
        new_argv = codex_notify_argv(program, chain, state_dir)
        if new_argv == old:
            return text
        start, end = span
        new_line = "notify = " + toml_array(new_argv) + _ending(lines[end - 1])
        new_lines = [*lines[:start], new_line, *lines[end:]]
    elif span is None:
        new_argv = codex_notify_argv(program, None, state_dir)
        nl = _ending(lines[0]) if lines else "\n"
        new_lines = [
            CODEX_ADDED + (nl or "\n"),
            "notify = " + toml_array(new_argv) + (nl or "\n"),
            *lines,
        ]
    else:
        start, end = span
        new_argv = codex_notify_argv(program, old, state_dir)
        nl = _ending(lines[start]) or "\n"
        quoted = [CODEX_QUOTE + ln.rstrip("\r\n") + nl for ln in lines[start:end]]
        new_line = "notify = " + toml_array(new_argv) + _ending(lines[end - 1])
        new_lines = [*lines[:start], CODEX_REPLACED + nl, *quoted, new_line, *lines[end:]]
    new_text = "".join(new_lines)
    check = _load_toml(new_text, source)
    if check.get("notify") != new_argv or {k: v for k, v in check.items() if k != "notify"} != {
        k: v for k, v in data.items() if k != "notify"
    }:
        wanted = toml_array(new_argv)
        raise UserError(
            f"{source}: could not edit notify safely; set it by hand: notify = {wanted}"
        )
    return new_text


def _chain_of(argv: Sequence[str]) -> list[str] | None:
    args = list(argv)
    if "--chain" in args:
        i = args.index("--chain")
        with contextlib.suppress(IndexError, ValueError):
            value = json.loads(args[i + 1])
            if isinstance(value, list):
                return value
    return None


def codex_uninstall(text: str, source: str = "config.toml") -> str:
    """``text`` with the notify lines from before install, exactly as they were."""
    from sentry_tui.errors import UserError

    data = _load_toml(text, source)
    current = data.get("notify")
    if not (isinstance(current, list) and is_our_argv(current)):
        return text
    lines = _lines(text)
    span = _top_level_notify(lines, source)
    if span is None:
        return text
    start, end = span
    chain = _chain_of(current)
    quoted_from = start
    while quoted_from > 0 and lines[quoted_from - 1].startswith(CODEX_QUOTE.rstrip()):
        quoted_from -= 1
    header = lines[quoted_from - 1].rstrip("\r\n") if quoted_from > 0 else ""
    if header == CODEX_REPLACED and quoted_from < start:
        restored = [_unquote(ln) for ln in lines[quoted_from:start]]
        restored[-1] = restored[-1].rstrip("\r\n") + _ending(lines[end - 1])
        new_lines = [*lines[: quoted_from - 1], *restored, *lines[end:]]
    elif start > 0 and lines[start - 1].rstrip("\r\n") == CODEX_ADDED and not chain:
        new_lines = [*lines[: start - 1], *lines[end:]]
    elif chain:  # our comments were edited away: restore the value, if not the formatting
        new_lines = [
            *lines[:start],
            "notify = " + toml_array(chain) + _ending(lines[end - 1]),
            *lines[end:],
        ]
    else:
        new_lines = [*lines[:start], *lines[end:]]
    new_text = "".join(new_lines)
    check = _load_toml(new_text, source)
    if check.get("notify") != chain:
        raise UserError(f"{source}: could not restore notify safely; set it by hand")
    return new_text


def _unquote(line: str) -> str:
    body = (
        line[len(CODEX_QUOTE) :]
        if line.startswith(CODEX_QUOTE)
        else line[len(CODEX_QUOTE.rstrip()) :]
    )
    return body


# -- files, diffs, and the commands -------------------------------------------------------------


def claude_settings_path() -> Path:
    return Path.home() / ".claude" / "settings.json"


def codex_config_path() -> Path:
    home = os.environ.get("CODEX_HOME")
    return (Path(home).expanduser() if home else Path.home() / ".codex") / "config.toml"


def _read_text(path: Path) -> str:
    from sentry_tui.errors import UserError

    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read it ({exc})") from None


def _json_indent(text: str) -> int | str:
    for line in text.splitlines()[1:]:
        stripped = line.lstrip(" \t")
        if stripped and stripped != line:
            lead = line[: len(line) - len(stripped)]
            return "\t" if lead.startswith("\t") else len(lead)
    return 2


def _edit_claude(text: str, path: Path, install: bool, program: str, state_dir: str | None) -> str:
    from sentry_tui.errors import UserError

    if text.strip():
        try:
            settings = json.loads(text)
        except ValueError as exc:
            raise UserError(f"{path}: not valid JSON ({exc}); fix it by hand first") from None
        if not isinstance(settings, dict):
            raise UserError(f"{path}: the settings are not a JSON object")
    else:
        settings = {}
    new = claude_install(settings, program, state_dir) if install else claude_uninstall(settings)
    if new == settings:
        return text
    return json.dumps(new, indent=_json_indent(text), ensure_ascii=False) + "\n"


def diff(old: str, new: str, path: Path) -> str:
    import difflib

    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True), str(path), str(path)
        )
    )


def _write_atomic(path: Path, text: str) -> None:
    from sentry_tui.errors import UserError

    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o600
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.sentry-tui.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        try:
            os.write(fd, text.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        raise UserError(f"{path}: cannot write it ({exc.strerror})") from None


def manage(
    action: str,
    agent: str,
    path: Path | None = None,
    *,
    dry_run: bool = False,
    program: str | None = None,
    state_dir: str | None = None,
    out: Any = None,
) -> int:
    """`sentry-tui hooks install|uninstall AGENT`: show the diff, then write (unless dry run)."""
    from sentry_tui.errors import UserError

    out = out or sys.stdout
    install = action == "install"
    program = program or hook_program()
    if agent == "claude":
        path = path or claude_settings_path()
        old = _read_text(path)
        new = _edit_claude(old, path, install, program, state_dir)
    elif agent == "codex":
        path = path or codex_config_path()
        old = _read_text(path)
        new = (
            codex_install(old, program, str(path), state_dir)
            if install
            else codex_uninstall(old, str(path))
        )
    else:
        raise UserError(f"unknown agent {agent!r} (expected claude or codex)")
    if new == old:
        state = "already installed" if install else "not installed"
        print(f"{agent} hooks {state} in {path}; nothing to change", file=out)
        return 0
    print(diff(old, new, path), end="", file=out)
    if dry_run:
        print(f"dry run: {path} not changed", file=out)
        return 0
    _write_atomic(path, new)
    verb = "installed into" if install else "removed from"
    print(f"{agent} hooks {verb} {path}", file=out)
    return 0
