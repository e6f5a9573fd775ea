"""sentry-tui: watch AI coding agents and jobs in tmux, drive their pipelines, ask a human."""

__version__ = "0.1.0"
