"""inbox.py on a real state dir: requests, answers, refusals, exactly-once under races and kills."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sentry_tui import inbox, store
from sentry_tui.config import Paths
from sentry_tui.model import (
    HUMAN_EVENTS,
    Approve,
    Cancel,
    Dismiss,
    Pause,
    Reject,
    Report,
    Resume,
    Retry,
    SendText,
    Skip,
    Start,
)

ROOT = Path(__file__).parent.parent


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths(tmp_path / "state")


def _names(d: Path) -> list[str]:
    return sorted(os.listdir(d)) if d.exists() else []


ALL = [
    Approve(by="cli", approval_id="k3x9"),
    Reject(by="cli", approval_id="k3x9", reason="not today"),
    Retry(by="cli", project="storyapp", stage="test"),
    Skip(by="cli", project="storyapp", stage="lint"),
    Cancel(by="cli", project="storyapp"),
    Start(by="cli", project="storyapp"),
    Pause(by="cli"),
    Resume(by="ui"),
    SendText(by="cli", pane="storyapp:agent.0", text="yes, go on — ünïcode"),
    Dismiss(by="cli", action_id="a12"),
]


def test_every_human_command_travels_through_the_inbox(paths: Paths) -> None:
    assert {type(e) for e in ALL} == set(HUMAN_EVENTS.values())
    ids = [inbox.submit(paths, e) for e in ALL]
    assert len(set(ids)) == len(ids)
    assert inbox.queued(paths) == len(ALL)
    assert (paths.inbox.stat().st_mode & 0o777) == 0o700
    assert all((os.stat(paths.inbox / f"{i}.json").st_mode & 0o777) == 0o600 for i in ids)
    events, messages = inbox.read_requests(paths)
    assert messages == []
    by_id = {e.request_id: e for e in events}
    for rid, sent in zip(ids, ALL, strict=True):
        got = by_id[rid]
        assert type(got) is type(sent)
        assert got == dataclasses.replace(sent, request_id=rid)
    assert inbox.queued(paths) == 0
    claimed = sorted(f"{i}.json" for i in ids)
    assert _names(inbox.processing_dir(paths)) == claimed  # claimed until answered
    assert inbox.read_requests(paths) == ([], [])  # each file once


def test_answer_reaches_the_waiting_sender_and_releases_the_claim(paths: Paths) -> None:
    rid = inbox.submit(paths, Approve(by="cli", approval_id="k3x9"))
    [event], _ = inbox.read_requests(paths)
    inbox.answer(paths, Report(event.request_id, True, "approved k3x9: deploy starts"))
    assert _names(inbox.processing_dir(paths)) == []
    report = inbox.wait_answer(paths, rid, timeout=10)
    assert report == Report(rid, True, "approved k3x9: deploy starts")
    assert _names(paths.outbox) == []  # consumed by its one waiter
    assert inbox.wait_answer(paths, rid, timeout=0.1) is None


def test_answer_written_by_another_process_while_waiting(paths: Paths) -> None:
    rid = inbox.submit(paths, Pause(by="cli"))
    code = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from sentry_tui import inbox
        from sentry_tui.config import Paths
        from sentry_tui.model import Report
        p = Paths(Path(sys.argv[1]))
        [e], _ = inbox.read_requests(p)
        inbox.answer(p, Report(e.request_id, False, "already paused"))
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(paths.state_dir)])
    try:
        assert inbox.wait_answer(paths, rid, timeout=20) == Report(rid, False, "already paused")
    finally:
        proc.wait(timeout=20)


def test_short_forms_from_a_phone(paths: Paths) -> None:
    inbox.ensure_dirs(paths)
    (paths.inbox / "approve-k3x9").write_text("")
    (paths.inbox / "reject-ab12.txt").write_text("tests are red\n\x1b[31mon CI\x1b[0m\n")
    (paths.inbox / "APPROVE-zz99").write_text("looks good")
    events, messages = inbox.read_requests(paths)
    assert messages == []
    got = sorted(events, key=lambda e: e.approval_id)  # type: ignore[attr-defined]
    assert [type(e) for e in got] == [Reject, Approve, Approve]
    assert got[0] == Reject(
        by="inbox",
        request_id=got[0].request_id,
        approval_id="ab12",
        reason="tests are red on CI",
    )
    assert got[1].approval_id == "k3x9" and got[1].by == "inbox"
    assert got[2].approval_id == "zz99"
    assert all(e.request_id for e in got)


def test_dot_files_and_directories_are_left_alone(paths: Paths) -> None:
    inbox.ensure_dirs(paths)
    (paths.inbox / ".half-written.json").write_text('{"v": 1, "comm')
    (paths.inbox / "somedir").mkdir()
    assert inbox.read_requests(paths) == ([], [])
    assert (paths.inbox / ".half-written.json").exists()
    assert (paths.inbox / "somedir").is_dir()


def _refused(paths: Paths, name: str) -> str:
    events, messages = inbox.read_requests(paths)
    assert events == []
    assert len(messages) == 1, messages
    assert not (paths.inbox / name).exists() and not os.path.lexists(paths.inbox / name)
    [kept] = [n for n in _names(inbox.rejected_dir(paths)) if n.startswith(name)]
    assert str(inbox.rejected_dir(paths) / kept) in messages[0]
    assert _names(inbox.processing_dir(paths)) == []
    return messages[0]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{", "not valid JSON"),
        ("[1]", "not a JSON object"),
        ('{"v": 2, "command": "pause"}', "unsupported format version 2"),
        ('{"v": 1, "command": "explode"}', "unknown command 'explode'"),
        ('{"v": 1, "command": "approve", "approval_id": 7}', "field 'approval_id' must be a str"),
        ('{"v": 1, "command": "approve", "rm": "-rf"}', "unknown field 'rm' for approve"),
        ('{"v": 1, "command": "pause", "by": "root"}', "bad 'by'"),
        ('{"v": 1, "id": "other", "command": "pause"}', "does not match the file name"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
def test_malformed_requests_are_refused_with_a_reason_and_answered(
    paths: Paths, content: str | bytes, reason: str
) -> None:
    inbox.ensure_dirs(paths)
    data = content.encode() if isinstance(content, str) else content
    (paths.inbox / "req1.json").write_bytes(data)
    message = _refused(paths, "req1.json")
    assert message.startswith("inbox: refused 'req1.json': ") and reason in message
    report = inbox.wait_answer(paths, "req1", timeout=10)
    assert report is not None and not report.ok and reason in report.message


def test_unknown_file_names_are_refused(paths: Paths) -> None:
    inbox.ensure_dirs(paths)
    (paths.inbox / "notes.txt").write_text("hello")
    assert "expected <id>.json, approve-<id> or reject-<id>" in _refused(paths, "notes.txt")


def test_symlink_is_refused_and_its_target_untouched(paths: Paths, tmp_path: Path) -> None:
    inbox.ensure_dirs(paths)
    target = tmp_path / "secret.json"
    target.write_text('{"v": 1, "command": "pause"}')
    (paths.inbox / "link.json").symlink_to(target)
    (paths.inbox / "approve-k3x9").symlink_to(target)
    events, messages = inbox.read_requests(paths)
    assert events == []
    assert len(messages) == 2 and all("a symlink" in m for m in messages)
    assert target.read_text() == '{"v": 1, "command": "pause"}'
    assert _names(paths.inbox) == ["processing", "rejected"]


def test_oversize_file_is_refused(paths: Paths) -> None:
    inbox.ensure_dirs(paths)
    big = json.dumps({"v": 1, "command": "send", "pane": "%1", "text": "x" * 9000})
    (paths.inbox / "big.json").write_text(big)
    assert "over the 8192-byte limit" in _refused(paths, "big.json")


def test_fifo_is_refused_without_blocking(paths: Paths) -> None:
    inbox.ensure_dirs(paths)
    os.mkfifo(paths.inbox / "approve-k3x9")
    assert "not a regular file" in _refused(paths, "approve-k3x9")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create a file owned by another user")
def test_file_of_another_user_is_refused(paths: Paths) -> None:
    inbox.ensure_dirs(paths)
    f = paths.inbox / "approve-k3x9"
    f.write_text("")
    os.chown(f, 65534, 65534)
    assert "owned by uid 65534" in _refused(paths, "approve-k3x9")


def test_submit_refuses_an_oversize_request(paths: Paths) -> None:
    with pytest.raises(ValueError, match="too large"):
        inbox.submit(paths, SendText(by="cli", pane="%1", text="y" * 9000))
    assert inbox.queued(paths) == 0


READER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from sentry_tui import inbox
    from sentry_tui.config import Paths
    p = Paths(Path(sys.argv[1]))
    stop = Path(sys.argv[2])
    got = []
    while True:
        done = stop.exists()
        events, _ = inbox.read_requests(p)
        got.extend(e.request_id for e in events)
        if done:
            break
    print(json.dumps(got))
    """
)


