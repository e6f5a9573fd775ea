"""Agent hooks: the fast `sentry-tui hook`, safe reading of event files, and installing into
Claude Code's and Codex CLI's real settings formats."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for
from hypothesis import given, settings
from hypothesis import strategies as st

from sentry_tui.errors import UserError
from sentry_tui.hooks import (
    HOOK_FILE_MAX,
    claude_install,
    claude_uninstall,
    codex_install,
    codex_uninstall,
    hook_record,
    is_hook_file_name,
    manage,
    read_hook_file,
    write_hook_file,
)
from sentry_tui.keys import load_or_create_key
from sentry_tui.model import HookEvent
from sentry_tui.signing import sign

PY = sys.executable
PROG = "/opt/bin/sentry-tui"


def hook(
    args: list[str], state: Path, stdin: bytes = b"", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [PY, "-m", "sentry_tui", "hook", "--state-dir", str(state), *args],
        input=stdin,
        capture_output=True,
        timeout=20,
        env={**os.environ, "TMUX_PANE": "%7", **(env or {})},
    )


def inbox_events(state: Path) -> list[HookEvent]:
    key = load_or_create_key(state)
    files = sorted((state / "inbox").glob("hook-*.json"))
    out = [read_hook_file(f, key) for f in files]
    assert all(isinstance(e, HookEvent) for e in out), out
    return out  # type: ignore[return-value]


# -- `sentry-tui hook` ----------------------------------------------------------------------------


def test_claude_notification_becomes_a_signed_inbox_event(tmp_path: Path) -> None:
    state = tmp_path / "state"
    payload = {
        "session_id": "s1",
        "hook_event_name": "Notification",
        "message": "Claude needs your permission to use Bash",
        "notification_type": "permission_prompt",
        "transcript_path": "/secret/transcript.jsonl",
    }
    proc = hook(["claude", "notification"], state, json.dumps(payload).encode())
    assert proc.returncode == 0 and proc.stdout == b""
    [event] = inbox_events(state)
    assert all(is_hook_file_name(p.name) for p in (state / "inbox").iterdir())
    assert (event.agent, event.hook, event.tmux_pane) == ("claude", "notification", "%7")
    assert event.fields["message"] == "Claude needs your permission to use Bash"
    assert event.fields["extra"]["notification_type"] == "permission_prompt"
    assert "transcript_path" not in json.dumps(event.fields)  # only the bounded, useful keys
    assert isinstance(event.fields["nonce"], str) and event.ref is None
    assert not list((state / "inbox").glob(".*"))  # no temp file left behind


def test_permission_request_names_the_tool(tmp_path: Path) -> None:
    state = tmp_path / "state"
    payload = {
        "hook_event_name": "PermissionRequest",
        "tool_name": "Bash",
        "tool_input": {"command": "npm run deploy\x1b[31m"},
    }
    assert hook(["claude", "permission"], state, json.dumps(payload).encode()).returncode == 0
    [event] = inbox_events(state)
    assert event.hook == "permission"
    assert event.fields["message"] == "Bash needs permission: npm run deploy"  # ANSI stripped


def test_codex_notify_chains_the_old_command_with_the_same_arguments(tmp_path: Path) -> None:
    state = tmp_path / "state"
    out = tmp_path / "chained"
    old = ["sh", "-c", f'printf "%s" "$0" > {out}']
    payload = json.dumps({"type": "agent-turn-complete", "last-assistant-message": "all green"})
    proc = hook(["codex", "--chain", json.dumps(old), payload], state)
    assert proc.returncode == 0
    wait_for(lambda: out.exists() and out.read_text(), 20)
    assert out.read_text() == payload
    [event] = inbox_events(state)
    assert (event.agent, event.hook, event.fields["message"]) == ("codex", "stop", "all green")


@pytest.mark.parametrize(
    "breakage",
    ["state-dir-is-a-file", "inbox-unwritable", "garbage-stdin", "no-args", "bad-chain"],
)
def test_hook_always_exits_0_quickly(tmp_path: Path, breakage: str) -> None:
    state = tmp_path / "state"
    args, stdin = ["claude", "stop"], b'{"hook_event_name":"Stop"}'
    if breakage == "state-dir-is-a-file":
        state.write_text("not a dir")
    elif breakage == "inbox-unwritable":
        load_or_create_key(state)
        (state / "inbox").mkdir()
        (state / "inbox").chmod(0o500)
        if os.access(state / "inbox", os.W_OK):  # root ignores modes: use a file instead
            (state / "inbox").rmdir()
            (state / "inbox").write_text("x")
    elif breakage == "garbage-stdin":
        stdin = b"\xff\xfe{not json" * 1000
    elif breakage == "no-args":
        args = []
    elif breakage == "bad-chain":
        args = ["codex", "--chain", "[not json"]
    started = time.monotonic()
    proc = hook(args, state, stdin)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert b"Traceback" not in proc.stderr and proc.stdout == b""
    assert elapsed < 2.0  # a generous bound: the hook must never hold up the agent
    if breakage in ("garbage-stdin", "bad-chain"):  # the event itself still counts
        assert len(inbox_events(state)) == 1


def test_hook_does_not_wait_for_a_stdin_that_never_closes(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [PY, "-m", "sentry_tui", "hook", "--state-dir", str(tmp_path / "s"), "claude", "stop"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdin is not None
    proc.stdin.write(b'{"hook_event_name": "Stop"')  # half a payload, pipe left open
    proc.stdin.flush()
    try:
        assert proc.wait(timeout=10) == 0
    finally:
        proc.stdin.close()
    assert len(inbox_events(tmp_path / "s")) == 1


def test_hook_imports_no_ui_or_tmux(tmp_path: Path) -> None:
    code = (
        "import json, sys\n"
        "from sentry_tui.cli import main\n"
        f"main(['hook', '--state-dir', {str(tmp_path / 's')!r}, 'claude', 'stop'])\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([PY, "-c", code], input=b"{}", capture_output=True, check=True, timeout=20)
    loaded = {m.split(".")[0] for m in json.loads(out.stdout)}
    assert not loaded & {"textual", "libtmux", "tinydb", "requests", "rich", "yaml"}


# -- reading event files ----


def _good_file(state: Path) -> tuple[Path, bytes]:
    key = load_or_create_key(state)
    rec = hook_record("claude", "stop", {"message": "done"}, "%3", now=1000.0)
    return write_hook_file(state, rec, key), key


def test_read_hook_file_refuses_what_it_should(tmp_path: Path) -> None:
    good, key = _good_file(tmp_path)
    inbox = good.parent
    event = read_hook_file(good, key)
    assert isinstance(event, HookEvent) and event.fields["ts"] == 1000.0

    link = inbox / "hook-link.json"
    link.symlink_to(good)
    assert read_hook_file(link, key) == "refused: a symlink"

    big = inbox / "hook-big.json"
    big.write_text(" " * (HOOK_FILE_MAX + 1))
    assert str(read_hook_file(big, key)).startswith("refused: too large")

    bad_json = inbox / "hook-bad.json"
    bad_json.write_text("{nope")
    assert str(read_hook_file(bad_json, key)).startswith("bad JSON")

    data = json.loads(good.read_text())
    forged = inbox / "hook-forged.json"
    forged.write_text(json.dumps({**data, "hook": "permission"}))
    assert read_hook_file(forged, key) == "bad signature"

    unsigned = inbox / "hook-unsigned.json"
    unsigned.write_text(json.dumps({k: v for k, v in data.items() if k not in ("sig", "nonce")}))
    assert read_hook_file(unsigned, key) == "unsigned"

    other_key = inbox / "hook-other.json"
    other_key.write_text(json.dumps(sign({**data}, b"x" * 32)))
    assert read_hook_file(other_key, key) == "bad signature"

    fifo = inbox / "hook-fifo.json"
    os.mkfifo(fifo)
    assert read_hook_file(fifo, key) == "refused: not a regular file"  # and did not block

    assert str(read_hook_file(inbox / "hook-missing.json", key)).startswith("unreadable")
    wrong_kind = inbox / "hook-kind.json"
    wrong_kind.write_text(json.dumps(sign({"v": 1, "kind": "approve"}, key)))
    assert str(read_hook_file(wrong_kind, key)).startswith("bad event")


# -- Claude Code settings ----

USER_SETTINGS: dict[str, Any] = {
    "$schema": "https://json.schemastore.org/claude-code-settings.json",
    "permissions": {"allow": ["Bash(npm test:*)"], "deny": []},
    "env": {"DISABLE_COST_WARNINGS": "1"},
    "hooks": {
        "Stop": [{"matcher": "", "hooks": [{"type": "command", "command": "notify-send done"}]}],
        "PostToolUse": [
            {"matcher": "Edit|Write", "hooks": [{"type": "command", "command": "npx prettier"}]}
        ],
    },
}


def test_claude_install_merges_and_uninstall_removes_exactly() -> None:
    installed = claude_install(USER_SETTINGS, PROG)
    hooks = installed["hooks"]
    assert hooks["PostToolUse"] == USER_SETTINGS["hooks"]["PostToolUse"]
    assert hooks["Stop"][0] == USER_SETTINGS["hooks"]["Stop"][0]  # the user's hook kept, first
    for event, name in [("Stop", "stop"), ("Notification", "notification")]:
        assert hooks[event][-1]["hooks"][0]["command"] == f"{PROG} hook claude {name}"
    perm = hooks["PermissionRequest"][0]["hooks"][0]
    assert perm == {"type": "command", "command": f"{PROG} hook claude permission", "timeout": 10}
    assert installed["permissions"] == USER_SETTINGS["permissions"]
    assert claude_install(installed, PROG) == installed  # idempotent
    assert claude_uninstall(installed) == USER_SETTINGS
    assert claude_uninstall(claude_install({}, PROG)) == {}


def test_hooks_install_claude_on_a_real_file(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    original = json.dumps(USER_SETTINGS, indent=2) + "\n"
    path.write_text(original)

    out = io.StringIO()
    manage("install", "claude", path, dry_run=True, program=PROG, out=out)
    assert "+" in out.getvalue() and "PermissionRequest" in out.getvalue()
    assert path.read_text() == original  # dry run: nothing written

    out = io.StringIO()
    manage("install", "claude", path, program=PROG, out=out)
    text = out.getvalue()
    assert text.startswith(f"--- {path}\n+++ {path}\n") and f"installed into {path}" in text
    assert not [ln for ln in text.splitlines() if ln.startswith("-") and not ln.startswith("---")]
    after = path.read_text()

    out = io.StringIO()
    manage("install", "claude", path, program=PROG, out=out)
    assert "already installed" in out.getvalue() and path.read_text() == after

    manage("uninstall", "claude", path, program=PROG, out=io.StringIO())
    assert path.read_text() == original  # same indent, same order, same bytes


def test_hooks_install_claude_refuses_broken_json(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text('{"hooks": {,}}')
    with pytest.raises(UserError, match="not valid JSON"):
        manage("install", "claude", path, program=PROG, out=io.StringIO())
    assert path.read_text() == '{"hooks": {,}}'
    proc = subprocess.run(
        [PY, "-m", "sentry_tui", "hooks", "install", "claude", "--settings", str(path)],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_installed_claude_command_really_reports(tmp_path: Path) -> None:
    """The command string install writes, run the way Claude Code runs it (a shell)."""
    path, state = tmp_path / "settings.json", tmp_path / "state"
    manage("install", "claude", path, state_dir=str(state), out=io.StringIO())
    settings_ = json.loads(path.read_text())
    command = settings_["hooks"]["Stop"][0]["hooks"][0]["command"]
    subprocess.run(
        ["sh", "-c", command],
        input=b'{"hook_event_name":"Stop","session_id":"x"}',
        check=True,
        timeout=20,
        env={**os.environ, "TMUX_PANE": "%1"},
    )
    [event] = inbox_events(state)
    assert (event.hook, event.tmux_pane) == ("stop", "%1")


# -- Codex CLI config ----

CODEX_CONFIG = """\
# my codex config
model = "gpt-5-codex"
notify = [
  "python3",   # the interpreter
  "/home/me/.codex/notify.py",
]
approval_policy = "on-request"

