"""What one state write costs, and whether the state file grows with the number of events.

Run: ``python bench/store.py [--events 10000] [--dir /var/tmp]``

A simulated engine (2 projects, 5 panes; runs cycling through their stages; approvals opened
and decided; sends journalled intended → done; signed-marker nonces; notes) goes through
``--events`` events. After each one the state is saved, as the runner does, through:

- ``atomic``: store.Store (AtomicJSONStorage: temp file, fsync, rename, fsync dir, .bak link);
- ``stock``: the same document through TinyDB's stock JSONStorage (in place, one fsync);
- ``naive``: stock JSONStorage with every event also inserted into TinyDB, the design the
  store avoids (history in TinyDB rewrites an ever larger file); only the first
  ``--naive-events`` events, since it gets slow.

The bounds mirror engine.py: nonces 2000, approval ids 5000, notes 50, decided approvals kept
for the last 50. The directory must be on a disk, not tmpfs (fsync costs nothing on tmpfs);
the script prints the filesystem type it measured on.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tinydb import TinyDB
from tinydb.storages import JSONStorage
from tinydb.table import Document

from sentry_tui import store
from sentry_tui.config import Paths
from sentry_tui.model import (
    Approval,
    EngineState,
    Gate,
    JournalEntry,
    PaneInfo,
    PaneRef,
    PaneState,
    PaneStatus,
    PipelineRun,
    RunStatus,
    StageState,
    StageStatus,
)

PROJECTS = {
    "storyapp": ("code", "test", "build", "predeploy", "deploy"),
    "points": ("code", "test", "deploy"),
}
SERVER = "48213-1732460000"
MAX_NONCES, MAX_USED_IDS, MAX_NOTES, DECIDED_KEEP = 2000, 5000, 50, 50


class Sim:
    """A plausible engine state after each of a stream of events (not the real engine)."""

    def __init__(self, seed: int = 7) -> None:
        self.rnd = random.Random(seed)
        self.now = 1_732_460_000.0
        self.counter = 0
        panes = {}
        for i, (session, window) in enumerate(
            [
                ("storyapp", "agent"),
                ("storyapp", "shell"),
                ("points", "agent"),
                ("points", "shell"),
                ("misc", "logs"),
            ]
        ):
            ref = PaneRef(SERVER, f"%{i}")
            info = PaneInfo(ref, session, window, command="claude" if window == "agent" else "bash")
            roles = (f"{session}.{window}",) if session in PROJECTS else ()
            panes[ref.key] = PaneStatus(info, PaneState.IDLE, self.now, roles=roles)
        self.state = EngineState(panes=panes)
        self.positions = {k: "0" for k in panes}
        for project in PROJECTS:
            self._new_run(project)

    def _id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def _new_run(self, project: str) -> None:
        run = PipelineRun(
            run_id=self._id("r"),
            project=project,
            status=RunStatus.RUNNING,
            stages=tuple(StageState(name) for name in PROJECTS[project]),
            started_at=self.now,
        )
        self.state = dataclasses.replace(self.state, runs={**self.state.runs, project: run})

    def step(self) -> dict[str, Any]:
        """Apply one random event; returns its history record."""
        self.now += self.rnd.uniform(0.05, 3.0)
        s = self.state
        roll = self.rnd.random()
        key = self.rnd.choice(list(s.panes))
        self.positions[key] = str(int(self.positions[key]) + self.rnd.randint(1, 40))
        if roll < 0.55:  # a pane changed state or printed a line
            pane = s.panes[key]
            new = dataclasses.replace(
                pane,
                state=self.rnd.choice([PaneState.BUSY, PaneState.IDLE, PaneState.WAITING]),
                since=self.now,
                last_line=f"line {self.counter} " + "x" * self.rnd.randint(0, 80),
            )
            self.state = dataclasses.replace(s, panes={**s.panes, key: new})
            return {"ts": self.now, "kind": "state", "pane": key, "state": new.state.value}
        if roll < 0.80:  # a signed marker: a nonce remembered, the run moves on
            nonce = os.urandom(12).hex()
            self.state = dataclasses.replace(
                s, seen_nonces=(*s.seen_nonces, nonce)[-MAX_NONCES:], counter=self.counter
            )
            self._advance(self.rnd.choice(list(PROJECTS)))
            return {"ts": self.now, "kind": "marker", "pane": key, "nonce": nonce}
        if roll < 0.90:  # a send: intended, then done and dropped from the open journal
            aid = self._id("a")
            entry = JournalEntry(
                aid,
                key,
                "sentry-tui wrap --stage test -- npm test",
                "intended",
                self.now,
                "storyapp",
                "test",
            )
            journal = {k: v for k, v in s.journal.items() if self.rnd.random() < 0.3}
            journal[aid] = entry
            self.state = dataclasses.replace(s, journal=journal)
            return {"ts": self.now, "kind": "action_send", "action_id": aid}
        if roll < 0.97:  # an approval opened or decided
            pending = [a for a in s.approvals.values() if a.status == "pending"]
            approvals = dict(s.approvals)
            if pending and self.rnd.random() < 0.6:
                a = self.rnd.choice(pending)
                approvals[a.approval_id] = dataclasses.replace(
                    a, status="approved", decided_at=self.now, decided_by="cli"
                )
            else:
                aid = f"{self.rnd.getrandbits(20):05x}"
                approvals[aid] = Approval(
                    aid,
                    "storyapp",
                    "deploy",
                    "r1",
                    Gate.BEFORE,
                    self.now,
                    "npm run deploy",
                    "3f2a9c1",
                    "42 passed",
                )
                s = dataclasses.replace(s, used_ids=(*s.used_ids, aid)[-MAX_USED_IDS:])
            decided = sorted(
                (a for a in approvals.values() if a.status != "pending"),
                key=lambda a: a.decided_at or 0,
            )
            for old in decided[:-DECIDED_KEEP]:
                del approvals[old.approval_id]
            self.state = dataclasses.replace(s, approvals=approvals)
            return {"ts": self.now, "kind": "approval", "n": len(approvals)}
        note = f"note {self.counter}: pane {key} matched no role"
        self.state = dataclasses.replace(s, notes=(*s.notes, note)[-MAX_NOTES:])
        return {"ts": self.now, "kind": "note", "message": note}

    def _advance(self, project: str) -> None:
        run = self.state.runs[project]
        if run.status.finished or run.current >= len(run.stages):
            self._new_run(project)
            return
        stages = list(run.stages)
        stages[run.current] = dataclasses.replace(
            stages[run.current],
            status=StageStatus.SUCCEEDED,
            attempts=stages[run.current].attempts + 1,
            started_at=self.now - 5,
            finished_at=self.now,
            message="exit 0",
        )
        current = run.current + 1
        status = RunStatus.SUCCEEDED if current >= len(stages) else RunStatus.RUNNING
        if status is RunStatus.RUNNING:
            stages[current] = dataclasses.replace(
                stages[current], status=StageStatus.RUNNING, started_at=self.now
            )
        new = dataclasses.replace(
            run,
            stages=tuple(stages),
            current=current,
            status=status,
            finished_at=self.now if status.finished else None,
        )
        self.state = dataclasses.replace(self.state, runs={**self.state.runs, project: new})


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def fs_type(path: Path) -> str:
    out = subprocess.run(["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True)
    return out.stdout.strip() or "?"


def run(events: int, naive_events: int, base: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="sentry-bench-", dir=base))
    try:
        fstype = fs_type(work)
        if "tmpfs" in fstype or "ramfs" in fstype:
            sys.exit(f"{work} is on {fstype}: pick a directory on a disk with --dir")
        print(f"directory {work} on {fstype}; {events} events; python {sys.version.split()[0]}")
        marks = {events * k // 8 for k in range(1, 9)}

        sim = Sim()
        st = store.Store(Paths(work / "atomic"))
        st.load()
        stock_path = work / "stock" / "state.json"
        stock_path.parent.mkdir()
        stock = TinyDB(str(stock_path), storage=JSONStorage)
        atomic_ms: list[float] = []
        stock_ms: list[float] = []
        hist_ms: list[float] = []
        sizes: dict[int, tuple[int, int]] = {}
        for n in range(1, events + 1):
            record = sim.step()
            t0 = time.perf_counter()
            wrote = st.save(sim.state, sim.positions)
            t1 = time.perf_counter()
            if wrote:
                atomic_ms.append((t1 - t0) * 1000)
            t0 = time.perf_counter()
            st.append_history([record])
            hist_ms.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()  # the same work as save: encode, then write
            doc = {
                "schema": 1,
                "state": store.state_to_doc(sim.state),
                "positions": dict(sim.positions),
            }
            stock.table("engine").upsert(Document(doc, doc_id=1))
            stock_ms.append((time.perf_counter() - t0) * 1000)
            if n in marks:
                sizes[n] = (st.paths.db.stat().st_size, stock_path.stat().st_size)
        st.close()
        stock.close()
        # the state written last loads back to exactly what the simulation holds
        loaded, _, msgs = store.Store(Paths(work / "atomic")).load()
        assert loaded == sim.state and msgs == [], "round trip failed"

        naive_ms: list[float] = []
        naive_path = work / "naive" / "state.json"
        naive_path.parent.mkdir()
        naive = TinyDB(str(naive_path), storage=JSONStorage)
        sim = Sim()
        naive_size: dict[int, int] = {}
        for n in range(1, naive_events + 1):
            record = sim.step()
            doc = {
                "schema": 1,
                "state": store.state_to_doc(sim.state),
                "positions": dict(sim.positions),
            }
            t0 = time.perf_counter()
            naive.table("engine").upsert(Document(doc, doc_id=1))
            naive.table("history").insert(record)
            naive_ms.append((time.perf_counter() - t0) * 1000)
            if n in (naive_events // 10, naive_events):
                naive_size[n] = naive_path.stat().st_size
        naive.close()

        def row(name: str, ms: list[float], extra: str) -> None:
            print(
                f"| {name} | {len(ms)} | {statistics.median(ms):.2f} | {pct(ms, 95):.2f} "
                f"| {max(ms):.2f} | {extra} |"
            )

        print()
        print("| storage | writes | p50 ms | p95 ms | max ms | state file size |")
        print("|---|---|---|---|---|---|")
        kb = "; ".join(f"{s[0] / 1024:.1f} KiB at {n}" for n, s in sorted(sizes.items()))
        row("store.Store (atomic: temp+fsync+rename+dir fsync)", atomic_ms, kb)
        kb = "; ".join(f"{s[1] / 1024:.1f} KiB at {n}" for n, s in sorted(sizes.items()))
        row("TinyDB stock JSONStorage (in place, fsync)", stock_ms, kb)
        first = naive_ms[: len(naive_ms) // 10]
        last = naive_ms[-len(naive_ms) // 10 :]
        kb = "; ".join(f"{v / 1024:.1f} KiB at {n}" for n, v in sorted(naive_size.items()))
        row(f"naive: history in TinyDB too (first {naive_events})", naive_ms, kb)
        print(
            f"|   naive, first 10% of events | {len(first)} | {statistics.median(first):.2f} "
            f"| {pct(first, 95):.2f} | {max(first):.2f} | |"
        )
        print(
            f"|   naive, last 10% of events | {len(last)} | {statistics.median(last):.2f} "
            f"| {pct(last, 95):.2f} | {max(last):.2f} | |"
        )
        hist_total = sum(f.stat().st_size for f in st.history_files())
        row(
            "history.jsonl append (1 record, fsync)",
            hist_ms,
            f"{hist_total / 1024:.0f} KiB history, {len(st.history_files())} file(s)",
        )
        skipped = events - len(atomic_ms)
        print(f"\natomic writes skipped because nothing changed: {skipped}")
        print(
            json.dumps(
                {
                    "atomic_p50_ms": round(statistics.median(atomic_ms), 3),
                    "atomic_p95_ms": round(pct(atomic_ms, 95), 3),
                    "state_bytes": {str(n): s[0] for n, s in sorted(sizes.items())},
                }
            )
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--naive-events", type=int, default=2_000)
    parser.add_argument(
        "--dir", type=Path, default=Path("/var/tmp"), help="where to write (on a disk, not tmpfs)"
    )
    args = parser.parse_args()
    run(args.events, args.naive_events, args.dir)


if __name__ == "__main__":
    main()
