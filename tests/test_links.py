"""Signed callback links and `sentry-tui serve`, over real HTTP to a real server.

Whatever a link preview, a replay or a forger does, the inbox stays empty; only the POST of
the confirmation form with a valid, unexpired, unused token drops exactly one request.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from sentry_tui import inbox
from sentry_tui.config import Paths
from sentry_tui.errors import UserError
from sentry_tui.links import (
    LinkError,
    LinkSigner,
    UsedTokens,
    check_token,
    load_key,
    load_link_config,
    make_token,
    used_tokens,
)
from sentry_tui.model import Approve, Notify, Reject
from sentry_tui.notify import compose
from sentry_tui.serve import LinkServer, redact_path
from tests.conftest import wait_for

KEY = b"k" * 64
NOW = 1_800_000_000.0


class Clock:
    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def inbox_files(paths: Paths) -> list[Path]:
    if not paths.inbox.exists():
        return []
    return sorted(p for p in paths.inbox.iterdir() if p.is_file() and not p.name.startswith("."))


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths(tmp_path / "state")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def serve(paths: Paths, clock: Clock) -> Iterator[LinkServer]:
    server = LinkServer(("127.0.0.1", 0), paths=paths, key=KEY, clock=clock, answer_wait_s=0)
    server.start_background()
    yield server
    server.shutdown()
    server.server_close()


def token(approval_id: str = "k3x9", decision: str = "approve", ttl: float = 3600) -> str:
    return make_token(KEY, approval_id, decision, NOW + ttl)


def post(server: LinkServer, tok: str, **form: str) -> requests.Response:
    return requests.post(f"{server.url}l/{tok}", data=form, timeout=10)


# --------------------------------------------------------------------------------------------
# Tokens


def test_token_names_approval_and_decision_and_verifies() -> None:
    tok = token()
    assert tok.startswith("k3x9.approve.1800003600.")
    claim = check_token(KEY, tok, now=NOW, decision="approve")
    assert (claim.approval_id, claim.decision, claim.expires_at) == ("k3x9", "approve", NOW + 3600)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t.replace(".approve.", ".reject."), "signature is not valid"),
        (lambda t: t.replace("k3x9.", "k3x8."), "signature is not valid"),
        (lambda t: t.replace(".1800003600.", ".1900003600."), "signature is not valid"),
        (lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), "signature is not valid"),
        (lambda t: make_token(b"x" * 64, "k3x9", "approve", NOW + 3600), "signature"),
        (lambda t: t + ".extra", "malformed"),
        (lambda t: "k3x9.approve", "malformed"),
        (lambda t: t.replace(".approve.", ".delete."), "malformed"),
    ],
)
def test_forged_tokens_are_refused(mutate, message) -> None:
    with pytest.raises(LinkError, match=message):
        check_token(KEY, mutate(token()), now=NOW)


def test_expired_and_wrong_decision_tokens_are_refused() -> None:
    with pytest.raises(LinkError, match="expired"):
        check_token(KEY, token(ttl=10), now=NOW + 10)
    with pytest.raises(LinkError, match="can only approve, not reject"):
        check_token(KEY, token(), now=NOW, decision="reject")


def test_used_tokens_survive_a_restart_and_are_private(paths: Paths) -> None:
    claim = check_token(KEY, token(), now=NOW)
    assert used_tokens(paths).claim(claim, NOW)
    assert not used_tokens(paths).claim(claim, NOW)  # a new instance reads the file
    with pytest.raises(LinkError, match="already used"):
        check_token(KEY, token(), now=NOW, used=UsedTokens(paths.state_dir / "links-used.json"))
    f = paths.state_dir / "links-used.json"
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert [p.name for p in paths.state_dir.iterdir() if p.name.startswith(".")] == []
    assert json.loads(f.read_text())["used"] == {claim.signature: claim.expires_at}


def test_used_token_file_that_is_corrupt_fails_closed(paths: Paths) -> None:
    paths.state_dir.mkdir(parents=True)
    (paths.state_dir / "links-used.json").write_text("{trunc")
    with pytest.raises(LinkError, match="unreadable"):
        check_token(KEY, token(), now=NOW, used=used_tokens(paths))


def test_signer_urls_expire_with_the_approval(clock: Clock) -> None:
    signer = LinkSigner(KEY, "https://tunnel.example/sentry", clock=clock)
    url = signer.url("k3x9", "reject")
    assert url.startswith("https://tunnel.example/sentry/l/k3x9.reject.1800003600.")
    assert ".1800000600." in signer.url("k3x9", "approve", expires_at=NOW + 600)
    assert "k" * 10 not in repr(signer)


def test_approval_notification_carries_both_links(clock: Clock) -> None:
    signer = LinkSigner(KEY, "https://tunnel.example/", clock=clock)
    n = Notify(
        event="approval",
        title="deploy waits",
        body="",
        project="p",
        stage="deploy",
        approval_id="k3x9",
    )
    md = compose(n, now=NOW, links=signer).markdown
    approve = make_token(KEY, "k3x9", "approve", NOW + 3600)
    reject = make_token(KEY, "k3x9", "reject", NOW + 3600)
    assert md.endswith(
        f"[Approve](https://tunnel.example/l/{approve}) · [Reject](https://tunnel.example/l/{reject})"
    )


def test_load_key_creates_a_private_key_once(paths: Paths) -> None:
    key = load_key(paths, {})
    f = paths.state_dir / "links.key"
    assert len(key) == 64 and stat.S_IMODE(f.stat().st_mode) == 0o600
    assert load_key(paths, {}) == key
    assert load_key(paths, {"SENTRY_LINK_KEY": "from-env"}) == b"from-env"
    f.chmod(0o644)
    with pytest.raises(UserError, match="readable by group/others"):
        load_key(paths, {})


def test_link_config(tmp_path: Path) -> None:
    assert not load_link_config(tmp_path).enabled
    (tmp_path / "config.yaml").write_text("links: {enabled: true}\n")
    with pytest.raises(UserError, match=r"links\.base_url: expected an http"):
        load_link_config(tmp_path)
    (tmp_path / "config.yaml").write_text(
        "links: {enabled: true, base_url: 'https://t.example/', ttl: 30m}\n"
    )
    cfg = load_link_config(tmp_path)
    assert (cfg.enabled, cfg.base_url, cfg.ttl_s) == (True, "https://t.example/", 1800)


# --------------------------------------------------------------------------------------------
# The server: nothing but a valid POST changes anything


def test_bare_get_and_head_only_show_a_confirmation_page(serve: LinkServer, paths: Paths) -> None:
    tok = token()
    page = requests.get(f"{serve.url}l/{tok}", timeout=10)
    assert page.status_code == 200
    assert '<form method="post">' in page.text
    assert '<input type="hidden" name="decision" value="approve">' in page.text
    assert page.headers["Cache-Control"] == "no-store"
    head = requests.head(f"{serve.url}l/{tok}", timeout=10)
    assert head.status_code == 200 and head.content == b""
    assert inbox_files(paths) == []
    assert not used_tokens(paths).is_used(tok.rsplit(".", 1)[1])  # a preview spends nothing


def test_valid_post_puts_exactly_one_request_in_the_inbox(serve: LinkServer, paths: Paths) -> None:
    tok = token()
    resp = post(serve, tok, decision="approve")
    assert resp.status_code == 200, resp.text
    assert "is in the inbox" in resp.text
    [f] = inbox_files(paths)
    event = inbox.parse_request(f.name, f.read_bytes(), "r1")
    assert event == Approve(by="link", request_id="r1", approval_id="k3x9")
    # replayed: refused, still exactly one request
    again = post(serve, tok, decision="approve")
    assert again.status_code == 410 and "already used" in again.text
    assert len(inbox_files(paths)) == 1
    assert requests.get(f"{serve.url}l/{tok}", timeout=10).status_code == 410


def test_replay_after_restart_is_refused(paths: Paths, clock: Clock) -> None:
    tok = token()
    for expected in (200, 410):
        server = LinkServer(("127.0.0.1", 0), paths=paths, key=KEY, clock=clock, answer_wait_s=0)
        server.start_background()
        try:
            assert post(server, tok, decision="approve").status_code == expected
        finally:
            server.shutdown()
            server.server_close()
    assert len(inbox_files(paths)) == 1


def test_reject_link_with_reason(serve: LinkServer, paths: Paths) -> None:
    tok = token(decision="reject")
    page = requests.get(f"{serve.url}l/{tok}", timeout=10)
    assert 'name="reason"' in page.text
    assert post(serve, tok, decision="reject", reason="not\x1b[31m today").status_code == 200
    [f] = inbox_files(paths)
    event = inbox.parse_request(f.name, f.read_bytes(), "r2")
    assert event == Reject(by="link", request_id="r2", approval_id="k3x9", reason="not today")


@pytest.mark.parametrize(
    ("make", "decision", "status", "message"),
    [
        (lambda: token(ttl=-1), "approve", 410, "expired"),
        (lambda: token().replace(".approve.", ".reject."), "reject", 403, "signature"),
        (lambda: make_token(b"z" * 64, "k3x9", "approve", NOW + 60), "approve", 403, "signature"),
        (lambda: token(), "reject", 403, "can only approve, not reject"),
        (lambda: token(), "", 400, "no decision"),
        (lambda: "k3x9.approve.nope", "approve", 400, "malformed"),
    ],
)
def test_bad_links_change_nothing(
    serve: LinkServer, paths: Paths, make, decision, status, message
) -> None:
    tok = make()
    form = {"decision": decision} if decision else {"other": "x"}
    resp = post(serve, tok, **form)
    assert resp.status_code == status and message in resp.text
    assert inbox_files(paths) == []
    assert not (paths.state_dir / "links-used.json").exists()


def test_other_requests_change_nothing(serve: LinkServer, paths: Paths) -> None:
    tok = token()
    assert requests.get(serve.url, timeout=10).status_code == 404
    assert (
        requests.post(f"{serve.url}approve", data={"decision": "approve"}, timeout=10).status_code
        == 404
    )
    as_json = requests.post(f"{serve.url}l/{tok}", json={"decision": "approve"}, timeout=10)
    assert as_json.status_code == 415
    big = requests.post(
        f"{serve.url}l/{tok}", data={"decision": "approve", "x": "y" * 5000}, timeout=10
    )
    assert big.status_code == 413
    assert inbox_files(paths) == []


def test_token_is_not_logged_in_full() -> None:
    tok = token()
    line = redact_path(f'"GET /l/{tok} HTTP/1.1" 200 -')
    assert tok.rsplit(".", 1)[1] not in line and "/l/k3x9.approve.…" in line


# --------------------------------------------------------------------------------------------
# The command


def test_serve_command_refuses_when_links_are_off(capsys) -> None:
    from sentry_tui.cli import main

    assert main(["serve", "--port", "0"]) == 2
    assert "links are off" in capsys.readouterr().err


def test_serve_command_serves_on_loopback(tmp_path: Path) -> None:
    config = Path(os.environ["XDG_CONFIG_HOME"]) / "sentry-tui"
    config.mkdir(parents=True)
    (config / "config.yaml").write_text("links: {enabled: true, base_url: 'https://t.example/'}\n")
    with socket_port() as port:
        pass
    env = {**os.environ, "SENTRY_LINK_KEY": KEY.decode()}
    state = tmp_path / "st"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sentry_tui",
            "serve",
            "--port",
            str(port),
            "--state-dir",
            str(state),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith(f"sentry-tui serve: http://127.0.0.1:{port}/"), line
        tok = make_token(KEY, "ab12", "approve", time.time() + 600)
        resp = requests.post(
            f"http://127.0.0.1:{port}/l/{tok}", data={"decision": "approve"}, timeout=10
        )
        assert resp.status_code == 200
        files = wait_for(lambda: inbox_files(Paths(state)), 10)
        assert len(files) == 1
    finally:
        proc.terminate()
        proc.wait(10)


class socket_port:
    """A free local port (closed again before use; fine for a test)."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        return None
