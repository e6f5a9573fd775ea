"""`sentry-tui serve`: the small HTTP endpoint behind signed approve/reject links.

Chat apps fetch every link they see to build a preview, so a GET must never decide anything:
it only shows a confirmation page whose button POSTs back to the same URL. Only that POST,
with the decision the token was signed for, spends the token (persisted, so a replay after a
restart is refused too) and drops an Approve/Reject request into the inbox, exactly as
`sentry-tui approve` would. Bound to 127.0.0.1 by default: expose it through a tunnel
(see the README), never directly.
"""

from __future__ import annotations

import html
import logging
import re
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from sentry_tui.ansi import one_line
from sentry_tui.config import Paths
from sentry_tui.links import Claim, LinkError, UsedTokens, check_token, used_tokens
from sentry_tui.model import Approve, HumanEvent, Reject

log = logging.getLogger("sentry_tui.serve")

MAX_BODY = 4096
_LINK = re.compile(r"^/l/([A-Za-z0-9_.-]{1,200})/?$")
_TOKEN_IN_TEXT = re.compile(r"(/l/[A-Za-z0-9_-]+\.[a-z]+)\.[0-9]+\.[A-Za-z0-9_-]+")

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem}}
button{{font-size:1.2rem;padding:.6rem 1.2rem}} input{{font-size:1rem;width:100%}}</style>
</head><body>
<h1>{title}</h1>
{body}
</body></html>
"""

_STATUS_FOR = {
    "malformed": HTTPStatus.BAD_REQUEST,
    "signature": HTTPStatus.FORBIDDEN,
    "can only": HTTPStatus.FORBIDDEN,
    "expired": HTTPStatus.GONE,
    "already used": HTTPStatus.GONE,
}


def _status_for(error: LinkError) -> HTTPStatus:
    text = str(error)
    return next((s for k, s in _STATUS_FOR.items() if k in text), HTTPStatus.BAD_REQUEST)


def redact_path(path: str) -> str:
    """A request line fit for the log: the token's signature and expiry left out."""
    return _TOKEN_IN_TEXT.sub(r"\1.…", path)


