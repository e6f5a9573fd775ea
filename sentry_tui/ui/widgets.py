"""The main screen's widgets. They paint rows from view.py and post nothing but selections.

Each widget keeps the signature of what it last drew and repaints only what differs, so a
snapshot every quarter second with 50 panes costs a few comparisons, not a full redraw.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.binding import Binding
from textual.reactive import reactive
from textual.visual import VisualType
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from sentry_tui.ansi import one_line
from sentry_tui.model import (
    Approval,
    JournalEntry,
    Marker,
    PaneState,
    PaneStatus,
    PipelineRun,
    StageStatus,
)
from sentry_tui.ui import view
from sentry_tui.ui.view import PaneRow, Row, SessionRow

TONES = (
    "busy",
    "waiting",
    "idle",
    "done",
    "failed",
    "gone",
    "unknown",
    "dim",
    "key",
    "title",
    "alert",
)
TONE_CLASSES = {f"tone--{t}" for t in TONES}


class Toned:
    """Colours come from component classes in sentry.tcss, never from Python strings."""

    def tone(self, name: str) -> Style:
        widget: Any = self
        return widget.get_component_rich_style(f"tone--{name}", partial=True)

    def state_tone(self, state: PaneState) -> Style:
        return self.tone(state.value)

    def stage_tone(self, status: StageStatus | None) -> Style:
        return self.tone(view.STAGE_TONE.get(status, "idle")) if status else self.tone("dim")


class ToneStatic(Toned, Static):
    COMPONENT_CLASSES = TONE_CLASSES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sig: object = object()

    def show(self, sig: object, render: Callable[[], Text | Table]) -> bool:
        """Repaint only when ``sig`` (a value of what is drawn) differs from last time and
        the drawing it gives differs too: a signature may hold more than is drawn (a pane's
        last line changes ten times a second; its head shows none of it)."""
        if sig == self._sig:
            return False
        self._sig = sig
        content, drawn = render(), self.content
        if isinstance(content, Text) and content == drawn:
            return False
        # Textual re-lays the whole screen after an update unless told the size holds;
        # at four snapshots a second that layout was a sixth of the UI's CPU.
        self.update(content, layout=self._size_may_change(drawn, content))
        return True

    def _size_may_change(self, old: object, new: Text | Table) -> bool:
        height = self.styles.height
        if height is not None and not height.is_auto:
            return False  # a fixed or fractional height: the layout decides it, not the text
        if self.styles.text_wrap != "nowrap":
            return True  # wrapped text: its height follows the width as well as the text
        if not isinstance(old, Text) or not isinstance(new, Text):
            return True
        return old.plain.count("\n") != new.plain.count("\n")


@dataclass(frozen=True, slots=True)
class Item:
    """One option of a NavList: ``sig`` says when ``render`` must run again.

    ``render(cursor)`` draws the row; ``cursor`` is True on the highlighted row, which then
    starts with ``▸`` so the selection shows without colour (NO_COLOR, 16 colours, a phone).
    """

    id: str
    sig: object
    render: Callable[[bool], Text]
    disabled: bool = False


def cursor_mark(cursor: bool) -> str:
    return "▸" if cursor else " "


class NavList(Toned, OptionList):
    """An OptionList that updates in place and moves with j/k as well as the arrows."""

    COMPONENT_CLASSES = OptionList.COMPONENT_CLASSES | TONE_CLASSES
    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False, id="down"),
        Binding("k", "cursor_up", "Up", show=False, id="up"),
    ]

    # OptionList repaints every visible row when the highlight moves; the two rows that
    # change are redrawn by _move_cursor (their prompts carry the cursor mark).
    highlighted: reactive[int | None] = reactive(None, repaint=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ids: list[str] = []
        self._items: dict[str, Item] = {}
        self._cursor_id: str | None = None

    @property
    def selected_id(self) -> str | None:
        opt = self.highlighted_option
        return opt.id if opt is not None else None

    def sync(self, items: Sequence[Item]) -> None:
        """Make the list show ``items``, keeping the highlight on the same id when it stays.

        Same ids in the same order: only changed prompts are replaced. Otherwise the list is
        rebuilt and the highlight goes to the same id, or the nearest selectable row.
        """
        ids = [it.id for it in items]
        old = self._items
        self._items = {it.id: it for it in items}
        if ids == self._ids:
            cur = self.selected_id
            for it in items:
                if old[it.id].sig != it.sig:
                    self.replace_option_prompt(it.id, it.render(it.id == cur))
            return
        keep = self.selected_id
        old_index = self.highlighted or 0
        self._ids = ids
        self._cursor_id = None
        self.set_options([Option(it.render(False), id=it.id, disabled=it.disabled) for it in items])
        if keep in ids:
            self.highlighted = ids.index(keep)
        else:
            enabled = [i for i, it in enumerate(items) if not it.disabled]
            if enabled:
                after = [i for i in enabled if i >= old_index]
                self.highlighted = after[0] if after else enabled[-1]
        self._move_cursor()

    def watch_highlighted(self, highlighted: int | None) -> None:
        super().watch_highlighted(highlighted)
        self._move_cursor()

    def _move_cursor(self) -> None:
        """Redraw the row that lost the cursor and the row that got it (two prompts)."""
        new = self.selected_id
        if new == self._cursor_id:
            return
        for item_id, cursor in ((self._cursor_id, False), (new, True)):
            item = self._items.get(item_id or "")
            if item is not None:
                self.replace_option_prompt(item.id, item.render(cursor))
        self._cursor_id = new

    def _replace_option_prompt(self, index: int, prompt: VisualType) -> None:
        """Every prompt replacement comes through here; re-render only that row.

        OptionList drops the rendered strips of every row on each replacement, so a cursor
        move or one changed badge re-rendered all visible rows: most of a key press's time
        with 50 panes. Only this row's strips are stale unless its height changed.
        """
        option = self.get_option_at_index(index)
        old_height = self._heights.get(index)
        option._set_prompt(prompt)
        cache = self._option_render_cache
        for key in [k for k in cache.keys() if k[0] is option]:  # noqa: SIM118 (not a dict)
            cache.discard(key)
        style = self.get_visual_style("option-list--option")
        if old_height is None or len(self._get_option_render(option, style)) != old_height:
            self._clear_caches()  # rows below move: OptionList's own full path
        else:
            self.refresh_lines(self._index_to_line[index], old_height)


class PaneList(NavList):
    """Sessions → windows → panes, one line each, with a state badge and the run's stage."""

    def show_rows(self, rows: Sequence[Row]) -> None:
        self.sync([self._item(r) for r in rows])

    def _item(self, row: Row) -> Item:
        if isinstance(row, SessionRow):
            return Item(row.row_id, row, lambda _c: self._session(row), disabled=True)
        return Item(row.row_id, row, lambda c: self._pane(row, c))

    def _session(self, row: SessionRow) -> Text:
        return Text.assemble(("▾ ", self.tone("dim")), (row.session, self.tone("title")))

    def _pane(self, row: PaneRow, cursor: bool) -> Text:
        text = Text.assemble((f"{cursor_mark(cursor)} ", self.tone("key")))
        text.append(f"{row.name:<13.13} ")
        text.append(f"{view.badge(row.state):<6}", self.state_tone(row.state))
        if row.stage and row.stage_status is not None:
            symbol = view.STAGE_MARKS[row.stage_status][0]
            text.append("  ")
            text.append(f"{symbol} {row.stage}", self.stage_tone(row.stage_status))
        return text


