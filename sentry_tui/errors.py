"""Errors a user can act on. Each prints as one line (`sentry-tui: …`), never a traceback."""


class UserError(Exception):
    """A problem the user can fix: bad arguments, a missing server, a malformed file."""


class PolicyError(UserError):
    """A policy file is wrong. The message starts with ``file:line:`` and names the key."""
