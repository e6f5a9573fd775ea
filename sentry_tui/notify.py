"""Reaching the human off-screen: stdout/log, WeCom group bot, ServerChan, a JSON webhook.

The engine emits :class:`~sentry_tui.model.Notify` actions; the runner hands them to
:meth:`Notifier.submit`, which never blocks and never raises. Each channel has its own worker
thread, so a channel that hangs for its whole timeout delays nobody else. Between submit and
the wire:

- de-duplication by ``dedupe_key`` (a pane that keeps waiting buzzes once per window),
- quiet hours: non-urgent messages are held and summed up in one digest when they end,
- a per-channel rate limit (a sliding minute; WeCom itself allows 20 a minute),
- retries with exponential backoff on timeouts, connection errors, 5xx and 429; a definite
  refusal from the service (its own error JSON) is not retried, and a channel that gave up
  shows in :meth:`Notifier.failing` for the UI.

Secrets (webhook URLs, send keys) are :class:`~sentry_tui.secrets.Secret` values; every error
text passes through :func:`~sentry_tui.secrets.scrub` before it is logged or shown.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import re
import shlex
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import yaml

from sentry_tui.ansi import escape_markdown, one_line, strip_control
from sentry_tui.durations import human
from sentry_tui.errors import UserError
from sentry_tui.http_session import lazy_session
from sentry_tui.model import Notify
from sentry_tui.secrets import (
    Secret,
    install_log_filter,
    load_secrets,
    redact_url,
    register,
    scrub,
)

if TYPE_CHECKING:
    import requests

    from sentry_tui.links import LinkSigner

log = logging.getLogger("sentry_tui.notify")

CONFIG_FILE = "config.yaml"
WECOM_BASE = "https://qyapi.weixin.qq.com"
SERVERCHAN_BASE = "https://sctapi.ftqq.com"
WECOM_MARKDOWN_MAX = 4096  # bytes, WeCom's documented limit for markdown.content
WECOM_TEXT_MAX = 2048  # bytes, for text.content
SERVERCHAN_TITLE_MAX = 32  # characters
SERVERCHAN_DESP_MAX = 32 * 1024
USER_AGENT = "sentry-tui"

# --------------------------------------------------------------------------------------------
# Config file helpers (shared with links.py)


def read_config(config_dir: Path) -> dict[str, Any]:
    """``config.yaml`` as a dict ({} when absent); bad YAML is a one-line error with the line."""
    path = config_dir / CONFIG_FILE
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise UserError(f"{path}{where}: {problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read ({type(exc).__name__})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping at the top level")
    return data


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any, where: str) -> float:
    """``90``, ``"90s"``, ``"2m"``, ``"1h"`` → seconds; anything else names ``where``."""
    if isinstance(value, bool):
        raise UserError(f"{where}: expected a duration such as 90s, 2m or 1h")
    if isinstance(value, int | float) and value >= 0:
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise UserError(f"{where}: expected a duration such as 90s, 2m or 1h, got {value!r}")
    return float(m.group(1)) * _UNIT[m.group(2)]


# --------------------------------------------------------------------------------------------
# Quiet hours


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily window in local time, ``23:00-07:00`` (may wrap midnight)."""

    start_min: int
    end_min: int

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        m = re.match(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$", str(text))
        if not m:
            raise UserError(f"quiet hours: expected HH:MM-HH:MM, got {text!r}")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
            raise UserError(f"quiet hours: {text!r} is not a time of day")
        return cls(h1 * 60 + m1, h2 * 60 + m2)

    def contains(self, ts: float) -> bool:
        t = time.localtime(ts)
        minute = t.tm_hour * 60 + t.tm_min
        if self.start_min <= self.end_min:
            return self.start_min <= minute < self.end_min
        return minute >= self.start_min or minute < self.end_min

    def __str__(self) -> str:
        s, e = self.start_min, self.end_min
        return f"{s // 60:02d}:{s % 60:02d}-{e // 60:02d}:{e % 60:02d}"


# --------------------------------------------------------------------------------------------
# Rendering


WHAT: dict[str, str] = {
    "approval": "approval needed",
    "stage_failed": "stage failed",
    "waiting": "waiting for input",
    "run_finished": "pipeline run finished",
    "approval_expired": "approval expired",
    "pane_failed": "pane failed",
    "uncertain_send": "uncertain send",
    "test": "test message",
    "digest": "held during quiet hours",
}


@dataclass(frozen=True, slots=True)
class Message:
    """One notification, rendered once and sent to every channel in its own format."""

    title: str
    markdown: str
    text: str
    fields: Mapping[str, Any] = field(default_factory=dict)  # the webhook's JSON body


_SAFE_WORD = re.compile(r"^[A-Za-z0-9_.:%/@+=-]+$")


def _arg(value: str) -> str:
    """A shell word safe inside a markdown code span (no backticks, no control characters)."""
    value = one_line(value, 120).replace("`", "'")
    return value if _SAFE_WORD.match(value) else shlex.quote(value)


def answers(n: Notify, ssh_prefix: str = "") -> list[str]:
    """The exact commands that answer ``n`` from a phone's SSH client."""
    if n.answer:
        cmds = [one_line(n.answer, 200).replace("`", "'")]
    elif n.event == "approval" and n.approval_id:
        aid = _arg(n.approval_id)
        cmds = [f"sentry-tui approve {aid}", f"sentry-tui reject {aid} --reason 'why'"]
    elif n.event in ("stage_failed", "approval_expired") and n.project and n.stage:
        p, s = _arg(n.project), _arg(n.stage)
        cmds = [f"sentry-tui retry {p} {s}", f"sentry-tui skip {p} {s}"]
    elif n.event == "waiting" and n.pane:
        cmds = [f"sentry-tui send {_arg(n.pane)} 'TEXT'"]
    else:
        cmds = ["sentry-tui status"]
    prefix = one_line(ssh_prefix, 80).replace("`", "'")
    return [f"{prefix} {c}" if prefix else c for c in cmds]


def compose(
    n: Notify,
    *,
    now: float | None = None,
    links: LinkSigner | None = None,
    ssh_prefix: str = "",
) -> Message:
    """Render ``n``: what happened, where, what approving would run, how long, how to answer.

    Every field may have come from a pane, so each is control-stripped; in the markdown it is
    also escaped, so pane text cannot add headings, links or mentions.
    """
    now = time.time() if now is None else now
    what = WHAT.get(n.event, n.event.replace("_", " "))
    where = "/".join(x for x in (n.project, n.stage) if x) or n.pane
    headline = one_line(n.title or what, 120)
    title = one_line(f"{what}: {where}" if where else what, 120)
    waited = human(now - n.since) if n.since is not None else ""
    cmds = answers(n, ssh_prefix)
    link_urls: dict[str, str] = {}
    if links is not None and n.approval_id and n.event == "approval":
        try:
            link_urls = {d: links.url(n.approval_id, d) for d in ("approve", "reject")}
        except ValueError:
            link_urls = {}
    body = strip_control(n.body).strip()
    if len(body) > 1500:
        body = body[:1499] + "…"

    md: list[str] = [f"**{escape_markdown(headline)}**"]
    tx: list[str] = [headline]
    facts: list[tuple[str, str]] = []
    if n.project:
        facts.append(("Project", n.project))
    if n.stage:
        facts.append(("Stage", n.stage))
    if n.pane:
        facts.append(("Pane", n.pane))
    facts.append(("Event", what))
    if n.command:
        facts.append(("Would run", n.command))
    if n.commit:
        facts.append(("Commit", n.commit))
    if waited:
        facts.append(("Waiting for", waited))
    # One block, one fact a line: a trailing double space is markdown's line break (WeCom
    # breaks on the newline alone and shows the spaces as nothing).
    md.append("  \n".join(f"{k}: {escape_markdown(one_line(v, 200))}" for k, v in facts))
    tx.extend(f"{k}: {one_line(v, 200)}" for k, v in facts)
    if body:
        md.append("\n".join(f"> {escape_markdown(line)}" for line in body.splitlines()))
        tx.append(body)
    md.append("Answer over SSH: " + " or ".join(f"`{c}`" for c in cmds))
    tx.append("Answer over SSH: " + " | ".join(cmds))
    if link_urls:
        md.append(f"[Approve]({link_urls['approve']}) · [Reject]({link_urls['reject']})")
        tx.append(f"Approve: {link_urls['approve']}\nReject: {link_urls['reject']}")

    fields: dict[str, Any] = {
        "kind": "notify",
        "event": n.event,
        "title": title,
        "what": what,
        "project": one_line(n.project, 200),
        "stage": one_line(n.stage, 200),
        "pane": one_line(n.pane, 200),
        "approval_id": one_line(n.approval_id, 80),
        "command": one_line(n.command, 500),
        "commit": one_line(n.commit, 80),
        "body": body,
        "waited_s": round(now - n.since, 1) if n.since is not None else None,
        "urgent": n.urgent,
        "answer": cmds,
        "links": link_urls,
        "at": round(now, 3),
    }
    return Message(title, "\n\n".join(md), "\n".join(tx), fields)


def render(
    n: Notify, *, now: float | None = None, links: LinkSigner | None = None
) -> tuple[str, str]:
    """(title, markdown body) of ``n``, as WeCom and ServerChan show it."""
    msg = compose(n, now=now, links=links)
    return msg.title, msg.markdown


def _truncate_bytes(text: str, limit: int) -> str:
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    cut = raw[: limit - len("…".encode())].decode("utf-8", errors="ignore")
    return cut + "…"


# --------------------------------------------------------------------------------------------
# Channels


class ChannelError(Exception):
    """A send failed. ``retry``: worth trying again (timeouts, 5xx, 429), not a refusal."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


class Channel:
    """A place notifications go. ``send`` returns a one-line answer or raises ChannelError."""

    name: str = "channel"

    def send(self, msg: Message) -> str:
        raise NotImplementedError

    def secrets(self) -> tuple[Secret | None, ...]:
        return ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class StdoutChannel(Channel):
    """Plain text to a stream: for `sentry-tui watch` in a terminal or under systemd."""

    name = "stdout"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def send(self, msg: Message) -> str:
        stream = self.stream or sys.stdout
        stamp = time.strftime("%H:%M:%S")
        lines = msg.text.splitlines() or [""]
        print(f"[{stamp}] notify: {lines[0]}", file=stream)
        for line in lines[1:]:
            print(f"    {line}", file=stream)
        stream.flush()
        return "ok"


class LogChannel(Channel):
    """Each notification as one log line (the runner routes the logger to sentry.log)."""

    name = "log"

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger("sentry_tui.notify.log")

    def send(self, msg: Message) -> str:
        self.logger.info("notify: %s", one_line(msg.text.replace("\n", " · "), 1000))
        return "ok"


class _HttpChannel(Channel):
    def __init__(self, *, timeout: float = 10.0, session: requests.Session | None = None) -> None:
        self.timeout = timeout
        self.session = session  # made at the first request: see http_session
        install_log_filter()

    def _register(self) -> None:
        for secret in self.secrets():
            register(secret)

    def _post(self, url: str, **kwargs: Any) -> requests.Response:
        import requests  # here, not at the top: see http_session

        headers = {"User-Agent": USER_AGENT, **kwargs.pop("headers", {})}
        try:
            self.session = lazy_session(self.session)
            resp = self.session.post(url, timeout=self.timeout, headers=headers, **kwargs)
        except requests.Timeout:
            raise ChannelError(f"timed out after {self.timeout:g}s", retry=True) from None
        except requests.RequestException as exc:
            reason = scrub(one_line(f"{type(exc).__name__}: {exc}", 300), self.secrets())
            raise ChannelError(f"cannot reach {redact_url(url)}: {reason}", retry=True) from None
        if resp.status_code == 429 or resp.status_code >= 500:
            raise ChannelError(f"HTTP {resp.status_code} from {redact_url(url)}", retry=True)
        if resp.status_code >= 400:
            raise ChannelError(f"HTTP {resp.status_code} from {redact_url(url)}", retry=False)
        return resp

    def _json(self, resp: requests.Response) -> dict[str, Any]:
        try:
            data = resp.json()
        except ValueError:
            raise ChannelError(
                f"answer is not JSON (HTTP {resp.status_code}, {len(resp.content)} bytes)",
                retry=True,
            ) from None
        if not isinstance(data, dict):
            raise ChannelError("answer is JSON but not an object", retry=True)
        return data

    def _service_error(self, text: Any) -> str:
        return scrub(one_line(str(text), 200), self.secrets())


class WeComChannel(_HttpChannel):
    """WeCom (企业微信) group robot: POST ``{"msgtype": ..., ...}`` to its webhook URL.

    The webhook URL carries the robot's key. WeCom answers HTTP 200 with
    ``{"errcode": 0, "errmsg": "ok"}``, or a non-zero ``errcode`` on failure (45009 is its rate
    limit, worth retrying; others, such as 93000 for a bad key, are not).
    """

    name = "wecom"
    RETRY_ERRCODES = frozenset({-1, 45009, 45033})

    def __init__(
        self,
        webhook: Secret,
        *,
        msgtype: str = "markdown",
        base_url: str | None = None,
        timeout: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        if msgtype not in ("markdown", "text"):
            raise UserError(f"wecom.msgtype: expected markdown or text, got {msgtype!r}")
        super().__init__(timeout=timeout, session=session)
        self.webhook = webhook
        self.msgtype = msgtype
        self.base_url = base_url
        self._register()

    def secrets(self) -> tuple[Secret | None, ...]:
        return (self.webhook,)

    def url(self) -> str:
        """The webhook URL; a bare key is accepted too, and ``base_url`` moves the host."""
        value = self.webhook.reveal().strip()
        base = (self.base_url or WECOM_BASE).rstrip("/")
        if "://" not in value:
            return f"{base}/cgi-bin/webhook/send?key={value}"
        if self.base_url:
            _, _, rest = value.partition("://")
            _, slash, path = rest.partition("/")
            return f"{base}{slash}{path}"
        return value

    def payload(self, msg: Message) -> dict[str, Any]:
        if self.msgtype == "markdown":
            content = _truncate_bytes(msg.markdown, WECOM_MARKDOWN_MAX)
            return {"msgtype": "markdown", "markdown": {"content": content}}
        return {"msgtype": "text", "text": {"content": _truncate_bytes(msg.text, WECOM_TEXT_MAX)}}

    def send(self, msg: Message) -> str:
        resp = self._post(self.url(), json=self.payload(msg))
        data = self._json(resp)
        code = data.get("errcode")
        if code == 0:
            return "ok"
        err = self._service_error(data.get("errmsg", ""))
        raise ChannelError(f"WeCom errcode {code}: {err}", retry=code in self.RETRY_ERRCODES)


class ServerChanChannel(_HttpChannel):
    """ServerChan Turbo: POST form fields ``title`` (≤ 32 chars) and ``desp`` (markdown) to
    ``https://sctapi.ftqq.com/<SENDKEY>.send``; it answers ``{"code": 0, ...}`` on success.
    ServerChan³ keys (``sctp<N>t…``) go to ``https://<N>.push.ft07.com/send/<key>.send``."""

    name = "serverchan"

    def __init__(
        self,
        key: Secret,
        *,
        base_url: str | None = None,
        timeout: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        super().__init__(timeout=timeout, session=session)
        self.key = key
        self.base_url = base_url
        self._register()

    def secrets(self) -> tuple[Secret | None, ...]:
        return (self.key,)

    def url(self) -> str:
        key = self.key.reveal().strip()
        if self.base_url:
            return f"{self.base_url.rstrip('/')}/{key}.send"
        m = re.match(r"^sctp(\d+)t", key)
        if m:
            return f"https://{m.group(1)}.push.ft07.com/send/{key}.send"
        return f"{SERVERCHAN_BASE}/{key}.send"

    def form(self, msg: Message) -> dict[str, str]:
        desp = msg.markdown
        if len(desp.encode()) > SERVERCHAN_DESP_MAX:
            desp = _truncate_bytes(desp, SERVERCHAN_DESP_MAX)
        return {"title": one_line(msg.title, SERVERCHAN_TITLE_MAX), "desp": desp}

    def send(self, msg: Message) -> str:
        resp = self._post(self.url(), data=self.form(msg))
        data = self._json(resp)
        if data.get("code") == 0:
            return "ok"
        err = self._service_error(data.get("message") or data.get("info") or "")
        raise ChannelError(f"ServerChan code {data.get('code')}: {err}", retry=False)


class WebhookChannel(_HttpChannel):
    """Any endpoint that takes JSON: the notification's fields, plus rendered text/markdown."""

    name = "webhook"

    def __init__(
        self,
        url: Secret,
        *,
        token: Secret | None = None,
        timeout: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        super().__init__(timeout=timeout, session=session)
        self.url = url
        self.token = token
        self._register()

    def secrets(self) -> tuple[Secret | None, ...]:
        return (self.url, self.token)

    def payload(self, msg: Message) -> dict[str, Any]:
        return {**msg.fields, "title": msg.title, "text": msg.text, "markdown": msg.markdown}

    def send(self, msg: Message) -> str:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token.reveal()}"
        body = json.dumps(self.payload(msg), ensure_ascii=False).encode("utf-8")
        resp = self._post(self.url.reveal(), data=body, headers=headers)
        return f"ok (HTTP {resp.status_code})"


# --------------------------------------------------------------------------------------------
# The notifier


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    msg: Message = field(compare=False)
    urgent: bool = field(compare=False, default=False)
    attempt: int = field(compare=False, default=0)


class _Worker:
    """One channel's queue and thread: rate limit, quiet hours, retries."""

    def __init__(self, owner: Notifier, channel: Channel) -> None:
        self.owner = owner
        self.channel = channel
        self.jobs: list[_Job] = []
        self.sent: deque[float] = deque()
        self.held: list[Message] = []
        self.cond = threading.Condition()
        self.busy = False
        self.stopping = False
        self.dropped_run = 0  # messages dropped since the queue was last full
        self.name = channel.name
        self.thread = threading.Thread(target=self._run, name=f"notify-{channel.name}", daemon=True)
        self.thread.start()

    def put(self, job: _Job) -> bool:
        with self.cond:
            if len(self.jobs) >= self.owner.queue_size:
                return False
            heapq.heappush(self.jobs, job)
            self.cond.notify()
            return True

    def idle(self) -> bool:
        with self.cond:
            return not self.jobs and not self.busy

    def pending(self) -> int:
        with self.cond:
            return len(self.jobs) + (1 if self.busy else 0)

    def _next(self) -> _Job | None:
        """Wait for a due job (or a held digest to release); None when stopping."""
        owner = self.owner
        with self.cond:
            while not self.stopping:
                now = owner.clock()
                if self.held and not owner.in_quiet(now):
                    digest = owner._digest(self.held, now)
                    self.held = []
                    heapq.heappush(self.jobs, _Job(now, next(owner._seq), digest))
                if self.jobs and self.jobs[0].due <= now:
                    job = heapq.heappop(self.jobs)
                    if not job.urgent and job.attempt == 0 and owner.in_quiet(now):
                        if len(self.held) < 50:
                            self.held.append(job.msg)
                        continue
                    while self.sent and self.sent[0] <= now - 60:
                        self.sent.popleft()
                    if len(self.sent) >= owner.rate_per_min:
                        job.due = self.sent[0] + 60
                        heapq.heappush(self.jobs, job)
                        continue
                    self.sent.append(now)
                    self.busy = True
                    return job
                # Sleep until the next job is due; capped, so a test's fake clock and the end
                # of quiet hours are noticed without a wake-up call.
                wait = None
                if self.jobs:
                    wait = min(max(self.jobs[0].due - now, 0.01), 0.5)
                elif self.held:
                    wait = 0.5
                self.cond.wait(wait)
        return None

    def _run(self) -> None:
        while True:
            job = self._next()
            if job is None:
                return
            try:
                self._deliver(job)
            finally:
                with self.cond:
                    self.busy = False
                    self.cond.notify_all()

    def _deliver(self, job: _Job) -> None:
        owner = self.owner
        name = self.channel.name
        try:
            answer = self.channel.send(job.msg)
        except ChannelError as exc:
            reason = scrub(one_line(str(exc), 200), self.channel.secrets())
            job.attempt += 1
            if exc.retry and job.attempt < owner.max_attempts:
                delay = min(owner.backoff_s * 2 ** (job.attempt - 1), 300.0)
                log.warning("notify %s: %s; retry %d in %.1fs", name, reason, job.attempt, delay)
                job.due = owner.clock() + delay
                with self.cond:
                    heapq.heappush(self.jobs, job)
                return
            log.error("notify %s: %s (gave up after %d attempt(s))", name, reason, job.attempt)
            owner._set_failing(name, reason)
            return
        except Exception as exc:  # a bug in a channel must not kill its thread
            reason = scrub(one_line(f"{type(exc).__name__}: {exc}", 200), self.channel.secrets())
            log.exception("notify %s: unexpected error", name)
            owner._set_failing(name, reason)
            return
        log.debug("notify %s: %s", name, answer)
        owner._set_failing(name, None)

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify_all()


class Notifier:
    """Fans notifications out to channels without ever stalling or crashing the caller."""

    def __init__(
        self,
        channels: Sequence[Channel],
        *,
        rate_per_min: int = 10,
        quiet_hours: QuietHours | str | None = None,
        clock: Callable[[], float] = time.time,
        links: LinkSigner | None = None,
        ssh_prefix: str = "",
        dedupe_window_s: float = 3600.0,
        max_attempts: int = 4,
        backoff_s: float = 2.0,
        queue_size: int = 100,
    ) -> None:
        if isinstance(quiet_hours, str):
            quiet_hours = QuietHours.parse(quiet_hours)
        self.quiet_hours = quiet_hours
        self.rate_per_min = max(1, int(rate_per_min))
        self.clock = clock
        self.links = links
        self.ssh_prefix = ssh_prefix
        self.dedupe_window_s = dedupe_window_s
        self.max_attempts = max(1, max_attempts)
        self.backoff_s = backoff_s
        self.queue_size = queue_size
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._seen: dict[str, float] = {}
        self._failing: dict[str, str] = {}
        self.dropped = 0
        names = [c.name for c in channels]
        if len(set(names)) != len(names):
            raise ValueError(f"channel names must be unique: {names}")
        self._workers = [_Worker(self, c) for c in channels]

    @property
    def channels(self) -> list[Channel]:
        return [w.channel for w in self._workers]

    def in_quiet(self, now: float) -> bool:
        return self.quiet_hours is not None and self.quiet_hours.contains(now)

    def _key(self, n: Notify) -> str:
        if n.dedupe_key:
            return n.dedupe_key
        return "\x1f".join((n.event, n.project, n.stage, n.pane, n.approval_id, n.title, n.body))

    def submit(self, n: Notify) -> None:
        """Queue ``n`` for every channel. Never blocks, never raises."""
        try:
            now = self.clock()
            key = self._key(n)
            with self._lock:
                last = self._seen.get(key)
                if last is not None and now - last < self.dedupe_window_s:
                    return
                self._seen[key] = now
                if len(self._seen) > 2048:  # bounded: forget the oldest half
                    for old in sorted(self._seen, key=self._seen.__getitem__)[:1024]:
                        del self._seen[old]
            msg = compose(n, now=now, links=self.links, ssh_prefix=self.ssh_prefix)
            for w in self._workers:
                if w.put(_Job(now, next(self._seq), msg, urgent=n.urgent)):
                    if w.dropped_run:
                        log.warning("notify %s: queue drained; %d dropped", w.name, w.dropped_run)
                        w.dropped_run = 0
                    continue
                with self._lock:
                    self.dropped += 1
                if not w.dropped_run:  # one line per burst, not one per message
                    log.warning("notify %s: queue full, dropping until it drains", w.name)
                w.dropped_run += 1
        except Exception:
            log.exception("notify: could not queue a notification")

    def _digest(self, held: Sequence[Message], now: float) -> Message:
        lines = [f"{len(held)} notification(s) held during quiet hours ({self.quiet_hours}):"]
        lines += [f"- {m.title}" for m in held]
        lines.append("Run `sentry-tui status` for what is still open.")
        md = "\n\n".join(
            [f"**{escape_markdown(lines[0])}**"]
            + [f"\\- {escape_markdown(m.title)}" for m in held]
            + [lines[-1]]
        )
        title = f"{len(held)} held during quiet hours"
        fields = {
            "kind": "notify",
            "event": "digest",
            "title": title,
            "count": len(held),
            "titles": [m.title for m in held],
            "at": round(now, 3),
        }
        return Message(title, md, "\n".join(lines), fields)

    def _set_failing(self, name: str, reason: str | None) -> None:
        with self._lock:
            if reason is None:
                self._failing.pop(name, None)
            else:
                self._failing[name] = reason

    def failing(self) -> dict[str, str]:
        """Channel name → the one-line last error, for channels that gave up; for the UI."""
        with self._lock:
            return dict(self._failing)

    def pending(self) -> int:
        return sum(w.pending() for w in self._workers)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queue is empty (held quiet-hour messages aside)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(w.idle() for w in self._workers):
                return True
            time.sleep(0.02)
        return False

    def close(self, timeout: float = 2.0) -> None:
        """Stop the workers; a request in flight finishes on its own daemon thread."""
        for w in self._workers:
            w.stop()
        deadline = time.monotonic() + timeout
        for w in self._workers:
            w.thread.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------------------------
# Configuration


CHANNEL_NAMES: tuple[str, ...] = ("stdout", "log", "wecom", "serverchan", "webhook")
_NOTIFY_KEYS = {
    "channels",
    "rate_per_min",
    "quiet_hours",
    "waiting_after",
    "ssh",
    "dedupe_window",
    "timeout",
    "retries",
    "wecom",
    "serverchan",
    "webhook",
}


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    """The ``notify:`` section of ``config.yaml``::

    notify:
      channels: [log, wecom, serverchan]   # default: log + every channel with a secret set
      rate_per_min: 10                     # per channel
      quiet_hours: "23:00-07:00"           # local time; urgent (failures) still go out
      waiting_after: 2m                    # an agent waiting longer than this notifies
      ssh: "ssh nas"                       # prefix of the one-liner in each message
      wecom: {msgtype: markdown, base_url: https://qyapi.weixin.qq.com}
      serverchan: {base_url: https://sctapi.ftqq.com}
    """

    channels: tuple[str, ...] | None = None
    rate_per_min: int = 10
    quiet_hours: QuietHours | None = None
    waiting_after_s: float = 120.0
    ssh_prefix: str = ""
    dedupe_window_s: float = 3600.0
    timeout_s: float = 10.0
    max_attempts: int = 4
    wecom: Mapping[str, Any] = field(default_factory=dict)
    serverchan: Mapping[str, Any] = field(default_factory=dict)
    webhook: Mapping[str, Any] = field(default_factory=dict)


def load_notify_config(config_dir: Path) -> NotifyConfig:
    path = config_dir / CONFIG_FILE
    section = read_config(config_dir).get("notify")
    if section is None:
        return NotifyConfig()
    if not isinstance(section, dict):
        raise UserError(f"{path}: notify: expected a mapping")
    unknown = sorted(set(section) - _NOTIFY_KEYS)
    if unknown:
        raise UserError(
            f"{path}: notify: unknown key {unknown[0]!r} "
            f"(expected {', '.join(sorted(_NOTIFY_KEYS))})"
        )
    where = f"{path}: notify"
    channels = section.get("channels")
    if channels is not None:
        if isinstance(channels, str):
            channels = [channels]
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
            raise UserError(f"{where}.channels: expected a list of channel names")
        for c in channels:
            if c not in CHANNEL_NAMES:
                raise UserError(
                    f"{where}.channels: unknown channel {c!r} (expected {', '.join(CHANNEL_NAMES)})"
                )
        channels = tuple(dict.fromkeys(channels))
    rate = section.get("rate_per_min", 10)
    if isinstance(rate, bool) or not isinstance(rate, int) or rate < 1:
        raise UserError(f"{where}.rate_per_min: expected a whole number ≥ 1, got {rate!r}")
    retries = section.get("retries", 3)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
        raise UserError(f"{where}.retries: expected a whole number 0..10, got {retries!r}")
    quiet = section.get("quiet_hours")
    try:
        quiet_hours = QuietHours.parse(quiet) if quiet else None
    except UserError as exc:
        raise UserError(f"{where}.{exc}") from None
    subs: dict[str, Mapping[str, Any]] = {}
    for name, allowed in (
        ("wecom", {"msgtype", "base_url"}),
        ("serverchan", {"base_url"}),
        ("webhook", set()),
    ):
        sub = section.get(name) or {}
        if not isinstance(sub, dict):
            raise UserError(f"{where}.{name}: expected a mapping")
        bad = sorted(set(sub) - allowed)
        if bad:
            raise UserError(
                f"{where}.{name}: unknown key {bad[0]!r} (URLs and keys belong in the "
                "environment or secrets.env, never in config.yaml)"
            )
        subs[name] = sub
    return NotifyConfig(
        channels=channels,
        rate_per_min=rate,
        quiet_hours=quiet_hours,
        waiting_after_s=parse_duration(section.get("waiting_after", 120), f"{where}.waiting_after"),
        ssh_prefix=str(section.get("ssh") or ""),
        dedupe_window_s=parse_duration(
            section.get("dedupe_window", 3600), f"{where}.dedupe_window"
        ),
        timeout_s=parse_duration(section.get("timeout", 10), f"{where}.timeout"),
        max_attempts=retries + 1,
        wecom=subs["wecom"],
        serverchan=subs["serverchan"],
        webhook=subs["webhook"],
    )


def channels_from_env_and_config(config_dir: Path, env: Mapping[str, str]) -> list[Channel]:
    """The channels to use: those listed in config.yaml, or log plus every one with a secret.

    A channel that is listed but has no secret is a one-line error naming the variable.
    """
    cfg = load_notify_config(config_dir)
    secrets = load_secrets(config_dir, env)
    have = {
        "wecom": "SENTRY_WECOM_WEBHOOK" in secrets,
        "serverchan": "SENTRY_SERVERCHAN_KEY" in secrets,
        "webhook": "SENTRY_WEBHOOK_URL" in secrets,
    }
    names = cfg.channels
    if names is None:
        names = ("log", *(n for n in ("wecom", "serverchan", "webhook") if have[n]))
    wecom_base = env.get("SENTRY_WECOM_BASE") or cfg.wecom.get("base_url")
    sc_base = env.get("SENTRY_SERVERCHAN_BASE") or cfg.serverchan.get("base_url")
    var = {
        "wecom": "SENTRY_WECOM_WEBHOOK",
        "serverchan": "SENTRY_SERVERCHAN_KEY",
        "webhook": "SENTRY_WEBHOOK_URL",
    }
    out: list[Channel] = []
    for name in names:
        if name in var and not have[name]:
            raise UserError(
                f"{config_dir / CONFIG_FILE}: notify.channels lists {name} but {var[name]} is "
                "not set (environment or secrets.env)"
            )
        if name == "stdout":
            out.append(StdoutChannel())
        elif name == "log":
            out.append(LogChannel())
        elif name == "wecom":
            out.append(
                WeComChannel(
                    secrets["SENTRY_WECOM_WEBHOOK"],
                    msgtype=str(cfg.wecom.get("msgtype", "markdown")),
                    base_url=wecom_base,
                    timeout=cfg.timeout_s,
                )
            )
        elif name == "serverchan":
            out.append(
                ServerChanChannel(
                    secrets["SENTRY_SERVERCHAN_KEY"], base_url=sc_base, timeout=cfg.timeout_s
                )
            )
        elif name == "webhook":
            out.append(
                WebhookChannel(
                    secrets["SENTRY_WEBHOOK_URL"],
                    token=secrets.get("SENTRY_WEBHOOK_TOKEN"),
                    timeout=cfg.timeout_s,
                )
            )
    return out


def settings_from_config(
    config_dir: Path,
    *,
    state_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for :class:`Notifier` from ``config.yaml``: limits, quiet hours, the
    SSH prefix and, when ``links.enabled``, the link signer (its key lives in ``state_dir``,
    by default ``$SENTRY_TUI_STATE_DIR`` or the XDG state dir, as `sentry-tui serve` uses)."""
    import os

    from sentry_tui.config import Paths, default_state_dir
    from sentry_tui.links import signer_from_config

    env = os.environ if env is None else env
    cfg = load_notify_config(config_dir)
    if state_dir is None:
        override = env.get("SENTRY_TUI_STATE_DIR")
        state_dir = Path(override).expanduser() if override else default_state_dir()
    return {
        "rate_per_min": cfg.rate_per_min,
        "quiet_hours": cfg.quiet_hours,
        "links": signer_from_config(config_dir, Paths(state_dir), env),
        "ssh_prefix": cfg.ssh_prefix,
        "dedupe_window_s": cfg.dedupe_window_s,
        "max_attempts": cfg.max_attempts,
    }


def notifier_from_config(
    config_dir: Path, env: Mapping[str, str], *, state_dir: Path | None = None
) -> Notifier:
    """A ready Notifier for the runner: channels, limits, quiet hours and (if on) links."""
    return Notifier(
        channels_from_env_and_config(config_dir, env),
        **settings_from_config(config_dir, state_dir=state_dir, env=env),
    )


def send_now(channel: Channel, n: Notify, *, now: float | None = None) -> tuple[bool, str]:
    """Send synchronously, once, for `notify-test`: (ok, one-line answer or error)."""
    try:
        return True, channel.send(compose(n, now=now))
    except ChannelError as exc:
        return False, scrub(one_line(str(exc), 200), channel.secrets())
    except Exception as exc:
        return False, scrub(one_line(f"{type(exc).__name__}: {exc}", 200), channel.secrets())
