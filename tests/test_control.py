"""The control-mode parser and screen diffing, without tmux (pure)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sentry_tui.control import (
    Continue,
    ControlParser,
    Exit,
    LineAssembler,
    Notice,
    Output,
    Pause,
    Reply,
    render_line,
    unescape,
)
from sentry_tui.screen import (
    Position,
    after_position,
    line_hash,
    new_lines,
    normalize,
    split_capture,
    text_of,
)


def parse(*chunks: bytes) -> list[object]:
    p = ControlParser()
    out: list[object] = []
    for c in chunks:
        out += p.feed(c)
    return out


def test_output_is_octal_unescaped() -> None:
    items = parse(b"%output %3 a\\134b\\015\\012\\033[1mX\n")
    assert items == [Output("%3", b"a\\b\r\n\x1b[1mX")]


def test_extended_output_with_age_and_colon_in_data() -> None:
    items = parse(b"%extended-output %12 57 : x : y\\012\n", b"%extended-output %1 0 : \n")
    assert items == [Output("%12", b"x : y\n", 57), Output("%1", b"", 0)]


def test_lines_split_across_reads() -> None:
    items = parse(b"%outp", b"ut %1 he", b"llo\n%sessions-", b"changed\n")
    assert items == [Output("%1", b"hello"), Notice("sessions-changed")]


def test_reply_block_pairs_begin_with_its_end_and_keeps_percent_lines() -> None:
    items = parse(
        b"%begin 100 7 1\n",
        b"%0\x1f$0\n%end 99 3 1\nplain\n",
        b"%end 100 7 1\n%begin 101 8 1\nparse error: unknown command: x\n%error 101 8 1\n",
    )
    assert items == [
        Reply(7, True, True, ("%0\x1f$0", "%end 99 3 1", "plain")),
        Reply(8, True, False, ("parse error: unknown command: x",)),
    ]
    assert isinstance(items[1], Reply) and items[1].error == "parse error: unknown command: x"


def test_attach_block_is_not_ours() -> None:
    (reply,) = parse(b"%begin 1 263 0\n%end 1 263 0\n")
    assert isinstance(reply, Reply) and not reply.ours and reply.ok


def test_notifications() -> None:
    items = parse(
        b"%session-changed $0 main\n%window-add @3\n%unlinked-window-add @4\n"
        b"%window-close @3\n%pause %2\n%continue %2\n%exit server exited\n"
    )
    assert items == [
        Notice("session-changed", ("$0", "main")),
        Notice("window-add", ("@3",)),
        Notice("unlinked-window-add", ("@4",)),
        Notice("window-close", ("@3",)),
        Pause("%2"),
        Continue("%2"),
        Exit("server exited"),
    ]


def test_utf8_split_across_notifications_decodes_after_line_split() -> None:
    data = "日本語 ok ✓\n".encode()
    a, b = data[:2], data[2:]  # splits the first character
    items = parse(
        b"%output %1 " + a.replace(b"\\", b"\\134") + b"\n",
        b"%output %1 " + b.replace(b"\n", b"\\012") + b"\n",
    )
    asm = LineAssembler()
    lines: list[str] = []
    for it in items:
        assert isinstance(it, Output)
        lines += asm.feed(it.data)
    assert lines == ["日本語 ok ✓"]


def test_assembler_keeps_partial_prompt() -> None:
    asm = LineAssembler()
    assert asm.feed(b"one\r\ntwo\r\nContinue? [y/N] ") == ["one", "two"]
    assert asm.partial == "Continue? [y/N]"
    assert asm.feed(b"y\r\n") == ["Continue? [y/N] y"]


def test_render_line_overwrites_like_a_terminal() -> None:
    assert render_line("50%\r60%\r\x1b[K100% done") == "100% done"
    assert render_line("abcdef\rXY") == "XYcdef"
    assert render_line("\x1b[1;31mred\x1b[0m plain\x07") == "red plain"
    assert render_line("ab\bc") == "ac"
    assert render_line("x\x1b[5Gy") == "x   y"
    assert render_line("\x1b]0;title\x07text") == "text"


def test_unescape_leaves_other_backslashes() -> None:
    assert unescape(b"a\\b") == b"a\\b"
    assert unescape(b"\\134\\134") == b"\\\\"


@given(st.lists(st.binary(max_size=200), max_size=8))
def test_parser_never_raises(chunks: list[bytes]) -> None:
    p = ControlParser()
    for c in chunks:
        p.feed(c)
    p.feed(b"\n")


@given(st.text(max_size=200))
def test_render_line_never_raises(text: str) -> None:
    out = render_line(text)
    assert "\x1b" not in out and "\n" not in out


# -- screen.py --------------------------------------------------------------------------------


def test_split_capture_drops_blank_rows_below_cursor() -> None:
    rows = ["$ make", "ok", "Continue? [y/N] ", "", ""]
    assert split_capture(rows, height=5, cursor_y=2) == (["$ make", "ok"], "Continue? [y/N]")
    assert split_capture(["a", "b", ""], height=3, cursor_y=2) == (["a", "b"], "")


def test_after_position_finds_last_occurrence() -> None:
    lines = ["x", "a", "b", "x", "a", "b", "new1", "new2"]
    tail = tuple(line_hash(s) for s in ["x", "a", "b"])
    assert after_position(lines, tail) == ["new1", "new2"]
    assert after_position(lines, (line_hash("nope"),)) is None
    assert after_position(lines, ()) is None


def test_normalize_agrees_on_tabs_and_trailing_space() -> None:
    assert normalize("a\tb  ") == normalize("a  b") == "a b"


def test_new_lines_scroll_redraw_and_repeat() -> None:
    old = ["l1", "l2", "l3", "spinner 1s"]
    assert new_lines(old, ["l2", "l3", "l4", "spinner 1s"]) == ["l4"]  # scrolled by one
    assert new_lines(old, old) == []  # a redraw of the same screen
    assert new_lines(old, [*old[:3], "spinner 2s"]) == ["spinner 2s"]
    assert new_lines(["M"], ["M", "M"]) == ["M"]  # printed again: new
    assert new_lines([], ["", "a"]) == ["a"]


def test_position_round_trip_and_garbage() -> None:
    pos = Position(12, ("aa", "bb"))
    assert Position.load(pos.dump()) == pos
    assert Position.load("not json") is None
    assert Position.load('{"seq": "x"}') is None
    assert Position.load(None) is None


def test_text_of_strips_ansi() -> None:
    assert text_of(["\x1b[1mA\x1b[0m  ", "B", "", ""]) == "A\nB"
