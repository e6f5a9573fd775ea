"""How long, said briefly: one spelling for the TUI, `status` and notifications alike."""

from __future__ import annotations


def human(seconds: float | None) -> str:
    """Short and nearly fixed-width: 7s, 3m12s, 1h05m, 2d03h. Clock skew reads as 0s."""
    if seconds is None:
        return ""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"
