"""Dialogs: every decision that changes something is named and confirmed before it is sent.

Approval dialogs watch the snapshot while open: an approval decided elsewhere (CLI, dropped
file, a phone link) closes its dialog with a message rather than letting a stale `y` through.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.columns import Columns
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from sentry_tui.ansi import one_line
from sentry_tui.model import Approval, PaneState, Snapshot, StageStatus
from sentry_tui.ui import view


class Dialog(ModalScreen[object]):
    """Base: a titled box. ``watches_snapshot`` keeps polling alive while it is open."""

    watches_snapshot = False

    def __init__(self, title: str, body: Text, hint: str) -> None:
        super().__init__()
        self._dialog_title = title
        self._dialog_body = body
        self._dialog_hint = hint
        self._answered = False

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Text(self._dialog_title), classes="dialog-title")
            yield Static(self._dialog_body, classes="dialog-body", id="dialog-body")
            yield from self.compose_extra()
            yield Static(Text(self._dialog_hint), classes="dialog-hint", id="dialog-hint")

    def compose_extra(self) -> ComposeResult:
        yield from ()

    def close(self, result: object) -> None:
        """Dismiss once: a second key press while the screen pops must not answer twice."""
        if not self._answered:
            self._answered = True
            self.dismiss(result)

    def on_snapshot(self, snap: Snapshot) -> None:
        """Called with every snapshot while this dialog is on top (if it watches)."""


class ConfirmScreen(Dialog):
    """y confirms, n or escape cancels. Result: True or False."""

    BINDINGS = [
        Binding("y", "yes", "Confirm", id="confirm"),
        Binding("n,escape", "no", "Cancel", id="cancel-dialog"),
    ]

    def __init__(self, title: str, body: Text, yes: str = "confirm") -> None:
        super().__init__(title, body, f"y  {yes}    n / esc  cancel")

    def action_yes(self) -> None:
        self.close(True)

    def action_no(self) -> None:
        self.close(False)


def approval_body(a: Approval, now: float, pane_label: str = "") -> Text:
    text = Text()
    text.append(f"{a.project} › {a.stage}", "bold")
    text.append(f"   #{a.approval_id}   waited {view.fmt_duration(now - a.created_at)}\n")
    text.append(f"gate:    {a.gate.value} the stage\n")
    text.append(f"runs:    $ {one_line(a.command, 300) or '(no command)'}\n")
    if pane_label:
        text.append(f"in:      {pane_label}\n")
    text.append(f"commit:  {a.commit or '(no commit)'}\n")
    text.append(f"last:    {one_line(a.last_result, 300) or '(no test result yet)'}")
    return text


class ApprovalWatch:
    """Mixin: close the dialog when its approval stops being pending somewhere else."""

    approval_id: str
    watches_snapshot = True

    def on_snapshot(self, snap: Snapshot) -> None:
        dialog: Dialog = self  # type: ignore[assignment]
        if dialog._answered:
            return
        a = snap.state.approvals.get(self.approval_id)
        if a is not None and a.status == "pending":
            return
        if a is None:
            what = "no longer exists"
        else:
            by = f" by {a.decided_by}" if a.decided_by else ""
            what = f"was {a.status}{by} meanwhile"
        message = f"Approval #{self.approval_id} {what}: nothing to do."
        dialog.query_one("#dialog-body", Static).update(Text(message, "bold"))
        dialog.query_one("#dialog-hint", Static).update(Text("closing…"))
        dialog.app.notify(message, title="Decided elsewhere", severity="warning", timeout=8)
        dialog._answered = True

        def close() -> None:
            dialog.dismiss(None)  # not returned: Textual would await it from this screen

        dialog.set_timer(1.5, close)


class ApproveScreen(ApprovalWatch, ConfirmScreen):
    def __init__(self, a: Approval, now: float, pane_label: str = "") -> None:
        self.approval_id = a.approval_id
        super().__init__(
            f"Approve {a.project} › {a.stage}?", approval_body(a, now, pane_label), "approve"
        )


class RejectScreen(ApprovalWatch, Dialog):
    """An optional one-line reason, enter rejects, escape keeps the approval pending.

    Result: the reason ("" when none) or None when cancelled.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="cancel-dialog")]

    def __init__(self, a: Approval, now: float) -> None:
        self.approval_id = a.approval_id
        super().__init__(
            f"Reject {a.project} › {a.stage}?",
            approval_body(a, now),
            "enter  reject    esc  cancel",
        )

    def compose_extra(self) -> ComposeResult:
        yield Input(placeholder="reason (optional, one line)", max_length=200, id="reason")

    def on_mount(self) -> None:
        self.query_one("#reason", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.close(one_line(event.value, 200))

    def action_cancel(self) -> None:
        self.close(None)


class SendScreen(Dialog):
    """Text to type into a pane. Empty text is refused here, before anything is sent.

    Result: the text exactly as typed, or None when cancelled.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="cancel-dialog")]

    def __init__(self, pane_label: str, initial: str = "") -> None:
        body = Text.assemble("Type into ", (pane_label, "bold"), ". You confirm before it is sent.")
        super().__init__(f"Send text to {pane_label}", body, "enter  next    esc  cancel")
        self._initial = initial

    def compose_extra(self) -> ComposeResult:
        yield Input(value=self._initial, placeholder="text to type", id="send-text")
        yield Static("", id="send-error", classes="dialog-error")

    def on_mount(self) -> None:
        self.query_one("#send-text", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if not event.value.strip():
            message = "Empty text: nothing to send. Type something or press esc."
            self.query_one("#send-error", Static).update(Text(message))
            self.app.notify(message, severity="warning")
            return
        self.close(event.value)

    def action_cancel(self) -> None:
        self.close(None)


def send_confirm_body(pane_label: str, pane_key: str, command: str, text: str) -> Text:
    body = Text()
    body.append("target:  ")
    body.append(pane_label, "bold")
    body.append(f"  ({pane_key})")
    if command:
        body.append(f"  running {command}")
    body.append("\ntext:    ")
    body.append(f"⟨{view.visible(text)}⟩", "bold")
    body.append(f"\n         {len(text)} characters, typed exactly as shown, then Enter")
    return body


HELP_KEYS: Sequence[tuple[str, str]] = (
    ("a", "approve the selected approval (y confirms)"),
    ("x", "reject it, with an optional reason"),
    ("r", "retry the selected stage / resend an uncertain send"),
    ("s", "skip the selected stage"),
    ("d", "dismiss an uncertain send (never resent)"),
    ("c", "cancel the selected run (asks first)"),
    ("p", "pause / resume all sending"),
    ("i", "type into the selected pane (confirmed first)"),
    ("enter", "switch tmux to the selected pane"),
    ("/", "filter by name or state; esc clears"),
    ("j k ↑ ↓", "move;  tab  next list"),
    ("ctrl+p", "command palette: every action by name"),
    ("?", "this help"),
    ("q", "quit (asks first when this UI hosts the engine)"),
)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q,question_mark", "close", "Close", id="close-help"),
        Binding("j", "scroll(1)", "Down", show=False, id="help-down"),
        Binding("k", "scroll(-1)", "Up", show=False, id="help-up"),
    ]

    def compose(self) -> ComposeResult:
        keys = Table.grid(padding=(0, 2))
        keys.add_column(no_wrap=True, style="bold")
        keys.add_column()
        for key, what in HELP_KEYS:
            keys.add_row(key, what)
        # Columns keep each symbol beside its word: on a phone a joined line broke "✓ done".
        legend = Table.grid(padding=(0, 2))
        legend.add_column(no_wrap=True)
        legend.add_column()
        for label, marks in (
            ("pane states:", [view.badge(s) for s in PaneState]),
            ("stages:", [view.stage_mark(s) for s in StageStatus]),
        ):
            legend.add_row(label, Columns(marks, padding=(0, 3)))
        with VerticalScroll(id="help"):
            yield Static(Text("sentry-tui keys"), classes="dialog-title")
            yield Static(keys)
            yield Static(legend, classes="help-legend")
            yield Static(Text("esc / ? / q  close"), classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#help").focus()  # so j/k, arrows and page keys scroll it

    def action_scroll(self, lines: int) -> None:
        self.query_one("#help", VerticalScroll).scroll_relative(y=lines, animate=False)

    def action_close(self) -> None:
        self.dismiss(None)
