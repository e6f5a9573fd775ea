"""The whole engine's cost, not just the watcher's: `sentry-tui watch` as a real process.

bench/watch.py measures the tmux reader alone. This runs the complete headless engine (watcher,
detectors, markers, pipeline engine, state writes, snapshot publishing) on a private tmux server
with 50 panes, 5 of them printing ten lines a second, under the bundled default policy — and,
in the same run, a naive engine loop that captures the last 2000 lines of every pane every
1.5 s with one tmux process per pane (the obvious design).

    python bench/engine.py [--seconds 30]

CPU is the process plus its children (the tmux control clients or capture processes), in
CPU seconds per minute (1 % of one core = 0.6), and the extra CPU caused in the tmux server.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

from cputime import process_cpu

from sentry_tui.tmux import stop_private_server

BUSY = 'i=0; while :; do i=$((i+1)); echo "line $i $(date +%s)"; sleep 0.1; done'
NAIVE = r"""
import subprocess, sys, time
sock = sys.argv[1]
while True:
    panes = subprocess.run(["tmux", "-L", sock, "list-panes", "-a", "-F", "#{pane_id}"],
                           capture_output=True, text=True).stdout.split()
    for p in panes:
        subprocess.run(["tmux", "-L", sock, "capture-pane", "-p", "-J", "-t", p, "-S", "-2000"],
                       capture_output=True, text=True)
    time.sleep(1.5)
"""


def server_pid(sock: str) -> int:
    out = subprocess.run(
        ["tmux", "-L", sock, "display-message", "-p", "#{pid}"], capture_output=True, text=True
    )
    return int(out.stdout.strip())


def measure(name: str, argv: list[str], sock: str, seconds: float) -> dict[str, float]:
    spid = server_pid(sock)
    idle0, t0 = process_cpu(spid), time.monotonic()
    time.sleep(3)  # the server's own cost with the printers alone, for subtraction
    calm = (process_cpu(spid) - idle0) / (time.monotonic() - t0)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(5)  # start-up and first capture are not the steady cost
        own0 = process_cpu(proc.pid, descendants=True)
        srv0, t0 = process_cpu(spid), time.monotonic()
        time.sleep(seconds)
        own = process_cpu(proc.pid, descendants=True) - own0
        elapsed = time.monotonic() - t0
        srv = process_cpu(spid) - srv0 - calm * elapsed
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    return {"own": own / elapsed * 60, "tmux": max(0.0, srv) / elapsed * 60}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    sock = f"sentry-bench-engine-{os.getpid()}"
    work = tempfile.mkdtemp(prefix="sentry-bench-engine-")
    subprocess.run(
        ["tmux", "-L", sock, "-f", "/dev/null", "new-session", "-d", "-s", "w",
         "-x", "120", "-y", "30", "sh", "-c", BUSY],
        check=True,
    )  # fmt: skip
    try:
        for i in range(1, 50):
            cmd = BUSY if i < 5 else "echo ready; exec sleep 100000"
            subprocess.run(["tmux", "-L", sock, "new-window", "-d", "-t", "w:", "sh", "-c", cmd])
        engine = [sys.executable, "-m", "sentry_tui", "watch", "--json", "--socket", sock,
                  "--state-dir", os.path.join(work, "state")]  # fmt: skip
        naive_py = os.path.join(work, "naive.py")
        with open(naive_py, "w") as f:
            f.write(NAIVE)
        rows = {
            "sentry-tui watch (whole engine)": measure("engine", engine, sock, args.seconds),
            "naive: capture every pane / 1.5 s": measure(
                "naive", [sys.executable, naive_py, sock], sock, args.seconds
            ),
        }
    finally:
        stop_private_server(sock)
    print(f"50 panes, 5 printing 10 lines/s, {args.seconds:.0f} s measured per reader")
    print(f"{'':36} {'CPU s/min':>10} {'(own':>8} {'+tmux)':>8} {'% of a core':>12}")
    for name, r in rows.items():
        total = r["own"] + r["tmux"]
        print(f"{name:36} {total:>10.2f} {r['own']:>8.2f} {r['tmux']:>8.2f} {total / 0.6:>11.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
