"""Notifications against a real local HTTP server playing WeCom, ServerChan and a webhook.

Request bodies are asserted exactly, against the services' documented formats: WeCom's group
robot takes ``{"msgtype": "markdown", "markdown": {"content": ...}}`` (or ``text``) and answers
``{"errcode": 0, "errmsg": "ok"}`` with HTTP 200 even on failure; ServerChan Turbo takes form
fields ``title`` and ``desp`` at ``/<SENDKEY>.send`` and answers ``{"code": 0, ...}``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from sentry_tui.cli import main
from sentry_tui.errors import UserError
from sentry_tui.model import Notify
from sentry_tui.notify import (
    LogChannel,
    Notifier,
    QuietHours,
    ServerChanChannel,
    WebhookChannel,
    WeComChannel,
    channels_from_env_and_config,
    compose,
    load_notify_config,
    render,
)
from sentry_tui.secrets import Secret, load_secrets, scrub
from tests.conftest import wait_for

T0 = 1_800_000_000.0
KEY = "0f3c9a57-6b1e-4d2a-9e10-SECRETKEY"
SENDKEY = "SCT123456TsecretSENDKEY"

APPROVAL = Notify(
    event="approval",
    title="deploy waits for approval",
    body="tests: 42 passed",
    project="storyapp",
    stage="deploy",
    pane="storyapp:shell.0",
    approval_id="k3x9",
    dedupe_key="approval:k3x9",
    command="npm run deploy",
    commit="abc1234",
    since=T0 - 252,
)

APPROVAL_MD = (
    "**deploy waits for approval**\n\n"
    "Project: storyapp  \nStage: deploy  \nPane: storyapp:shell\\.0  \n"
    "Event: approval needed  \nWould run: npm run deploy  \nCommit: abc1234  \n"
    "Waiting for: 4m12s\n\n"
    "> tests: 42 passed\n\n"
    "Answer over SSH: `sentry-tui approve k3x9` or `sentry-tui reject k3x9 --reason 'why'`"
)


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def notifiers():
    made: list[Notifier] = []

    def make(*args, **kwargs) -> Notifier:
        kwargs.setdefault("clock", time.time)  # fake clocks only where a test moves time
        kwargs.setdefault("backoff_s", 0.01)
        n = Notifier(*args, **kwargs)
        made.append(n)
        return n

    yield make
    for n in made:
        n.close()


def _n(i: int, **kw) -> Notify:
    return Notify(event="waiting", title=f"agent waiting {i}", body="", dedupe_key=f"w{i}", **kw)


def _wecom(httpserver: HTTPServer, **kw) -> WeComChannel:
    url = httpserver.url_for("/cgi-bin/webhook/send") + f"?key={KEY}"
    return WeComChannel(Secret(url), **kw)


def _our_logs(caplog: pytest.LogCaptureFixture) -> str:
    """Log text of everything but the test server itself (werkzeug logs its request lines)."""
    return "\n".join(r.getMessage() for r in caplog.records if r.name != "werkzeug")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------
# Rendering


def test_render_says_what_where_what_runs_how_long_and_how_to_answer() -> None:
    title, md = render(APPROVAL, now=T0)
    assert title == "approval needed: storyapp/deploy"
    assert md == APPROVAL_MD


def test_render_strips_control_and_escapes_pane_text() -> None:
    n = Notify(
        event="waiting",
        title="\x1b[1mDo you want to proceed?\x1b[0m",
        body="# [click me](http://evil.example) <@all>\x07\x1b]0;title\x07 **x**",
        pane="agents:claude.0",
        project="storyapp",
    )
    title, md = render(n, now=T0)
    assert "\x1b" not in md and "\x07" not in md
    assert "[click me](" not in md and "\\[click me\\]\\(http" in md
    assert "\\<@all\\>" in md and "\\*\\*x\\*\\*" in md
    assert "> \\# " in md  # a heading in pane text stays text
    assert "`sentry-tui send agents:claude.0 'TEXT'`" in md
    assert title == "waiting for input: storyapp"


def test_answers_for_failed_stage_and_ssh_prefix() -> None:
    n = Notify(
        event="stage_failed",
        title="test failed",
        body="exit 1",
        project="points",
        stage="test",
        urgent=True,
    )
    msg = compose(n, now=T0, ssh_prefix="ssh nas")
    assert "`ssh nas sentry-tui retry points test`" in msg.markdown
    expired = Notify(
        event="approval_expired",
        title="x",
        body="",
        project="points",
        stage="deploy",
        approval_id="k3x9",
    )
    assert compose(expired, now=T0).fields["answer"] == [
        "sentry-tui retry points deploy",
        "sentry-tui skip points deploy",
    ]  # never "approve" an approval that is gone
    hostile = Notify(event="stage_failed", title="x", body="", project="a`b; rm", stage="s")
    md = compose(hostile, now=T0).markdown
    assert "`sentry-tui retry 'a'\"'\"'b; rm' s`" in md


# --------------------------------------------------------------------------------------------
# WeCom


def test_wecom_markdown_request_is_exactly_the_documented_format(httpserver, notifiers) -> None:
    httpserver.expect_request(
        "/cgi-bin/webhook/send",
        method="POST",
        query_string={"key": KEY},
        json={"msgtype": "markdown", "markdown": {"content": APPROVAL_MD}},
    ).respond_with_json({"errcode": 0, "errmsg": "ok"})
    notifier = notifiers([_wecom(httpserver)], clock=Clock())
    notifier.submit(APPROVAL)
    wait_for(lambda: len(httpserver.log) == 1 and notifier.flush(), 10)
    httpserver.check_assertions()
    req = httpserver.log[0][0]
    assert req.headers["Content-Type"] == "application/json"
    assert notifier.failing() == {}


def test_wecom_text_msgtype_and_base_override_from_config(httpserver, tmp_path) -> None:
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "config.yaml").write_text("notify:\n  channels: [wecom]\n  wecom: {msgtype: text}\n")
    env = {
        "SENTRY_WECOM_WEBHOOK": f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}",
        "SENTRY_WECOM_BASE": httpserver.url_for("/"),
    }
    [channel] = channels_from_env_and_config(cfg, env)
    text = compose(APPROVAL, now=T0).text
    httpserver.expect_oneshot_request(
        "/cgi-bin/webhook/send",
        method="POST",
        query_string={"key": KEY},
        json={"msgtype": "text", "text": {"content": text}},
    ).respond_with_json({"errcode": 0, "errmsg": "ok"})
    assert channel.send(compose(APPROVAL, now=T0)) == "ok"
    httpserver.check_assertions()
    assert KEY not in repr(channel) and KEY not in repr(Secret(KEY))


def test_wecom_errcode_is_a_failure_not_retried_and_key_never_shown(
    httpserver, notifiers, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    httpserver.expect_request("/cgi-bin/webhook/send", method="POST").respond_with_json(
        {
            "errcode": 93000,
            "errmsg": f"invalid webhook url, hint: [1732] key={KEY}, more info at "
            "https://open.work.weixin.qq.com/devtool/query?e=93000",
        }
    )
    notifier = notifiers([_wecom(httpserver)])
    notifier.submit(APPROVAL)
    failing = wait_for(notifier.failing, 10)
    assert failing["wecom"].startswith("WeCom errcode 93000: invalid webhook url")
    assert len(httpserver.log) == 1  # a definite refusal is not retried
    assert KEY not in json.dumps(failing) and KEY not in _our_logs(caplog)
    assert "localhost" in _our_logs(caplog)  # urllib3 did log the request, scrubbed


def test_wecom_500_is_retried_then_succeeds(httpserver, notifiers) -> None:
    httpserver.expect_oneshot_request("/cgi-bin/webhook/send").respond_with_data(
        "upstream broke", status=500
    )
    httpserver.expect_request("/cgi-bin/webhook/send").respond_with_json(
        {"errcode": 0, "errmsg": "ok"}
    )
    notifier = notifiers([_wecom(httpserver)], max_attempts=3)
    notifier.submit(APPROVAL)
    wait_for(lambda: len(httpserver.log) == 2 and notifier.flush(), 10)
    assert [r.status_code for _, r in httpserver.log] == [500, 200]
    assert notifier.failing() == {}


def test_wecom_rate_limit_errcode_is_retried(httpserver, notifiers) -> None:
    httpserver.expect_oneshot_request("/cgi-bin/webhook/send").respond_with_json(
        {"errcode": 45009, "errmsg": "api freq out of limit"}
    )
    httpserver.expect_request("/cgi-bin/webhook/send").respond_with_json(
        {"errcode": 0, "errmsg": "ok"}
    )
    notifier = notifiers([_wecom(httpserver)], max_attempts=3)
    notifier.submit(APPROVAL)
    wait_for(lambda: len(httpserver.log) == 2 and notifier.flush(), 10)
    assert notifier.failing() == {}


def test_timeout_is_retried_with_bounded_attempts_then_reported(httpserver, notifiers) -> None:
    def slow(request: Request) -> Response:
        time.sleep(0.6)
        return Response('{"errcode": 0, "errmsg": "ok"}', content_type="application/json")

    httpserver.expect_request("/cgi-bin/webhook/send").respond_with_handler(slow)
    notifier = notifiers([_wecom(httpserver, timeout=0.15)], max_attempts=2)
    notifier.submit(APPROVAL)
    failing = wait_for(notifier.failing, 15)
    assert failing == {"wecom": "timed out after 0.15s"}
    wait_for(lambda: len(httpserver.log) == 2, 10)  # the server saw both attempts


def test_unreachable_host_error_redacts_the_key(notifiers, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"http://127.0.0.1:{_free_port()}/cgi-bin/webhook/send?key={KEY}"
    notifier = notifiers([WeComChannel(Secret(url), timeout=2)], max_attempts=2)
    notifier.submit(APPROVAL)
    failing = wait_for(notifier.failing, 15)
    assert failing["wecom"].startswith("cannot reach http://127.0.0.1:")
    assert KEY not in failing["wecom"] and "SECRETKEY" not in _our_logs(caplog)


# --------------------------------------------------------------------------------------------
# ServerChan


def test_serverchan_posts_title_and_desp_form_fields(httpserver, notifiers) -> None:
    seen: list[dict[str, list[str]]] = []

    def handler(request: Request) -> Response:
        assert request.content_type == "application/x-www-form-urlencoded"
        seen.append(parse_qs(request.get_data(as_text=True), keep_blank_values=True))
        return Response(
            json.dumps({"code": 0, "message": "", "data": {"pushid": "1", "readkey": "r"}}),
            content_type="application/json",
        )

    httpserver.expect_request(f"/{SENDKEY}.send", method="POST").respond_with_handler(handler)
    channel = ServerChanChannel(Secret(SENDKEY), base_url=httpserver.url_for("/"))
    notifier = notifiers([channel], clock=Clock())
    notifier.submit(APPROVAL)
    wait_for(lambda: seen and notifier.flush(), 10)
    assert seen == [{"title": ["approval needed: storyapp/deploy"], "desp": [APPROVAL_MD]}]
    assert notifier.failing() == {}


def test_serverchan_title_is_cut_to_32_characters(httpserver) -> None:
    httpserver.expect_request(f"/{SENDKEY}.send").respond_with_json({"code": 0})
    channel = ServerChanChannel(Secret(SENDKEY), base_url=httpserver.url_for("/"))
    n = Notify(
        event="stage_failed",
        title="x",
        body="",
        project="a-long-project-name",
        stage="predeploy-check",
    )
    assert channel.send(compose(n, now=T0)) == "ok"
    form = parse_qs(httpserver.log[0][0].get_data(as_text=True))
    assert len(form["title"][0]) == 32 and form["title"][0].endswith("…")


def test_serverchan_error_json_is_reported_without_the_key(httpserver, notifiers) -> None:
    httpserver.expect_request(f"/{SENDKEY}.send").respond_with_json(
        {"code": 40001, "message": f"bad pushtoken {SENDKEY}", "data": None}
    )
    channel = ServerChanChannel(Secret(SENDKEY), base_url=httpserver.url_for("/"))
    notifier = notifiers([channel])
    notifier.submit(APPROVAL)
    failing = wait_for(notifier.failing, 10)
    assert failing == {"serverchan": "ServerChan code 40001: bad pushtoken ***"}


def test_serverchan_malformed_answer_is_retried(httpserver, notifiers) -> None:
    httpserver.expect_request(f"/{SENDKEY}.send").respond_with_data("<html>oops</html>")
    channel = ServerChanChannel(Secret(SENDKEY), base_url=httpserver.url_for("/"))
    notifier = notifiers([channel], max_attempts=2)
    notifier.submit(APPROVAL)
    failing = wait_for(notifier.failing, 10)
    assert failing["serverchan"].startswith("answer is not JSON")
    assert len(httpserver.log) == 2


# --------------------------------------------------------------------------------------------
# Generic webhook


def test_webhook_posts_the_event_as_json_with_bearer_token(httpserver, notifiers) -> None:
    httpserver.expect_request(
        "/hook", method="POST", headers={"Authorization": "Bearer tok-123"}
    ).respond_with_data("", status=204)
    url = httpserver.url_for("/hook")
    notifier = notifiers([WebhookChannel(Secret(url), token=Secret("tok-123"))], clock=Clock())
    notifier.submit(APPROVAL)
    wait_for(lambda: httpserver.log and notifier.flush(), 10)
    httpserver.check_assertions()
    body = json.loads(httpserver.log[0][0].get_data())
    assert body == {
        "kind": "notify",
        "event": "approval",
        "title": "approval needed: storyapp/deploy",
        "what": "approval needed",
        "project": "storyapp",
        "stage": "deploy",
        "pane": "storyapp:shell.0",
        "approval_id": "k3x9",
        "command": "npm run deploy",
        "commit": "abc1234",
        "body": "tests: 42 passed",
        "waited_s": 252.0,
        "urgent": False,
        "answer": ["sentry-tui approve k3x9", "sentry-tui reject k3x9 --reason 'why'"],
        "links": {},
        "at": T0,
        "text": compose(APPROVAL, now=T0).text,
        "markdown": APPROVAL_MD,
    }


# --------------------------------------------------------------------------------------------
# De-duplication, rate limits, quiet hours, never blocking


def test_same_waiting_pane_notifies_once(httpserver, notifiers) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")
    notifier = notifiers([WebhookChannel(Secret(httpserver.url_for("/hook")))])
    for _ in range(20):  # the engine says so on every tick
        notifier.submit(_n(1))
    notifier.submit(_n(2))
    wait_for(lambda: len(httpserver.log) == 2 and notifier.flush(), 10)
    titles = sorted(json.loads(r.get_data())["title"] for r, _ in httpserver.log)
    assert len(titles) == 2


def test_rate_limit_per_channel_holds_the_excess_until_the_minute_passes(
    httpserver, notifiers
) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")
    clock = Clock()
    log_channel = LogChannel()
    notifier = notifiers(
        [WebhookChannel(Secret(httpserver.url_for("/hook"))), log_channel],
        rate_per_min=2,
        clock=clock,
    )
    for i in range(3):
        notifier.submit(_n(i))
    wait_for(lambda: len(httpserver.log) == 2, 10)
    wait_for(lambda: notifier.pending() == 2, 10)  # one held per channel
    assert len(httpserver.log) == 2
    clock.t += 61
    wait_for(lambda: len(httpserver.log) == 3 and notifier.flush(), 10)


def test_quiet_hours_hold_non_urgent_and_send_one_digest_after(httpserver, notifiers) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")
    night = time.mktime((2026, 11, 24, 23, 30, 0, 0, 0, -1))
    morning = time.mktime((2026, 11, 25, 7, 1, 0, 0, 0, -1))
    clock = Clock(night)
    notifier = notifiers(
        [WebhookChannel(Secret(httpserver.url_for("/hook")))],
        quiet_hours="23:00-07:00",
        clock=clock,
    )
    notifier.submit(_n(1))
    notifier.submit(_n(2))
    failed = Notify(
        event="stage_failed",
        title="deploy failed",
        body="exit 1",
        project="points",
        stage="deploy",
        urgent=True,
    )
    notifier.submit(failed)
    wait_for(lambda: len(httpserver.log) == 1 and notifier.flush(), 10)
    assert json.loads(httpserver.log[0][0].get_data())["event"] == "stage_failed"
    clock.t = morning
    wait_for(lambda: len(httpserver.log) == 2, 10)
    digest = json.loads(httpserver.log[1][0].get_data())
    assert digest["event"] == "digest" and digest["count"] == 2
    assert digest["titles"] == ["waiting for input", "waiting for input"]


def test_submit_never_blocks_on_a_hung_channel_and_a_full_queue_drops(
    httpserver, notifiers
) -> None:
    release, entered = threading.Event(), threading.Event()

    def hang(request: Request) -> Response:
        entered.set()
        release.wait(10)
        return Response("ok")

    httpserver.expect_request("/hook").respond_with_handler(hang)
    notifier = notifiers(
        [WebhookChannel(Secret(httpserver.url_for("/hook")), timeout=15)], queue_size=2
    )
    notifier.submit(_n(0))
    wait_for(entered.is_set, 10)  # the worker is now stuck inside the request
    for i in range(1, 6):  # returns although the worker is stuck in a request
        notifier.submit(_n(i))
    assert notifier.dropped == 3
    release.set()
    wait_for(lambda: notifier.flush(), 10)
    assert len(httpserver.log) == 3


def test_one_failing_channel_does_not_hold_up_another(httpserver, notifiers) -> None:
    httpserver.expect_request("/good").respond_with_data("ok")
    dead = WebhookChannel(Secret(f"http://127.0.0.1:{_free_port()}/x"), timeout=1)
    dead.name = "dead"
    good = WebhookChannel(Secret(httpserver.url_for("/good")))
    notifier = notifiers([dead, good], max_attempts=2)
    notifier.submit(APPROVAL)
    wait_for(lambda: len(httpserver.log) == 1, 10)
    failing = wait_for(notifier.failing, 10)
    assert list(failing) == ["dead"]


# --------------------------------------------------------------------------------------------
# Configuration and secrets


def test_channels_from_env_default_to_log_plus_configured_secrets(tmp_path) -> None:
    env = {"SENTRY_SERVERCHAN_KEY": SENDKEY, "SENTRY_WEBHOOK_URL": "https://h.example/x?t=1"}
    names = [c.name for c in channels_from_env_and_config(tmp_path, env)]
    assert names == ["log", "serverchan", "webhook"]


def test_listed_channel_without_secret_is_a_one_line_error(tmp_path) -> None:
    (tmp_path / "config.yaml").write_text("notify:\n  channels: [wecom]\n")
    with pytest.raises(UserError, match="lists wecom but SENTRY_WECOM_WEBHOOK is not set"):
        channels_from_env_and_config(tmp_path, {})


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("notify:\n  chanels: [log]\n", "unknown key 'chanels'"),
        ("notify:\n  quiet_hours: '25:00-07:00'\n", "not a time of day"),
        ("notify:\n  channels: [sms]\n", "unknown channel 'sms'"),
        ("notify:\n  waiting_after: soon\n", "notify.waiting_after: expected a duration"),
        ("notify:\n  wecom: {url: http://x}\n", "belong in the environment"),
        ("notify: [\n", "config.yaml:2:"),
    ],
)
def test_bad_config_is_one_line_error(tmp_path, yaml_text, message) -> None:
    (tmp_path / "config.yaml").write_text(yaml_text)
    with pytest.raises(UserError, match=message) as exc:
        load_notify_config(tmp_path)
    assert "\n" not in str(exc.value)


def test_config_values(tmp_path) -> None:
    (tmp_path / "config.yaml").write_text(
        "notify:\n  channels: [stdout, log]\n  rate_per_min: 3\n"
        "  quiet_hours: '23:00-07:00'\n  waiting_after: 5m\n  ssh: ssh nas\n"
    )
    cfg = load_notify_config(tmp_path)
    assert cfg.channels == ("stdout", "log") and cfg.rate_per_min == 3
    assert cfg.quiet_hours == QuietHours(23 * 60, 7 * 60) and cfg.waiting_after_s == 300
    assert cfg.ssh_prefix == "ssh nas"


def test_secrets_file_must_be_private(tmp_path) -> None:
    path = tmp_path / "secrets.env"
    path.write_text(f"SENTRY_SERVERCHAN_KEY={SENDKEY}\nexport SENTRY_WEBHOOK_TOKEN='tok'\n")
    path.chmod(0o644)
    with pytest.raises(UserError, match=r"readable by group/others \(mode 0644\); run: chmod 600"):
        load_secrets(tmp_path, {})
    path.chmod(0o600)
    secrets = load_secrets(tmp_path, {"SENTRY_WEBHOOK_TOKEN": "from-env"})
    assert secrets["SENTRY_SERVERCHAN_KEY"].reveal() == SENDKEY
    assert secrets["SENTRY_WEBHOOK_TOKEN"].reveal() == "from-env"  # the environment wins
    assert SENDKEY not in repr(secrets) and SENDKEY not in f"{secrets['SENTRY_SERVERCHAN_KEY']}"


def test_secrets_file_refuses_symlinks_and_unknown_names(tmp_path) -> None:
    real = tmp_path / "real.env"
    real.write_text("SENTRY_SERVERCHAN_KEY=x\n")
    real.chmod(0o600)
    (tmp_path / "secrets.env").symlink_to(real)
    with pytest.raises(UserError, match="symlink"):
        load_secrets(tmp_path, {})
    other = tmp_path / "o"
    other.mkdir()
    (other / "secrets.env").write_text("AWS_SECRET=1\n")
    (other / "secrets.env").chmod(0o600)
    with pytest.raises(UserError, match=r"secrets.env:1: unknown name 'AWS_SECRET'"):
        load_secrets(other, {})


def test_scrub_hides_url_keys() -> None:
    secret = Secret(f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}")
    text = f"Max retries exceeded with url: /cgi-bin/webhook/send?key={KEY} (x)"
    assert KEY not in scrub(text, [secret])
    assert (
        scrub("GET https://a.example/x?token=abc&x=1") == "GET https://a.example/x?token=***&x=***"
    )
    sc = Secret(f"https://sctapi.ftqq.com/{SENDKEY}.send")
    assert SENDKEY not in scrub(f"url: /{SENDKEY}.send", [sc])


# --------------------------------------------------------------------------------------------
# sentry-tui notify-test


def test_notify_test_reports_each_channel_and_fails_if_any_failed(
    httpserver, monkeypatch, capsys
) -> None:
    httpserver.expect_request("/cgi-bin/webhook/send", query_string={"key": KEY}).respond_with_json(
        {"errcode": 0, "errmsg": "ok"}
    )
    httpserver.expect_request(f"/{SENDKEY}.send").respond_with_json(
        {"code": 40001, "message": "bad pushtoken"}
    )
    monkeypatch.setenv("SENTRY_WECOM_WEBHOOK", KEY)  # a bare key works too
    monkeypatch.setenv("SENTRY_WECOM_BASE", httpserver.url_for("/"))
    monkeypatch.setenv("SENTRY_SERVERCHAN_KEY", SENDKEY)
    monkeypatch.setenv("SENTRY_SERVERCHAN_BASE", httpserver.url_for("/"))
    assert main(["notify-test"]) == 1
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "log: ok",
        "wecom: ok",
        "serverchan: FAILED: ServerChan code 40001: bad pushtoken",
    ]
    assert KEY not in out and SENDKEY not in out
    sent = httpserver.log[0][0].get_json()
    assert sent["msgtype"] == "markdown"
    assert sent["markdown"]["content"].startswith("**sentry\\-tui test notification**")


def test_notify_test_all_ok_exits_zero(httpserver, monkeypatch, capsys) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")
    monkeypatch.setenv("SENTRY_WEBHOOK_URL", httpserver.url_for("/hook"))
    cfg = Path(os.environ["XDG_CONFIG_HOME"]) / "sentry-tui"
    cfg.mkdir(parents=True)
    (cfg / "config.yaml").write_text("notify:\n  channels: [webhook]\n")
    assert main(["notify-test"]) == 0
    assert capsys.readouterr().out == "webhook: ok (HTTP 200)\n"