class ApprovalList(NavList):
    """Pending approvals, oldest first: what is approved, and how long it has waited."""

    def show_approvals(self, approvals: Sequence[Approval], now: float, compact: bool) -> None:
        items = []
        for a in approvals:
            waited = view.fmt_duration(now - a.created_at)
            sig = (a, waited, compact)
            items.append(Item(f"approval:{a.approval_id}", sig, self._render(a, waited, compact)))
        self.sync(items)

    def _render(self, a: Approval, waited: str, compact: bool) -> Callable[[bool], Text]:
        def render(cursor: bool) -> Text:
            text = Text.assemble((cursor_mark(cursor), self.tone("key")))
            text.append("◆ ", self.tone("waiting"))
            text.append(f"{a.project} › {a.stage}", self.tone("title"))
            if a.gate and not compact:
                text.append(f" ({a.gate.value})", self.tone("dim"))
            text.append(f"  waited {waited}", self.tone("waiting"))
            text.append(f"  #{a.approval_id}", self.tone("dim"))
            command = one_line(a.command, 120) or "(no command)"
            commit = f"@{a.commit[:10]}" if a.commit else "no commit"
            last = one_line(a.last_result, 120) or "no test result yet"
            if compact:
                text.append(f"\n   $ {command}  {commit}\n   {last}")
            else:
                text.append(f"\n   runs: $ {command}   commit: {commit}")
                text.append(f"\n   last: {last}")
            return text

        return render


class AttentionList(NavList):
    """Uncertain sends: journalled as intended, never confirmed. A human retries or dismisses."""

    def show_entries(
        self, entries: Sequence[JournalEntry], labels: dict[str, str], now: float
    ) -> None:
        items = []
        for j in entries:
            ago = view.fmt_duration(now - j.at)
            where = labels.get(j.pane, j.pane)
            sig = (j, ago, where)
            items.append(Item(f"send:{j.action_id}", sig, self._render(j, ago, where)))
        self.sync(items)

    def _render(self, j: JournalEntry, ago: str, where: str) -> Callable[[bool], Text]:
        def render(cursor: bool) -> Text:
            text = Text.assemble((cursor_mark(cursor), self.tone("key")))
            text.append("! ", self.tone("alert"))
            if j.project:
                text.append(f"{j.project} › {j.stage} ", self.tone("title"))
            text.append(f"→ {where} · {ago} ago\n")
            text.append(f"   $ {view.visible(one_line(j.text, 120))}", self.tone("key"))
            return text

        return render


# --------------------------------------------------------------------------------------------
# Detail: the selected pane, its run, its markers and its live tail


