"""The demo scene: a private tmux server with scripted panes that exercise every feature.

Everything lives on a socket named ``sentry-demo-<pid>`` and in a temporary directory, so the
demo never touches the user's own tmux server or state. The scene is stopped by socket name.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sentry_tui.config import bundled_policy_dir

SESSION = "demo"

# Each script is small and honest about what it imitates.
SCRIPTS: dict[str, str] = {
    # An agent that works for a while, reports its stage done with a marker, then waits.
    "agent.sh": r"""
printf 'demo-agent ▸ reading issue #42: "checkout total is off by one"\n'
sleep 1
for step in "planning the change" "editing src/cart.py" "editing tests/test_cart.py" \
            "running a quick self-check"; do
  printf '  └ %s\n' "$step"; sleep 1.5
done
printf '### SENTRY {"type":"STATUS","stage":"code","ok":true,"msg":"fix ready for tests"}\n'
while :; do printf '> '; read -r line || exit 0; printf 'demo-agent ▸ noted: %s\n' "$line"; done
""",
    # Fails the first time, passes on the retry: the pipeline's retry budget at work.
    "test.sh": r"""
runs_file="$SENTRY_DEMO_DIR/.test-runs"
n=$(cat "$runs_file" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "$runs_file"
echo "collected 12 tests"; sleep 1
if [ "$n" -eq 1 ]; then
  echo "FAILED tests/test_cart.py::test_total - assert 41 == 42"
  echo "1 failed, 11 passed in 1.02s"; exit 1
fi
echo "12 passed in 0.98s"
""",
    "build.sh": r"""
for i in 1 2 3 4 5 6; do echo "building… $((i * 100 / 6))%"; sleep 0.5; done
echo "built dist/shop-1.4.2.tar.gz"
""",
    "deploy.sh": r"""
echo "deploying shop 1.4.2 to production"; sleep 1; echo "deploy finished: https://shop.example"
""",
    # A job asking a human a question.
    "prompt.sh": r"""
while :; do
  printf 'Apply database migration 0042_orders? [y/N] '
  read -r answer || exit 0
  echo "answered: $answer"
done
""",
    # A long-running busy job.
    "watcher.sh": r"""
i=0
while :; do i=$((i + 1)); echo "[bundle] rebuilt #$i in 0.$(( (i * 37) % 9 ))s"; sleep 0.5; done
""",
}

WINDOWS: tuple[tuple[str, str], ...] = (
    ("agent", "agent.sh"),
    ("shell", ""),
    ("prompt", "prompt.sh"),
    ("build", "watcher.sh"),
)


@dataclass
class Scene:
    socket: str
    directory: Path
    policy: Path

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=check
        )

    def stop(self) -> None:
        """Stop the demo's own server (by its socket name) and remove its files."""
        from sentry_tui.tmux import stop_private_server

        stop_private_server(self.socket)
        shutil.rmtree(self.directory, ignore_errors=True)


def start_scene(*, ui_state_dir: Path | None = None, width: int = 120, height: int = 40) -> Scene:
    """Start the private server and its panes; with ``ui_state_dir``, the UI in window 0."""
    if shutil.which("tmux") is None:
        raise RuntimeError("tmux is not installed (apt-get install tmux)")
    directory = Path(tempfile.mkdtemp(prefix="sentry-demo-"))
    for name, body in SCRIPTS.items():
        (directory / name).write_text("#!/bin/sh\n" + body.lstrip())
        (directory / name).chmod(0o755)
    scene = Scene(f"sentry-demo-{os.getpid()}", directory, bundled_policy_dir() / "demo.yaml")
    env = dict(os.environ, SENTRY_DEMO_DIR=str(directory), PS1="demo$ ")
    env.pop("TMUX", None)
    env.pop("TMUX_PANE", None)
    if ui_state_dir is not None:
        first_name = "sentry"
        first_cmd = shlex.join(ui_command(scene.socket, ui_state_dir, scene.policy))
    else:
        first_name, first_cmd = WINDOWS[0][0], _script(directory, WINDOWS[0][1])
    subprocess.run(
        [
            "tmux",
            "-L",
            scene.socket,
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            SESSION,
            "-n",
            first_name,
            "-x",
            str(width),
            "-y",
            str(height),
            first_cmd,
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    scene.tmux("set-option", "-g", "remain-on-exit", "off")
    scene.tmux("set-option", "-g", "history-limit", "5000")
    for name, script in WINDOWS[0 if ui_state_dir is not None else 1 :]:
        command = _script(directory, script) if script else _shell()
        scene.tmux("new-window", "-d", "-t", SESSION, "-n", name, command)
    return scene


def _script(directory: Path, name: str) -> str:
    return f"sh {shlex.quote(str(directory / name))}"


def _shell() -> str:
    bash = shutil.which("bash")
    return f"env PS1='demo$ ' {bash} --norc --noprofile" if bash else "env PS1='demo$ ' sh"


def ui_command(scene_socket: str, state_dir: Path, policy: Path) -> list[str]:
    """The UI window's command; when the UI exits, the demo server goes with it."""
    ui = [
        sys.executable,
        "-m",
        "sentry_tui",
        "ui",
        "--socket",
        scene_socket,
        "--state-dir",
        str(state_dir),
        "--policy",
        str(policy),
    ]
    stop = ["tmux", "-L", scene_socket, "kill-server"]
    return ["sh", "-c", f"{shlex.join(ui)}; {shlex.join(stop)}"]
