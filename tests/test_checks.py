"""GitHub Actions checks against a real local HTTP server playing the REST API."""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from sentry_tui.checks import CheckPoller, GithubActions, token_from_env
from sentry_tui.model import CheckUpdate, Event, StartCheck
from sentry_tui.secrets import Secret
from tests.conftest import wait_for

SHA = "3f2c9a1b7d4e5f60718293a4b5c6d7e8f9012345"
OTHER = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
STARTED = 1_800_000_000.0  # the stage started here
PATH = "/repos/me/storyapp/actions/workflows/deploy.yml/runs"
TOKEN = "ghp_SECRETtoken1234567890"


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def run(
    run_id: int, sha: str, created: float, status: str, conclusion: str | None = None
) -> dict[str, Any]:
    return {
        "id": run_id,
        "run_number": run_id,
        "name": "deploy",
        "head_sha": sha,
        "head_branch": "main",
        "event": "push",
        "status": status,
        "conclusion": conclusion,
        "created_at": iso(created),
        "updated_at": iso(created + 5),
        "html_url": f"https://github.com/me/storyapp/actions/runs/{run_id}",
    }


def answer(*runs: dict[str, Any]) -> dict[str, Any]:
    return {"total_count": len(runs), "workflow_runs": list(runs)}


# An earlier deploy of the same commit, successful: must never finish today's stage.
OLD_SUCCESS = run(101, SHA, STARTED - 3600, "completed", "success")
OTHER_COMMIT = run(102, OTHER, STARTED + 10, "completed", "success")

CHECK = StartCheck(
    check_id="c1",
    provider="github_actions",
    params={"repo": "me/storyapp", "workflow": "deploy.yml", "branch": "main"},
    head_sha=SHA,
    created_after=STARTED,
)


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def github(httpserver: HTTPServer) -> GithubActions:
    return GithubActions(base_url=httpserver.url_for("/"), token=Secret(TOKEN), timeout=2)


@pytest.fixture
def pollers():
    made: list[CheckPoller] = []

    def make(*args, **kwargs) -> CheckPoller:
        p = CheckPoller(*args, **kwargs)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def test_request_is_the_documented_endpoint_with_token_and_filters(httpserver, github) -> None:
    httpserver.expect_request(
        PATH,
        method="GET",
        query_string={"per_page": "100", "head_sha": SHA, "branch": "main"},
        headers={
            "Authorization": f"Bearer {TOKEN}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        },
    ).respond_with_json(answer())
    update = github.poll(CHECK, STARTED + 5)
    httpserver.check_assertions()
    assert update.status == "waiting" and update.retry_at is None
    assert update.detail.startswith("no run of deploy.yml for 3f2c9a1b7d created after")
    assert TOKEN not in repr(github)


def test_older_successful_run_for_the_same_commit_is_ignored(httpserver, github) -> None:
    httpserver.expect_request(PATH).respond_with_json(answer(OLD_SUCCESS, OTHER_COMMIT))
    update = github.poll(CHECK, STARTED + 60)
    assert update.status == "waiting" and update.conclusion == ""
    httpserver.clear()
    httpserver.expect_request(PATH).respond_with_json(
        answer(run(103, SHA, STARTED + 20, "queued"), OLD_SUCCESS, OTHER_COMMIT)
    )
    update = github.poll(CHECK, STARTED + 60)
    assert (update.status, update.url) == (
        "queued",
        "https://github.com/me/storyapp/actions/runs/103",
    )


def test_run_goes_queued_in_progress_completed_failure(httpserver, github, pollers) -> None:
    state = {"runs": [OLD_SUCCESS, run(104, SHA, STARTED + 30, "queued")]}
    httpserver.expect_request(PATH).respond_with_handler(
        lambda req: Response(json.dumps(answer(*state["runs"])), content_type="application/json")
    )
    events: list[Event] = []
    poller = pollers(events.append, github, interval_s=0.05)
    poller.start_check(CHECK)
    assert poller.active() == ["c1"]
    wait_for(lambda: len(events) == 1, 10)
    state["runs"] = [OLD_SUCCESS, run(104, SHA, STARTED + 30, "in_progress")]
    wait_for(lambda: len(events) == 2, 10)
    wait_for(lambda: len(httpserver.log) >= 6, 10)  # polled again: no duplicate events
    state["runs"] = [OLD_SUCCESS, run(104, SHA, STARTED + 30, "completed", "failure")]
    wait_for(lambda: poller.active() == [], 10)
    assert [(e.status, e.conclusion) for e in events] == [  # type: ignore[attr-defined]
        ("queued", ""),
        ("in_progress", ""),
        ("completed", "failure"),
    ]
    assert all(isinstance(e, CheckUpdate) and e.check_id == "c1" for e in events)
    assert events[-1].url == "https://github.com/me/storyapp/actions/runs/104"  # type: ignore[attr-defined]


def test_newest_matching_run_wins(httpserver, github) -> None:
    httpserver.expect_request(PATH).respond_with_json(
        answer(
            run(105, SHA, STARTED + 10, "completed", "failure"),
            run(106, SHA, STARTED + 300, "completed", "success"),  # re-run by hand
        )
    )
    update = github.poll(CHECK, STARTED + 400)
    assert (update.status, update.conclusion, update.detail) == (
        "completed",
        "success",
        "run #106 success",
    )


def test_rate_limit_with_reset_headers_backs_off_until_reset(httpserver, github, pollers) -> None:
    reset = int(STARTED + 900)
    httpserver.expect_oneshot_request(PATH).respond_with_json(
        {"message": "API rate limit exceeded for user ID 1."},
        status=403,
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)},
    )
    httpserver.expect_request(PATH).respond_with_json(
        answer(run(107, SHA, STARTED + 30, "completed", "success"))
    )
    clock = Clock(STARTED + 60)
    events: list[Event] = []
    poller = pollers(events.append, github, interval_s=0.05, clock=clock)
    poller.start_check(CHECK)
    wait_for(lambda: events, 10)
    first = events[0]
    assert isinstance(first, CheckUpdate)
    assert (first.status, first.retry_at) == ("waiting", reset)
    assert (
        first.detail
        == f"GitHub rate limit; next try at {time.strftime('%H:%M:%S', time.gmtime(reset))} UTC"
    )
    assert poller.next_poll("c1") >= reset
    assert len(httpserver.log) == 1
    clock.t = reset + 1
    wait_for(lambda: len(events) == 2, 10)
    assert (events[1].status, events[1].conclusion) == ("completed", "success")  # type: ignore[attr-defined]
    assert len(httpserver.log) == 2


