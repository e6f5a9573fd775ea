"""store.py on real TinyDB files: round trips, recovery from bad files, real kills, the lock."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import types
import typing
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentry_tui import model, store
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
from tests.conftest import wait_for

# --------------------------------------------------------------------------------------------
# Generated states: a strategy built from the model's own type hints, so a field added to the
# model later is generated (and so round-trip tested) without touching this file.

_text = st.text(max_size=12)


def strategy_for(tp: Any) -> st.SearchStrategy[Any]:
    origin = typing.get_origin(tp)
    if origin is types.UnionType or origin is typing.Union:
        return st.one_of(*(strategy_for(a) for a in typing.get_args(tp)))
    if origin is typing.Literal:
        return st.sampled_from(typing.get_args(tp))
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return st.lists(strategy_for(args[0]), max_size=3).map(tuple)
        return st.tuples(*(strategy_for(a) for a in args))
    if origin in (Mapping, dict):
        key_t, val_t = typing.get_args(tp)
        return st.dictionaries(strategy_for(key_t), strategy_for(val_t), max_size=3)
    if tp is type(None):
        return st.none()
    if tp is PaneRef:
        return st.builds(
            PaneRef,
            st.text(min_size=1, max_size=10),
            st.integers(0, 999).map(lambda n: f"%{n}"),
        )
    if isinstance(tp, type) and issubclass(tp, Enum):
        return st.sampled_from(list(tp))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp, vars(model))
        kwargs = {f.name: strategy_for(hints[f.name]) for f in dataclasses.fields(tp)}
        return st.builds(tp, **kwargs)
    if tp is str:
        return _text
    if tp is bool:
        return st.booleans()
    if tp is int:
        return st.integers(-(2**40), 2**40)
    if tp is float:
        return st.floats(allow_nan=False, width=64)
    if tp is Any:
        return st.none() | st.integers() | _text
    raise TypeError(f"no strategy for {tp}")


states = strategy_for(EngineState)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(states)
def test_state_round_trips_exactly_through_json(state: EngineState) -> None:
    doc = store.state_to_doc(state)
    text = json.dumps(doc, ensure_ascii=False)
    assert store.state_from_doc(json.loads(text)) == state


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(states)
def test_state_round_trips_through_the_store(tmp_path: Path, state: EngineState) -> None:
    paths = Paths(tmp_path / f"s{abs(hash(repr(state))) % 10**9}")
    s = store.Store(paths)
    s.load()
    s.save(state, {"a/%1": "7"}, force=True)
    s.close()
    loaded, positions, messages = store.Store(paths).load()
    assert (loaded, positions, messages) == (state, {"a/%1": "7"}, [])


# --------------------------------------------------------------------------------------------
# A realistic state for the rest


def sample_state(n: int = 1) -> EngineState:
    ref = PaneRef("4242-1700000000", "%3")
    run = PipelineRun(
        run_id=f"r{n}",
        project="storyapp",
        status=RunStatus.RUNNING,
        stages=(
            StageState("code", StageStatus.SUCCEEDED, attempts=1, started_at=1.0, finished_at=2.0),
            StageState("deploy", StageStatus.WAITING_APPROVAL, waiting_for="approval"),
        ),
        started_at=1.0,
        current=1,
    )
    approval = Approval("k3x9", "storyapp", "deploy", f"r{n}", Gate.BEFORE, 3.0, "npm run deploy")
    return EngineState(
        runs={"storyapp": run},
        approvals={"k3x9": approval},
        panes={ref.key: PaneStatus(PaneInfo(ref, "storyapp", "shell"), PaneState.IDLE, 2.5)},
        journal={"a7": JournalEntry("a7", ref.key, "npm test", "intended", 2.0, "storyapp")},
        used_ids=("k3x9",),
        counter=n,
    )


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths(tmp_path / "state")


def test_state_dir_is_private_and_fresh_load_is_empty(paths: Paths) -> None:
    s = store.Store(paths)
    assert (paths.state_dir.stat().st_mode & 0o777) == 0o700
    assert s.load() == (EngineState(), {}, [])
    assert not paths.db.exists()  # nothing written until there is something to write


def test_save_skips_unchanged_state_and_keeps_last_good_copy(paths: Paths) -> None:
    s = store.Store(paths)
    s.load()
    assert s.save(sample_state(1), {"p": "1"}) is True
    inode = paths.db.stat().st_ino
    assert s.save(sample_state(1), {"p": "1"}) is False
    assert paths.db.stat().st_ino == inode  # not rewritten
    assert s.save(sample_state(2), {"p": "1"}) is True
    assert (paths.db.stat().st_mode & 0o777) == 0o600
    # the previous generation is the last good copy
    bak = store.Store(Paths(paths.state_dir))
    assert bak._read_file(s.backup_path)["state"] == store.state_to_doc(sample_state(1))
    assert store.Store(paths).load() == (sample_state(2), {"p": "1"}, [])


def _two_generations(paths: Paths) -> store.Store:
    s = store.Store(paths)
    s.load()
    s.save(sample_state(1), {"p": "1"})
    s.save(sample_state(2), {"p": "2"})
    s.close()
    return s


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"\x00\xffgarbage", "not valid JSON"),
        (b'{"engine": {"1": {"schema": 1, "state": {"runs"', "not valid JSON"),
        (b"", "empty file"),
        (b"[1, 2]", "not a TinyDB document"),
        (b'{"engine": {"1": {"schema": 1, "state": {"counter": "x"}}}}', "does not match"),
        (b'{"_default": {}}', "no engine document"),
    ],
)
def test_bad_state_file_is_moved_aside_and_last_good_copy_used(
    paths: Paths, content: bytes, why: str
) -> None:
    _two_generations(paths)
    paths.db.write_bytes(content)
    state, positions, messages = store.Store(paths).load()
    assert (state, positions) == (sample_state(1), {"p": "1"})
    assert len(messages) == 1, messages
    msg = messages[0]
    aside = next(paths.state_dir.glob("state.json.corrupt-*"))
    assert aside.read_bytes() == content  # moved, never deleted
    assert f"state file {paths.db}" in msg and str(aside) in msg and why in msg
    assert f"using last good copy {paths.db}.bak" in msg
    # the recovered state is written back at once and loads cleanly next time
    assert store.Store(paths).load() == (sample_state(1), {"p": "1"}, [])


def test_newer_schema_is_moved_aside_with_both_paths_named(paths: Paths) -> None:
    s = store.Store(paths)
    s.load()
    s.save(sample_state(1), {})
    s.close()
    doc = json.loads(paths.db.read_text())
    doc["engine"]["1"]["schema"] = store.SCHEMA_VERSION + 1
    paths.db.write_text(json.dumps(doc))
    state, _, messages = store.Store(paths).load()
    assert state == EngineState()  # no older copy exists: start empty
    aside = next(paths.state_dir.glob("state.json.newer-*"))
    assert json.loads(aside.read_text()) == doc
    assert str(paths.db) in messages[0] and str(aside) in messages[0]
    assert "newer" in messages[0] and "empty state" in messages[0]


def test_both_copies_bad_means_empty_state_and_both_kept(paths: Paths) -> None:
    _two_generations(paths)
    paths.db.write_bytes(b"{")
    (paths.state_dir / "state.json.bak").write_bytes(b"")
    state, positions, messages = store.Store(paths).load()
    assert (state, positions) == (EngineState(), {})
    assert len(list(paths.state_dir.glob("state.json.corrupt-*"))) == 1
    assert len(list(paths.state_dir.glob("state.json.bak.corrupt-*"))) == 1
    assert "unusable too" in messages[0] and "empty state" in messages[0]


def test_readonly_load_moves_nothing(paths: Paths) -> None:
    _two_generations(paths)
    paths.db.write_bytes(b"garbage")
    state, _, messages = store.Store(paths).load(readonly=True)
    assert state == sample_state(1)
    assert paths.db.read_bytes() == b"garbage"
    assert not list(paths.state_dir.glob("*corrupt*"))
    assert "unusable" in messages[0]


def test_migrate_from_version_0() -> None:
    v0 = {"runs": {}, "counter": 5, "used_ids": ["ab"]}
    doc = store.migrate(v0)
    assert doc["schema"] == store.SCHEMA_VERSION
    assert store.state_from_doc(doc["state"]) == EngineState(counter=5, used_ids=("ab",))
    with pytest.raises(store.StateFileError, match="newer"):
        store.migrate({"schema": store.SCHEMA_VERSION + 1})


def test_old_file_without_new_fields_loads_with_defaults(paths: Paths) -> None:
    s = store.Store(paths)
    s.load()
    s.save(sample_state(1), {})
    s.close()
    doc = json.loads(paths.db.read_text())
    pane = next(iter(doc["engine"]["1"]["state"]["panes"].values()))
    del pane["reason"]  # a field this file predates
    paths.db.write_text(json.dumps(doc))
    state, _, messages = store.Store(paths).load()
    assert messages == [] and state == sample_state(1)


def test_journal_uncertain_marks_only_intended_sends() -> None:
    state = dataclasses.replace(
        sample_state(),
        journal={
            "a1": JournalEntry("a1", "s/%1", "x", "intended", 1.0),
            "a2": JournalEntry("a2", "s/%1", "y", "done", 1.0),
        },
    )
    after = store.journal_uncertain(state)
    assert after.journal["a1"].status == "uncertain"
    assert after.journal["a2"].status == "done"
    assert store.journal_uncertain(after) is after


# --------------------------------------------------------------------------------------------
# Real kills

CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from sentry_tui import store
    from sentry_tui.config import Paths
    from tests.test_store import sample_state
    s = store.Store(Paths(Path(sys.argv[1])))
    s.load()
    s.save(sample_state(int(sys.argv[2])), {"p": sys.argv[2]})
    print("saved", flush=True)
    """
)


