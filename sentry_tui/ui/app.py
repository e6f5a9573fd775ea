"""The Textual app: renders the engine's Snapshot and turns keys into HumanEvents.

It only ever talks to an ``EngineClient``: commands are submitted, and a view's snapshots read,
in worker threads (a view's client reads and writes files), so the UI thread never waits on I/O
and keeps answering keys with 50 panes on screen. The hosted engine's snapshot is in memory and
is read directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Container, Vertical
from textual.css.query import NoMatches
from textual.screen import ModalScreen, Screen
from textual.widgets import Input, OptionList
from textual.worker import Worker, WorkerState

from sentry_tui.ansi import one_line
from sentry_tui.model import (
    Approval,
    Approve,
    Cancel,
    Dismiss,
    EngineClient,
    HumanEvent,
    JournalEntry,
    PaneStatus,
    Pause,
    Reject,
    Resume,
    Retry,
    SendText,
    Skip,
    Snapshot,
)
from sentry_tui.ui import view
from sentry_tui.ui.screens import (
    ApproveScreen,
    ConfirmScreen,
    Dialog,
    HelpScreen,
    RejectScreen,
    SendScreen,
    send_confirm_body,
)
from sentry_tui.ui.widgets import (
    ApprovalList,
    AttentionList,
    PaneList,
    ToneStatic,
    markers_text,
    pane_head,
    run_table,
    tail_text,
)

COMPACT_BELOW = 80  # columns: one column under this width (a phone's SSH client)
PALETTE: tuple[tuple[str, str, str], ...] = (
    ("Approve", "Approve the selected approval (asks first)", "approve"),
    ("Reject", "Reject the selected approval, with an optional reason", "reject"),
    ("Retry stage", "Retry the selected stage, or resend the selected uncertain send", "retry"),
    ("Skip stage", "Skip the selected stage", "skip"),
    ("Dismiss send", "Dismiss the selected uncertain send without resending", "dismiss_send"),
    ("Cancel run", "Cancel the selected pane's pipeline run (asks first)", "cancel_run"),
    ("Pause / resume", "Pause or resume all sending", "toggle_pause"),
    ("Type into pane", "Type text into the selected pane (asks first)", "send_text"),
    ("Jump to pane", "Switch tmux to the selected pane", "jump"),
    ("Filter panes", "Filter panes by name or state", "filter"),
    ("Help", "Show every key", "help"),
)
COMPACT_KEYS = ("approve", "reject", "retry", "skip", "send", "help", "quit")
KEY_NAMES = {"slash": "/", "question_mark": "?", "enter": "⏎"}


def key_bar(w: ToneStatic, bindings: Iterable[Binding | tuple[str, ...]], compact: bool,
            paused: bool) -> Text:  # fmt: skip
    text = Text()
    items: list[tuple[str, str]] = []
    for b in bindings:
        if not isinstance(b, Binding) or not b.show:
            continue
        if compact and b.id not in COMPACT_KEYS:
            continue
        desc = "resume" if b.id == "pause" and paused else b.description
        items.append((KEY_NAMES.get(b.key, b.key), desc))
        if b.id == "send" and not compact:
            items.append(("⏎", "jump"))
    if not compact:
        items.append(("^p", "palette"))
    for i, (key, desc) in enumerate(items):
        if i:
            text.append(" " if compact else "  ")
        text.append(key, w.tone("key") + w.tone("title"))
        text.append(f" {desc}")
    return text


class SentryApp(App[None]):
    CSS_PATH = str(Path(__file__).with_name("sentry.tcss"))  # absolute: subclasses live elsewhere
    TITLE = "sentry-tui"
    HORIZONTAL_BREAKPOINTS = [(0, "-compact"), (COMPACT_BELOW, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (20, "-tall")]

    BINDINGS = [
        Binding("a", "approve", "approve", id="approve"),
        Binding("x", "reject", "reject", id="reject"),
        Binding("r", "retry", "retry", id="retry"),
        Binding("s", "skip", "skip", id="skip"),
        Binding("d", "dismiss_send", "dismiss", id="dismiss", show=False),
        Binding("c", "cancel_run", "cancel", id="cancel"),
        Binding("p", "toggle_pause", "pause", id="pause"),
        Binding("i", "send_text", "type", id="send"),
        Binding("slash", "filter", "filter", id="filter"),
        Binding("question_mark", "help", "help", id="help"),
        Binding("q", "quit", "quit", id="quit"),
        Binding("escape", "clear_filter", "clear filter", id="clear-filter", show=False),
    ]

    def __init__(
        self,
        client: EngineClient,
        *,
        hosting: bool | None = None,
        refresh_s: float = 0.25,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.client = client
        self.refresh_s = refresh_s
        self._clock = clock
        self._hosting = hosting
        self.snap: Snapshot | None = None
        self.selected_key: str | None = None
        self.filter_text = ""
        self._poll_error = ""
        self._vanished = ""  # label of the selected pane that disappeared, for the detail head
        self._labels: dict[str, str] = {}  # pane key -> label, remembered after a pane is gone

    # ---------------------------------------------------------------------------------------
    # Layout

    def compose(self) -> ComposeResult:
        yield ToneStatic(id="header")
        yield ToneStatic(id="banner")
        yield ToneStatic(id="warnings")
        with Container(id="body"):
            with Vertical(id="left", classes="section"):
                yield ToneStatic(id="panes-title", classes="section-title")
                yield Input(placeholder="filter: name or state (fail, wait…)", id="filter")
                yield PaneList(id="panes")
            with Vertical(id="right"):
                with Vertical(id="approvals-box", classes="section"):
                    yield ToneStatic(id="approvals-title", classes="section-title")
                    yield ApprovalList(id="approvals")
                with Vertical(id="attention-box", classes="section"):
                    yield ToneStatic(id="attention-title", classes="section-title")
                    yield AttentionList(id="attention")
                with Vertical(id="detail"):
                    yield ToneStatic(id="detail-head")
                    yield ToneStatic(id="detail-run")
                    yield ToneStatic(id="detail-markers")
                    yield ToneStatic(id="tail")
        yield ToneStatic(id="keys")

    def on_mount(self) -> None:
        self.query_one("#filter", Input).display = False
        self.query_one("#panes", PaneList).focus()
        self._paint_waiting()
        self._tick()

    @property
    def hosting(self) -> bool:
        if self._hosting is not None:
            return self._hosting
        return self.snap.hosting if self.snap is not None else False

    @property
    def compact(self) -> bool:
        return self.size.width < COMPACT_BELOW

    # ---------------------------------------------------------------------------------------
    # Polling: one worker at a time, rescheduled when it finishes, paused under most dialogs

    def _tick(self) -> None:
        if not self.screen_stack or self._exit:
            return  # shutting down
        screen = self.screen
        if isinstance(screen, ModalScreen) and not getattr(screen, "watches_snapshot", False):
            self.set_timer(self.refresh_s, self._tick)
            return
        if not self.client.snapshot_in_memory:
            self._poll()
            return
        # The hosted engine's snapshot is an attribute: a worker thread per poll, four
        # times a second, cost the UI a quarter of its CPU and bought nothing.
        try:
            snap = self.client.snapshot()
        except Exception as exc:  # the same path as a failed worker, for any client
            self._polled(None, exc)
        else:
            self._polled(snap, None)
        self.set_timer(self.refresh_s, self._tick)

    @work(thread=True, exclusive=True, group="refresh", exit_on_error=False)
    def _poll(self) -> Snapshot:
        return self.client.snapshot()

    def _polled(self, snap: Snapshot | None, error: BaseException | None) -> None:
        if error is None:
            self._poll_error = ""
            self._apply(snap)
        else:
            self._poll_error = one_line(f"{type(error).__name__}: {error}")
            self._render()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Every worker's outcome lands here: one place for results and failures."""
        worker = event.worker
        state = event.state
        if worker.group == "refresh":
            if state is WorkerState.SUCCESS:
                self._polled(worker.result, None)
            elif state is WorkerState.ERROR:
                self._polled(None, worker.error)
            if state in (WorkerState.SUCCESS, WorkerState.ERROR):
                self.set_timer(self.refresh_s, self._tick)
        elif worker.group == "submit":
            if state is WorkerState.SUCCESS:
                self.notify(f"Sent: {worker.name}", timeout=4)
            elif state is WorkerState.ERROR:
                self.notify(
                    f"Could not send {worker.name}: {one_line(str(worker.error))}",
                    severity="error",
                    timeout=10,
                )
        elif worker.group == "jump":
            if state is WorkerState.SUCCESS:
                self.notify(one_line(str(worker.result)) or "switched", timeout=4)
            elif state is WorkerState.ERROR:
                self.notify(f"Jump failed: {one_line(str(worker.error))}", severity="error")

    def _apply(self, snap: Snapshot | None) -> None:
        if snap is None or not self.screen_stack:
            return
        self.snap = snap
        screen = self.screen
        if isinstance(screen, Dialog):
            screen.on_snapshot(snap)
        if not isinstance(screen, ModalScreen):
            self._render()

    def submit(self, event: HumanEvent, what: str) -> None:
        """Hand a command to the engine off the UI thread (a view's client writes a file)."""
        self.run_worker(
            partial(self.client.submit, event),
            name=what,
            group="submit",
            thread=True,
            exit_on_error=False,
        )

    # ---------------------------------------------------------------------------------------
    # Rendering: each part compares what it would draw with what it drew

    def _paint_waiting(self) -> None:
        self.query_one("#header", ToneStatic).update(Text("sentry-tui  waiting for the engine…"))
        for wid in ("#banner", "#warnings"):
            self.query_one(wid).display = False

    def _render(self) -> None:
        snap = self.snap
        try:
            mounted = self.is_mounted(self.query_one("#panes"))
        except NoMatches:  # a poll that ends while the app shuts down: the widgets are gone
            return
        if snap is None or not mounted:
            if self._poll_error:
                self._show_banner(f"⚠ cannot read the engine's state: {self._poll_error}")
            return
        now = self._clock()
        compact = self.compact
        for p in snap.state.panes.values():
            self._labels[p.info.ref.key] = p.info.label
        self._render_header(snap, now, compact)
        self._render_banner(snap, now)
        self._render_warnings(snap)
        self._render_panes(snap)
        self._render_queues(snap, now, compact)
        self._render_detail(snap, now, compact)
        self._render_keys(snap, compact)

    def _render_keys(self, snap: Snapshot, compact: bool) -> None:
        """The footer, from BINDINGS: all keys when wide, the ones a phone needs when narrow
        (? lists the rest)."""
        paused = snap.state.paused
        keys = self.query_one("#keys", ToneStatic)
        keys.show((compact, paused), lambda: key_bar(keys, self.BINDINGS, compact, paused))

    def is_mounted(self, widget: object) -> bool:
        return getattr(widget, "is_mounted", False)

    def _render_header(self, snap: Snapshot, now: float, compact: bool) -> None:
        c = view.counts(snap)
        read = view.fmt_duration(now - snap.last_read) if snap.last_read is not None else "never"
        stale = snap.last_read is None or now - snap.last_read > 10
        mode = "host" if self.hosting else "view"
        sig = (c, snap.state.paused, mode, read, stale, compact)
        header = self.query_one("#header", ToneStatic)

        def render() -> Text:
            t = header.tone
            text = Text()
            if not compact:
                text.append("sentry-tui ", t("title"))
                text.append(f"{mode} │ ", t("dim"))
            text.append(f"{c.panes} panes ")
            w = "waiting" if not compact else "wait"
            f = "failed" if not compact else "fail"
            ap = "approvals" if not compact else "appr"
            text.append(f" ?{c.waiting} {w}", t("waiting") if c.waiting else t("dim"))
            text.append(f" ✗{c.failed} {f}", t("failed") if c.failed else t("dim"))
            text.append(f" ◆{c.approvals} {ap}", t("waiting") if c.approvals else t("dim"))
            if c.uncertain:
                text.append(f" !{c.uncertain} {'uncertain' if not compact else 'unc'}", t("alert"))
            if snap.state.paused:
                text.append(" │ ", t("dim"))
                text.append(" ‖ PAUSED ", t("alert"))
            text.append(" │ ", t("dim"))
            text.append(
                f"{'tmux read' if not compact else 'read'} {read}", t("alert" if stale else "dim")
            )
            return text

        header.show(sig, render)

    def _show_banner(self, message: str) -> None:
        banner = self.query_one("#banner", ToneStatic)
        banner.display = bool(message)
        if message:
            banner.show(message, lambda: Text(message))

    def _render_banner(self, snap: Snapshot, now: float) -> None:
        if self._poll_error:
            msg = f"⚠ Cannot read the engine's state ({self._poll_error}); retrying."
        elif not snap.engine_alive:
            age = view.fmt_duration(now - snap.now)
            msg = (
                f"⚠ ENGINE STOPPED: this view shows its last state, from {age} ago. "
                "Nothing moves until an engine runs again (sentry-tui, or sentry-tui watch)."
            )
        else:
            msg = ""
        self._show_banner(msg)

    def _render_warnings(self, snap: Snapshot) -> None:
        # Warnings (unmatched roles, failing channels, tmux down) get the ⚠; the engine's
        # latest note is activity ("run started", "attempt 1 failed"), shown dim after them.
        warnings = [one_line(w, 200) for w in snap.warnings]
        latest = one_line(snap.state.notes[-1], 200) if snap.state.notes else ""
        widget = self.query_one("#warnings", ToneStatic)
        widget.display = bool(warnings or latest)

        def line() -> Text:
            text = (
                Text("⚠ " + "  ·  ".join(warnings) + ("  ·  " if latest else ""))
                if warnings
                else Text()
            )
            text.append(latest, style="dim")
            text.truncate(self.size.width * 2, overflow="ellipsis")
            return text

        widget.show((*warnings, latest), line)

    def _render_panes(self, snap: Snapshot) -> None:
        rows = view.pane_rows(snap, self.filter_text)
        selected = self.selected_key
        if selected is not None and selected not in snap.state.panes:
            label = self._labels.get(selected, selected)
            self._vanished = label
            self.selected_key = None
            self.notify(
                f"Pane {label} disappeared from tmux; selection moved.",
                title="Pane gone",
                severity="warning",
                timeout=8,
            )
        panes = self.query_one("#panes", PaneList)
        panes.show_rows(rows)
        shown = sum(1 for r in rows if isinstance(r, view.PaneRow))
        title = f"Panes {shown}" if not self.filter_text else (
            f"Panes {shown}/{len(snap.state.panes)}  filter: {self.filter_text}"
        )  # fmt: skip
        self.query_one("#panes-title", ToneStatic).show(title, lambda: Text(title))
        if self.selected_key is None:
            key = panes.selected_id
            if key and key.startswith("pane:"):
                self.selected_key = key.removeprefix("pane:")

    def _render_queues(self, snap: Snapshot, now: float, compact: bool) -> None:
        approvals = view.pending_approvals(snap)
        title = f"Approvals {len(approvals)}" + (" · oldest first" if approvals else ": none")
        self.query_one("#approvals-title", ToneStatic).show(title, lambda: Text(title))
        alist = self.query_one("#approvals", ApprovalList)
        alist.display = bool(approvals)
        alist.show_approvals(approvals, now, compact)
        sends = view.uncertain_sends(snap)
        self.query_one("#attention-box").display = bool(sends)
        label = f"Uncertain sends {len(sends)} · r resend · d dismiss"
        self.query_one("#attention-title", ToneStatic).show(label, lambda: Text(label))
        self.query_one("#attention", AttentionList).show_entries(sends, self._labels, now)

    def _render_detail(self, snap: Snapshot, now: float, compact: bool) -> None:
        key = self.selected_key
        pane = snap.state.panes.get(key) if key else None
        run = view.run_for_pane(snap, key) if key else None
        head = self.query_one("#detail-head", ToneStatic)
        gone = self._vanished if pane is None else ""
        head.show((pane, gone, int(now)), lambda: pane_head(head, pane, gone, now))
        run_w = self.query_one("#detail-run", ToneStatic)
        run_w.show((run, int(now), compact), lambda: run_table(run_w, run, now, compact))
        marks = snap.markers.get(key, ()) if key else ()
        mark_w = self.query_one("#detail-markers", ToneStatic)
        limit = 1 if compact else 3
        mark_w.show((marks, limit), lambda: markers_text(mark_w, marks, limit))
        tail = self.query_one("#tail", ToneStatic)
        raw = snap.tails.get(key, "") if key else ""
        height = max(1, tail.size.height)
        tail.show((raw, height), lambda: tail_text(raw, height))

    def on_resize(self) -> None:
        self.call_after_refresh(self._render)

    # ---------------------------------------------------------------------------------------
    # Selection

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_list.id == "panes" and event.option.id:
            self.selected_key = event.option.id.removeprefix("pane:")
            self._vanished = ""
            self._render()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        list_id = event.option_list.id
        if list_id == "panes":
            self.action_jump()
        elif list_id == "approvals":
            self.action_approve()
        elif list_id == "attention":
            entry = self._selected_send()
            if entry is not None:
                self._jump(entry.pane)

    def _selected_pane(self) -> PaneStatus | None:
        if self.snap is None or self.selected_key is None:
            return None
        return self.snap.state.panes.get(self.selected_key)

    def _selected_approval(self) -> Approval | None:
        """The approvals list's highlight; from the pane list, the selected pane's project's
        oldest approval when it has one (the dialog names it before anything is sent)."""
        if self.snap is None:
            return None
        pending = view.pending_approvals(self.snap)
        if not pending:
            return None
        alist = self.query_one("#approvals", ApprovalList)
        pane = self._selected_pane()
        if self.focused is not alist and pane is not None:
            projects = view.pane_projects(pane)
            for a in pending:
                if a.project in projects:
                    return a
        chosen = alist.selected_id
        by_id = {f"approval:{a.approval_id}": a for a in pending}
        return by_id.get(chosen or "", pending[0])

    def _selected_send(self) -> JournalEntry | None:
        if self.snap is None:
            return None
        sends = view.uncertain_sends(self.snap)
        if not sends:
            return None
        chosen = self.query_one("#attention", AttentionList).selected_id
        by_id = {f"send:{j.action_id}": j for j in sends}
        return by_id.get(chosen or "", sends[0])

    def _target_stage(self) -> tuple[str, str] | None:
        """(project, stage) the r/s/c keys act on, from whichever list has focus."""
        if self.snap is None:
            return None
        focused = self.focused
        if focused is self.query_one("#attention", AttentionList):
            entry = self._selected_send()
            if entry is not None and entry.project:
                return entry.project, entry.stage
        if focused is self.query_one("#approvals", ApprovalList):
            a = self._selected_approval()
            if a is not None:
                return a.project, a.stage
        if self.selected_key is None:
            return None
        run = view.run_for_pane(self.snap, self.selected_key)
        stage = view.current_stage(run) if run else None
        if run is None or stage is None:
            return None
        return run.project, stage.name

    def _no_stage(self) -> None:
        self.notify(
            "No stage selected: pick a pane that plays a role in a pipeline run.",
            severity="warning",
        )

    # ---------------------------------------------------------------------------------------
    # Actions

    def action_approve(self) -> None:
        a = self._selected_approval()
        if a is None:
            self.notify("No pending approval.", severity="warning")
            return
        now = self._clock()

        def done(ok: object) -> None:
            if ok is True:
                self.submit(
                    Approve(by="ui", approval_id=a.approval_id), f"approve #{a.approval_id}"
                )

        self.push_screen(ApproveScreen(a, now), done)

    def action_reject(self) -> None:
        a = self._selected_approval()
        if a is None:
            self.notify("No pending approval.", severity="warning")
            return

        def done(reason: object) -> None:
            if isinstance(reason, str):
                event = Reject(by="ui", approval_id=a.approval_id, reason=reason)
                self.submit(event, f"reject #{a.approval_id}")

        self.push_screen(RejectScreen(a, self._clock()), done)

    def action_retry(self) -> None:
        entry = self._selected_send()
        if entry is not None and self.focused is self.query_one("#attention", AttentionList):
            if entry.project and entry.stage:
                ev = Retry(by="ui", project=entry.project, stage=entry.stage)
                self.submit(ev, f"retry {entry.project} › {entry.stage}")
            else:
                self._confirm_send(entry.pane, entry.text)
            return
        target = self._target_stage()
        if target is None:
            self._no_stage()
            return
        project, stage = target
        self.submit(Retry(by="ui", project=project, stage=stage), f"retry {project} › {stage}")

    def action_skip(self) -> None:
        target = self._target_stage()
        if target is None:
            self._no_stage()
            return
        project, stage = target
        self.submit(Skip(by="ui", project=project, stage=stage), f"skip {project} › {stage}")

    def action_dismiss_send(self) -> None:
        entry = self._selected_send()
        if entry is None:
            self.notify("No uncertain send to dismiss.", severity="warning")
            return
        self.submit(Dismiss(by="ui", action_id=entry.action_id), f"dismiss {entry.action_id}")

    def action_cancel_run(self) -> None:
        target = self._target_stage()
        if target is None:
            self._no_stage()
            return
        project = target[0]
        body = Text.assemble(
            "Cancel the running pipeline of ", (project, "bold"),
            "? Nothing more is sent for it until a new run starts.",
        )  # fmt: skip

        def done(ok: object) -> None:
            if ok is True:
                self.submit(Cancel(by="ui", project=project), f"cancel {project}")

        self.push_screen(ConfirmScreen(f"Cancel {project}?", body, "cancel the run"), done)

    def action_toggle_pause(self) -> None:
        if self.snap is None:
            self.notify("No engine state yet.", severity="warning")
            return
        if self.snap.state.paused:
            self.submit(Resume(by="ui"), "resume sending")
        else:
            self.submit(Pause(by="ui"), "pause sending")

    def action_send_text(self) -> None:
        pane = self._selected_pane()
        if pane is None:
            self.notify("No pane selected.", severity="warning")
            return
        key, label = pane.info.ref.key, pane.info.label

        def typed(text: object) -> None:
            if isinstance(text, str):
                self._confirm_send(key, text)

        self.push_screen(SendScreen(label), typed)

    def _confirm_send(self, key: str, text: str) -> None:
        pane = self.snap.state.panes.get(key) if self.snap else None
        label = pane.info.label if pane else self._labels.get(key, key)
        command = pane.info.command if pane else ""
        body = send_confirm_body(label, key, command, text)

        def done(ok: object) -> None:
            if ok is True:
                self.submit(SendText(by="ui", pane=key, text=text), f"text to {label}")

        self.push_screen(ConfirmScreen(f"Send to {label}?", body, "send"), done)

    def action_jump(self) -> None:
        if self.selected_key is None:
            self.notify("No pane selected.", severity="warning")
            return
        self._jump(self.selected_key)

    def _jump(self, key: str) -> None:
        self.run_worker(
            partial(self.client.jump_to, key),
            name=f"jump {key}",
            group="jump",
            thread=True,
            exclusive=True,
            exit_on_error=False,
        )

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.filter_text = event.value.strip()
            self._render()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            if not event.value.strip():
                event.input.display = False
            self.query_one("#panes", PaneList).focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        if box.display or self.filter_text:
            box.value = ""
            box.display = False
            self.filter_text = ""
            self.query_one("#panes", PaneList).focus()
            self._render()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        if not self.hosting:
            self.exit()
            return
        body = Text(
            "This UI hosts the engine. Quitting stops watching tmux: pipelines pause and "
            "approvals wait until sentry-tui (or sentry-tui watch) runs again."
        )

        def done(ok: object) -> None:
            if ok is True:
                self.exit()

        self.push_screen(ConfirmScreen("Quit sentry-tui?", body, "quit"), done)

    # ---------------------------------------------------------------------------------------
    # Command palette: every action by name

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for title, help_text, action in PALETTE:
            yield SystemCommand(title, help_text, getattr(self, f"action_{action}"))
