"""Policy loading: every mistake is one line naming file, line and key; good files load."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentry_tui.config import bundled_policy_dir
from sentry_tui.errors import PolicyError
from sentry_tui.model import Gate, PaneState
from sentry_tui.policy import (
    format_duration,
    load_policy,
    load_text,
    parse_duration,
    summary,
    user_policy_paths,
)

FIXTURES = Path(__file__).parent / "policies"

# Line numbers below refer to this text: the `test` stage starts at line 11, and extra stage
# keys added with `more(...)` land on line 14.
BASE = """\
version: 1
projects:
  storyapp:
    panes:
      agent: {session: storyapp, window: agent, profile: claude}
      shell: {session: storyapp, window: shell, profile: shell}
    stages:
      - name: code
        pane: agent
        done: {marker: {type: STATUS, stage: code, ok: true}}
      - name: test
        pane: shell
        run: npm test
"""


def more(*lines: str) -> str:
    """BASE with extra keys for the `test` stage, starting at line 14."""
    return BASE + "".join(f"        {line}\n" for line in lines)


def error_of(text: str, source: str = "p.yaml") -> str:
    with pytest.raises(PolicyError) as info:
        load_text(text, source)
    message = str(info.value)
    assert "\n" not in message, "errors are one line"
    return message


# (id, text, line, key or None, what the message must also say)
CASES: list[tuple[str, str, int, str | None, str]] = [
    (
        "retries-not-int",
        more("retries: two"),
        14,
        "projects.storyapp.stages[1].retries",
        "expected a non-negative integer (at most 100), got 'two'",
    ),
    (
        "retries-negative",
        more("retries: -1"),
        14,
        "projects.storyapp.stages[1].retries",
        "non-negative integer",
    ),
    (
        "unknown-stage-key",
        more("retry: 2"),
        14,
        "projects.storyapp.stages[1].retry",
        "unknown key 'retry'; did you mean 'retries'?",
    ),
    (
        "unknown-top-key",
        "version: 1\nproject: {}\n",
        2,
        "project",
        "did you mean 'projects'?",
    ),
    (
        "unknown-project-key",
        BASE.replace("    stages:\n", "    stage: []\n    stages:\n"),
        7,
        "projects.storyapp.stage",
        "did you mean 'stages'?",
    ),
    (
        "unknown-role-key",
        BASE.replace("window: shell,", "windw: shell,"),
        6,
        "projects.storyapp.panes.shell.windw",
        "did you mean 'window'?",
    ),
    (
        "duplicate-stage",
        BASE.replace("- name: test", "- name: code"),
        11,
        "projects.storyapp.stages[1].name",
        "stage name 'code' used twice (first at line 8)",
    ),
    (
        "regex-does-not-compile",
        more("fail: {regex: '(['}"),
        14,
        "projects.storyapp.stages[1].fail.regex",
        "regular expression does not compile",
    ),
    (
        "regex-in-list",
        more("fail:", "  - {exit: nonzero}", "  - {regex: 'a{2,1}'}"),
        16,
        "projects.storyapp.stages[1].fail[1].regex",
        "does not compile",
    ),
    (
        "unknown-pane-role",
        BASE.replace("pane: shell\n", "pane: shel\n"),
        12,
        "projects.storyapp.stages[1].pane",
        "no pane role 'shel' in projects.storyapp.panes (roles: agent, shell); "
        "did you mean 'shell'?",
    ),
    (
        "bad-duration",
        more("timeout: 15 min"),
        14,
        "projects.storyapp.stages[1].timeout",
        "expected a duration such as '90s', '15m' or '1h30m', got '15 min'",
    ),
    (
        "zero-duration",
        more("timeout: 0s"),
        14,
        "projects.storyapp.stages[1].timeout",
        "expected a duration",
    ),
    (
        "bad-waiting-duration",
        BASE.replace("    stages:\n", "    notify_waiting_after: soon\n    stages:\n"),
        7,
        "projects.storyapp.notify_waiting_after",
        "got 'soon'",
    ),
    (
        "approve-not-before-after",
        more("approve: maybe"),
        14,
        "projects.storyapp.stages[1].approve",
        "expected 'before' or 'after', got 'maybe'",
    ),
    (
        "approve-bool",
        more("approve: yes"),
        14,
        "projects.storyapp.stages[1].approve",
        "expected 'before' or 'after'",
    ),
    (
        "exit-without-wrap",
        more("wrap: false", "done: {exit: 0}"),
        15,
        "projects.storyapp.stages[1].done",
        "an exit condition needs a wrapped 'run'",
    ),
    (
        "exit-without-run",
        BASE.replace("done: {marker: {type: STATUS, stage: code, ok: true}}", "done: [{exit: 0}]"),
        10,
        "projects.storyapp.stages[0].done[0]",
        "but this stage has no 'run'",
    ),
    (
        "same-condition-done-and-fail",
        more("done: {exit: 0}", "fail: {exit: 0}"),
        15,
        "projects.storyapp.stages[1].fail",
        "the same condition is in both done and fail",
    ),
    (
        "signed-with-regex-done",
        more("require_signed: true", "done: {regex: 'passed'}"),
        15,
        "projects.storyapp.stages[1].done",
        "a regex on pane output can never be signed",
    ),
    (
        "stage-never-finishes",
        BASE + "      - {name: idle, pane: agent}\n",
        14,
        "projects.storyapp.stages[2]",
        "can never finish",
    ),
    (
        "wrap-false-without-done",
        more("wrap: false"),
        14,
        "projects.storyapp.stages[1].wrap",
        "with wrap: false there is no exit status",
    ),
    (
        "trigger-without-stages",
        "version: 1\nprojects:\n  p:\n    panes: {a: {}}\n    trigger: {state: waiting}\n",
        5,
        "projects.p.trigger",
        "this project has no stages",
    ),
    (
        "trigger-unknown-role",
        BASE.replace(
            "    stages:\n", "    trigger: {pane: agnt, when: {state: done}}\n    stages:\n"
        ),
        7,
        "projects.storyapp.trigger.pane",
        "did you mean 'agent'?",
    ),
    (
        "trigger-exit-refused",
        BASE.replace("    stages:\n", "    trigger: {exit: 0}\n    stages:\n"),
        7,
        "projects.storyapp.trigger.exit",
        "unknown key 'exit'",
    ),
    (
        "secret-key",
        more("api_token: abc123"),
        14,
        "projects.storyapp.stages[1].api_token",
        "put it in the environment",
    ),
    (
        "webhook-key-anywhere",
        "version: 1\nnotify:\n  webhook: https://example.com/x\n",
        3,
        "notify.webhook",
        "put it in the environment",
    ),
    (
        "password-in-await",
        more("await:", "  github_actions: {repo: a/b, workflow: d.yml, password: x}"),
        15,
        "projects.storyapp.stages[1].await.github_actions.password",
        "put it in the environment",
    ),
    (
        "bad-version",
        BASE.replace("version: 1", "version: 2"),
        1,
        "version",
        "expected 1",
    ),
    ("missing-version", "projects: {}\n", 1, "version", "missing"),
    (
        "unknown-profile",
        BASE.replace("profile: claude", "profile: claud"),
        5,
        "projects.storyapp.panes.agent.profile",
        "did you mean 'claude'?",
    ),
    (
        "bad-state",
        more("done: {state: finished}"),
        14,
        "projects.storyapp.stages[1].done.state",
        "expected one of busy, waiting, idle, done, failed, got 'finished'",
    ),
    (
        "bad-exit",
        more("done: {exit: maybe}"),
        14,
        "projects.storyapp.stages[1].done.exit",
        "expected 0..255 or 'nonzero'",
    ),
    (
        "two-matchers",
        more("done: {exit: 0, regex: ok}"),
        14,
        "projects.storyapp.stages[1].done",
        "expected exactly one of marker, regex, exit, state, got exit and regex",
    ),
    (
        "bad-marker-type",
        BASE.replace("type: STATUS", "type: STATE"),
        10,
        "projects.storyapp.stages[0].done.marker.type",
        "expected a marker type",
    ),
    (
        "multi-line-run",
        BASE.replace("run: npm test", "run: |\n          npm test\n          npm run lint"),
        13,
        "projects.storyapp.stages[1].run",
        "expected a single-line command",
    ),
    (
        "duplicate-key",
        more("retries: 1", "retries: 2"),
        15,
        "projects.storyapp.stages[1].retries",
        "given twice (first at line 14)",
    ),
    (
        "bad-stage-name",
        BASE.replace("- name: test", "- name: 'te st;rm'"),
        11,
        "projects.storyapp.stages[1].name",
        "expected a stage name",
    ),
    (
        "bad-repo",
        more("await: {github_actions: {repo: storyapp, workflow: deploy.yml}}"),
        14,
        "projects.storyapp.stages[1].await.github_actions.repo",
        "expected owner/name",
    ),
    (
        "await-missing-workflow",
        more("await: {github_actions: {repo: me/storyapp}}"),
        14,
        "projects.storyapp.stages[1].await.github_actions.workflow",
        "missing",
    ),
    (
        "bad-base-url",
        more("await: {github_actions: {repo: a/b, workflow: d.yml, base_url: ftp://x}}"),
        14,
        "projects.storyapp.stages[1].await.github_actions.base_url",
        "expected an http(s) URL",
    ),
    (
        "no-panes",
        "version: 1\nprojects:\n  p:\n    stages: []\n",
        4,
        "projects.p.panes",
        "missing",
    ),
    (
        "profile-regex",
        "version: 1\nprofiles:\n  shell:\n    waiting: ['ok', '(']\n",
        4,
        "profiles.shell.waiting[1]",
        "does not compile",
    ),
    (
        "profile-state",
        "version: 1\nprofiles:\n  shell:\n    waitng: ['x']\n",
        4,
        "profiles.shell.waitng",
        "did you mean 'waiting'?",
    ),
    (
        "stages-not-list",
        "version: 1\nprojects:\n  p:\n    panes: {a: {}}\n    stages: code\n",
        5,
        "projects.p.stages",
        "expected a list of stages, got 'code'",
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "key", "says"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_error_names_file_line_and_key(text: str, line: int, key: str | None, says: str) -> None:
    message = error_of(text, "storyapp.yaml")
    prefix = f"storyapp.yaml:{line}: " + (f"key '{key}': " if key else "")
    assert message.startswith(prefix), message
    assert says in message, message


def test_headline_example_from_a_file() -> None:
    path = FIXTURES / "bad_retries.yaml"
    with pytest.raises(PolicyError) as info:
        load_policy([path])
    assert str(info.value) == (
        f"{path}:14: key 'projects.storyapp.stages[1].retries': expected a non-negative "
        "integer (at most 100), got 'two'"
    )


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        ("", 1, "empty policy"),
        ("# only a comment\n", 1, "empty policy"),
        ("- a\n- b\n", 1, "expected a mapping with 'version: 1' and 'projects', got a list"),
        ("version: 1\nprojects: [\n", 3, "invalid YAML"),
        ("version: 1\n  bad: indent\n", 2, "invalid YAML"),
        ("a: 1\n---\nb: 2\n", 2, "invalid YAML"),
        ("version: 1\n\x00\n", 2, "control character 0x00"),
        ("? [a, b]\n: c\n", 1, "expected a plain key"),
        ("version: 1\nprojects: &a {x: *a}\n", 2, ""),
        ("version: !!python/object:os.system 1\n", 1, ""),
    ],
)
def test_bad_documents(text: str, line: int, says: str) -> None:
    message = error_of(text)
    assert message.startswith(f"p.yaml:{line}: "), message
    assert says in message


def test_files_and_merging(tmp_path: Path) -> None:
    policy = load_policy([FIXTURES / "good.yaml", FIXTURES / "other.yaml"])
    assert [p.name for p in policy.projects] == ["web", "api"]
    web = policy.project("web")
    assert web is not None
    assert web.notify_waiting_after_s == 90
    assert web.trigger[0].marker == {"type": "STATUS", "stage": "code", "ok": True}
    test = web.stages[1]
    assert (test.retries, test.timeout_s, test.wrap) == (2, 5400.0, True)
    deploy = web.stages[2]
    assert deploy.approve is Gate.BEFORE
    assert deploy.await_ is not None
    assert deploy.await_.params == {
        "repo": "me/web",
        "workflow": "deploy.yml",
        "base_url": "http://127.0.0.1:8000",
    }
    assert web.panes["shell"].window == "sh*" and web.panes["shell"].pane == 0
    api = policy.project("api")
    assert api is not None and api.panes["shell"].window == "*"
    assert api.panes["shell"].profile == "auto"
    assert policy.profiles == {"shell": {"waiting": ("Continue\\? \\[y/N\\]",)}}
    assert policy.sources == (str(FIXTURES / "good.yaml"), str(FIXTURES / "other.yaml"))


def test_project_defined_twice_names_both_files() -> None:
    with pytest.raises(PolicyError) as info:
        load_policy([FIXTURES / "good.yaml", FIXTURES / "dup.yaml"])
    assert str(info.value) == (
        f"{FIXTURES / 'dup.yaml'}:4: key 'projects.web': project 'web' is already defined at "
        f"{FIXTURES / 'good.yaml'}:3"
    )


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"nope\.yaml: no such file$"):
        load_policy([tmp_path / "nope.yaml"])
    with pytest.raises(PolicyError, match="is a directory"):
        load_policy([tmp_path])
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_policy([binary])


@pytest.mark.parametrize("name", ["default", "storyapp", "points", "demo"])
def test_bundled_policies_load(name: str) -> None:
    policy = load_policy([bundled_policy_dir() / f"{name}.yaml"])
    assert policy.projects


def test_bundled_default_injects_nothing() -> None:
    policy = load_policy([bundled_policy_dir() / "default.yaml"])
    (project,) = policy.projects
    assert project.stages == ()
    role = next(iter(project.panes.values()))
    assert (role.session, role.window, role.profile) == ("*", "*", "auto")
    assert project.notify_failed


def test_storyapp_summary() -> None:
    policy = load_policy([bundled_policy_dir() / "storyapp.yaml"])
    assert summary(policy.projects[0]) == (
        "storyapp: 5 stages (code → test → build → predeploy → deploy), 2 pane roles, "
        "gate before deploy, awaits GitHub Actions deploy.yml, starts on a trigger"
    )


def test_demo_policy_shape() -> None:
    (demo,) = load_policy([bundled_policy_dir() / "demo.yaml"]).projects
    assert [s.name for s in demo.stages] == ["code", "test", "build", "deploy"]
    assert set(demo.panes) == {"agent", "shell", "prompt", "build"}
    test = demo.stages[1]
    assert test.retries == 2 and "$SENTRY_DEMO_DIR" in (test.run or "")
    assert demo.stages[3].approve is Gate.BEFORE
    assert demo.trigger and demo.trigger_pane == "agent"


def test_user_policy_paths(tmp_path: Path) -> None:
    assert user_policy_paths(tmp_path) == [bundled_policy_dir() / "default.yaml"]
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "b.yaml").write_text("version: 1\n")
    (folder / "a.yaml").write_text("version: 1\n")
    (folder / "c.yml").write_text("version: 1\n")
    (folder / "notes.txt").write_text("x")
    assert user_policy_paths(tmp_path) == [folder / "a.yaml", folder / "b.yaml", folder / "c.yml"]


def test_conditions_forms() -> None:
    text = more(
        "done: {state: idle}",
        "fail:",
        "  - {exit: nonzero}",
        "  - {marker: {type: ERROR, stage: test}}",
    )
    stage = load_text(text).projects[0].stages[1]
    assert stage.done[0].state is PaneState.IDLE
    assert stage.fail[0].exit == "nonzero"
    assert stage.fail[1].marker == {"type": "ERROR", "stage": "test"}
    assert stage.fail[1].line == 17


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("15m", 900),
        ("1h30m", 5400),
        ("2h", 7200),
        ("1m5s", 65),
        ("", None),
        ("15 min", None),
        ("m", None),
        ("1.5h", None),
    ],
)
def test_durations(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == seconds
    if seconds:
        assert parse_duration(format_duration(seconds)) == seconds


YAMLISH = st.text(
    alphabet=st.sampled_from(list("abcdefgilnoprstuvwxyz:-_[]{}\"'|>#&*!?%@`,.0123456789 \n\t\\")),
    max_size=200,
)
KEYS = st.sampled_from(
    [
        "version",
        "projects",
        "panes",
        "stages",
        "name",
        "pane",
        "run",
        "done",
        "fail",
        "retries",
        "timeout",
        "approve",
        "await",
        "marker",
        "regex",
        "exit",
        "state",
        "trigger",
        "when",
        "profiles",
        "session",
        "window",
        "profile",
        "wrap",
        "require_signed",
        "token",
    ]
)
VALUES = st.one_of(
    st.integers(-5, 300).map(str),
    st.sampled_from(
        [
            "true",
            "null",
            "before",
            "after",
            "nonzero",
            "15m",
            "'(['",
            "~",
            "[]",
            "{}",
            "[a, b]",
            "{x: 1}",
            "*a",
            "&a x",
            "!!binary x",
            "2001-12-14",
            ".inf",
            "!!int x",
            "!!timestamp y",
            "!!float z",
        ]
    ),
    st.text(alphabet="abc ()[]*+?$^\\", max_size=8),
)


@st.composite
def nested_yaml(draw: st.DrawFn, depth: int = 0) -> str:
    lines = ["version: 1"] if depth == 0 else []
    for _ in range(draw(st.integers(1, 4))):
        indent = "  " * depth
        key = draw(KEYS)
        if depth < 4 and draw(st.booleans()):
            lines.append(f"{indent}{key}:")
            child = draw(nested_yaml(depth + 1))
            if draw(st.booleans()):
                first, *rest = child.split("\n")
                child = "\n".join([f"{indent}  - {first.strip()}", *rest])
            lines.append(child)
        else:
            lines.append(f"{indent}{key}: {draw(VALUES)}")
    return "\n".join(lines)


@settings(max_examples=300, deadline=None)
@given(st.one_of(YAMLISH, nested_yaml()))
def test_arbitrary_text_only_raises_policy_error(text: str) -> None:
    try:
        load_text(text, "fuzz.yaml")
    except PolicyError as exc:
        assert re.match(r"^fuzz\.yaml:\d+: ", str(exc)), str(exc)
        assert "\n" not in str(exc)


def test_check_command(tmp_path: Path) -> None:
    def check(*files: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sentry_tui", "check", *map(str, files)],
            capture_output=True,
            text=True,
            timeout=60,
        )

    ok = check(bundled_policy_dir() / "storyapp.yaml", bundled_policy_dir() / "points.yaml")
    assert ok.returncode == 0, ok.stderr
    lines = ok.stdout.splitlines()
    assert lines[0].startswith("storyapp: 5 stages (code → test → build → predeploy → deploy)")
    assert lines[1].startswith("points: 4 stages")
    bad = check(FIXTURES / "bad_retries.yaml")
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert bad.stderr.strip() == (
        f"{FIXTURES / 'bad_retries.yaml'}:14: key 'projects.storyapp.stages[1].retries': "
        "expected a non-negative integer (at most 100), got 'two'"
    )
    assert "Traceback" not in bad.stderr


BUNDLED_LINES = (bundled_policy_dir() / "storyapp.yaml").read_text().splitlines()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, len(BUNDLED_LINES) - 1),
            st.sampled_from(["drop", "dup", "indent", "dedent", "cut", "junk"]),
            st.text(alphabet="ab:-[]{}'\"#& *!|>0123456789\\.", max_size=6),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_bundled_policy_only_raises_policy_error(edits: list[tuple[int, str, str]]) -> None:
    lines = list(BUNDLED_LINES)
    for index, how, junk in edits:
        i = min(index, len(lines) - 1)
        if how == "drop" and len(lines) > 1:
            del lines[i]
        elif how == "dup":
            lines.insert(i, lines[i])
        elif how == "indent":
            lines[i] = "  " + lines[i]
        elif how == "dedent":
            lines[i] = lines[i][2:]
        elif how == "cut":
            lines[i] = lines[i][: len(lines[i]) // 2]
        else:
            lines[i] = lines[i] + junk
    try:
        load_text("\n".join(lines), "m.yaml")
    except PolicyError as exc:
        assert re.match(r"^m\.yaml:\d+: ", str(exc)), str(exc)
