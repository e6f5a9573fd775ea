"""External completion signals: the GitHub Actions run that a deploy stage started.

A stage with ``await: {github_actions: {repo, workflow}}`` is done when the run of that
workflow *for the commit it deployed* completes. Only a run whose ``head_sha`` is that commit
and that was created at or after the stage started counts: an older run for the same commit
(an earlier deploy, a re-run from yesterday) must never finish today's stage.

:meth:`GithubActions.poll` never raises: rate limits (403/429 with ``x-ratelimit-*`` or
``retry-after``), 5xx, timeouts, network errors and malformed answers all come back as a
``waiting`` update with a ``retry_at`` that :class:`CheckPoller` honours. Answers carry an
ETag, and a repeated poll sends ``If-None-Match``: GitHub does not count a 304 against the
rate limit.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sentry_tui.ansi import one_line
from sentry_tui.http_session import lazy_session
from sentry_tui.model import CheckUpdate, Event, StartCheck
from sentry_tui.secrets import Secret, install_log_filter, load_secrets, register, scrub

if TYPE_CHECKING:
    import requests

log = logging.getLogger("sentry_tui.checks")

GITHUB_API = "https://api.github.com"
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_SHA = re.compile(r"^[0-9a-fA-F]{7,40}$")
_QUEUED = {"queued", "requested", "pending", "waiting", "action_required"}


def token_from_env(env: Mapping[str, str]) -> Secret | None:
    value = (env.get("SENTRY_GITHUB_TOKEN") or env.get("GITHUB_TOKEN") or "").strip()
    return Secret(value) if value else None


def github_from_env(config_dir: Path, env: Mapping[str, str]) -> GithubActions:
    """The client the runner uses: token from the environment or secrets.env, base URL from
    ``SENTRY_GITHUB_BASE`` (GitHub Enterprise: ``https://HOST/api/v3``)."""
    secrets = load_secrets(config_dir, env)
    token = secrets.get("SENTRY_GITHUB_TOKEN") or secrets.get("GITHUB_TOKEN")
    return GithubActions(base_url=env.get("SENTRY_GITHUB_BASE") or GITHUB_API, token=token)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S UTC")


class GithubActions:
    """Finds the workflow run for one commit and reports its status."""

    def __init__(
        self,
        base_url: str = GITHUB_API,
        token: Secret | None = None,
        session: requests.Session | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.session = session  # made at the first request: see http_session
        self.timeout = timeout
        self._etags: dict[str, tuple[str, Any]] = {}  # url+query -> (etag, parsed body)
        self._lock = threading.Lock()
        register(token)
        install_log_filter()

    @classmethod
    def from_env(cls, env: Mapping[str, str], config_dir: Path | None = None) -> GithubActions:
        """See :func:`github_from_env`; ``config_dir`` defaults to the XDG config dir."""
        from sentry_tui.config import default_config_dir

        return github_from_env(config_dir or default_config_dir(), env)

    def __repr__(self) -> str:
        return f"GithubActions(base_url={self.base_url!r}, token={'***' if self.token else None})"

    def _update(self, check: StartCheck, status: str, **kw: Any) -> CheckUpdate:
        return CheckUpdate(check_id=check.check_id, status=status, **kw)

    def _retry(self, check: StartCheck, detail: str, retry_at: float) -> CheckUpdate:
        detail = scrub(one_line(detail, 200), [self.token])
        return self._update(check, "waiting", detail=detail, retry_at=retry_at)

    def request_for(self, check: StartCheck) -> tuple[str, dict[str, str]] | str:
        """(url, query) for ``check``, or a one-line reason why its parameters are unusable."""
        p = check.params
        repo = str(p.get("repo", ""))
        workflow = str(p.get("workflow", ""))
        if not _REPO.match(repo):
            return f"repo {repo!r} is not OWNER/NAME"
        if not workflow or "/" in workflow:
            return f"workflow {workflow!r} is not a workflow file name or id"
        if not _SHA.match(check.head_sha or ""):
            return f"no commit to match (head SHA {check.head_sha!r})"
        base = str(p.get("base_url") or self.base_url).rstrip("/")
        url = f"{base}/repos/{repo}/actions/workflows/{quote(workflow, safe='')}/runs"
        query = {"per_page": "100"}
        if len(check.head_sha) == 40:
            query["head_sha"] = check.head_sha.lower()
        for key in ("branch", "event"):
            if p.get(key):
                query[key] = str(p[key])
        return url, query

    def poll(self, check: StartCheck, now: float) -> CheckUpdate:
        """One look at GitHub. Never raises; see the module doc for what each answer means."""
        try:
            return self._poll(check, now)
        except Exception as exc:  # a bug here must not kill the poller thread
            log.exception("check %s: unexpected error", check.check_id)
            return self._retry(check, f"internal error: {type(exc).__name__}", now + 60)

    def _poll(self, check: StartCheck, now: float) -> CheckUpdate:
        import requests  # here, not at the top: see http_session

        req = self.request_for(check)
        if isinstance(req, str):
            return self._update(check, "error", detail=req)
        url, query = req
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "sentry-tui",
        }
        if self.token:
            headers["Authorization"] = f"Bearer {self.token.reveal()}"
        cache_key = url + "?" + "&".join(f"{k}={v}" for k, v in sorted(query.items()))
        with self._lock:
            cached = self._etags.get(cache_key)
        if cached:
            headers["If-None-Match"] = cached[0]
        try:
            self.session = lazy_session(self.session)
            resp = self.session.get(url, params=query, headers=headers, timeout=self.timeout)
        except requests.Timeout:
            return self._retry(check, f"GitHub did not answer within {self.timeout:g}s", now + 30)
        except requests.RequestException as exc:
            return self._retry(check, f"cannot reach GitHub: {type(exc).__name__}", now + 30)

        limited = self._rate_limited(resp, now)
        if limited is not None:
            return self._retry(
                check, f"GitHub rate limit; next try at {_clock(limited)}", max(limited, now + 1)
            )
        if resp.status_code == 304 and cached:
            data = cached[1]
        elif resp.status_code >= 500:
            return self._retry(check, f"GitHub answered HTTP {resp.status_code}", now + 30)
        elif resp.status_code in (401, 403, 404, 422):
            what = {
                401: "bad or missing token (GITHUB_TOKEN)",
                403: "token lacks access to this repository's Actions",
                404: "repository or workflow not found (or the token cannot see it)",
                422: "GitHub refused the query",
            }[resp.status_code]
            # Stays an error until fixed, but keep looking: the workflow file may be pushed yet.
            return self._update(
                check, "error", detail=f"HTTP {resp.status_code}: {what}", retry_at=now + 120
            )
        elif resp.status_code != 200:
            return self._retry(check, f"GitHub answered HTTP {resp.status_code}", now + 30)
        else:
            try:
                data = resp.json()
            except ValueError:
                return self._retry(check, "GitHub's answer is not valid JSON", now + 30)
            etag = resp.headers.get("ETag")
            if etag:
                with self._lock:
                    self._etags[cache_key] = (etag, data)
        return self._pick(check, data, now)

    @staticmethod
    def _rate_limited(resp: requests.Response, now: float) -> float | None:
        """When to try again if ``resp`` is a rate-limit answer, else None."""
        if resp.status_code not in (403, 429):
            return None
        retry_after = resp.headers.get("retry-after", "")
        if retry_after.strip().isdigit():
            return now + int(retry_after)
        if resp.headers.get("x-ratelimit-remaining") == "0":
            reset = resp.headers.get("x-ratelimit-reset", "")
            return float(reset) if reset.strip().isdigit() else now + 60
        if resp.status_code == 429 or "rate limit" in resp.text[:2000].lower():
            return now + 60  # secondary limit without headers: GitHub says wait a minute
        return None

    def _pick(self, check: StartCheck, data: Any, now: float) -> CheckUpdate:
        runs = data.get("workflow_runs") if isinstance(data, dict) else None
        if not isinstance(runs, list):
            return self._retry(check, "GitHub's answer has no workflow_runs list", now + 30)
        sha = check.head_sha.lower()
        candidates: list[tuple[float, int, Mapping[str, Any]]] = []
        for run in runs:
            if not isinstance(run, dict):
                continue
            head = str(run.get("head_sha", "")).lower()
            created = _parse_time(run.get("created_at"))
            if not head or not (head == sha or (len(sha) < 40 and head.startswith(sha))):
                continue
            if created is None or created < check.created_after:
                continue  # an earlier run for the same commit never counts
            run_id = run.get("id") if isinstance(run.get("id"), int) else 0
            candidates.append((created, run_id, run))
        if not candidates:
            return self._update(
                check,
                "waiting",
                detail=f"no run of {check.params.get('workflow')} for {sha[:10]} "
                f"created after {_iso(check.created_after)} yet",
            )
        _, _, run = max(candidates, key=lambda c: (c[0], c[1]))  # the newest attempt
        status = str(run.get("status") or "")
        url = str(run.get("html_url") or "")
        number = run.get("run_number")
        name = f"run #{number}" if isinstance(number, int) else "run"
        if status == "completed":
            conclusion = str(run.get("conclusion") or "unknown")
            return self._update(
                check, "completed", conclusion=conclusion, url=url, detail=f"{name} {conclusion}"
            )
        if status in _QUEUED:
            return self._update(check, "queued", url=url, detail=f"{name} {status}")
        if status == "in_progress":
            return self._update(check, "in_progress", url=url, detail=f"{name} in progress")
        return self._update(check, "in_progress", url=url, detail=f"{name} {one_line(status, 40)}")


# --------------------------------------------------------------------------------------------
# The poller


@dataclass
class _Active:
    check: StartCheck
    next_at: float
    last: CheckUpdate | None = None
    failures: int = 0


class CheckPoller:
    """Polls every active check on one thread and emits a CheckUpdate when something changed.

    Completed checks are dropped after their final update. Transient trouble (a rate limit, an
    outage) keeps the last known status and says why in ``detail``, so the UI shows
    "in_progress — GitHub rate limit; next try at 12:03:00 UTC" instead of flapping back to
    waiting.
    """

    def __init__(
        self,
        emit: Callable[[Event], None],
        github: GithubActions,
        interval_s: float = 15.0,
        *,
        clock: Callable[[], float] = time.time,
        max_backoff_s: float = 600.0,
    ) -> None:
        self.emit = emit
        self.github = github
        self.interval_s = interval_s
        self.clock = clock
        self.max_backoff_s = max_backoff_s
        self._checks: dict[str, _Active] = {}
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="check-poller", daemon=True)
        self._thread.start()

    def start_check(self, check: StartCheck) -> None:
        """Start (or restart, replacing the old one) polling ``check``, first poll now."""
        with self._cond:
            self._checks[check.check_id] = _Active(check, next_at=0.0)
            self._cond.notify()

    def stop_check(self, check_id: str) -> None:
        with self._cond:
            self._checks.pop(check_id, None)

    def next_poll(self, check_id: str) -> float | None:
        """When ``check_id`` is next polled (epoch, by this poller's clock), None if inactive."""
        with self._cond:
            act = self._checks.get(check_id)
            return act.next_at if act else None

    def active(self) -> list[str]:
        with self._cond:
            return sorted(self._checks)

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout)

    def _due(self) -> list[_Active]:
        with self._cond:
            while not self._stopping:
                now = self.clock()
                due = [a for a in self._checks.values() if a.next_at <= now]
                if due:
                    return due
                nxt = min((a.next_at for a in self._checks.values()), default=None)
                self._cond.wait(None if nxt is None else min(max(nxt - now, 0.01), 1.0))
        return []

    def _run(self) -> None:
        while True:
            due = self._due()
            if not due:
                return
            for act in due:
                self._poll_one(act)

    def _poll_one(self, act: _Active) -> None:
        update = self.github.poll(act.check, self.clock())
        now = self.clock()
        transient = update.status == "waiting" and update.retry_at is not None
        if transient:
            act.failures += 1
            backoff = min(self.interval_s * 2**act.failures, self.max_backoff_s)
            next_at = max(update.retry_at or 0.0, now + backoff)
            if act.last is not None:  # keep what we knew; say why it is stale
                update = replace(act.last, detail=update.detail, retry_at=update.retry_at)
        else:
            act.failures = 0
            next_at = max(update.retry_at or 0.0, now + self.interval_s)
        with self._cond:
            if self._checks.get(act.check.check_id) is not act:
                return  # stopped or restarted while we were asking GitHub
            act.next_at = next_at
            changed = act.last is None or _key(act.last) != _key(update)
            act.last = update
            if update.status == "completed":
                del self._checks[act.check.check_id]
        if changed:
            try:
                self.emit(update)
            except Exception:
                log.exception("check %s: emit failed", act.check.check_id)


def _key(u: CheckUpdate) -> tuple[str, str, str, str]:
    return (u.status, u.conclusion, u.url, u.detail)
