"""CPU seconds of a process, counted the same way by every benchmark here."""

from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int, *, descendants: bool = False) -> float:
    """CPU seconds of ``pid``, every thread; 0 for a process that is gone.

    Each thread's ``schedstat`` is the scheduler's exact run time in ns. ``stat`` counts whole
    clock ticks, too coarse for a process that runs 100 µs at a time, so it is only the
    fallback. With ``descendants``, the children count too: those still running
    (recursively) and those already waited for (a poller's short-lived ``tmux`` calls).
    """
    proc = Path(f"/proc/{pid}")
    try:
        fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        tasks = list((proc / "task").iterdir())
    except OSError:
        return 0.0
    total, children = 0.0, []
    try:
        for task in tasks:
            total += int((task / "schedstat").read_text().split()[0]) / 1e9
            if descendants:
                children += (task / "children").read_text().split()
    except FileNotFoundError:  # a thread ended between listing and reading: skip it
        pass
    except OSError:  # no schedstat on this kernel
        total = (int(fields[11]) + int(fields[12])) / TICK
    if descendants:
        total += (int(fields[13]) + int(fields[14])) / TICK
        total += sum(process_cpu(int(child), descendants=True) for child in children)
    return total