def pane_head(w: Toned, pane: PaneStatus | None, gone_label: str, now: float) -> Text:
    if pane is None:
        if gone_label:
            return Text.assemble(
                ("⊘ ", w.tone("gone")), (f"{gone_label} is gone", w.tone("alert")),
                " — it vanished from tmux; pick another pane.",
            )  # fmt: skip
        return Text("No pane selected.", w.tone("dim"))
    info = pane.info
    text = Text()
    text.append(info.label, w.tone("title"))
    text.append(f"  {info.ref.pane_id}", w.tone("dim"))
    text.append("  ")
    text.append(view.badge(pane.state), w.state_tone(pane.state))
    if pane.since:
        text.append(f" for {view.fmt_duration(now - pane.since)}", w.tone("dim"))
    if info.command:
        text.append(f"  {info.command}", w.tone("key"))
    if pane.roles:
        text.append(f"  roles: {', '.join(pane.roles)}", w.tone("dim"))
    if pane.reason:
        text.append(f"\n  why: {one_line(pane.reason, 160)}", w.tone("dim"))
    return text


def run_table(w: Toned, run: PipelineRun | None, now: float, compact: bool) -> Text | Table:
    if run is None:
        return Text("No pipeline run for this pane.", w.tone("dim"))
    if compact:
        return run_line(w, run, now)
    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True)  # marker of the current stage
    table.add_column(no_wrap=True)  # name
    table.add_column(no_wrap=True)  # status
    table.add_column(no_wrap=True, justify="right")  # duration
    table.add_column(no_wrap=True, justify="right")  # attempts
    table.add_column(no_wrap=True, overflow="ellipsis")  # message
    cur = view.current_stage(run)
    for stage in run.stages:
        status_style = w.stage_tone(stage.status)
        note = stage.message or stage.waiting_for
        cells: list[Text | str] = [
            Text("▸", w.tone("key")) if stage is cur and not run.status.finished else " ",
            Text(stage.name, w.tone("title") if stage is cur else Style()),
            Text(view.stage_mark(stage.status), status_style),
            Text(view.fmt_duration(view.stage_duration(stage, now)), w.tone("dim")),
            Text(f"×{stage.attempts}" if stage.attempts else "", w.tone("dim")),
            Text(one_line(note, 80), w.tone("dim")),
        ]
        table.add_row(*cells)
    outer = Table.grid()
    outer.add_row(_run_head(w, run, now))
    outer.add_row(table)
    return outer


def _run_head(w: Toned, run: PipelineRun, now: float) -> Text:
    head = Text()
    head.append(f"{run.project}", w.tone("title"))
    head.append(f"  run {run.run_id}  ", w.tone("dim"))
    head.append(run.status.value, w.tone(_run_tone(run)))
    end = run.finished_at if run.finished_at is not None else now
    head.append(f"  {view.fmt_duration(end - run.started_at)}", w.tone("dim"))
    return head


def run_line(w: Toned, run: PipelineRun, now: float) -> Text:
    """Compact: the run in two lines, every stage as symbol+name, the current one spelled out."""
    text = _run_head(w, run, now)
    cur = view.current_stage(run)
    if cur is not None and not run.status.finished:
        text.append("  ▸ ", w.tone("key"))
        text.append(f"{cur.name} {view.stage_mark(cur.status)}", w.stage_tone(cur.status))
        dur = view.fmt_duration(view.stage_duration(cur, now))
        if dur:
            text.append(f" {dur}", w.tone("dim"))
    text.append("\n")
    for i, stage in enumerate(run.stages):
        if i:
            text.append(" ")
        symbol = view.STAGE_MARKS[stage.status][0]
        style = w.stage_tone(stage.status)
        if stage is cur:
            style = style + w.tone("title")
        text.append(f"{symbol}{stage.name}", style)
    return text


def _run_tone(run: PipelineRun) -> str:
    return {"running": "busy", "succeeded": "done", "failed": "failed"}.get(run.status, "gone")


def markers_text(w: Toned, markers: Sequence[Marker], limit: int = 3) -> Text:
    if not markers:
        return Text("no markers yet", w.tone("dim"))
    text = Text()
    for i, m in enumerate(markers[-limit:]):
        if i:
            text.append("\n")
        tone = "failed" if m.type == "ERROR" or m.ok is False else "done" if m.ok else "key"
        text.append(f"### {m.type}", w.tone(tone))
        if m.stage:
            text.append(f" {m.stage}")
        if m.ok is not None:
            text.append(" ok" if m.ok else " not ok", w.tone(tone))
        if m.exit is not None:
            text.append(f" exit {m.exit}")
        if m.msg:
            text.append(f"  {one_line(m.msg, 100)}")
        text.append(f"  [{m.trust.value}]", w.tone("dim"))
    return text


def tail_text(raw: str, limit: int) -> Text:
    """The pane's last lines with their colours (SGR only: the output is untrusted)."""
    body = view.tail_lines(view.safe_ansi(raw), limit)
    if not body:
        return Text("(no output yet)")
    return Text.from_ansi(body, no_wrap=True, overflow="ellipsis")
