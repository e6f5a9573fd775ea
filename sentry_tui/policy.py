"""Policy YAML → :class:`~sentry_tui.model.Policy`, once, at the edge.

Parse, don't validate: the YAML is composed into nodes (not ``safe_load``ed) so every value
keeps its line, and every mistake becomes one :class:`PolicyError` line that names the file,
the line and the dotted key, and says what was expected::

    storyapp.yaml:14: key 'projects.storyapp.stages[1].retries': expected a non-negative
    integer, got 'two'

The engine then trusts the model completely; nothing downstream re-checks a policy.

Schema (version 1; the bundled ``policies/*.yaml`` show every key with comments)::

    version: 1
    profiles:                        # extra detector regexes, merged over the built-ins
      <profile>: {<state>: [regex, ...]}
    projects:
      <name>:
        panes:                       # role -> which panes (fnmatch globs) and detector profile
          <role>: {session: GLOB, window: GLOB, pane: INDEX, profile: auto|shell|claude|...}
        trigger: CONDITIONS | {pane: ROLE, when: CONDITIONS}   # start a run on its own
        require_signed: BOOL         # only signed markers / hooks advance stages
        notify_waiting_after: DURATION
        notify_failed: BOOL          # tell the human when a pane's detector says failed
        stages:
          - name: NAME
            pane: ROLE
            run: COMMAND             # typed into the pane, wrapped by `sentry-tui wrap`
            done: CONDITIONS
            fail: CONDITIONS
            retries: N
            timeout: DURATION        # 90s, 15m, 1h30m
            approve: before|after
            await: {github_actions: {repo, workflow, branch, base_url, sha_from}, timeout}
            require_signed: BOOL
            wrap: BOOL               # default true

    CONDITIONS: one or a list of {marker: {k: v, ...}} | {regex: RE} | {exit: 0|N|nonzero}
                | {state: busy|waiting|idle|done|failed}
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sentry_tui.config import bundled_policy_dir
from sentry_tui.errors import PolicyError
from sentry_tui.model import (
    MARKER_TYPES,
    Await,
    Condition,
    Gate,
    PaneRole,
    PaneState,
    Policy,
    Project,
    Stage,
)

VERSION = 1
BUILTIN_PROFILES: tuple[str, ...] = ("auto", "shell", "claude", "codex", "gemini")
CONDITION_STATES: tuple[str, ...] = ("busy", "waiting", "idle", "done", "failed")
PROFILE_STATES: tuple[str, ...] = ("busy", "waiting", "idle", "done", "failed")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_SECRET = re.compile(r"token|secret|passw(or)?d|webhook|api_?key|credential", re.IGNORECASE)
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

_TOP_KEYS = ("version", "projects", "profiles")
_PROJECT_KEYS = (
    "panes",
    "stages",
    "trigger",
    "require_signed",
    "notify_waiting_after",
    "notify_failed",
)
_ROLE_KEYS = ("session", "window", "pane", "profile")
_STAGE_KEYS = (
    "name",
    "pane",
    "run",
    "done",
    "fail",
    "retries",
    "timeout",
    "approve",
    "await",
    "require_signed",
    "wrap",
)
_CONDITION_KEYS = ("marker", "regex", "exit", "state")
_TRIGGER_KEYS = ("pane", "when")
_AWAIT_KEYS = ("github_actions", "timeout")
_GHA_KEYS = ("repo", "workflow", "branch", "base_url", "sha_from")


# --------------------------------------------------------------------------------------------
# Public API


def load_text(text: str, source: str = "<policy>") -> Policy:
    """Parse one policy document. Raises :class:`PolicyError` (and nothing else) on bad input."""
    try:
        return _Parser(text, source).parse()
    except PolicyError:
        raise
    except RecursionError:
        raise PolicyError(f"{source}:1: the YAML is nested too deeply") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = exc.problem or exc.context or "not valid YAML"
        raise PolicyError(f"{source}:{line}: invalid YAML: {problem}") from None
    except yaml.reader.ReaderError as exc:
        line = text[: max(exc.position, 0)].count("\n") + 1
        char = (
            exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "?")
        )
        raise PolicyError(
            f"{source}:{line}: invalid YAML: control character {char:#04x} is not allowed"
        ) from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}:1: invalid YAML: {_first_line(str(exc))}") from None


def load_policy(paths: Sequence[Path]) -> Policy:
    """Load and merge policy files. A project defined in two files is an error."""
    projects: dict[str, Project] = {}
    profiles: dict[str, dict[str, tuple[str, ...]]] = {}
    sources: list[str] = []
    for path in paths:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise PolicyError(f"{source}: no such file") from None
        except IsADirectoryError:
            raise PolicyError(f"{source}: is a directory, expected a policy file") from None
        except UnicodeDecodeError:
            raise PolicyError(f"{source}: not UTF-8 text") from None
        except OSError as exc:
            raise PolicyError(f"{source}: cannot read: {exc.strerror or exc}") from None
        policy = load_text(text, source)
        for project in policy.projects:
            first = projects.get(project.name)
            if first is not None:
                raise PolicyError(
                    f"{source}:{project.line}: key 'projects.{project.name}': project "
                    f"'{project.name}' is already defined at {first.source}:{first.line}"
                )
            projects[project.name] = project
        for name, states in policy.profiles.items():
            merged = profiles.setdefault(name, {})
            for state, patterns in states.items():
                merged[state] = merged.get(state, ()) + tuple(patterns)
        sources.append(source)
    return Policy(projects=tuple(projects.values()), profiles=profiles, sources=tuple(sources))


def user_policy_paths(config_dir: Path) -> list[Path]:
    """The user's ``<config>/policies/*.yaml`` (and ``*.yml``, sorted), else the bundled
    ``default.yaml``: a user with no policy still gets every pane watched, nothing injected."""
    folder = Path(config_dir) / "policies"
    found = (
        sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        if folder.is_dir()
        else []
    )
    return found or [bundled_policy_dir() / "default.yaml"]


def parse_duration(text: str) -> float | None:
    """``"90s"``, ``"15m"``, ``"1h30m"`` → seconds; None if it is not such a duration."""
    m = _DURATION.match(text.strip())
    if not m or not any(m.groups()):
        return None
    h, mi, s = (int(g) if g else 0 for g in m.groups())
    return float(h * 3600 + mi * 60 + s)


def format_duration(seconds: float) -> str:
    """Seconds → the policy spelling (``1h30m``), for summaries and notifications."""
    total = round(seconds)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    out = (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{s}s" if s else "")
    return out or "0s"


def summary(project: Project) -> str:
    """One line describing a project, as `sentry-tui check` prints it."""
    parts: list[str] = []
    if project.stages:
        names = " → ".join(s.name for s in project.stages)
        n = len(project.stages)
        parts.append(f"{n} stage{'s' if n != 1 else ''} ({names})")
    else:
        parts.append("watch only (no stages)")
    r = len(project.panes)
    parts.append(f"{r} pane role{'s' if r != 1 else ''}")
    for stage in project.stages:
        if stage.approve is not Gate.NONE:
            parts.append(f"gate {stage.approve.value} {stage.name}")
    for stage in project.stages:
        if stage.await_ is not None:
            what = stage.await_.params.get("workflow", "")
            parts.append(f"awaits GitHub Actions {what}".rstrip())
    if project.trigger:
        parts.append("starts on a trigger")
    if project.require_signed:
        parts.append("signed markers only")
    return f"{project.name}: " + ", ".join(parts)


# --------------------------------------------------------------------------------------------
# The parser


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "error"


def _did_you_mean(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _got(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    value = str(node.value)
    if len(value) > 40:
        value = value[:39] + "…"
    return "nothing" if node.tag.endswith(":null") else repr(value)


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.loader = yaml.SafeLoader(text)

    # -- errors and node access -----------------------------------------------------------

    def fail(self, node: Node | None, path: str, message: str) -> NoReturn:
        line = node.start_mark.line + 1 if node is not None else 1
        where = f"key '{path}': " if path else ""
        raise PolicyError(f"{self.source}:{line}: {where}{message}")

    def scalar(self, node: Node) -> Any:
        """The Python value of a scalar node, as YAML 1.1 types it (``yes`` is True)."""
        try:
            return self.loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError, AttributeError):
            return node.value if isinstance(node, ScalarNode) else None

    def mapping(self, node: Node, path: str, allowed: Sequence[str], what: str) -> dict[str, Node]:
        """Keys → value nodes; refuses non-mappings, unknown and repeated keys."""
        if not isinstance(node, MappingNode):
            self.fail(node, path, f"expected {what}, got {_got(node)}")
        out: dict[str, Node] = {}
        first_line: dict[str, int] = {}
        for knode, vnode in node.value:
            key = self.key_name(knode, path)
            sub = f"{path}.{key}" if path else key
            if key in out:
                self.fail(knode, sub, f"given twice (first at line {first_line[key]})")
            if allowed and key not in allowed:
                known = ", ".join(allowed)
                self.fail(
                    knode,
                    sub,
                    f"unknown key '{key}'{_did_you_mean(key, allowed)} (known: {known})",
                )
            out[key] = vnode
            first_line[key] = knode.start_mark.line + 1
        return out

    def key_name(self, knode: Node, path: str) -> str:
        if not isinstance(knode, ScalarNode):
            self.fail(knode, path or "(top)", f"expected a plain key, got {_got(knode)}")
        value = self.scalar(knode)
        if not isinstance(value, str):
            value = str(knode.value)
        return value

    def string(self, node: Node, path: str, what: str = "a string") -> str:
        value = self.scalar(node) if isinstance(node, ScalarNode) else None
        if not isinstance(value, str) or not value:
            self.fail(node, path, f"expected {what}, got {_got(node)}")
        return value

    def name(self, node: Node, path: str, what: str) -> str:
        value = self.scalar(node) if isinstance(node, ScalarNode) else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(node.value)
        if not isinstance(value, str) or not _NAME.match(value):
            self.fail(
                node,
                path,
                f"expected {what} (letters, digits, '_', '.', '-'; at most 64), got {_got(node)}",
            )
        return value

    def boolean(self, node: Node, path: str) -> bool:
        value = self.scalar(node) if isinstance(node, ScalarNode) else None
        if not isinstance(value, bool):
            self.fail(node, path, f"expected true or false, got {_got(node)}")
        return value

    def integer(self, node: Node, path: str, low: int = 0, high: int = 1000) -> int:
        value = self.scalar(node) if isinstance(node, ScalarNode) else None
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            what = "a non-negative integer" if low == 0 else f"an integer from {low}"
            self.fail(node, path, f"expected {what} (at most {high}), got {_got(node)}")
        return value

    def duration(self, node: Node, path: str) -> float:
        value = self.scalar(node) if isinstance(node, ScalarNode) else None
        seconds: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = float(value) if value == value and value not in (float("inf"),) else None
        elif isinstance(value, str):
            seconds = parse_duration(value)
        if seconds is None or seconds <= 0 or seconds > 366 * 86400:
            self.fail(
                node,
                path,
                f"expected a duration such as '90s', '15m' or '1h30m', got {_got(node)}",
            )
        return seconds

    def items(self, node: Node, path: str) -> list[tuple[str, Node]]:
        """A list of items (or one item given alone), each with its indexed path."""
        if isinstance(node, SequenceNode):
            return [(f"{path}[{i}]", n) for i, n in enumerate(node.value)]
        return [(path, node)]

    # -- secrets --------------------------------------------------------------------------

    def refuse_secrets(self, root: Node) -> None:
        """Any key that names a secret is refused, wherever it is: secrets live in the env."""
        seen: set[int] = set()
        stack: list[tuple[Node, str]] = [(root, "")]
        while stack:
            node, path = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, MappingNode):
                for knode, vnode in node.value:
                    key = str(knode.value) if isinstance(knode, ScalarNode) else "?"
                    sub = f"{path}.{key}" if path else key
                    if isinstance(knode, ScalarNode) and _SECRET.search(key):
                        self.fail(
                            knode,
                            sub,
                            "looks like a secret; secrets never go in a policy file: "
                            "put it in the environment",
                        )
                    stack.append((vnode, sub))
            elif isinstance(node, SequenceNode):
                stack.extend((n, f"{path}[{i}]") for i, n in enumerate(node.value))

    # -- document -------------------------------------------------------------------------

    def parse(self) -> Policy:
        root = self.loader.get_single_node()
        if root is None:
            raise PolicyError(
                f"{self.source}:1: empty policy: expected 'version: 1' and 'projects'"
            )
        self.refuse_secrets(root)
        top = self.mapping(root, "", _TOP_KEYS, "a mapping with 'version: 1' and 'projects'")
        if "version" not in top:
            self.fail(root, "version", f"missing: expected 'version: {VERSION}' at the top")
        version = self.scalar(top["version"]) if isinstance(top["version"], ScalarNode) else None
        if version != VERSION or isinstance(version, bool):
            self.fail(
                top["version"],
                "version",
                f"expected {VERSION} (the policy version this sentry-tui reads), "
                f"got {_got(top['version'])}",
            )
        profiles = self.profiles(top["profiles"]) if "profiles" in top else {}
        known_profiles = (*BUILTIN_PROFILES, *profiles)
        projects: list[Project] = []
        if "projects" in top:
            pnode = top["projects"]
            if isinstance(pnode, ScalarNode) and pnode.tag.endswith(":null"):
                pnode = MappingNode("tag:yaml.org,2002:map", [], pnode.start_mark)
            entries = self.mapping(pnode, "projects", (), "a mapping of project names")
            pkeys = {
                self.key_name(k, "projects"): k
                for k, _ in pnode.value  # type: ignore[union-attr]
            }
            for name, node in entries.items():
                path = f"projects.{name}"
                self.name(pkeys[name], path, "a project name")
                projects.append(self.project(name, node, pkeys[name], path, known_profiles))
        return Policy(projects=tuple(projects), profiles=profiles, sources=(self.source,))

    def profiles(self, node: Node) -> dict[str, dict[str, tuple[str, ...]]]:
        out: dict[str, dict[str, tuple[str, ...]]] = {}
        for name, pnode in self.mapping(node, "profiles", (), "a mapping of profiles").items():
            path = f"profiles.{name}"
            if not _NAME.match(name):
                self.fail(pnode, path, "expected a profile name (letters, digits, '_', '.', '-')")
            states = self.mapping(pnode, path, PROFILE_STATES, "a mapping of state → regexes")
            out[name] = {
                state: tuple(
                    self.regex(item, ipath) for ipath, item in self.items(rnode, f"{path}.{state}")
                )
                for state, rnode in states.items()
            }
        return out

    def regex(self, node: Node, path: str) -> str:
        value = self.scalar(node) if isinstance(node, ScalarNode) else None
        if not isinstance(value, str) or not value:
            self.fail(node, path, f"expected a non-empty regular expression, got {_got(node)}")
        try:
            re.compile(value)
        except (re.error, OverflowError, RecursionError) as exc:
            self.fail(node, path, f"regular expression does not compile: {exc}")
        return value

    # -- project --------------------------------------------------------------------------

    def project(
        self, name: str, node: Node, knode: Node, path: str, known_profiles: Sequence[str]
    ) -> Project:
        keys = self.mapping(node, path, _PROJECT_KEYS, "a mapping with 'panes' and 'stages'")
        if "panes" not in keys:
            self.fail(node, f"{path}.panes", "missing: expected pane roles (role → session/window)")
        roles = self.roles(keys["panes"], f"{path}.panes", known_profiles)
        require_signed = (
            self.boolean(keys["require_signed"], f"{path}.require_signed")
            if "require_signed" in keys
            else False
        )
        stages: list[Stage] = []
        if "stages" in keys:
            snode = keys["stages"]
            spath = f"{path}.stages"
            if isinstance(snode, ScalarNode) and snode.tag.endswith(":null"):
                snode = SequenceNode("tag:yaml.org,2002:seq", [], snode.start_mark)
            if not isinstance(snode, SequenceNode):
                self.fail(snode, spath, f"expected a list of stages, got {_got(snode)}")
            first: dict[str, Stage] = {}
            for i, item in enumerate(snode.value):
                stage = self.stage(item, f"{spath}[{i}]", roles, require_signed)
                if stage.name in first:
                    self.fail(
                        item,
                        f"{spath}[{i}].name",
                        f"stage name '{stage.name}' used twice (first at line "
                        f"{first[stage.name].line})",
                    )
                first[stage.name] = stage
                stages.append(stage)
        trigger: tuple[Condition, ...] = ()
        trigger_pane: str | None = None
        if "trigger" in keys:
            trigger, trigger_pane = self.trigger(keys["trigger"], f"{path}.trigger", roles)
            if not stages:
                self.fail(
                    keys["trigger"],
                    f"{path}.trigger",
                    "a trigger starts a pipeline run, but this project has no stages",
                )
        waiting = (
            self.duration(keys["notify_waiting_after"], f"{path}.notify_waiting_after")
            if "notify_waiting_after" in keys
            else 120.0
        )
        notify_failed = (
            self.boolean(keys["notify_failed"], f"{path}.notify_failed")
            if "notify_failed" in keys
            else False
        )
        return Project(
            name=name,
            panes=roles,
            stages=tuple(stages),
            trigger=trigger,
            trigger_pane=trigger_pane,
            require_signed=require_signed,
            notify_waiting_after_s=waiting,
            notify_failed=notify_failed,
            source=self.source,
            line=knode.start_mark.line + 1,
        )

    def roles(self, node: Node, path: str, known_profiles: Sequence[str]) -> dict[str, PaneRole]:
        entries = self.mapping(node, path, (), "a mapping of role → {session, window, profile}")
        if not entries:
            self.fail(node, path, "expected at least one pane role")
        out: dict[str, PaneRole] = {}
        for role, rnode in entries.items():
            rpath = f"{path}.{role}"
            if not _NAME.match(role):
                self.fail(rnode, rpath, "expected a role name (letters, digits, '_', '.', '-')")
            if isinstance(rnode, ScalarNode) and rnode.tag.endswith(":null"):
                rnode = MappingNode("tag:yaml.org,2002:map", [], rnode.start_mark)
            keys = self.mapping(rnode, rpath, _ROLE_KEYS, "a mapping of session, window, profile")
            session = self.glob(keys["session"], f"{rpath}.session") if "session" in keys else "*"
            window = self.glob(keys["window"], f"{rpath}.window") if "window" in keys else "*"
            pane = self.integer(keys["pane"], f"{rpath}.pane", 0, 999) if "pane" in keys else None
            profile = "auto"
            if "profile" in keys:
                profile = self.string(keys["profile"], f"{rpath}.profile", "a profile name")
                if profile not in known_profiles:
                    self.fail(
                        keys["profile"],
                        f"{rpath}.profile",
                        f"unknown profile '{profile}'{_did_you_mean(profile, known_profiles)} "
                        f"(known: {', '.join(known_profiles)})",
                    )
            out[role] = PaneRole(
                name=role,
                session=session,
                window=window,
                pane=pane,
                profile=profile,
                line=rnode.start_mark.line + 1,
            )
        return out

    def glob(self, node: Node, path: str) -> str:
        value = self.scalar(node) if isinstance(node, ScalarNode) else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(node.value)  # a window named 2
        if not isinstance(value, str) or not value or _CONTROL.search(value):
            self.fail(node, path, f"expected a name or glob pattern, got {_got(node)}")
        return value

    def role_ref(self, node: Node, path: str, roles: dict[str, PaneRole], project: str) -> str:
        role = self.string(node, path, "a pane role name")
        if role not in roles:
            self.fail(
                node,
                path,
                f"no pane role '{role}' in projects.{project}.panes "
                f"(roles: {', '.join(roles)}){_did_you_mean(role, roles)}",
            )
        return role

    def trigger(
        self, node: Node, path: str, roles: dict[str, PaneRole]
    ) -> tuple[tuple[Condition, ...], str | None]:
        project = path.split(".")[1]
        pane: str | None = None
        when: Node = node
        when_path = path
        if isinstance(node, MappingNode) and any(
            isinstance(k, ScalarNode) and k.value in _TRIGGER_KEYS for k, _ in node.value
        ):
            keys = self.mapping(node, path, _TRIGGER_KEYS, "a mapping with 'pane' and 'when'")
            if "when" not in keys:
                self.fail(node, f"{path}.when", "missing: expected the conditions that start a run")
            if "pane" in keys:
                pane = self.role_ref(keys["pane"], f"{path}.pane", roles, project)
            when, when_path = keys["when"], f"{path}.when"
        conds = self.conditions(when, when_path, allowed=("marker", "state"))
        if not conds:
            self.fail(node, path, "expected at least one condition")
        return conds, pane

    # -- stages ---------------------------------------------------------------------------

    def stage(
        self, node: Node, path: str, roles: dict[str, PaneRole], project_signed: bool
    ) -> Stage:
        project = path.split(".")[1]
        keys = self.mapping(node, path, _STAGE_KEYS, "a stage mapping with 'name' and 'pane'")
        for required in ("name", "pane"):
            if required not in keys:
                self.fail(node, f"{path}.{required}", f"missing: every stage needs '{required}'")
        name = self.name(keys["name"], f"{path}.name", "a stage name")
        pane = self.role_ref(keys["pane"], f"{path}.pane", roles, project)
        run: str | None = None
        if "run" in keys:
            run = self.string(keys["run"], f"{path}.run", "a command (one line)")
            if "\n" in run.strip() or _CONTROL.search(run.strip()):
                self.fail(
                    keys["run"],
                    f"{path}.run",
                    "expected a single-line command without control characters "
                    "(put longer scripts in a file and run that)",
                )
            run = run.strip()
        done = self.conditions(keys["done"], f"{path}.done") if "done" in keys else ()
        fail = self.conditions(keys["fail"], f"{path}.fail") if "fail" in keys else ()
        retries = (
            self.integer(keys["retries"], f"{path}.retries", 0, 100) if "retries" in keys else 0
        )
        timeout = self.duration(keys["timeout"], f"{path}.timeout") if "timeout" in keys else None
        approve = Gate.NONE
        if "approve" in keys:
            value = (
                self.scalar(keys["approve"]) if isinstance(keys["approve"], ScalarNode) else None
            )
            if value not in ("before", "after"):
                self.fail(
                    keys["approve"],
                    f"{path}.approve",
                    f"expected 'before' or 'after', got {_got(keys['approve'])}",
                )
            approve = Gate(value)
        await_ = self.await_(keys["await"], f"{path}.await") if "await" in keys else None
        signed = (
            self.boolean(keys["require_signed"], f"{path}.require_signed")
            if "require_signed" in keys
            else False
        )
        wrap = self.boolean(keys["wrap"], f"{path}.wrap") if "wrap" in keys else True
        stage = Stage(
            name=name,
            pane=pane,
            run=run,
            done=done,
            fail=fail,
            retries=retries,
            timeout_s=timeout,
            approve=approve,
            await_=await_,
            require_signed=signed,
            wrap=wrap,
            line=node.start_mark.line + 1,
        )
        self.contradictions(stage, keys, path, project_signed)
        return stage

    def contradictions(
        self, stage: Stage, keys: dict[str, Node], path: str, project_signed: bool
    ) -> None:
        """Settings that each parse but cannot work together."""
        wrapped = stage.run is not None and stage.wrap
        for field_name, conds in (("done", stage.done), ("fail", stage.fail)):
            for i, cond in enumerate(conds):
                if cond.exit is not None and not wrapped:
                    why = "wrap: false" if stage.run is not None else "no 'run'"
                    self.fail(
                        keys[field_name],
                        self.cond_path(path, field_name, keys, i),
                        f"an exit condition needs a wrapped 'run' (exit status comes from "
                        f"the wrapper's END marker), but this stage has {why}",
                    )
        for cond in stage.done:
            for other in stage.fail:
                if replace(cond, line=0) == replace(other, line=0):
                    self.fail(
                        keys["fail"],
                        f"{path}.fail",
                        f"the same condition is in both done and fail (line {cond.line})",
                    )
        if stage.require_signed or project_signed:
            for i, cond in enumerate(stage.done):
                if cond.regex is not None:
                    self.fail(
                        keys["done"],
                        self.cond_path(path, "done", keys, i),
                        "require_signed is on, but a regex on pane output can never be "
                        "signed; use a marker or exit condition",
                    )
        if stage.run is None and not stage.done and stage.await_ is None:
            self.fail(
                keys["name"],
                path,
                f"stage '{stage.name}' can never finish: give it 'run', 'done' or 'await'",
            )
        if stage.run is not None and not stage.wrap and not stage.done:
            self.fail(
                keys["wrap"],
                f"{path}.wrap",
                "with wrap: false there is no exit status: give the stage 'done' conditions",
            )
        if stage.run is None and "wrap" in keys:
            self.fail(keys["wrap"], f"{path}.wrap", "'wrap' only applies to a stage with 'run'")

    def cond_path(self, path: str, field_name: str, keys: dict[str, Node], i: int) -> str:
        return (
            f"{path}.{field_name}[{i}]"
            if isinstance(keys[field_name], SequenceNode)
            else f"{path}.{field_name}"
        )

    def conditions(
        self, node: Node, path: str, allowed: Sequence[str] = _CONDITION_KEYS
    ) -> tuple[Condition, ...]:
        return tuple(self.condition(item, ipath, allowed) for ipath, item in self.items(node, path))

    def condition(self, node: Node, path: str, allowed: Sequence[str]) -> Condition:
        shown = " | ".join(f"{{{k}: …}}" for k in allowed)
        keys = self.mapping(node, path, allowed, f"a condition ({shown})")
        if len(keys) != 1:
            given = " and ".join(keys) or "none"
            self.fail(node, path, f"expected exactly one of {', '.join(allowed)}, got {given}")
        kind, vnode = next(iter(keys.items()))
        sub = f"{path}.{kind}"
        line = node.start_mark.line + 1
        if kind == "regex":
            return Condition(regex=self.regex(vnode, sub), line=line)
        if kind == "exit":
            value = self.scalar(vnode) if isinstance(vnode, ScalarNode) else None
            if value == "nonzero":
                return Condition(exit="nonzero", line=line)
            if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 255:
                return Condition(exit=value, line=line)
            self.fail(vnode, sub, f"expected 0..255 or 'nonzero', got {_got(vnode)}")
        if kind == "state":
            value = self.scalar(vnode) if isinstance(vnode, ScalarNode) else None
            if value not in CONDITION_STATES:
                self.fail(
                    vnode, sub, f"expected one of {', '.join(CONDITION_STATES)}, got {_got(vnode)}"
                )
            return Condition(state=PaneState(value), line=line)
        return Condition(marker=self.marker(vnode, sub), line=line)

    def marker(self, node: Node, path: str) -> dict[str, Any]:
        fields = self.mapping(node, path, (), "a mapping of marker fields (type, stage, ok, …)")
        if not fields:
            self.fail(node, path, "expected at least one marker field, such as type: STATUS")
        out: dict[str, Any] = {}
        for key, vnode in fields.items():
            value = self.scalar(vnode) if isinstance(vnode, ScalarNode) else vnode
            if not (value is None or isinstance(value, str | int | float | bool)):
                self.fail(vnode, f"{path}.{key}", f"expected a plain value, got {_got(vnode)}")
            out[key] = value
        if "type" in out and out["type"] not in MARKER_TYPES:
            self.fail(
                fields["type"],
                f"{path}.type",
                f"expected a marker type ({', '.join(MARKER_TYPES)}), got {_got(fields['type'])}",
            )
        return out

    def await_(self, node: Node, path: str) -> Await:
        keys = self.mapping(node, path, _AWAIT_KEYS, "a mapping with 'github_actions'")
        if "github_actions" not in keys:
            self.fail(node, f"{path}.github_actions", "missing: expected the workflow to await")
        gpath = f"{path}.github_actions"
        g = self.mapping(keys["github_actions"], gpath, _GHA_KEYS, "a mapping with repo, workflow")
        for required in ("repo", "workflow"):
            if required not in g:
                self.fail(keys["github_actions"], f"{gpath}.{required}", "missing")
        params: dict[str, Any] = {}
        repo = self.string(g["repo"], f"{gpath}.repo", "owner/name")
        if not _REPO.match(repo):
            self.fail(g["repo"], f"{gpath}.repo", f"expected owner/name, got {_got(g['repo'])}")
        params["repo"] = repo
        params["workflow"] = self.string(
            g["workflow"], f"{gpath}.workflow", "a workflow file name such as deploy.yml"
        )
        if "branch" in g:
            params["branch"] = self.string(g["branch"], f"{gpath}.branch", "a branch name")
        if "base_url" in g:
            url = self.string(g["base_url"], f"{gpath}.base_url", "a URL")
            if not url.startswith(("http://", "https://")):
                self.fail(
                    g["base_url"], f"{gpath}.base_url", f"expected an http(s) URL, got {url!r}"
                )
            params["base_url"] = url.rstrip("/")
        if "sha_from" in g:
            value = self.scalar(g["sha_from"])
            if value not in ("git", "marker"):
                self.fail(
                    g["sha_from"],
                    f"{gpath}.sha_from",
                    f"expected 'git' or 'marker', got {_got(g['sha_from'])}",
                )
            params["sha_from"] = value
        timeout = self.duration(keys["timeout"], f"{path}.timeout") if "timeout" in keys else None
        return Await(provider="github_actions", params=params, timeout_s=timeout)
