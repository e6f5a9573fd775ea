"""What a pane is doing, read from its visible screen (the last resort, DESIGN.md).

Hook events and signed markers come first, then unsigned markers, and only then these screen
rules: a screen rule breaks whenever an agent changes its interface, so every pattern here was
taken from screens the real CLIs showed (tests/screens/, with how each was produced) and each
rule names itself in the reason it returns, so a wrong guess can be traced and overridden
with the policy's ``profiles:`` regexes.

Rules read only the bottom of the screen (the last ``tail`` non-empty lines): an old question
that scrolled up must not keep a pane *waiting*. The order is fixed: waiting (a human is
needed) beats busy (an explicit spinner/interrupt hint), a screen still changing is busy, and
only a screen that stayed the same for ``idle_after_s`` is judged failed, done or idle, so the
pause between two spinner frames is never mistaken for idle. Time is passed in; nothing here
sleeps or reads a clock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from sentry_tui.ansi import one_line, strip_ansi
from sentry_tui.model import PaneState

RULE_STATES: tuple[str, ...] = ("waiting", "busy", "failed", "done", "idle")


def _c(*patterns: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.MULTILINE) for p in patterns)


@dataclass(frozen=True, slots=True)
class Profile:
    """The screen rules of one kind of program.

    ``screen_mode``: the program redraws a full screen (agents) rather than appending lines,
    so the watcher reads it as screens. ``tail``: how many non-empty bottom lines the rules
    see. ``stable``: the state of a screen that stopped changing and matches no rule (a shell
    with no prompt at the bottom is still running something; an agent that stopped redrawing
    is idle).
    """

    name: str
    waiting: tuple[re.Pattern[str], ...] = ()
    busy: tuple[re.Pattern[str], ...] = ()
    done: tuple[re.Pattern[str], ...] = ()
    failed: tuple[re.Pattern[str], ...] = ()
    idle: tuple[re.Pattern[str], ...] = ()
    screen_mode: bool = False
    tail: int = 8
    stable: PaneState = PaneState.IDLE
    finish_needs_idle: bool = False  # failed/done count only with an idle rule (a prompt) too
    latest_wins: bool = False  # failed vs done: the match nearer the bottom decides


# Claude Code 2.1 (captured): dialogs end with "Esc to cancel" / "Enter to confirm · Esc to
# cancel" under a "❯ 1. Yes" list; work shows "✻ Verbing… (12s · ↓ 40 tokens)" and the footer
# "esc to interrupt"; a finished turn leaves "✻ Cooked for 3s" above the "❯" input box.
CLAUDE = Profile(
    name="claude",
    screen_mode=True,
    tail=8,
    waiting=_c(
        r"^[ \t│]*(Do you want|Would you like) to [^\n]*\?[ \t│]*$",
        r"^[ \t│]*(Enter to confirm · )?Esc to cancel\b",
        r"Yes, I trust this folder",
        r"^[ \t│]*Do you trust the files in this folder\?",
        r"Detected a custom API key",
        r"^[ \t│]*Select login method",
        r"Browser didn't open\?|Paste code here if prompted",
        # reported by other monitors for other versions (not captured here): the
        # AskUserQuestion list, plan approval, older permission boxes
        r"No, and tell Claude what to do differently",
        r"Use arrow keys to navigate|Press Enter to select",
        r"Approve this plan\?",
    ),
    busy=_c(
        r"(?i)\b(esc|ctrl\+c) to interrupt\b",
        r"…\s*\(\d+[smh]",  # spinner line: "✻ Garnishing… (1s · ↓ 16 tokens)"
        r"(?i)\bRetrying in \d+",
    ),
    # banners Claude Code renders itself, at the start of a line or behind "●"/"⏺"; a line
    # behind "⎿" (tool output) or "│"/"❯" (a box, the input) may only quote one
    failed=_c(
        r"^[●⏺ \t]*API Error\b",
        r"^[●⏺ \t]*Unable to connect to Anthropic services",
        r"^[●⏺ \t]*Invalid API key\b",
        r"^[●⏺ \t]*Credit balance is too low",
        r"^[●⏺ \t]*[^\n]*\busage limit reached",
        r"^[●⏺ \t]*OAuth token has expired",
        r"^[●⏺ \t]*[^\n⎿│❯>]*Please run /login",
    ),
    done=_c(r"^[✻✢✳✶✽*·]\s+\w[^\n…]* for \d+(\.\d+)?[smh]\b"),  # "✻ Crunched for 47s"
    idle=_c(r"^[ \t│]*[❯>][ \t]*$", r"\? for shortcuts"),
)

# Codex CLI 0.169 (captured): approvals ask "Would you like to run the following command?"
# above "› 1. Yes, proceed (y)" and "Press enter to confirm or esc to cancel"; work shows
# "• Working (4s • esc to interrupt)"; a turn ends with "Worked for 6s"; errors start "■".
CODEX = Profile(
    name="codex",
    screen_mode=True,
    tail=8,
    waiting=_c(
        r"Would you like to (run|make|apply|grant|allow|send)\b[^\n]*\?",
        r"(?i)press enter to confirm or esc to cancel",
        r"^[ \t]*Trust this folder\?",
        r"(?i)^[ \t]*enter continue · esc back",
        r"Allow command\?",  # older Codex versions
        r"(?i)^[ \t▌]*Apply (these|the) changes\?",
        r"(?i)^[ \t]*Sign in with ChatGPT",
    ),
    busy=_c(r"(?i)\b(esc|ctrl\+c) to interrupt\b", r"(?i)^[^\w\n]*Reconnecting\.\.\."),
    failed=_c(
        r"^■ ",
        r"(?i)\bstream error\b",
        r"(?i)\bunexpected status \d{3}\b",
        r"^Error loading configuration",
    ),
    done=_c(r"^[ \t─]*Worked for [<\d]"),
    idle=_c(r"^› ", r"\? for shortcuts"),
)

# Gemini CLI 0.61 (captured): dialogs are boxes with "● 1. Allow once" lists ("Allow execution
# of [Shell]?", the trust and sign-in choices); work shows "⠏ Thinking... (esc to cancel, 3s)";
# answers start "✦", errors "✕ [API Error: …]".
GEMINI = Profile(
    name="gemini",
    screen_mode=True,
    tail=30,  # answers carry no closing line: look back to the "✦" that began one
    latest_wins=True,
    waiting=_c(
        r"^[ \t│]*● \d+\. ",
        r"Allow execution of\b",
        r"(?i)Waiting for user confirmation",
        r"Yes, allow once",  # older versions' permission list
        r"Do you trust the files in this folder\?",
        r"How would you like to authenticate",
        r"Enter Gemini API Key",
        r"\(Press Enter to submit",
        r"^[ \t│]*Apply this change\?",
        r"\(Use Enter to select\)",
    ),
    busy=_c(r"(?i)\(esc to cancel, \d", r"^[ \t]*[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] "),
    failed=_c(r"^[ \t]*✕ ", r"\[API Error\b", r"This request failed\b"),
    done=_c(r"^[ \t]*✦ "),
    idle=_c(r"^[ \t]*>\s+Type your message", r"\? for shortcuts"),
)

# A plain shell running commands: a question on the last line is waiting, an error line just
# above the prompt is failed, a success summary is done, a bare prompt is idle, and a screen
# with no prompt at the bottom is still running something (busy).
SHELL = Profile(
    name="shell",
    screen_mode=False,
    tail=3,
    stable=PaneState.BUSY,
    finish_needs_idle=True,
    waiting=_c(
        # "[y/N] " / "(yes/no)? " at the end of the last line, perhaps with a typed answer
        r"[\[(]\s*[yY](es)?\s*/\s*[nN]o?\s*[\])]\s*[:?]?[ \t]*\S{0,3}[ \t]*\Z",
        r"(?i)\b(password|passphrase|passcode|pin)\b[^\n]*:\s*\Z",
        r"(?i)press (any key|enter|return)\b",
        r"\?\s*\Z",  # a question on the last line, the cursor after it
        r"(?i)\(y/n\)",
    ),
    busy=_c(
        r"\[\s*\d+\s*/\s*\d+\s*\][^\n]*\Z",  # "[12/200] compiling" on the last line
        r"\b\d{1,3}(\.\d+)?\s?%[^\n]*\Z",  # a percentage on the last line
    ),
    failed=_c(
        r"(?i)(error|fatal|panic|exception)(\[\w+\])?:",
        r"npm ERR!",
        r"(?i)\btraceback \(most recent call last\)",
        r"(?i)\b[1-9]\d* (failed|errors?)\b",
        r"^FAILED\b",
        r"(?i)\bbuild failed\b",
        r"(?i)command not found",
        r"(?i)no such file or directory",
        r"(?i)permission denied",
        r"^make(\[\d+\])?: \*\*\*",
        r"(?i)segmentation fault|core dumped",
        r"(?i)\bexit (code|status) [1-9]",
    ),
    done=_c(
        r"(?i)\b\d+ passed\b",
        r"(?i)\bbuild successful\b|\bBUILD SUCCESS\b",
        r"(?i)^[ \t]*done\b",
        r"(?i)\bdone in [\d.]+",
        r"(?i)\bsuccessfully\b",
        r"^[ \t]*Finished\b",
    ),
    idle=_c(r"[$#%>❯»➜λ]\s*\Z"),
)

PROFILES: dict[str, Profile] = {p.name: p for p in (CLAUDE, CODEX, GEMINI, SHELL)}


def profile_for(name: str, extra: Mapping[str, Sequence[str]] | None = None) -> Profile:
    """The built-in profile ``name`` with ``extra`` regexes per state added to its rules.

    ``extra`` is the policy's ``profiles: {name: {waiting: [...], ...}}``; a user pattern is
    tried before the built-in ones of the same state. Raises ValueError (one line) for an
    unknown profile, state or a bad regex.
    """
    base = PROFILES.get(name)
    if base is None:
        raise ValueError(f"unknown profile {name!r} (expected one of {', '.join(PROFILES)})")
    if not extra:
        return base
    changes: dict[str, tuple[re.Pattern[str], ...]] = {}
    for state, patterns in extra.items():
        if state not in RULE_STATES:
            known = ", ".join(RULE_STATES)
            raise ValueError(f"profile {name}: unknown state {state!r} (expected one of {known})")
        if isinstance(patterns, str):
            patterns = [patterns]
        compiled = []
        for p in patterns:
            try:
                compiled.append(re.compile(p, re.MULTILINE))
            except (re.error, TypeError) as e:
                raise ValueError(f"profile {name}: bad {state} regex {p!r}: {e}") from None
        changes[state] = (*compiled, *getattr(base, state))
    return replace(base, **changes)  # type: ignore[arg-type]


_AGENT_WORDS = ("claude", "codex", "gemini")
_RUNNERS = frozenset({"node", "nodejs", "npx", "bun", "bunx", "deno", "python", "python3", "env"})


def _agent_in(word: str) -> str | None:
    stem = word.lower().removesuffix(".js").removesuffix(".mjs").removesuffix(".exe")
    for agent in _AGENT_WORDS:
        if stem == agent or stem.startswith(agent + "-") or stem.endswith("-" + agent):
            return agent
    return None


def guess_profile(command: str) -> str:
    """A profile name from a pane's command: ``pane_current_command``, or better the full
    command line of its foreground process. Codex and Gemini run under ``node``, so a bare
    ``node`` says nothing and maps to ``shell``; with its script argument it is recognised
    (``node …/@openai/codex/bin/codex.js``). Only the program and, for a runner such as node,
    its script count: ``vim codex-notes.md`` is a shell."""
    words = command.split()
    if not words:
        return "shell"
    exe = re.split(r"[/\\]", words[0])[-1]
    found = _agent_in(exe)
    if found:
        return found
    if exe.lower() in _RUNNERS:
        script = next((w for w in words[1:] if not w.startswith("-") and "=" not in w), "")
        for part in reversed(re.split(r"[/\\@]", script)):
            found = _agent_in(part)
            if found:
                return found
    return "shell"


def screen_lines(screen: str) -> list[str]:
    """The screen's lines, ANSI stripped and right-trimmed, without trailing blank lines."""
    lines = [line.rstrip() for line in strip_ansi(screen).split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def bottom(screen: str, n: int) -> str:
    """The last ``n`` non-empty lines, joined: what the rules look at."""
    kept = [line for line in screen_lines(screen) if line.strip()]
    return "\n".join(kept[-n:]) if n > 0 else ""


def _first_match(patterns: Sequence[re.Pattern[str]], text: str) -> re.Match[str] | None:
    for p in patterns:
        m = p.search(text)
        if m is not None:
            return m
    return None


def _last_match(patterns: Sequence[re.Pattern[str]], text: str) -> re.Match[str] | None:
    """The match nearest the bottom among all patterns (ending lowest)."""
    best: re.Match[str] | None = None
    for p in patterns:
        for m in p.finditer(text):
            if best is None or m.end() > best.end():
                best = m
    return best


def _because(profile: Profile, state: PaneState, m: re.Match[str]) -> str:
    """The reason: which rule, and on which line of the screen."""
    text = m.string
    line = text[text.rfind("\n", 0, m.start()) + 1 :].split("\n", 1)[0]
    return f'{profile.name} {state.value}: /{m.re.pattern}/ on "{one_line(line, 60)}"'


def judge(profile: Profile, screen: str, stable: bool) -> tuple[PaneState, str] | None:
    """The state the bottom of ``screen`` shows, with the rule that decided it.

    ``stable``: the screen has not changed for the debounce time. None: no decision yet (a
    screen seen once, not yet stable, with no waiting or busy sign).
    """
    tail = bottom(screen, profile.tail)
    for state, rules in ((PaneState.WAITING, profile.waiting), (PaneState.BUSY, profile.busy)):
        hit = _first_match(rules, tail)
        if hit is not None:
            return state, _because(profile, state, hit)
    if not stable:
        return None
    idle = _first_match(profile.idle, tail)
    finished: list[tuple[PaneState, re.Match[str]]] = []
    if idle is not None or not profile.finish_needs_idle:
        for state, rules in ((PaneState.FAILED, profile.failed), (PaneState.DONE, profile.done)):
            hit = _last_match(rules, tail)
            if hit is not None:
                finished.append((state, hit))
    if finished:
        if profile.latest_wins:
            finished.sort(key=lambda f: -f[1].end())  # stable sort: failed first on a tie
        state, hit = finished[0]
        return state, _because(profile, state, hit)
    if idle is not None:
        return PaneState.IDLE, _because(profile, PaneState.IDLE, idle)
    return profile.stable, f"{profile.name} {profile.stable.value}: screen unchanged, no rule"


class Detector:
    """One pane's state, fed screens and the time; reports only changes.

    A screen that differs from the previous one is *busy (screen changing)* until it has
    stayed the same for ``idle_after_s``; only then may it be failed, done or idle. A first
    screen gets no verdict until it has been stable that long, unless it shows a waiting or
    busy sign.
    """

    def __init__(self, profile: Profile, idle_after_s: float = 1.5) -> None:
        self.profile = profile
        self.idle_after_s = idle_after_s
        self._state = PaneState.UNKNOWN
        self._reason = ""
        self._screen: str | None = None
        self._changed_at = 0.0
        self._changes = 0  # distinct screens seen after the first
        self._judged: tuple[int, bool] | None = None  # (changes, stable) last judged

    @property
    def state(self) -> PaneState:
        return self._state

    @property
    def reason(self) -> str:
        return self._reason

    def observe(self, screen: str, now: float) -> tuple[PaneState, str] | None:
        text = "\n".join(screen_lines(screen))
        if text != self._screen:
            if self._screen is not None:
                self._changes += 1
            self._screen = text
            self._changed_at = now
        return self._decide(now)

    def tick(self, now: float) -> tuple[PaneState, str] | None:
        if self._screen is None:
            return None
        return self._decide(now)

    def _decide(self, now: float) -> tuple[PaneState, str] | None:
        assert self._screen is not None
        stable = now - self._changed_at >= self.idle_after_s
        # The verdict depends on the screen and on whether it is stable, nothing else: the
        # engine ticks every pane ten times a second, and 50 quiet panes would re-run every
        # rule 500 times a second to learn nothing new.
        judged = (self._changes, stable)
        if judged == self._judged:
            return None
        self._judged = judged
        verdict = judge(self.profile, self._screen, stable)
        if verdict is None and self._changes and not stable:
            verdict = PaneState.BUSY, f"{self.profile.name} busy: screen changing"
        if verdict is None or verdict[0] == self._state:
            return None
        self._state, self._reason = verdict
        return verdict