def _child_save(paths: Paths, n: int, crash_at: str, log: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SENTRY_TUI_CRASH_AT": crash_at, "SENTRY_TUI_CRASH_LOG": str(log)}
    root = str(Path(__file__).parent.parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(paths.state_dir), str(n)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(("point", "expect"), [("mid_state_write", 1), ("after_state_rename", 2)])
def test_kill_during_state_write_leaves_a_loadable_state(
    paths: Paths, tmp_path: Path, point: str, expect: int
) -> None:
    s = store.Store(paths)
    s.load()
    s.save(sample_state(1), {"p": "1"})
    s.close()
    log = tmp_path / "crash.log"
    proc = _child_save(paths, 2, point, log)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert "saved" not in proc.stdout
    assert log.read_text().split() == [point]
    state, positions, messages = store.Store(paths).load()
    assert (state, positions, messages) == (sample_state(expect), {"p": str(expect)}, [])
    assert not list(paths.state_dir.glob(".*.tmp"))  # the dead writer's temp is cleaned up


def test_no_crash_when_another_point_is_named(paths: Paths, tmp_path: Path) -> None:
    proc = _child_save(paths, 3, "mid_capture", tmp_path / "crash.log")
    assert proc.returncode == 0 and "saved" in proc.stdout
    assert store.Store(paths).load()[0] == sample_state(3)


# --------------------------------------------------------------------------------------------
# History


def test_history_appends_reads_back_and_rotates(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "HISTORY_MAX_BYTES", 2000)
    s = store.Store(paths)
    for batch in range(80):
        s.append_history({"n": batch * 3 + i, "pad": "x" * 40} for i in range(3))
    files = s.history_files()
    assert len(files) == store.HISTORY_KEEP + 1  # bounded
    assert all(f.stat().st_size <= 2000 for f in files)
    assert (paths.history.stat().st_mode & 0o777) == 0o600
    tail = s.read_history(10)
    assert [r["n"] for r in tail] == list(range(230, 240))
    everything = s.read_history(10_000)
    ns = [r["n"] for r in everything]
    assert ns == list(range(ns[0], 240)) and ns[0] > 0  # contiguous; the oldest rotated away


def test_history_survives_a_torn_line(paths: Paths) -> None:
    s = store.Store(paths)
    s.append_history([{"n": 1}])
    with paths.history.open("ab") as f:
        f.write(b'{"n": 2, "tor')  # a writer killed mid-line
    s.append_history([{"n": 3}, {"n": 4}])
    assert [r["n"] for r in s.read_history(10)] == [1, 3, 4]


def test_history_kill_mid_append_loses_only_the_batch(paths: Paths, tmp_path: Path) -> None:
    s = store.Store(paths)
    s.append_history([{"n": 1}])
    code = (
        "import sys; from pathlib import Path; from sentry_tui import store;"
        "from sentry_tui.config import Paths;"
        "store.Store(Paths(Path(sys.argv[1]))).append_history([{'n': 2, 'pad': 'x' * 50}])"
    )
    log = tmp_path / "crash.log"
    env = {
        **os.environ,
        "SENTRY_TUI_CRASH_AT": "mid_history_append",
        "SENTRY_TUI_CRASH_LOG": str(log),
    }
    proc = subprocess.run(
        [sys.executable, "-c", code, str(paths.state_dir)], env=env, timeout=60, check=False
    )
    assert proc.returncode == -signal.SIGKILL
    assert log.read_text().split() == ["mid_history_append"]
    assert not paths.history.read_bytes().endswith(b"\n")  # really torn
    s.append_history([{"n": 3}])
    assert [r["n"] for r in s.read_history(10)] == [1, 3]


# --------------------------------------------------------------------------------------------
# The lock


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from sentry_tui import store
    from sentry_tui.config import Paths
    lock = store.EngineLock(Paths(Path(sys.argv[1])))
    lock.acquire()
    print("locked", flush=True)
    sys.stdin.read()
    """
)


def test_second_engine_is_told_who_holds_the_lock(paths: Paths) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(paths.state_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "locked"
        lock = store.EngineLock(paths)
        with pytest.raises(store.LockHeld) as info:
            lock.acquire()
        assert info.value.pid == proc.pid
        assert str(info.value) == (
            f"another engine (pid {proc.pid}) is running for {paths.state_dir}"
        )
        assert lock.holder() == proc.pid
        assert store.lock_holder(paths) == proc.pid
        # a store opened by a second process while the engine runs never writes
        _two_generations_readonly_check(paths)
    finally:
        proc.kill()  # SIGKILL: no cleanup runs, the kernel drops the flock
        proc.wait(timeout=20)
    wait_for(lambda: store.lock_holder(paths) is None, timeout=20)
    lock = store.EngineLock(paths)
    lock.acquire()
    try:
        assert lock.holder() == os.getpid()
        assert paths.lock.read_text().strip() == str(os.getpid())
    finally:
        lock.release()
    assert store.lock_holder(paths) is None


def _two_generations_readonly_check(paths: Paths) -> None:
    paths.db.write_bytes(b"garbage")
    state, _, messages = store.Store(paths).load()
    assert state == EngineState() and "unusable" in messages[0]
    assert paths.db.read_bytes() == b"garbage"  # not moved: the engine owns the file


def test_lock_context_manager_and_no_holder_without_file(paths: Paths) -> None:
    assert store.lock_holder(paths) is None
    with store.EngineLock(paths) as lock:
        assert lock.held
        with pytest.raises(store.LockHeld):
            store.EngineLock(paths).acquire()
    assert store.lock_holder(paths) is None


# --------------------------------------------------------------------------------------------
# Snapshot


def test_snapshot_is_published_atomically_with_a_timestamp(paths: Paths) -> None:
    assert store.read_snapshot(paths) is None
    state = sample_state()
    store.write_snapshot(paths, {"state": store.state_to_doc(state)})
    doc = store.read_snapshot(paths)
    assert doc is not None
    assert store.state_from_doc(doc["state"]) == state
    assert doc["pid"] == os.getpid() and doc["written_at"] > 0
    assert not list(paths.state_dir.glob(".*.tmp"))
    paths.snapshot.write_text("{half")
    assert store.read_snapshot(paths) is None


def test_whole_snapshot_round_trips() -> None:
    policy = model.Policy(
        projects=(
            model.Project(
                name="storyapp",
                panes={"shell": model.PaneRole("shell", "storyapp", "shell")},
                stages=(
                    model.Stage(
                        "test",
                        "shell",
                        run="npm test",
                        done=(model.Condition(exit=0),),
                        fail=(model.Condition(exit="nonzero"), model.Condition(regex="ERR!")),
                        await_=model.Await("github_actions", {"repo": "me/app"}, 60.0),
                    ),
                ),
            ),
        ),
        profiles={"claude": {"waiting": ("Do you want",)}},
    )
    ref = PaneRef("1-2", "%1")
    snap = model.Snapshot(
        state=sample_state(),
        policy=policy,
        now=5.0,
        tails={ref.key: "\x1b[1mhi\x1b[0m"},
        markers={ref.key: (model.Marker("STATUS", {"stage": "test", "ok": True}),)},
        warnings=("w",),
    )
    doc = json.loads(json.dumps(store.snapshot_to_doc(snap)))
    assert store.snapshot_from_doc(doc) == snap


def test_save_refuses_values_that_would_not_load_back(paths: Paths) -> None:
    s = store.Store(paths)
    s.load()
    with pytest.raises(TypeError, match="read positions"):
        s.save(sample_state(), {"a/%1": 7})  # type: ignore[dict-item]
    wrong = dataclasses.replace(sample_state(), counter="3")  # type: ignore[arg-type]
    with pytest.raises(AssertionError, match="would not load"):
        s.save(wrong, {})  # caught under tests (SENTRY_TUI_TEST), before it reaches the disk
    assert not paths.db.exists()


LOOP = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from sentry_tui import store
    from sentry_tui.config import Paths
    from tests.test_store import sample_state
    s = store.Store(Paths(Path(sys.argv[1])))
    state, _, _ = s.load()
    n = state.counter
    while True:
        n += 1
        s.save(sample_state(n), {"p": str(n)})
        s.append_history([{"n": n}])
        print(n, flush=True)
    """
)


@pytest.mark.parametrize("after", [3, 17, 41])
def test_kill_at_a_random_moment_leaves_the_last_or_the_next_state(
    paths: Paths, after: int
) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    for round_ in range(2):
        proc = subprocess.Popen(
            [sys.executable, "-c", LOOP, str(paths.state_dir)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        seen = [int(proc.stdout.readline()) for _ in range(after)]
        proc.send_signal(signal.SIGKILL)
        rest = proc.stdout.read().split()
        proc.wait(timeout=20)
        last = int(rest[-1]) if rest else seen[-1]
        state, positions, messages = store.Store(paths).load()
        assert messages == [], (round_, messages)
        assert state.counter in (last, last + 1)
        assert state == sample_state(state.counter) and positions == {"p": str(state.counter)}
        ns = [r["n"] for r in store.Store(paths).read_history(10_000)]
        assert ns == sorted(set(ns)) and ns[-1] >= last  # nothing printed was lost
