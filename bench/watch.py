"""Benchmark: the control-mode Watcher against the obvious poller, on private tmux servers.

    python bench/watch.py                 # 20 s per phase (about 3.5 minutes in all)
    python bench/watch.py --seconds 8     # quicker, noisier
    python bench/watch.py --only typical --repeat 5   # the median of 5 runs, and each run

Each phase gets a fresh private tmux server (``tmux -L sentry-bench-<uuid>``, killed after)
and one long-running printer process per busy pane, printing a timestamped marker every
100 ms. Loads: *typical* (50 panes, 5 printing, the rest quiet) and *stress* (all 50
printing); *agent* is one fake full-screen agent (spinner frames, then a permission prompt
drawn in place) among 9 quiet panes, read as a screen.

For each reader it reports CPU seconds per minute (its own process and children, plus the
extra CPU it causes in the tmux server: the server's CPU while the reader runs minus its CPU
with the same printers and no reader, taken as the mean of 5 s before and 5 s after),
latency from a line's print (the timestamp inside it) to its event, p50/p95, and lines
lost (gaps in each printer's sequence numbers).

The baseline is the design DESIGN.md measured first: every 1.5 s, one ``tmux capture-pane``
process per pane for its last 2000 lines, diffed against what was already seen.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cputime import process_cpu

from sentry_tui.model import OutputLines, PaneInfo, ScreenChanged
from sentry_tui.tmux import Watcher, stop_private_server

PRINTER = r"""
import sys, time
pane = sys.argv[1]
n, t = 0, time.time()
while True:
    n += 1
    print('### SENTRY {"type": "EVENT", "msg": "bench"} B %s %d %.6f' % (pane, n, time.time()),
          flush=True)
    t += 0.1
    time.sleep(max(0.0, t - time.time()))