def test_429_with_retry_after(httpserver, github) -> None:
    httpserver.expect_request(PATH).respond_with_data(
        "slow down", status=429, headers={"retry-after": "7"}
    )
    update = github.poll(CHECK, STARTED + 60)
    assert (update.status, update.retry_at) == ("waiting", STARTED + 67)


def test_403_without_rate_limit_is_an_access_error(httpserver, github) -> None:
    httpserver.expect_request(PATH).respond_with_json(
        {"message": "Resource not accessible by integration"},
        status=403,
        headers={"x-ratelimit-remaining": "4999"},
    )
    update = github.poll(CHECK, STARTED)
    assert update.status == "error" and "lacks access" in update.detail


def test_500_is_retried_later_and_keeps_the_last_status(httpserver, github, pollers) -> None:
    httpserver.expect_oneshot_request(PATH).respond_with_json(
        answer(run(108, SHA, STARTED + 30, "in_progress"))
    )
    httpserver.expect_request(PATH).respond_with_data("boom", status=500)
    assert github.poll(CHECK, STARTED).retry_at is None
    update = github.poll(CHECK, STARTED + 100)
    assert (update.status, update.detail, update.retry_at) == (
        "waiting",
        "GitHub answered HTTP 500",
        STARTED + 130,
    )
    httpserver.clear()
    httpserver.expect_oneshot_request(PATH).respond_with_json(
        answer(run(108, SHA, STARTED + 30, "in_progress"))
    )
    httpserver.expect_request(PATH).respond_with_data("boom", status=502)
    events: list[Event] = []
    clock = Clock(STARTED + 100)
    poller = pollers(events.append, github, interval_s=0.05, clock=clock)
    poller.start_check(CHECK)
    wait_for(lambda: len(events) == 1, 10)
    clock.t += 1
    wait_for(lambda: len(events) == 2, 10)
    assert (events[1].status, events[1].detail) == ("in_progress", "GitHub answered HTTP 502")  # type: ignore[attr-defined]
    assert poller.active() == ["c1"]


def test_timeout_never_raises(httpserver) -> None:
    def slow(request: Request) -> Response:
        time.sleep(0.5)
        return Response(json.dumps(answer()), content_type="application/json")

    httpserver.expect_request(PATH).respond_with_handler(slow)
    github = GithubActions(base_url=httpserver.url_for("/"), timeout=0.1)
    update = github.poll(CHECK, STARTED)
    assert (update.status, update.detail, update.retry_at) == (
        "waiting",
        "GitHub did not answer within 0.1s",
        STARTED + 30,
    )
    wait_for(lambda: len(httpserver.log) == 1, 10)  # let the slow handler finish


