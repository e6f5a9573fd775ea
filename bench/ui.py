"""How fast the TUI answers, measured the way a person sees it: in a real tmux pane.

A private tmux server holds 50 watched panes (5 of them printing ten lines a second) and a
window running `sentry-tui ui`. The script measures

- time to first paint: from starting the UI's window to the pane showing the header, and to
  the header counting all 50 panes;
- key-to-screen latency: send `j` with tmux, poll the pane's screen until it changes;
- CPU while left alone for 10 s (what it costs to keep the UI open all day), in CPU seconds
  per minute of its process: for sentry-tui that includes the engine it hosts.

The same is measured for a baseline in the same run: a minimal Textual app (a 50-row list,
nothing else) — the floor the framework and tmux set, so the numbers can be read against it.

    python bench/ui.py [--keys 30]

Targets (issue 5): first paint under 1 s, key-to-screen under 50 ms.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cputime import process_cpu

import sentry_tui
from sentry_tui.tmux import stop_private_server

PANES = 50
BUSY = 5

BASELINE_APP = """
from textual.app import App
from textual.widgets import Header, Static

class Baseline(App):
    BINDINGS = [("j", "move(1)", "down"), ("k", "move(-1)", "up")]
    row = 0
    def compose(self):
        yield Header()
        yield Static(id="rows")
    def on_mount(self):
        self.title = "baseline"
        self.draw()
    def action_move(self, step):
        self.row = max(0, min(49, self.row + step))
        self.draw()
    def draw(self):
        lines = [("> " if i == self.row else "  ") + f"pane {i}" for i in range(50)]
        self.query_one("#rows", Static).update(chr(10).join(lines))

Baseline().run()
"""


class Tmux:
    def __init__(self, socket: str) -> None:
        self.socket = socket

    def __call__(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True
        ).stdout

    def screen(self, target: str) -> str:
        return self("capture-pane", "-p", "-t", target)


def wait_screen(tmux: Tmux, target: str, predicate, timeout: float = 30.0) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if predicate(tmux.screen(target)):
            return time.perf_counter() - start
        time.sleep(0.002)
    raise TimeoutError(f"{target}: screen condition not met in {timeout}s")


def key_latencies(tmux: Tmux, target: str, keys: int) -> list[float]:
    out: list[float] = []
    for i in range(keys):
        key = "j" if (i // 10) % 2 == 0 else "k"
        before = tmux.screen(target)
        t0 = time.perf_counter()
        tmux("send-keys", "-t", target, key)
        while True:
            if tmux.screen(target) != before:
                out.append(time.perf_counter() - t0)
                break
            if time.perf_counter() - t0 > 5:
                out.append(float("nan"))
                break
            time.sleep(0.001)
        time.sleep(0.05)  # let background refreshes settle between samples
    return out


IDLE_S = 10.0
SETTLE_S = 3.0


def pct(values: list[float], q: float) -> float:
    clean = sorted(v for v in values if v == v)
    if not clean:
        return float("nan")
    return clean[min(len(clean) - 1, round(q * (len(clean) - 1)))]


def measure(tmux: Tmux, name: str, command: str, ready, full, keys: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    tmux("new-window", "-d", "-t", "work", "-n", name, command)
    target = f"work:{name}"
    first = wait_screen(tmux, target, ready)
    first_full = first + wait_screen(tmux, target, full)
    load = time.perf_counter() - t0
    time.sleep(1.0)
    pid = int(tmux("display-message", "-p", "-t", target, "#{pane_pid}").strip())
    time.sleep(SETTLE_S)  # past the start-up work (the first capture of every pane)
    cpu = process_cpu(pid, descendants=True)  # the pane's shell, the app, its tmux clients
    time.sleep(IDLE_S)
    idle = (process_cpu(pid, descendants=True) - cpu) / IDLE_S * 60
    lat = key_latencies(tmux, target, keys)
    tmux("kill-window", "-t", target)
    return {
        "first_paint_s": first,
        "all_panes_s": first_full,
        "ready_s": load,
        "key_p50_ms": statistics.median([v for v in lat if v == v]) * 1000,
        "key_p95_ms": pct(lat, 0.95) * 1000,
        "key_max_ms": max(v for v in lat if v == v) * 1000,
        "idle_cpu": idle,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=30)
    args = parser.parse_args()
    socket = f"sentry-bench-ui-{os.getpid()}"
    tmux = Tmux(socket)
    work = Path(tempfile.mkdtemp(prefix="sentry-bench-ui-"))
    # A user's second start finds the package's bytecode cached (a plain `pip install` writes
    # it at once); where PYTHONDONTWRITEBYTECODE is set, every start would compile from source.
    compileall.compile_dir(Path(sentry_tui.__file__).parent, quiet=1)
    (work / "baseline.py").write_text(BASELINE_APP)
    busy = "i=0; while :; do i=$((i+1)); echo line $i; sleep 0.1; done"
    quiet = "echo ready; exec sleep 100000"
    env = {**os.environ, "TERM": "xterm-256color"}
    env.pop("TMUX", None)
    subprocess.run(
        ["tmux", "-L", socket, "-f", "/dev/null", "new-session", "-d", "-s", "work", "-n", "p0",
         "-x", "120", "-y", "40", "sh", "-c", busy],
        check=True, env=env,
    )  # fmt: skip
    try:
        for i in range(1, PANES):
            tmux("new-window", "-d", "-t", "work", "-n", f"p{i}", "sh", "-c",
                 busy if i < BUSY else quiet)  # fmt: skip
        ui = shlex.join(
            [sys.executable, "-m", "sentry_tui", "ui", "--socket", socket,
             "--state-dir", str(work / "state")]
        )  # fmt: skip
        baseline = shlex.join([sys.executable, str(work / "baseline.py")])
        rows = {
            "sentry-tui ui": measure(
                tmux, "ui", ui,
                lambda s: "panes" in s,
                lambda s: f"{PANES} panes" in s,
                args.keys,
            ),
            "baseline (50-row Textual list)": measure(
                tmux, "base", baseline,
                lambda s: "baseline" in s,
                lambda s: "pane 30" in s,
                args.keys,
            ),
        }  # fmt: skip
    finally:
        stop_private_server(socket)
    print(f"UI in a real tmux pane, {PANES} watched panes ({BUSY} printing 10 lines/s), "
          f"{args.keys} keys")  # fmt: skip
    header = (
        f"{'':32} {'first paint':>12} {'all panes':>10} {'key p50':>9} {'key p95':>9} {'max':>8}"
        f" {'idle CPU':>12}"
    )
    print(header)
    for name, r in rows.items():
        print(
            f"{name:32} {r['first_paint_s'] * 1000:>9.0f} ms {r['all_panes_s'] * 1000:>7.0f} ms"
            f" {r['key_p50_ms']:>6.1f} ms {r['key_p95_ms']:>6.1f} ms {r['key_max_ms']:>5.0f} ms"
            f" {r['idle_cpu']:>6.2f} s/min"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