"""

AGENT = r"""
import random, sys, time
w = sys.stdout.write
random.seed(7)
frames = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
n = 0
w("\x1b[2J")
while True:
    n += 1
    busy_until = time.time() + random.uniform(0.6, 1.4)
    i = 0
    while time.time() < busy_until:
        w("\x1b[H\x1b[2K✻ Reticulating… %s (%ds · esc to interrupt)\x1b[K\r\n\x1b[2K\x1b[J"
          % (frames[i % 10], i // 10))
        sys.stdout.flush(); i += 1; time.sleep(0.08)
    w("\x1b[H\x1b[2K Do you want to proceed? (state S %d %.6f)\x1b[K\r\n"
      "\x1b[2K ❯ 1. Yes\r\n\x1b[2K   2. No, and tell Claude what to do differently\x1b[J"
      % (n, time.time()))
    sys.stdout.flush()
    time.sleep(random.uniform(0.5, 1.0))
"""

MARK = re.compile(r"B (\S+) (\d+) (\d+\.\d+)")
STATE = re.compile(r"state S (\d+) (\d+\.\d+)")


@dataclass
class Result:
    """CPU in seconds per minute: the reader's own, and the tmux server's while it ran."""

    name: str
    own: float
    server: float
    latencies: list[float] = field(default_factory=list)
    lost: int = 0
    received: int = 0
    server_calm: float = 0.0  # the server's rate with no reader (phase() measures it)

    @property
    def server_extra(self) -> float:
        return max(0.0, self.server - self.server_calm)

    @property
    def cpu_s_per_min(self) -> float:
        return self.own + self.server_extra

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000


class Tmux:
    def __init__(self) -> None:
        self.name = f"sentry-bench-{uuid.uuid4().hex[:8]}"

    def run(self, *args: str) -> str:
        out = subprocess.run(
            ["tmux", "-f", "/dev/null", "-L", self.name, *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if out.returncode != 0:
            raise SystemExit(f"tmux {' '.join(args[:2])}: {out.stderr.strip()}")
        return out.stdout

    def kill(self) -> None:
        stop_private_server(self.name)

    def server_pid(self) -> int:
        return int(self.run("display-message", "-p", "#{pid}").strip())


def make_panes(tm: Tmux, commands: list[str], per_session: int = 10) -> None:
    """All panes in a few tmux calls: ``;``-chained new-session/new-window."""
    args: list[str] = []
    for i, cmd in enumerate(commands):
        if i % per_session == 0:
            if args:
                tm.run(*args)
                args = []
            args += [
                "new-session",
                "-d",
                "-s",
                f"s{i // per_session}",
                "-x",
                "120",
                "-y",
                "30",
                cmd,
            ]
        else:
            args += [";", "new-window", "-d", "-t", f"s{i // per_session}", cmd]
    if args:
        tm.run(*args)


def own_cpu() -> float:
    """This process, every thread, and its children: the control clients while they run,
    and the baseline's reaped ``tmux capture-pane`` processes."""
    return process_cpu(os.getpid(), descendants=True)


SCRIPTS = Path(tempfile.mkdtemp(prefix="sentry-bench-"))


def script(name: str, code: str) -> str:
    path = SCRIPTS / name
    path.write_text(code)
    return f"{sys.executable} {path}"


def printer(tag: str) -> str:
    return f"{script('printer.py', PRINTER)} {tag}"


QUIET = "sleep 100000"
CALM_S = 5.0  # seconds of the server alone, before and after each reader


def phase(
    label: str,
    commands: list[str],
    seconds: float,
    reader: str,
    screen_mode: Callable[[PaneInfo], bool] = lambda p: False,
) -> Result:
    tm = Tmux()
    try:
        make_panes(tm, commands)
        spid = tm.server_pid()
        time.sleep(2.0)  # printers start
        before = calm_rate(spid)
        if reader == "watcher":
            res = run_watcher(tm, spid, seconds, screen_mode)
        else:
            res = run_baseline(tm, spid, seconds)
        # The server's own rate drifts by tens of percent between windows on a shared
        # machine; the mean of one window before and one after the reader halves the bias.
        after = calm_rate(spid)
        res.server_calm = (before + after) / 2 * 60.0
        res.name = f"{label} / {reader}"
        if os.environ.get("BENCH_DEBUG"):
            print(f"   server calm {before * 60:.2f} → {after * 60:.2f} s/min", file=sys.stderr)
        return res
    finally:
        tm.kill()


def calm_rate(spid: int, seconds: float = CALM_S) -> float:
    """The server's CPU per second with the printers running and no reader attached."""
    t0, c0 = time.monotonic(), process_cpu(spid)
    time.sleep(seconds)
    return (process_cpu(spid) - c0) / (time.monotonic() - t0)


@dataclass
class Tally:
    """Received markers: latency per line and sequence numbers per printer."""

    start: float
    end: float = float("inf")
    lat: list[float] = field(default_factory=list)
    seqs: dict[str, set[int]] = field(default_factory=dict)
    states: dict[int, float] = field(default_factory=dict)

    def line(self, text: str, now: float) -> None:
        m = MARK.search(text)
        if not m:
            return
        ts = float(m[3])
        if ts < self.start:
            return
        self.seqs.setdefault(m[1], set()).add(int(m[2]))
        if ts <= self.end:
            self.lat.append(now - ts)

    def screen(self, text: str, now: float) -> None:
        for m in STATE.finditer(text):
            n, ts = int(m[1]), float(m[2])
            if ts >= self.start and n not in self.states:
                self.states[n] = now - ts

    def lost(self) -> tuple[int, int]:
        lost = received = 0
        for seqs in self.seqs.values():
            received += len(seqs)
            lost += max(seqs) - min(seqs) + 1 - len(seqs)
        return lost, received


def run_watcher(
    tm: Tmux, spid: int, seconds: float, screen_mode: Callable[[PaneInfo], bool]
) -> Result:
    w = Watcher(tm.name, screen_mode=screen_mode)
    w.start()
    try:
        warm = time.monotonic() + 2.0
        while time.monotonic() < warm:
            w.events(0.2)
        s0, o0, t0 = process_cpu(spid), own_cpu(), time.monotonic()
        tally = Tally(time.time())
        end = t0 + seconds
        while time.monotonic() < end:
            for e in w.events(0.5):
                now = time.time()
                if isinstance(e, OutputLines):
                    for line in e.lines:
                        tally.line(line, now)
                elif isinstance(e, ScreenChanged):
                    tally.screen(e.text, now)
        elapsed = time.monotonic() - t0
        own = own_cpu() - o0  # the tmux control clients are our children: counted there
        server = process_cpu(spid) - s0
        if os.environ.get("BENCH_DEBUG"):
            print(f"   own {own:.2f}s server {server:.2f}s", file=sys.stderr)
        tally.end = time.time()
        grace = time.monotonic() + 1.0  # lines still in flight at the end are not lost
        while time.monotonic() < grace:
            for e in w.events(0.2):
                if isinstance(e, OutputLines):
                    for line in e.lines:
                        tally.line(line, time.time())
    finally:
        w.stop()
    return finish(tally, own, server, elapsed)


def run_baseline(tm: Tmux, spid: int, seconds: float) -> Result:
    panes = tm.run("list-panes", "-a", "-F", "#{pane_id}").split()
    seen: dict[str, set[str]] = {p: set() for p in panes}

    def sweep(tally: Tally | None) -> None:
        for p in panes:
            out = subprocess.run(
                ["tmux", "-L", tm.name, "capture-pane", "-p", "-J", "-t", p, "-S", "-2000"],
                capture_output=True,
                text=True,
            ).stdout
            now = time.time()
            lines = out.splitlines()
            old = seen[p]
            fresh = [x for x in lines if x not in old]  # the naive diff: by content
            seen[p] = set(lines)
            if tally is not None:
                for line in fresh:
                    tally.line(line, now)
                tally.screen("\n".join(lines[-30:]), now)

    sweep(None)
    s0, o0, t0 = process_cpu(spid), own_cpu(), time.monotonic()
    tally = Tally(time.time())
    nxt = t0
    while True:
        now = time.monotonic()
        if now >= t0 + seconds:
            break
        if now >= nxt:
            sweep(tally)
            nxt += 1.5
        time.sleep(max(0.0, min(nxt, t0 + seconds) - time.monotonic()))
    elapsed = time.monotonic() - t0
    own = own_cpu() - o0
    server = process_cpu(spid) - s0
    tally.end = time.time() - 1.5
    sweep(tally)
    return finish(tally, own, server, elapsed)


def finish(tally: Tally, own: float, server: float, elapsed: float) -> Result:
    """Per-minute figures (the server's calm rate is known only once the reader stops)."""
    per_min = 60.0 / elapsed
    lost, received = tally.lost()
    lat = tally.lat or list(tally.states.values())
    return Result("", own * per_min, server * per_min, lat, lost, received)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="measured seconds per phase")
    ap.add_argument("--panes", type=int, default=50)
    ap.add_argument("--busy", type=int, default=5, help="printing panes in the typical load")
    ap.add_argument("--only", choices=["typical", "stress", "agent"], action="append")
    ap.add_argument(
        "--repeat", type=int, default=1, help="runs per phase; the median-CPU run is shown"
    )
    args = ap.parse_args()
    n, busy = args.panes, args.busy
    loads = {
        "typical": [printer(f"p{i}") if i < busy else QUIET for i in range(n)],
        "stress": [printer(f"p{i}") for i in range(n)],
        "agent": [script("agent.py", AGENT)] + [QUIET] * 9,
    }
    rows: list[tuple[Result, list[float]]] = []
    for load in args.only or list(loads):
        for reader in ("watcher", "baseline"):
            mode: Callable[[PaneInfo], bool] = (
                (lambda p: p.command.startswith("python")) if load == "agent" else (lambda p: False)
            )
            runs: list[Result] = []
            for i in range(args.repeat):
                print(
                    f"… {load} / {reader} ({args.seconds:g} s, run {i + 1}/{args.repeat})",
                    file=sys.stderr,
                    flush=True,
                )
                runs.append(phase(load, loads[load], args.seconds, reader, mode))
            runs.sort(key=lambda r: r.cpu_s_per_min)
            rows.append((runs[(len(runs) - 1) // 2], [r.cpu_s_per_min for r in runs]))
    print(
        f"\n{args.seconds:g} s per phase, {tmux_v()}, {os.cpu_count()} cores, "
        f"host speed: {loop_ms():.0f} ms per million Python loop steps"
    )
    head = f"{'load / reader':<22} {'CPU s/min':>9} {'(own':>7} {'+tmux)':>7} "
    head += f"{'p50 ms':>8} {'p95 ms':>8} {'lines':>6} {'lost':>5}"
    if args.repeat > 1:
        head += f"  {'CPU of every run':<16}"
    print(head)
    print("-" * len(head))
    for r, cpus in rows:
        line = (
            f"{r.name:<22} {r.cpu_s_per_min:>9.2f} {r.own:>7.2f} {r.server_extra:>7.2f} "
            f"{r.pct(0.5):>8.1f} {r.pct(0.95):>8.1f} {r.received:>6} {r.lost:>5}"
        )
        if len(cpus) > 1:
            line += "  " + " ".join(f"{c:.2f}" for c in cpus)
        print(line)
    print("(1 % of one core = 0.6 CPU s/min; agent latency = prompt drawn → screen event)")
    if args.repeat > 1:
        print(f"(each row is the run with the median CPU of {args.repeat})")
    return 0


def loop_ms() -> float:
    """CPU seconds per minute depend on the host: this says how fast this one runs Python."""
    t = time.process_time()
    n = 0
    for i in range(1_000_000):
        n += i
    return (time.process_time() - t) * 1000


def tmux_v() -> str:
    return subprocess.run(["tmux", "-V"], capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        raise SystemExit(130) from None