def test_network_error_never_raises() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    github = GithubActions(base_url=f"http://127.0.0.1:{port}", token=Secret(TOKEN), timeout=2)
    update = github.poll(CHECK, STARTED)
    assert update.status == "waiting" and update.detail == "cannot reach GitHub: ConnectionError"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ("{not json", "GitHub's answer is not valid JSON"),
        ('{"total_count": 1}', "GitHub's answer has no workflow_runs list"),
        ("[1, 2]", "GitHub's answer has no workflow_runs list"),
    ],
)
def test_malformed_json_is_retried(httpserver, github, body, detail) -> None:
    httpserver.expect_request(PATH).respond_with_data(body, content_type="application/json")
    update = github.poll(CHECK, STARTED)
    assert (update.status, update.detail, update.retry_at) == ("waiting", detail, STARTED + 30)


def test_junk_runs_are_skipped(httpserver, github) -> None:
    httpserver.expect_request(PATH).respond_with_json(
        answer(
            "junk",  # type: ignore[arg-type]
            {"id": 1, "head_sha": SHA, "created_at": "yesterday", "status": "completed"},
            {"id": 2, "head_sha": SHA, "status": "completed"},
        )
    )
    assert github.poll(CHECK, STARTED).status == "waiting"


def test_not_found_is_an_error(httpserver, github) -> None:
    httpserver.expect_request(PATH).respond_with_json({"message": "Not Found"}, status=404)
    update = github.poll(CHECK, STARTED)
    assert update.status == "error" and update.detail.startswith("HTTP 404: repository")


def test_etag_makes_repeat_polls_conditional(httpserver, github) -> None:
    seen: list[str | None] = []

    def handler(request: Request) -> Response:
        seen.append(request.headers.get("If-None-Match"))
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304, headers={"ETag": '"v1"'})
        body = json.dumps(answer(run(109, SHA, STARTED + 30, "in_progress")))
        return Response(body, content_type="application/json", headers={"ETag": '"v1"'})

    httpserver.expect_request(PATH).respond_with_handler(handler)
    assert github.poll(CHECK, STARTED).status == "in_progress"
    assert github.poll(CHECK, STARTED).status == "in_progress"
    assert seen == [None, '"v1"']


@pytest.mark.parametrize(
    ("params", "sha", "detail"),
    [
        ({"repo": "storyapp", "workflow": "deploy.yml"}, SHA, "repo 'storyapp' is not OWNER/NAME"),
        ({"repo": "me/storyapp", "workflow": ""}, SHA, "workflow '' is not a workflow"),
        ({"repo": "me/storyapp", "workflow": "deploy.yml"}, "", "no commit to match"),
    ],
)
def test_bad_parameters_are_errors_without_a_request(httpserver, github, params, sha, detail):
    check = StartCheck("c2", "github_actions", params, sha, STARTED)
    update = github.poll(check, STARTED)
    assert update.status == "error" and update.detail.startswith(detail)
    assert httpserver.log == []


def test_stop_check_and_emit_errors_do_not_kill_the_poller(httpserver, github, pollers) -> None:
    httpserver.expect_request(PATH).respond_with_json(answer())
    calls = threading.Event()

    def emit(event: Event) -> None:
        calls.set()
        raise RuntimeError("the runner's queue broke")

    poller = pollers(emit, github, interval_s=0.05)
    poller.start_check(CHECK)
    wait_for(calls.is_set, 10)
    poller.start_check(StartCheck("c3", "github_actions", CHECK.params, SHA, STARTED))
    assert poller.active() == ["c1", "c3"]
    poller.stop_check("c1")
    assert poller.active() == ["c3"]
    n = len(httpserver.log)
    wait_for(lambda: len(httpserver.log) > n + 2, 10)  # still polling c3


def test_token_from_env() -> None:
    assert token_from_env({}) is None
    assert token_from_env({"GITHUB_TOKEN": "a"}).reveal() == "a"  # type: ignore[union-attr]
    assert token_from_env({"GITHUB_TOKEN": "a", "SENTRY_GITHUB_TOKEN": "b"}).reveal() == "b"  # type: ignore[union-attr]


def test_github_from_env_reads_the_secrets_file(tmp_path) -> None:
    from sentry_tui.checks import github_from_env

    (tmp_path / "secrets.env").write_text(f"GITHUB_TOKEN={TOKEN}\n")
    (tmp_path / "secrets.env").chmod(0o600)
    gh = github_from_env(tmp_path, {"SENTRY_GITHUB_BASE": "https://ghe.example/api/v3/"})
    assert gh.base_url == "https://ghe.example/api/v3"
    assert gh.token is not None and gh.token.reveal() == TOKEN