class LinkServer(ThreadingHTTPServer):
    """Holds what the handler needs; one instance per `sentry-tui serve`."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        *,
        paths: Paths,
        key: bytes,
        clock: Callable[[], float] = time.time,
        submit: Callable[[Paths, HumanEvent], str] | None = None,
        answer_wait_s: float = 3.0,
    ) -> None:
        super().__init__(address, LinkHandler)
        self.paths = paths
        self.key = key
        self.clock = clock
        self.used: UsedTokens = used_tokens(paths)
        self.answer_wait_s = answer_wait_s
        if submit is None:
            from sentry_tui import inbox

            submit = inbox.submit
        self.submit = submit

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    def start_background(self) -> threading.Thread:
        """Serve on a daemon thread (tests, and a host process that embeds it)."""
        thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="link-server",
            daemon=True,
        )
        thread.start()
        return thread


class LinkHandler(BaseHTTPRequestHandler):
    server: LinkServer
    server_version = "sentry-tui"
    sys_version = ""

    # ---- plumbing ------------------------------------------------------------------------

    def log_message(self, format: str, *args: object) -> None:
        log.info("%s %s", self.address_string(), redact_path(format % args))

    def _page(self, status: HTTPStatus, title: str, body: str, *, head: bool = False) -> None:
        data = _PAGE.format(title=html.escape(title), body=body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Robots-Tag", "noindex, nofollow")
        self.send_header(
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
            "frame-ancestors 'none'",
        )
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def _refuse(self, error: LinkError, *, head: bool = False) -> None:
        self._page(
            _status_for(error), "Link not usable", f"<p>{html.escape(str(error))}.</p>", head=head
        )

    def _token(self) -> str | None:
        m = _LINK.match(self.path.split("?", 1)[0])
        return m.group(1) if m else None

    # ---- GET / HEAD: look, never touch ---------------------------------------------------

    def do_HEAD(self) -> None:
        self._show(head=True)

    def do_GET(self) -> None:
        self._show(head=False)

    def _show(self, *, head: bool) -> None:
        token = self._token()
        if token is None:
            self._page(HTTPStatus.NOT_FOUND, "Not found", "<p>sentry-tui</p>", head=head)
            return
        try:
            claim = check_token(
                self.server.key, token, now=self.server.clock(), used=self.server.used
            )
        except LinkError as exc:
            self._refuse(exc, head=head)
            return
        self._page(
            HTTPStatus.OK,
            f"{claim.decision.title()} {claim.approval_id}?",
            self._form(claim),
            head=head,
        )

    def _form(self, claim: Claim) -> str:
        aid = html.escape(claim.approval_id)
        until = time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(claim.expires_at))
        reason = ""
        if claim.decision == "reject":
            reason = (
                "<p><label>Reason (optional)<br>"
                '<input name="reason" maxlength="200" autocomplete="off"></label></p>'
            )
        return (
            f"<p>This will <b>{claim.decision}</b> approval <code>{aid}</code>. "
            f"The link works once, until {html.escape(until)}.</p>"
            f'<form method="post">'
            f'<input type="hidden" name="decision" value="{claim.decision}">{reason}'
            f'<p><button type="submit">{claim.decision.title()} {aid}</button></p></form>'
            f"<p>Or over SSH: <code>sentry-tui {claim.decision} {aid}</code></p>"
        )

    # ---- POST: the only way to decide ----------------------------------------------------

    def do_POST(self) -> None:
        token = self._token()
        if token is None:
            self._page(HTTPStatus.NOT_FOUND, "Not found", "<p>sentry-tui</p>")
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._page(HTTPStatus.LENGTH_REQUIRED, "Bad request", "<p>Length required.</p>")
            return
        if length < 0 or length > MAX_BODY:
            self._page(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Bad request", "<p>Too large.</p>")
            return
        ctype = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        raw = self.rfile.read(length)
        if ctype != "application/x-www-form-urlencoded":
            self._page(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "Bad request", "<p>Use the form.</p>")
            return
        try:
            form = parse_qs(raw.decode("utf-8"), max_num_fields=4)
        except (UnicodeDecodeError, ValueError):
            self._page(HTTPStatus.BAD_REQUEST, "Bad request", "<p>Unreadable form.</p>")
            return
        decision = (form.get("decision") or [""])[0]
        if not decision:
            self._refuse(LinkError("this link is malformed: no decision in the form"))
            return
        server = self.server
        now = server.clock()
        try:
            claim = check_token(server.key, token, now=now, decision=decision, used=server.used)
            if not server.used.claim(claim, now):
                raise LinkError("this link was already used")
        except LinkError as exc:
            log.warning("link refused: %s", exc)
            self._refuse(exc)
            return
        event: HumanEvent
        if claim.decision == "approve":
            event = Approve(by="link", approval_id=claim.approval_id)
        else:
            reason = one_line((form.get("reason") or [""])[0], 200) or "rejected from a link"
            event = Reject(by="link", approval_id=claim.approval_id, reason=reason)
        try:
            request_id = server.submit(server.paths, event)
        except Exception as exc:
            log.exception("link: could not write to the inbox")
            self._page(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                "Not sent",
                f"<p>Could not reach the inbox ({html.escape(type(exc).__name__)}). "
                f"Use <code>sentry-tui {claim.decision} "
                f"{html.escape(claim.approval_id)}</code> over SSH.</p>",
            )
            return
        log.info("link: %s %s (request %s)", claim.decision, claim.approval_id, request_id)
        self._page(HTTPStatus.OK, "Sent", self._outcome(claim, request_id))

    def _outcome(self, claim: Claim, request_id: str) -> str:
        aid = html.escape(claim.approval_id)
        report = None
        if self.server.answer_wait_s > 0 and _engine_running(self.server.paths):
            from sentry_tui import inbox

            try:
                report = inbox.wait_answer(self.server.paths, request_id, self.server.answer_wait_s)
            except Exception:
                report = None
        if report is None:
            return (
                f"<p>Your {claim.decision} of <code>{aid}</code> is in the inbox. The engine "
                "applies it within a second when it runs; <code>sentry-tui status</code> "
                "shows the result.</p>"
            )
        verdict = "Done" if report.ok else "Not applied"
        return f"<p>{verdict}: {html.escape(one_line(report.message, 300))}</p>"


def _engine_running(paths: Paths) -> bool:
    """Whether an engine holds the state dir's lock (only then is an answer worth awaiting)."""
    try:
        from sentry_tui.store import EngineLock

        return EngineLock(paths).holder() is not None
    except Exception:
        return False


def make_server(
    paths: Paths,
    key: bytes,
    host: str = "127.0.0.1",
    port: int = 8765,
    **kwargs: object,
) -> LinkServer:
    return LinkServer((host, port), paths=paths, key=key, **kwargs)  # type: ignore[arg-type]
