"""``### SENTRY {json}`` lines → markers (DESIGN.md: the marker protocol).

Pane output is untrusted and messy: agent UIs indent tool output behind box and tree glyphs,
terminals wrap long lines, and a shell echoes the command that *prints* a marker before the
marker itself. So a marker is a line that, once ANSI codes and a leading gutter are removed,
*starts* with the prefix; anything else in front (``$ echo '### SENTRY …'``) makes it plain
text. A line that is a marker but not a valid one is returned as :class:`Malformed` with the
reason, because a script author needs to see why their marker did nothing; nothing here raises.

Signed markers: the wrapper signs ``{"type": …, **fields}`` (the type is covered, so an END
cannot be turned into a START), with :func:`sentry_tui.signing.sign`; :func:`classify` checks
the signature and the nonce and sets the marker's :class:`~sentry_tui.model.Trust`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sentry_tui import signing
from sentry_tui.ansi import strip_ansi
from sentry_tui.model import MARKER_TYPES, Marker, Trust

PREFIX = "### SENTRY "
MAX_LINE = 16384  # a marker longer than this is refused: nobody prints one on purpose
MAX_CONTINUATION = 8  # physical lines a wrapped marker may span

# Leading gutter: whitespace and the box, tree and bullet glyphs agent UIs put before tool
# output (Claude Code ``⏺``/``⎿``, Codex ``│``/``└``/``▌``, Gemini ``│``, quote ``>``).
_GUTTER_CHARS = (
    " \t\u00a0"
    "│┃┆┇┊┋║╎╏|"  # vertical bars
    "⎿├└┌╭╰┬┴┼─━═╴╶"  # corners and rules
    "●⏺•◦∙·▪▫■□▸▹►▶›»❯>▌▍▎▏"  # bullets, arrows, cursors
)
_GUTTER = re.compile("[" + re.escape(_GUTTER_CHARS) + "]*")
_TRAILER = re.compile("[" + re.escape(_GUTTER_CHARS) + "]*$")

REQUIRED: dict[str, tuple[tuple[str, ...], ...]] = {
    # each inner tuple: at least one of these keys must be present
    "STATUS": (("stage",), ("ok",)),
    "ERROR": (("stage",), ("code", "msg")),
    "ASK": (("msg", "question"),),
    # no stage for START/END: `sentry-tui wrap -- CMD` outside a pipeline names none
    "START": (),
    "END": (("exit",),),
    "EVENT": (),
}


@dataclass(frozen=True, slots=True)
class Malformed:
    """A line that claims to be a marker but is not a valid one."""

    line: str
    reason: str


def strip_gutter(text: str) -> tuple[str, str]:
    """Split ``text`` into (gutter, rest)."""
    m = _GUTTER.match(text)
    end = m.end() if m else 0
    return text[:end], text[end:]


def marker_text(line: str) -> str | None:
    """The text from the prefix on, if ``line`` is a marker line at all; else None."""
    _, rest = strip_gutter(strip_ansi(line))
    return rest if rest.startswith(PREFIX) else None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"bad JSON: {name} is not allowed")


class _Incomplete(Exception):
    """The JSON object stops at the end of the text: it may continue on the next line."""


def _decode(body: str) -> dict[str, Any]:
    """One JSON object, then only spaces or a right-hand box border."""
    text = body.lstrip()
    if not text.startswith("{"):
        raise ValueError("expected a JSON object after the prefix")
    try:
        obj, end = json.JSONDecoder(parse_constant=_reject_constant).raw_decode(text)
    except json.JSONDecodeError as e:
        # the error sits at the very end (a cut in the middle of a string, an escape such
        # as \u00, a number or a literal such as tru): the next line may complete it
        if e.pos >= len(text.rstrip()) - 6 or e.msg.startswith("Unterminated string"):
            raise _Incomplete(f"bad JSON: {e.msg} at column {e.pos + 1}") from None
        raise ValueError(f"bad JSON: {e.msg} at column {e.pos + 1}") from None
    except RecursionError:
        raise ValueError("bad JSON: nested too deeply") from None
    if _TRAILER.fullmatch(text[end:]) is None:
        raise ValueError("text after the JSON object")
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object after the prefix")
    return obj


def _validate(obj: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise ValueError("missing field 'type'")
    kind = kind.upper()
    if kind not in MARKER_TYPES:
        known = ", ".join(MARKER_TYPES)
        raise ValueError(f"unknown type {obj['type']!r} (expected one of {known})")
    fields = {k: v for k, v in obj.items() if k != "type"}
    for alternatives in REQUIRED.get(kind, ()):
        if not any(k in fields for k in alternatives):
            raise ValueError(f"{kind} needs field {' or '.join(repr(k) for k in alternatives)}")
    for key, types, what in (
        ("stage", (str,), "a string"),
        ("project", (str,), "a string"),
        ("ok", (bool,), "true or false"),
        ("msg", (str,), "a string"),
        ("question", (str,), "a string"),
    ):
        if key in fields and not isinstance(fields[key], types):
            raise ValueError(f"field {key!r} must be {what}")
    code = fields.get("exit", 0)
    if isinstance(code, bool) or not isinstance(code, int):
        raise ValueError("field 'exit' must be an integer")
    if "options" in fields and not (
        isinstance(fields["options"], list) and all(isinstance(o, str) for o in fields["options"])
    ):
        raise ValueError("field 'options' must be a list of strings")
    return kind, fields


def _parse_text(text: str, shown: str) -> Marker | Malformed:
    """``text`` starts with the prefix; ``shown`` is what a Malformed reports."""
    if len(text) > MAX_LINE:
        return Malformed(shown[:200], f"marker longer than {MAX_LINE} characters")
    try:
        kind, fields = _validate(_decode(text[len(PREFIX) :]))
    except (_Incomplete, ValueError) as e:
        return Malformed(shown, str(e))
    return Marker(type=kind, fields=fields, raw=text.rstrip())


def parse_line(line: str) -> Marker | Malformed | None:
    """One physical line: a marker, a malformed marker, or None for any other text."""
    try:
        text = marker_text(line)
        if text is None:
            return None
        return _parse_text(text, text.rstrip())
    except Exception as e:  # a parser for untrusted input must not crash the loop
        return Malformed(line[:200], f"unparseable marker: {type(e).__name__}")


def _incomplete(text: str) -> bool:
    try:
        _decode(text[len(PREFIX) :])
    except _Incomplete:
        return True
    except ValueError:
        return False
    return False


def scan(lines: Sequence[str]) -> list[tuple[int, Marker | Malformed]]:
    """Every marker in ``lines`` with the index of the line it starts on.

    A marker whose JSON stops at the end of its line (a long line the terminal or the agent's
    UI wrapped) is joined with up to :data:`MAX_CONTINUATION` following lines until it parses;
    when the head had a gutter, the continuation lines lose theirs too (agent UIs indent every
    wrapped line) and a right-hand border is dropped. Continuation lines are consumed only
    when the join parses.
    """
    out: list[tuple[int, Marker | Malformed]] = []
    i = 0
    while i < len(lines):
        found = parse_line(lines[i])
        used = 1
        if isinstance(found, Malformed):
            plain = strip_ansi(lines[i])
            gutter, text = strip_gutter(plain)
            boxed = bool(gutter)
            if boxed:
                text = _TRAILER.sub("", text)
            joined = text
            for extra in range(1, MAX_CONTINUATION):
                if i + extra >= len(lines) or not _incomplete(joined):
                    break
                piece = strip_ansi(lines[i + extra])
                if boxed:
                    piece = _TRAILER.sub("", strip_gutter(piece)[1])
                joined += piece.rstrip("\n")
                candidate = _parse_text(joined, joined)
                if isinstance(candidate, Marker):
                    found, used = candidate, extra + 1
                    break
        if found is not None:
            out.append((i, found))
        i += used
    return out


def join_wrapped(lines: Iterable[str], width: int) -> list[str]:
    """Undo terminal wrapping: a line exactly ``width`` cells wide continues on the next.

    For captures taken without ``capture-pane -J``. Width is counted in characters, so a line
    of wide (CJK) characters may not be rejoined; :func:`scan` copes with those markers anyway.
    """
    out: list[str] = []
    carry = ""
    for line in lines:
        carry += line
        if len(strip_ansi(line)) >= width > 0:
            continue
        out.append(carry)
        carry = ""
    if carry:
        out.append(carry)
    return out


def format_marker(type: str, fields: Mapping[str, Any]) -> str:
    """The line a script prints: ASCII-only, one line, and valid by this module's rules.

    Raises ValueError for a marker :func:`parse_line` would refuse, so a mistake shows where
    the marker is made rather than as a silent ``malformed_marker`` later.
    """
    if "type" in fields:
        raise ValueError("fields must not contain 'type'")
    obj = {"type": type, **fields}
    _validate(obj)
    if obj["type"] != type.upper():
        obj["type"] = type.upper()
    for v in _walk(obj):
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError("marker fields must be finite numbers")
    line = PREFIX + json.dumps(obj, ensure_ascii=True, separators=(",", ":"))
    if len(line) > MAX_LINE:
        raise ValueError(f"marker longer than {MAX_LINE} characters")
    return line


def _walk(value: Any) -> Iterable[Any]:
    yield value
    if isinstance(value, Mapping):
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _walk(v)


def signed_payload(marker: Marker) -> dict[str, Any]:
    """What the signature covers: the type and every field (``sig`` excluded by signing)."""
    return {"type": marker.type, **marker.fields}


def format_signed(
    type: str, fields: Mapping[str, Any], key: bytes, nonce: str | None = None
) -> str:
    """A signed marker line: ``fields`` plus ``nonce`` and ``sig`` over type and fields."""
    signed = signing.sign({"type": type.upper(), **fields}, key, nonce)
    del signed["type"]
    return format_marker(type, signed)


def classify(
    marker: Marker,
    key: bytes | None,
    seen_nonces: Container[str],
    pane_id: str | None = None,
) -> Marker:
    """The marker with its trust set.

    No ``sig``: UNSIGNED. A ``sig`` that does not verify (or no key to verify it with, or a
    ``pane`` field naming another pane than ``pane_id``, when given): BAD_SIGNATURE. Verified
    but its nonce already seen: REPLAYED. Otherwise SIGNED; the caller remembers the nonce.
    """
    if "sig" not in marker.fields:
        return replace(marker, trust=Trust.UNSIGNED)
    if key is None or not signing.verify(signed_payload(marker), key):
        return replace(marker, trust=Trust.BAD_SIGNATURE)
    signed_pane = marker.fields.get("pane")
    if pane_id is not None and signed_pane is not None and signed_pane != pane_id:
        return replace(marker, trust=Trust.BAD_SIGNATURE)
    if marker.fields.get("nonce") in seen_nonces:
        return replace(marker, trust=Trust.REPLAYED)
    return replace(marker, trust=Trust.SIGNED)


TRUST_REASONS: dict[Trust, str] = {
    Trust.UNSIGNED: "unsigned marker",
    Trust.BAD_SIGNATURE: "signature does not verify",
    Trust.REPLAYED: "signed marker seen before (replay)",
    Trust.SIGNED: "signed",
}
