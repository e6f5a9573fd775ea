"""The HTTP stack, loaded at the first request rather than at start-up.

requests (with urllib3 and charset_normalizer) was a fifth of the UI's time to first paint
on a slow host, and most runs never make an HTTP call. The notifier's channels and the
GitHub Actions poller get their sessions here, so neither imports it before it is needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import requests


def lazy_session(current: requests.Session | None) -> requests.Session:
    """``current``, or a new session if there is none yet (the first request)."""
    if current is not None:
        return current
    import requests

    return requests.Session()