[mcp_servers.docs]
command = "npx"
args = ["-y", "docs-mcp"]
"""


def test_codex_install_chains_and_uninstall_restores_bytes() -> None:
    text = codex_install(CODEX_CONFIG, PROG)
    data = tomllib.loads(text)
    old = ["python3", "/home/me/.codex/notify.py"]
    assert data["notify"] == [PROG, "hook", "codex", "--chain", json.dumps(old)]
    before = tomllib.loads(CODEX_CONFIG)
    assert {k: v for k, v in data.items() if k != "notify"} == {
        k: v for k, v in before.items() if k != "notify"
    }
    assert codex_install(text, PROG) == text  # idempotent
    assert codex_uninstall(text) == CODEX_CONFIG
    assert codex_uninstall(CODEX_CONFIG) == CODEX_CONFIG  # not installed: untouched


@pytest.mark.parametrize(
    "config",
    [
        "",
        'model = "o3"\n',
        '[profiles.fast]\nnotify = ["not-top-level"]\n',
        'notify = ["a"]',  # no final newline
        'model = "x"\r\nnotify = ["a", "b"]\r\n',
    ],
)
def test_codex_install_uninstall_round_trip(config: str) -> None:
    text = codex_install(config, PROG)
    assert tomllib.loads(text)["notify"][:3] == [PROG, "hook", "codex"]
    assert codex_uninstall(text) == config


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=4))
def test_codex_round_trip_any_old_command(old: list[str]) -> None:
    from sentry_tui.hooks import toml_array

    config = f'model = "m"\nnotify = {toml_array(old)}\n'
    text = codex_install(config, PROG)
    chain = tomllib.loads(text)["notify"]
    assert json.loads(chain[chain.index("--chain") + 1]) == old
    assert codex_uninstall(text) == config


def test_codex_uninstall_without_our_comments_restores_the_value() -> None:
    text = codex_install('notify = ["notify-send", "x"]\n', PROG)
    edited = "\n".join(ln for ln in text.splitlines() if not ln.startswith("#")) + "\n"
    assert tomllib.loads(codex_uninstall(edited))["notify"] == ["notify-send", "x"]


def test_hooks_install_codex_on_a_real_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CODEX_CONFIG)
    out = io.StringIO()
    manage("install", "codex", path, program=PROG, out=out)
    assert "+notify = " in out.getvalue()
    manage("uninstall", "codex", path, program=PROG, out=io.StringIO())
    assert path.read_text() == CODEX_CONFIG
    path.write_text("notify = [broken\n")
    with pytest.raises(UserError, match="not valid TOML"):
        manage("install", "codex", path, program=PROG, out=io.StringIO())
