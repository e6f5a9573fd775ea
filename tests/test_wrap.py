"""`sentry-tui wrap`: real processes, real signals, real private tmux panes."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for

from sentry_tui.keys import load_or_create_key
from sentry_tui.signing import verify
from sentry_tui.wrap import PREFIX, exit_status, marker_line

PY = sys.executable
WRAP = [PY, "-m", "sentry_tui", "wrap"]


def markers(text: str) -> list[dict[str, Any]]:
    return [json.loads(ln[len(PREFIX) :]) for ln in text.splitlines() if ln.startswith(PREFIX)]


def run_wrap(
    args: list[str], state: Path, **kw: Any
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    """Run the wrapper without a controlling terminal: markers then go to stderr."""
    proc = subprocess.run(
        [*WRAP, "--state-dir", str(state), *args],
        capture_output=True,
        text=True,
        timeout=20,
        start_new_session=True,
        **kw,
    )
    return proc, markers(proc.stderr)


# -- without tmux ------------------------------------------------------------------------------


def test_exit_status_and_signed_markers(tmp_path: Path) -> None:
    state = tmp_path / "state"
    proc, found = run_wrap(
        ["--stage", "test", "--project", "app", "--run", "r1", "--", "sh", "-c", "exit 3"], state
    )
    assert proc.returncode == 3
    assert [m["type"] for m in found] == ["START", "END"]
    end = found[1]
    assert (end["stage"], end["project"], end["run"], end["exit"]) == ("test", "app", "r1", 3)
    assert isinstance(end["duration_s"], float)
    key = load_or_create_key(state)
    assert all(verify(m, key) for m in found)
    assert found[0]["nonce"] != end["nonce"]
    tampered = dict(end, exit=0)
    assert not verify(tampered, key)
    assert (state / "signing.key").stat().st_mode & 0o777 == 0o600


def test_command_not_found_is_127(tmp_path: Path) -> None:
    proc, found = run_wrap(["--", "no-such-command-sentry"], tmp_path / "s")
    assert proc.returncode == 127
    assert found[-1]["exit"] == 127
    assert "command not found" in proc.stderr


def test_signal_death_is_128_plus_n(tmp_path: Path) -> None:
    proc, found = run_wrap(["--", "sh", "-c", "kill -KILL $$"], tmp_path / "s")
    assert proc.returncode == 128 + signal.SIGKILL
    assert found[-1]["exit"] == 137
    assert exit_status(-15) == 143 and exit_status(4) == 4


def test_unreadable_key_gives_unsigned_markers_and_never_fails(tmp_path: Path) -> None:
    state = tmp_path / "s"
    load_or_create_key(state)
    (state / "signing.key").chmod(0o644)  # readable by others: refused
    proc, found = run_wrap(["--", "sh", "-c", "exit 0"], state)
    assert proc.returncode == 0
    assert [m["type"] for m in found] == ["START", "END"]
    assert all("sig" not in m for m in found)
    warnings = [ln for ln in proc.stderr.splitlines() if "unsigned" in ln]
    assert len(warnings) == 1 and "readable by others" in warnings[0]


def test_marker_line_is_compact_type_first() -> None:
    line = marker_line("END", {"stage": "s", "exit": 0}, None)
    assert line == '### SENTRY {"type":"END","stage":"s","exit":0}'
    signed = marker_line("END", {"stage": "s"}, b"k" * 32)
    assert signed.startswith('### SENTRY {"type":"END",') and '"sig":' in signed


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_to_wrapper_reach_child(tmp_path: Path, signum: int) -> None:
    flag = tmp_path / "got-term"
    script = tmp_path / "child.py"
    script.write_text(
        textwrap.dedent(f"""
        import os, signal, sys, time
        def on_term(signum, _):
            open({str(flag)!r}, "w").write(str(signum))
            sys.exit(0)
        signal.signal({int(signum)}, on_term)
        open({str(tmp_path / "ready")!r}, "w").write(str(os.getppid()))
        time.sleep(30)
        """)
    )
    proc = subprocess.Popen(
        [*WRAP, "--state-dir", str(tmp_path / "s"), "--", PY, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    ready = tmp_path / "ready"
    wait_for(lambda: ready.exists() and ready.read_text(), 20)
    assert int(ready.read_text()) == proc.pid  # the child is the wrapper's own child
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=20)
    assert flag.read_text() == str(int(signum))
    assert proc.returncode == 0  # the child handled it and exited 0; the wrapper reports that
    assert markers(err)[-1]["exit"] == 0


# -- in a real tmux pane -----------------------------------------------------------------------


@pytest.fixture
def shell(session: Any, tmp_path: Path) -> Any:
    """A pane running a plain bash with a known prompt and our state dir."""
    state = tmp_path / "state"
    window = session.new_window(
        window_name="wrap",
        window_shell=(
            f"env PS1='$ ' SENTRY_TUI_STATE_DIR={shlex.quote(str(state))} "
            "bash --norc --noprofile -i"
        ),
    )
    # The window, not the pane: a lone pane cannot outgrow its window (80 wide by default),
    # and where the prompt and a typed command filled exactly 80 columns tmux recorded a
    # soft wrap, so `capture-pane -J` joined the START marker onto the command line.
    window.resize(width=200, height=40)
    pane = window.active_pane
    wait_for(lambda: "$" in "\n".join(pane.capture_pane()), 20)
    pane.state = state
    return pane


def screen(pane: Any) -> str:
    return "\n".join(pane.capture_pane(start=-200, join_wrapped=True))


def wrap_cmd(*cmd: str) -> str:
    return shlex.join([*WRAP, "--stage", "t", "--", *cmd])


@pytest.mark.tmux
def test_exit_status_in_a_pane(shell: Any) -> None:
    shell.send_keys(wrap_cmd("sh", "-c", "exit 3") + "; echo rc=$?")
    wait_for(lambda: "rc=3" in screen(shell), 20)
    found = markers(screen(shell))
    assert [m["type"] for m in found] == ["START", "END"]
    assert found[1]["exit"] == 3
    assert found[1]["pane"] == shell.pane_id  # $TMUX_PANE, bound into the signature
    key = load_or_create_key(shell.state)
    assert all(verify(m, key) for m in found)


@pytest.mark.tmux
def test_end_marker_starts_its_own_line_after_unterminated_output(shell: Any) -> None:
    shell.send_keys(wrap_cmd("printf", "partial-output") + "; echo rc=$?")
    wait_for(lambda: "rc=0" in screen(shell), 20)
    lines = screen(shell).splitlines()
    assert "partial-output" in lines  # still visible, alone on its line
    assert any(ln.startswith(PREFIX + '{"type":"END"') for ln in lines)


@pytest.mark.tmux
def test_markers_go_to_the_pane_not_into_redirected_output(shell: Any, tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    shell.send_keys(wrap_cmd("echo", "data") + f" > {shlex.quote(str(out))}; echo rc=$?")
    wait_for(lambda: "rc=0" in screen(shell), 20)
    assert out.read_text() == "data\n"  # the command's stream is left alone
    assert [m["type"] for m in markers(screen(shell))] == ["START", "END"]


@pytest.mark.tmux
def test_one_ctrl_c_reaches_the_child_once(shell: Any, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    script = tmp_path / "count_sigint.py"
    script.write_text(
        textwrap.dedent(f"""
        import os, select, signal, time
        # Count deliveries, not Python handler calls: the C-level handler writes one byte to
        # the wakeup fd per signal, so two close SIGINTs are not merged into one call.
        r, w = os.pipe()
        os.set_blocking(w, False)
        signal.set_wakeup_fd(w)
        signal.signal(signal.SIGINT, lambda *_: None)
        open({str(tmp_path / "ready")!r}, "w").write("ready")
        got = b""
        if select.select([r], [], [], 30)[0]:
            got += os.read(r, 64)
        # a doubled Ctrl-C (a forwarding wrapper) arrives within milliseconds of the first
        end = time.monotonic() + 1.0
        while (left := end - time.monotonic()) > 0:
            if select.select([r], [], [], left)[0]:
                got += os.read(r, 64)
        count = got.count(bytes([signal.SIGINT]))
        open({str(counter)!r}, "w").write(str(count))
        """)
    )
    shell.send_keys(wrap_cmd(PY, str(script)) + "; echo rc=$?")
    wait_for(lambda: (tmp_path / "ready").exists(), 20)
    shell.send_keys("C-c", enter=False)
    wait_for(lambda: "rc=0" in screen(shell), 20)
    assert counter.read_text() == "1"
    assert markers(screen(shell))[-1]["exit"] == 0  # the wrapper survived its own Ctrl-C


@pytest.mark.tmux
def test_ctrl_c_that_kills_the_child_is_130(shell: Any, tmp_path: Path) -> None:
    shell.send_keys(wrap_cmd("sleep", "30") + "; echo rc=$?")
    wait_for(lambda: PREFIX + '{"type":"START"' in screen(shell), 20)
    wait_for(lambda: _has_child_named(shell.pane_pid, "sleep"), 20)
    shell.send_keys("C-c", enter=False)
    wait_for(lambda: "rc=130" in screen(shell), 20)
    assert markers(screen(shell))[-1]["exit"] == 130


@pytest.mark.tmux
def test_sigterm_to_wrapper_in_a_pane_reaches_child(shell: Any, tmp_path: Path) -> None:
    script = tmp_path / "term.py"
    script.write_text(
        textwrap.dedent(f"""
        import os, signal, sys, time
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))
        open({str(tmp_path / "wrapper.pid")!r}, "w").write(str(os.getppid()))
        time.sleep(30)
        """)
    )
    shell.send_keys(wrap_cmd(PY, str(script)) + "; echo rc=$?")
    pidfile = tmp_path / "wrapper.pid"
    wait_for(lambda: pidfile.exists() and pidfile.read_text(), 20)
    os.kill(int(pidfile.read_text()), signal.SIGTERM)
    wait_for(lambda: "rc=7" in screen(shell), 20)
    assert markers(screen(shell))[-1]["exit"] == 7


@pytest.mark.tmux
def test_job_control_ctrl_z_and_fg(shell: Any) -> None:
    shell.send_keys(wrap_cmd("sleep", "30"))
    sleep_pid = wait_for(lambda: _child_named(shell.pane_pid, "sleep"), 20)
    shell.send_keys("C-z", enter=False)
    wait_for(lambda: _proc_state(sleep_pid) == "T", 20)  # the whole job stopped
    wait_for(lambda: "Stopped" in screen(shell), 20)
    shell.send_keys("fg; echo rc=$?")
    wait_for(lambda: _proc_state(sleep_pid) == "S", 20)  # running again, in the foreground
    shell.send_keys("C-c", enter=False)
    wait_for(lambda: "rc=130" in screen(shell), 20)
    assert markers(screen(shell))[-1]["exit"] == 130


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


@pytest.mark.tmux
def test_interactive_program_works_through_the_wrapper(shell: Any) -> None:
    prog = 'printf "name? "; read name; echo "hello [$name]"; exit 5'
    shell.send_keys(wrap_cmd("sh", "-c", prog) + "; echo rc=$?")
    wait_for(lambda: "name? " in screen(shell), 20)
    shell.send_keys("world")
    wait_for(lambda: "rc=5" in screen(shell), 20)
    assert "hello [world]" in screen(shell)
    assert markers(screen(shell))[-1]["exit"] == 5


def _has_child_named(pid: int | str, name: str) -> bool:
    return _child_named(pid, name) is not None


def _child_named(pid: int | str, name: str) -> int | None:
    """The pid of a process named ``name`` among the descendants of ``pid`` (/proc, no pkill)."""
    todo = [int(pid)]
    while todo:
        p = todo.pop()
        try:
            kids = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        for k in kids:
            try:
                if Path(f"/proc/{k}/comm").read_text().strip() == name:
                    return int(k)
            except OSError:
                pass
            todo.append(int(k))
    return None


def test_markers_module_reads_the_wrappers_lines_as_signed() -> None:
    markers_mod = pytest.importorskip("sentry_tui.markers")
    key = b"k" * 32
    for type_, fields in [
        ("START", {"stage": "t", "pane": "%1", "cmd": "sh"}),
        ("END", {"stage": "t", "project": "p", "run": "r", "pane": "%1", "exit": 0}),
    ]:
        parsed = markers_mod.parse_line(marker_line(type_, fields, key))
        assert parsed.type == type_, parsed
        assert markers_mod.classify(parsed, key, set(), "%1").trust == "signed"
        assert markers_mod.classify(parsed, key, set(), "%2").trust == "bad_signature"


# -- the signing key ---------------------------------------------------------------------------


def test_key_is_created_once_0600_and_shared_by_racing_processes(tmp_path: Path) -> None:
    state = tmp_path / "fresh" / "state"
    code = (
        "import sys; from pathlib import Path; from sentry_tui.keys import load_or_create_key;"
        "print(load_or_create_key(Path(sys.argv[1])).hex())"
    )
    procs = [
        subprocess.Popen([PY, "-c", code, str(state)], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    keys = {p.communicate(timeout=20)[0].strip() for p in procs}
    assert len(keys) == 1 and len(bytes.fromhex(keys.pop())) == 32
    assert state.stat().st_mode & 0o777 == 0o700
    assert (state / "signing.key").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in state.iterdir()] == ["signing.key"]  # no temp files left


def test_key_refusals(tmp_path: Path) -> None:
    from sentry_tui.errors import UserError
    from sentry_tui.keys import load_key

    state = tmp_path / "s"
    with pytest.raises(UserError, match="no signing key yet"):
        load_key(state)
    load_or_create_key(state)
    key_file = state / "signing.key"
    real = tmp_path / "elsewhere.key"
    key_file.rename(real)
    key_file.symlink_to(real)
    with pytest.raises(UserError, match="cannot read"):  # a symlink is not followed
        load_or_create_key(state)
    key_file.unlink()
    key_file.write_text("not hex\n")
    key_file.chmod(0o600)
    with pytest.raises(UserError, match="not hex"):
        load_key(state)
