"""The marker grammar (DESIGN.md: the marker protocol): parsing, gutters, wrapping, signing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentry_tui import signing
from sentry_tui.markers import (
    PREFIX,
    Malformed,
    classify,
    format_marker,
    format_signed,
    join_wrapped,
    parse_line,
    scan,
)
from sentry_tui.model import MARKER_TYPES, Marker, Trust

SCREENS = Path(__file__).parent / "screens"
KEY = b"k" * 32


def test_plain_status_marker() -> None:
    m = parse_line('### SENTRY {"type":"STATUS","stage":"test","ok":true,"msg":"12 passed"}')
    assert isinstance(m, Marker)
    assert (m.type, m.stage, m.ok, m.msg) == ("STATUS", "test", True, "12 passed")
    assert m.trust is Trust.UNSIGNED
    assert m.raw.startswith(PREFIX)


@pytest.mark.parametrize(
    "gutter",
    ["", "   ", "\t", "  ⎿  ", "⏺ ", "● ", "│ ", "┃ ", "├─ ", "└ ", "> ", "▌ ", " │  │ "],
)
def test_gutters_agent_uis_indent_with(gutter: str) -> None:
    m = parse_line(gutter + '### SENTRY {"type":"ASK","msg":"Deploy now?","options":["y","n"]}')
    assert isinstance(m, Marker) and m.type == "ASK" and m.fields["options"] == ["y", "n"]


def test_ansi_codes_and_a_right_border_are_ignored() -> None:
    line = '\x1b[2m│\x1b[0m \x1b[1m### SENTRY {"type":"END","stage":"b","exit":0}\x1b[0m   │'
    m = parse_line(line)
    assert isinstance(m, Marker) and m.exit == 0


@pytest.mark.parametrize(
    "line",
    [
        '$ echo \'### SENTRY {"type":"STATUS","stage":"deploy","ok":true}\'',
        "user@nas:~$ printf '### SENTRY {}'",
        '● Bash(echo \'### SENTRY {"type":"STATUS","stage":"code","ok":true}\')',
        'note: ### SENTRY {"type":"STATUS","stage":"x","ok":true}',
        '#### SENTRY {"type":"STATUS"}',
        "### SENTRY: not json",
        "",
        "plain output",
    ],
)
def test_not_markers(line: str) -> None:
    """A command that prints a marker, or any text before the prefix, is not one."""
    assert parse_line(line) is None


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("### SENTRY not json", "expected a JSON object"),
        ("### SENTRY [1, 2]", "expected a JSON object"),
        ('### SENTRY {"type": "STATUS", "stage": "x", "ok": true', "bad JSON"),
        ('### SENTRY {"type": "STATUS", "stage": "x", "ok": tru}', "bad JSON"),
        ('### SENTRY {"type": "DANCE"}', "unknown type 'DANCE'"),
        ('### SENTRY {"stage": "x"}', "missing field 'type'"),
        ('### SENTRY {"type": 3}', "missing field 'type'"),
        ('### SENTRY {"type": "STATUS", "ok": true}', "STATUS needs field 'stage'"),
        ('### SENTRY {"type": "STATUS", "stage": "x"}', "STATUS needs field 'ok'"),
        ('### SENTRY {"type": "ERROR", "stage": "x"}', "ERROR needs field 'code' or 'msg'"),
        ('### SENTRY {"type": "ASK"}', "ASK needs field 'msg' or 'question'"),
        ('### SENTRY {"type": "END", "stage": "x"}', "END needs field 'exit'"),
        ('### SENTRY {"type": "START", "stage": null}', "'stage' must be a string"),
        ('### SENTRY {"type": "END", "stage": "x", "exit": "0"}', "'exit' must be an integer"),
        ('### SENTRY {"type": "END", "stage": "x", "exit": true}', "'exit' must be an integer"),
        ('### SENTRY {"type": "STATUS", "stage": "x", "ok": "yes"}', "'ok' must be true or false"),
        ('### SENTRY {"type": "STATUS", "stage": 1, "ok": true}', "'stage' must be a string"),
        ('### SENTRY {"type": "ASK", "msg": "?", "options": "y/n"}', "'options' must be a list"),
        ('### SENTRY {"type": "EVENT"} trailing words', "text after the JSON object"),
        ('### SENTRY {"type": "EVENT", "n": NaN}', "bad JSON"),
        ("### SENTRY " + "[" * 5000 + "]" * 5000, "expected a JSON object"),
        ('### SENTRY {"type":"EVENT","x":' + "[" * 5000 + "]" * 5000 + "}", "nested too deeply"),
        ("### SENTRY {" + '"a":1,' * 4000 + '"type":"EVENT"}', "longer than"),
    ],
)
def test_malformed_markers_say_why(line: str, reason: str) -> None:
    m = parse_line(line)
    assert isinstance(m, Malformed), m
    assert reason in m.reason
    assert "\n" not in m.reason


def test_wrapper_markers_parse_and_verify() -> None:
    """What `sentry-tui wrap` prints, with and without a stage, signed and not."""
    from sentry_tui.wrap import marker_line

    for fields in ({"exit": 3}, {"stage": "test", "project": "p", "pane": "%1", "exit": 0}):
        plain = _parsed(marker_line("END", fields, None))
        assert plain.exit == fields["exit"] and classify(plain, KEY, set()).trust is Trust.UNSIGNED
        signed = _parsed(marker_line("END", fields, KEY))
        assert classify(signed, KEY, set()).trust is Trust.SIGNED
    assert isinstance(parse_line(marker_line("START", {"cmd": "make"}, KEY)), Marker)


def test_lowercase_type_is_accepted() -> None:
    m = parse_line('### SENTRY {"type":"status","stage":"a","ok":false}')
    assert isinstance(m, Marker) and m.type == "STATUS" and m.ok is False


# -- wrapping -------------------------------------------------------------------------------


def test_join_wrapped_rejoins_lines_exactly_as_wide_as_the_pane() -> None:
    line = format_marker("STATUS", {"stage": "build", "ok": True, "msg": "x" * 150})
    width = 40
    physical = [line[i : i + width] for i in range(0, len(line), width)]
    assert join_wrapped(["before", *physical, "after"], width) == ["before", line, "after"]
    m = parse_line(join_wrapped(physical, width)[0])
    assert isinstance(m, Marker) and m.msg == "x" * 150


def test_scan_joins_a_terminal_wrapped_marker() -> None:
    line = format_marker("ERROR", {"stage": "test", "code": 2, "msg": "y" * 120})
    physical = ["$ ./run-tests", *[line[i : i + 50] for i in range(0, len(line), 50)], "$ "]
    found = scan(physical)
    assert len(found) == 1
    index, m = found[0]
    assert index == 1 and isinstance(m, Marker) and m.msg == "y" * 120


def test_scan_gives_up_after_a_bounded_number_of_lines() -> None:
    lines = ['### SENTRY {"type":"EVENT","x":"' + "a" * 10, *["b" * 10] * 20]
    found = scan(lines)
    assert len(found) == 1 and isinstance(found[0][1], Malformed)


def test_scan_leaves_following_markers_alone_when_a_join_fails() -> None:
    lines = [
        '### SENTRY {"type":"EVENT","x":"unterminated',
        '### SENTRY {"type":"START","stage":"s"}',
    ]
    found = scan(lines)
    assert [i for i, _ in found] == [0, 1]
    assert isinstance(found[0][1], Malformed) and isinstance(found[1][1], Marker)


def test_marker_in_real_claude_code_tool_output() -> None:
    """Claude Code 2.1 echoed a long marker: the command line shows it but is not one; the
    output line sits behind "⎿" and wraps onto an indented next line."""
    screen = (SCREENS / "claude" / "done-4.txt").read_text(encoding="utf-8").split("\n")
    found = scan(screen)
    assert len(found) == 1, found
    _, m = found[0]
    assert isinstance(m, Marker)
    assert m.type == "STATUS" and m.stage == "code" and m.ok is True
    assert m.msg.startswith("all 42 tests pass; the coverage report is in htmlcov/index.html")
    assert m.msg.endswith("added under Unreleased")


# -- signing --------------------------------------------------------------------------------


def _parsed(line: str) -> Marker:
    m = parse_line(line)
    assert isinstance(m, Marker), m
    return m


FIELDS = {"stage": "deploy", "project": "storyapp", "run": "r1", "pane": "%3", "exit": 0}


def test_signed_marker_verifies_once_then_is_a_replay() -> None:
    m = _parsed(format_signed("END", FIELDS, KEY, nonce="n1"))
    assert classify(m, KEY, set()).trust is Trust.SIGNED
    assert classify(m, KEY, {"n1"}).trust is Trust.REPLAYED
    assert classify(m, KEY, set(), pane_id="%3").trust is Trust.SIGNED


def test_unsigned_and_forged_markers() -> None:
    plain = _parsed(format_marker("END", FIELDS))
    assert classify(plain, KEY, set()).trust is Trust.UNSIGNED
    signed = _parsed(format_signed("END", FIELDS, KEY))
    assert classify(signed, b"other key", set()).trust is Trust.BAD_SIGNATURE
    assert classify(signed, None, set()).trust is Trust.BAD_SIGNATURE
    forged = _parsed(format_marker("END", {**signed.fields, "exit": 1}))
    assert classify(forged, KEY, set()).trust is Trust.BAD_SIGNATURE
    retyped = _parsed(format_marker("START", dict(signed.fields)))
    assert classify(retyped, KEY, set()).trust is Trust.BAD_SIGNATURE  # the type is signed too
    moved = classify(signed, KEY, set(), pane_id="%9")
    assert moved.trust is Trust.BAD_SIGNATURE  # printed in another pane than it was signed for


def test_garbage_signature_fields_do_not_crash() -> None:
    m = _parsed('### SENTRY {"type":"EVENT","sig":["x"],"nonce":{"a":1}}')
    assert classify(m, KEY, set()).trust is Trust.BAD_SIGNATURE
    m = _parsed('### SENTRY {"type":"EVENT","sig":"00","nonce":"n"}')
    assert classify(m, KEY, {"n"}).trust is Trust.BAD_SIGNATURE


def test_signature_matches_the_signing_module() -> None:
    line = format_signed("STATUS", {"stage": "s", "ok": True}, KEY, nonce="abc")
    obj = json.loads(line[len(PREFIX) :])
    assert signing.verify(obj, KEY)


# -- format_marker --------------------------------------------------------------------------


def test_format_marker_is_ascii_one_line() -> None:
    line = format_marker("ASK", {"msg": "部署?\nyes", "options": ["是", "否"]})
    assert line.isascii() and "\n" not in line
    assert _parsed(line).msg == "部署?\nyes"


@pytest.mark.parametrize(
    ("type_", "fields"),
    [
        ("STATUS", {"stage": "x"}),
        ("NOPE", {}),
        ("EVENT", {"type": "EVENT"}),
        ("EVENT", {"x": float("nan")}),
        ("END", {"stage": "x", "exit": 1.5}),
    ],
)
def test_format_marker_refuses_what_parse_would_refuse(type_: str, fields: dict) -> None:
    with pytest.raises(ValueError):
        format_marker(type_, fields)


# -- properties -----------------------------------------------------------------------------

GUTTER = st.text(alphabet=" \t│┃⎿├└─●⏺>▌", max_size=6)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
TYPED = {"type", "stage", "project", "ok", "msg", "question", "exit", "options"}
EXTRA = st.dictionaries(st.text(max_size=10).filter(lambda k: k not in TYPED), JSON, max_size=5)
REQUIRED_FIELDS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "STATUS": st.fixed_dictionaries({"stage": st.text(max_size=20), "ok": st.booleans()}),
    "ERROR": st.fixed_dictionaries({"stage": st.text(max_size=20), "code": JSON}),
    "ASK": st.fixed_dictionaries(
        {"msg": st.text(max_size=40)}, optional={"options": st.lists(st.text(max_size=8))}
    ),
    "START": st.fixed_dictionaries({}, optional={"stage": st.text(max_size=20)}),
    "END": st.fixed_dictionaries({"exit": st.integers()}, optional={"stage": st.text(max_size=20)}),
    "EVENT": st.just({}),
}
MARKERS = st.sampled_from(MARKER_TYPES).flatmap(
    lambda t: st.tuples(st.just(t), REQUIRED_FIELDS[t], EXTRA)
)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_never_raises(text: str) -> None:
    result = parse_line(text)
    assert result is None or isinstance(result, Marker | Malformed)
    scan(text.split("\n"))


@settings(max_examples=300, deadline=None)
@given(GUTTER, st.text(max_size=200), st.lists(st.text(max_size=40), max_size=10))
def test_text_after_the_prefix_never_raises(gutter: str, body: str, more: list[str]) -> None:
    result = parse_line(gutter + PREFIX + body)
    assert isinstance(result, Marker | Malformed)
    scan([gutter + PREFIX + body, *more])


@settings(max_examples=300, deadline=None)
@given(MARKERS, GUTTER)
def test_format_marker_round_trips_behind_any_gutter(
    marker: tuple[str, dict[str, Any], dict[str, Any]], gutter: str
) -> None:
    type_, required, extra = marker
    fields = {**extra, **required}
    m = parse_line(gutter + format_marker(type_, fields))
    assert isinstance(m, Marker), m
    assert m.type == type_ and dict(m.fields) == fields


@settings(max_examples=100, deadline=None)
@given(MARKERS, st.integers(min_value=20, max_value=120), st.sampled_from(["$ x", "", "done"]))
def test_wrapped_markers_round_trip(
    marker: tuple[str, dict[str, Any], dict[str, Any]], width: int, after: str
) -> None:
    type_, required, extra = marker
    fields = {**extra, **required}
    line = format_marker(type_, fields)
    physical = [line[i : i + width] for i in range(0, len(line), width)]
    found = scan(["$ run", *physical, after])
    assert len(found) == 1 or (len(physical) > 8 and isinstance(found[0][1], Malformed))
    if len(physical) <= 8:
        assert isinstance(found[0][1], Marker) and dict(found[0][1].fields) == fields


@settings(max_examples=100, deadline=None)
@given(MARKERS, st.text(min_size=1, max_size=10).filter(lambda p: p.strip(" \t│┃⎿├└─●⏺>▌")))
def test_text_before_the_prefix_makes_it_plain(
    marker: tuple[str, dict[str, Any], dict[str, Any]], prefix: str
) -> None:
    type_, required, extra = marker
    line = prefix + format_marker(type_, {**extra, **required})
    stripped = line.lstrip(" \t\u00a0│┃┆┇┊┋║╎╏|⎿├└┌╭╰┬┴┼─━═╴╶●⏺•◦∙·▪▫■□▸▹►▶›»❯>▌▍▎▏")
    if not stripped.startswith(PREFIX):
        assert parse_line(line) is None