def test_two_concurrent_readers_take_each_file_exactly_once(paths: Paths, tmp_path: Path) -> None:
    inbox.ensure_dirs(paths)
    stop = tmp_path / "stop"
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", READER, str(paths.state_dir), str(stop)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        ids = [inbox.submit(paths, Approve(by="cli", approval_id=f"a{i}")) for i in range(150)]
        for i in range(50):
            (paths.inbox / f"approve-b{i}").write_text("")
    finally:
        stop.touch()
        outs = [json.loads(r.communicate(timeout=60)[0]) for r in readers]
    taken = outs[0] + outs[1]
    assert len(taken) == len(set(taken)) == 200
    assert set(ids) <= set(taken)
    assert inbox.queued(paths) == 0


CLAIM_AND_DIE = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from sentry_tui import inbox
    from sentry_tui.config import Paths
    inbox.read_requests(Paths(Path(sys.argv[1])))
    print("survived", flush=True)
    """
)


def _claim_and_die(paths: Paths, tmp_path: Path) -> None:
    log = tmp_path / "crash.log"
    env = {
        **os.environ,
        "SENTRY_TUI_CRASH_AT": "after_inbox_claim",
        "SENTRY_TUI_CRASH_LOG": str(log),
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.run(
        [sys.executable, "-c", CLAIM_AND_DIE, str(paths.state_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert log.read_text().split() == ["after_inbox_claim"]


def test_request_claimed_by_a_killed_engine_is_delivered_after_restart(
    paths: Paths, tmp_path: Path
) -> None:
    rid = inbox.submit(paths, Retry(by="cli", project="storyapp", stage="test"))
    _claim_and_die(paths, tmp_path)
    assert inbox.queued(paths) == 0 and _names(inbox.processing_dir(paths)) == [f"{rid}.json"]
    assert inbox.read_requests(paths) == ([], [])  # a plain read never steals claims
    s = store.Store(paths)
    s.load()
    events, messages = inbox.read_requests(paths, handled=s.handled, recover=True)
    assert [e.request_id for e in events] == [rid]
    assert "claimed before a restart" in messages[0]
    # the runner applies it, saves the state with the id, answers
    s.save(store.EngineState(counter=1), {}, handled=[rid])
    inbox.answer(paths, Report(rid, True, "retrying test"))
    assert inbox.read_requests(paths, handled=s.handled, recover=True) == ([], [])


def test_request_applied_before_the_kill_is_not_applied_again(paths: Paths, tmp_path: Path) -> None:
    rid = inbox.submit(paths, Retry(by="cli", project="storyapp", stage="test"))
    [event], _ = inbox.read_requests(paths)
    s = store.Store(paths)
    s.load()
    s.mark_handled([event.request_id])
    s.save(store.EngineState(counter=1), {})  # effect and id in one atomic write
    s.close()
    # killed here: before the answer, so the claim is still in processing/
    s2 = store.Store(paths)
    s2.load()
    assert rid in s2.handled
    events, messages = inbox.read_requests(paths, handled=s2.handled, recover=True)
    assert events == []
    assert "already applied" in messages[0]
    assert _names(inbox.processing_dir(paths)) == []
    report = inbox.wait_answer(paths, rid, timeout=10)
    assert report is not None and report.ok


def test_stale_temp_files_of_dead_senders_are_cleaned(paths: Paths) -> None:
    inbox.ensure_dirs(paths)
    old = paths.inbox / ".abc.json.1234.tmp"
    old.write_text("{")
    os.utime(old, (1, 1))
    fresh = paths.inbox / ".def.json.1234.tmp"
    fresh.write_text("{")
    inbox.read_requests(paths)
    assert not old.exists() and fresh.exists()


def test_short_form_claimed_by_a_killed_engine_is_delivered_after_restart(
    paths: Paths, tmp_path: Path
) -> None:
    inbox.ensure_dirs(paths)
    (paths.inbox / "reject-k3x9.txt").write_text("not today")
    _claim_and_die(paths, tmp_path)
    [claimed] = _names(inbox.processing_dir(paths))
    events, _ = inbox.read_requests(paths, handled=frozenset(), recover=True)
    assert events == [
        Reject(by="inbox", request_id=claimed, approval_id="k3x9", reason="not today")
    ]
    inbox.answer(paths, Report(claimed, False, "unknown approval id k3x9"))
    assert _names(inbox.processing_dir(paths)) == []


def test_signed_agent_hook_files_come_through_and_forged_ones_are_refused(paths: Paths) -> None:
    from sentry_tui import hooks, keys
    from sentry_tui.model import HookEvent

    key = keys.load_or_create_key(paths.state_dir)
    record = hooks.hook_record("claude", "stop", {"message": "done"}, "%3", now=5.0)
    hooks.write_hook_file(paths.state_dir, record, key)
    forged = hooks.write_hook_file(paths.state_dir, record, b"x" * 32)
    events, messages = inbox.read_requests(paths)
    assert len(events) == 1 and isinstance(events[0], HookEvent)
    assert (events[0].agent, events[0].hook, events[0].tmux_pane) == ("claude", "stop", "%3")
    assert len(messages) == 1 and "bad signature" in messages[0]
    assert forged.name in messages[0]
    assert _names(paths.inbox) == ["processing", "rejected"]
    assert _names(inbox.processing_dir(paths)) == []  # a hook is released at once, no answer
    assert _names(paths.outbox) == []
