"""`sentry-tui init [DIR]`: a first policy from what the project already declares.

A project already says how it is installed, linted, tested, built and deployed: in
package.json scripts, Makefile targets, pyproject task runners, tox envs, nox sessions and
GitHub Actions workflows. This reads those (never runs them) and writes a commented policy
with the stages in pipeline order, the deploy workflow as the stage's ``await`` signal and a
human approval before deploy. The result is meant to be read and edited, so it is written
next to the project (``DIR/.sentry-tui.yaml``), not activated behind the user's back: a
policy types commands into panes, and that deserves a look first.
"""

from __future__ import annotations

import ast
import configparser
import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sentry_tui.errors import UserError

OUTPUT_NAME = ".sentry-tui.yaml"
KINDS = ("install", "lint", "test", "build", "deploy")
TIMEOUTS = {"install": "10m", "lint": "10m", "test": "30m", "build": "20m", "deploy": "30m"}
RETRIES = {"install": 1, "test": 1}  # network hiccups and flaky tests; never retry a deploy

# task names that mean a stage, best first
NAMES: dict[str, tuple[str, ...]] = {
    "install": ("install", "deps", "setup", "bootstrap"),
    "lint": ("lint", "typecheck", "type-check", "check-types", "format-check", "fmt-check", "vet"),
    "test": ("test", "tests", "check", "unit", "test-unit", "unit-test"),
    "build": ("build", "dist", "compile", "package", "all"),
    "deploy": ("deploy", "release", "publish", "ship"),
}
LINT_ENVS = {"lint", "flake8", "ruff", "style", "pre-commit", "mypy", "type", "typing", "types"}
SKIP_ENVS = {"docs", "doc", "build", "dev", "release", "publish", "clean", "format", "fmt"}
DEPLOY_WORDS = ("deploy", "release", "publish")
NPM_PLACEHOLDER = "no test specified"
REPO_PLACEHOLDER = "OWNER/REPO"
_NAME_OK = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True, slots=True)
class Step:
    """One stage to generate: what it runs and where that came from (for the comment)."""

    kind: str
    run: str | None
    source: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class Workflow:
    file: str
    name: str
    triggers: tuple[str, ...]
    branch: str | None = None


@dataclass(slots=True)
class Findings:
    """What the project declares, gathered before anything is written."""

    root: Path
    name: str = ""
    steps: dict[str, Step] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)  # files read, for the header comment
    deploy_workflow: Workflow | None = None
    other_workflows: list[str] = field(default_factory=list)
    repo: str | None = None
    base_url: str | None = None
    notes: list[str] = field(default_factory=list)

    def offer(self, kind: str, run: str | None, source: str, note: str = "") -> None:
        """First finding per stage wins; sources are read most specific first."""
        if kind not in self.steps:
            self.steps[kind] = Step(kind, run, source, note)


# --------------------------------------------------------------------------------------------
# Reading the project


def scan(root: Path) -> Findings:
    if not root.is_dir():
        raise UserError(f"{root}: not a directory")
    found = Findings(root=root)
    _makefile(root, found)
    _package_json(root, found)
    pyproject = _pyproject(root, found)
    _tox(root, found)
    _nox(root, found)
    _python_fallbacks(root, pyproject, found)
    _workflows(root, found)
    _git_remote(root, found)
    found.name = _project_name(root, found.name)
    return found


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _pick(kind: str, names: Iterable[str]) -> str | None:
    available = set(names)
    return next((n for n in NAMES[kind] if n in available), None)


def makefile_targets(text: str) -> list[str]:
    """Explicit targets, in order: not variables, not pattern rules, not ``.SPECIAL`` ones."""
    targets: list[str] = []
    for line in text.splitlines():
        if not line or line[0] in "\t #":
            continue
        m = re.match(r"^([^:=#]+?)\s*::?(?![:=])", line)
        if not m:
            continue
        for t in m.group(1).split():
            if re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", t) and t not in targets:
                targets.append(t)
    return targets


def _makefile(root: Path, found: Findings) -> None:
    for name in ("GNUmakefile", "makefile", "Makefile"):
        text = _read(root / name)
        if text is None:
            continue
        found.seen.append(name)
        targets = makefile_targets(text)
        for kind in KINDS:
            target = _pick(kind, targets)
            if target:
                found.offer(kind, f"make {target}", f"{name} target '{target}'")
        return


def _package_json(root: Path, found: Findings) -> None:
    text = _read(root / "package.json")
    if text is None:
        return
    try:
        pkg = json.loads(text)
    except ValueError as exc:
        found.notes.append(f"package.json is not valid JSON ({exc}); skipped")
        return
    if not isinstance(pkg, dict):
        return
    found.seen.append("package.json")
    if isinstance(pkg.get("name"), str):
        found.name = found.name or pkg["name"].rsplit("/", 1)[-1]
    scripts = pkg.get("scripts") if isinstance(pkg.get("scripts"), dict) else {}
    scripts = {k: v for k, v in scripts.items() if isinstance(v, str)}
    if NPM_PLACEHOLDER in scripts.get("test", ""):
        del scripts["test"]  # npm init's "echo Error: no test specified && exit 1"
    pm = _node_package_manager(root)
    found.offer("install", _node_install(root, pm), f"{pm} (package.json)")
    for kind in ("lint", "test", "build", "deploy"):
        script = _pick(kind, scripts)
        if script:
            found.offer(kind, _node_run(pm, script), f"package.json script '{script}'")


def _node_package_manager(root: Path) -> str:
    for lock, pm in (
        ("pnpm-lock.yaml", "pnpm"),
        ("yarn.lock", "yarn"),
        ("bun.lockb", "bun"),
        ("bun.lock", "bun"),
    ):
        if (root / lock).exists():
            return pm
    return "npm"


def _node_install(root: Path, pm: str) -> str:
    if pm == "npm":
        return "npm ci" if (root / "package-lock.json").exists() else "npm install"
    return {"pnpm": "pnpm install --frozen-lockfile", "yarn": "yarn install --frozen-lockfile"}.get(
        pm, f"{pm} install"
    )


def _node_run(pm: str, script: str) -> str:
    if pm == "npm":
        return "npm test" if script == "test" else f"npm run {script}"
    if pm == "yarn":
        return f"yarn {script}"
    return f"{pm} run {script}"


def _pyproject(root: Path, found: Findings) -> dict[str, Any]:
    text = _read(root / "pyproject.toml")
    if text is None:
        return {}
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found.notes.append(f"pyproject.toml is not valid TOML ({exc}); skipped")
        return {}
    found.seen.append("pyproject.toml")
    project = data.get("project") if isinstance(data.get("project"), dict) else {}
    tool = data.get("tool") if isinstance(data.get("tool"), dict) else {}
    name = project.get("name") or _get(tool, "poetry", "name")
    if isinstance(name, str):
        found.name = found.name or name
    runners: list[tuple[str, Any, str]] = [
        ("pdm run", _get(tool, "pdm", "scripts"), "[tool.pdm.scripts]"),
        ("poe", _get(tool, "poe", "tasks"), "[tool.poe.tasks]"),
        ("hatch run", _get(tool, "hatch", "envs", "default", "scripts"), "[tool.hatch...scripts]"),
        ("task", _get(tool, "taskipy", "tasks"), "[tool.taskipy.tasks]"),
    ]
    for prefix, table, where in runners:
        if not isinstance(table, dict):
            continue
        for kind in KINDS:
            task = _pick(kind, table)
            if task:
                found.offer(kind, f"{prefix} {task}", f"pyproject.toml {where} '{task}'")
    if isinstance(project.get("scripts"), dict) and project["scripts"]:
        found.notes.append(
            "pyproject.toml [project.scripts] are console commands, not pipeline steps; "
            "not used as stages"
        )
    return data


def _get(table: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(table, dict):
            return None
        table = table.get(k)
    return table


def tox_envs(text: str) -> list[str]:
    """``[tox] envlist`` (or tox 4's ``env_list``), comma or newline separated."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text)
    except configparser.Error:
        return []
    if not parser.has_section("tox"):
        return []
    raw = parser.get("tox", "env_list", fallback=None) or parser.get("tox", "envlist", fallback="")
    return [e.strip() for e in re.split(r"[,\n]", raw) if e.strip()]


def _tox(root: Path, found: Findings) -> None:
    text = _read(root / "tox.ini")
    if text is None:
        return
    found.seen.append("tox.ini")
    envs = tox_envs(text)
    lint = [e for e in envs if e in LINT_ENVS]
    tests = [e for e in envs if e not in LINT_ENVS and e not in SKIP_ENVS]
    if lint:
        found.offer("lint", f"tox -e {_sh(','.join(lint))}", f"tox.ini envs {', '.join(lint)}")
    if tests and not any("{" in e for e in tests):
        found.offer("test", f"tox -e {_sh(','.join(tests))}", f"tox.ini envs {', '.join(tests)}")
    elif tests or not envs:
        found.offer("test", "tox", "tox.ini envlist")


def nox_sessions(text: str) -> list[str]:
    """Names of ``@nox.session`` functions (``name=`` wins), without running the noxfile."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    names: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef):
            continue
        for deco in node.decorator_list:
            target = deco.func if isinstance(deco, ast.Call) else deco
            dotted = ast.unparse(target)
            if dotted not in ("nox.session", "session", "nox_session"):
                continue
            name = node.name
            if isinstance(deco, ast.Call):
                for kw in deco.keywords:
                    if kw.arg == "name" and isinstance(kw.value, ast.Constant):
                        name = str(kw.value.value)
            names.append(name)
    return names


def _nox(root: Path, found: Findings) -> None:
    text = _read(root / "noxfile.py")
    if text is None:
        return
    found.seen.append("noxfile.py")
    sessions = nox_sessions(text)
    lint = [s for s in sessions if s in LINT_ENVS or s in NAMES["lint"]]
    if lint:
        found.offer("lint", f"nox -s {_sh(*lint)}", f"noxfile.py sessions {', '.join(lint)}")
    test = _pick("test", sessions)
    if test:
        found.offer("test", f"nox -s {test}", f"noxfile.py session '{test}'")
    build = _pick("build", sessions)
    if build:
        found.offer("build", f"nox -s {build}", f"noxfile.py session '{build}'")


def _sh(*words: str) -> str:
    """Names read from the project's files go into a shell command quoted, never raw."""
    import shlex

    return shlex.join(words)


def _python_fallbacks(root: Path, data: Mapping[str, Any], found: Findings) -> None:
    """Where no task runner says how, the standard Python tools the project configures."""
    if not data and not (root / "setup.py").exists() and not (root / "requirements.txt").exists():
        return
    tool = data.get("tool") if isinstance(data.get("tool"), dict) else {}
    if (root / "uv.lock").exists():
        found.offer("install", "uv sync", "uv.lock")
    elif (root / "poetry.lock").exists() or "poetry" in tool:
        found.offer("install", "poetry install", "poetry")
    elif (root / "pdm.lock").exists():
        found.offer("install", "pdm install", "pdm.lock")
    elif data.get("project") or (root / "setup.py").exists():
        extras = _get(data, "project", "optional-dependencies")
        extra = next(
            (e for e in ("test", "tests", "dev") if isinstance(extras, dict) and e in extras), None
        )
        target = f"'.[{extra}]'" if extra else "."
        found.offer("install", f"python -m pip install -e {target}", "pyproject.toml [project]")
    elif (root / "requirements.txt").exists():
        found.offer("install", "python -m pip install -r requirements.txt", "requirements.txt")
    if "ruff" in tool or (root / "ruff.toml").exists() or (root / ".ruff.toml").exists():
        found.offer("lint", "ruff check .", "ruff configuration")
    elif "flake8" in tool or (root / ".flake8").exists():
        found.offer("lint", "flake8", "flake8 configuration")
    if "pytest" in tool or (root / "pytest.ini").exists() or (root / "tests").is_dir():
        found.offer("test", "python -m pytest", "pytest configuration / tests/")
    if "build-system" in data:
        found.offer("build", "python -m build", "pyproject.toml [build-system]")


def _workflows(root: Path, found: Findings) -> None:
    folder = root / ".github" / "workflows"
    if not folder.is_dir():
        return
    import yaml

    candidates: list[tuple[int, Workflow]] = []
    for path in sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]):
        text = _read(path)
        if text is None:
            continue
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError:
            found.notes.append(f".github/workflows/{path.name} is not valid YAML; skipped")
            continue
        if not isinstance(doc, dict):
            continue
        found.seen.append(f".github/workflows/{path.name}")
        name = doc.get("name") if isinstance(doc.get("name"), str) else path.stem
        triggers, branch = _triggers(doc.get("on", doc.get(True)))
        flow = Workflow(file=path.name, name=name, triggers=triggers, branch=branch)
        rank = _deploy_rank(path.name, name)
        if rank is None:
            found.other_workflows.append(path.name)
        else:
            candidates.append((rank, flow))
    if candidates:
        found.deploy_workflow = min(candidates, key=lambda c: c[0])[1]


def _deploy_rank(file: str, name: str) -> int | None:
    """deploy before release before publish; a file name match before a display name match."""
    for i, word in enumerate(DEPLOY_WORDS):
        if word in file.lower():
            return i
        if word in name.lower():
            return i + len(DEPLOY_WORDS)
    return None


def _triggers(on: Any) -> tuple[tuple[str, ...], str | None]:
    if isinstance(on, str):
        return (on,), None
    if isinstance(on, list):
        return tuple(str(t) for t in on), None
    if not isinstance(on, dict):
        return (), None
    branch = None
    push = on.get("push")
    if isinstance(push, dict) and isinstance(push.get("branches"), list):
        plain = [b for b in push["branches"] if isinstance(b, str) and not re.search(r"[*?\[!]", b)]
        branch = plain[0] if plain else None
    return tuple(str(t) for t in on), branch


def github_repo(url: str) -> tuple[str, str | None] | None:
    """``owner/name`` and, for a host other than github.com, its API base URL."""
    m = re.match(
        r"^(?:[\w.+-]+://)?(?:[^@/]+@)?([^:/]+)(?::\d+)?[:/](.+?)(?:\.git)?/?$", url.strip()
    )
    if not m:
        return None
    host, path = m.group(1), m.group(2)
    parts = [p for p in path.split("/") if p]
    if len(parts) < 2:
        return None
    repo = f"{parts[-2]}/{parts[-1]}"
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repo):
        return None
    base = None if host in ("github.com", "www.github.com") else f"https://{host}/api/v3"
    return repo, base


def _git_remote(root: Path, found: Findings) -> None:
    git = root / ".git"
    if git.is_file():  # a worktree or submodule: "gitdir: <path>"
        text = _read(git) or ""
        if text.startswith("gitdir:"):
            git = (root / text.split(":", 1)[1].strip()).resolve()
            common = _read(git / "commondir")
            if common:
                git = (git / common.strip()).resolve()
    config = _read(git / "config")
    if not config:
        return
    section = re.search(r'^\[remote "origin"\]\s*$(.*?)(?=^\[|\Z)', config, re.M | re.S)
    if not section:
        return
    url = re.search(r"^\s*url\s*=\s*(\S+)\s*$", section.group(1), re.M)
    parsed = github_repo(url.group(1)) if url else None
    if parsed:
        found.repo, found.base_url = parsed


def _project_name(root: Path, declared: str) -> str:
    name = _NAME_OK.sub("-", declared or root.resolve().name).strip("-._")
    return name[:64] or "project"


# --------------------------------------------------------------------------------------------
# Writing the policy


def _q(text: str) -> str:
    """A YAML scalar: plain when that is unambiguous, else double-quoted (JSON escapes)."""
    plain = re.fullmatch(r"[A-Za-z0-9_./@+-][A-Za-z0-9 _./@+=,-]*", text)
    special = re.fullmatch(r"true|false|yes|no|on|off|null|~|[-+]?[0-9.]+", text, re.I)
    if plain and not special and not text.endswith(" "):
        return text
    return json.dumps(text, ensure_ascii=False)


HEADER = """\
# sentry-tui policy for {name}, generated by `sentry-tui init` from what the project
# declares. Read it, adjust it, then check it: `sentry-tui check <this file>`.
{read}#
# Use it with `sentry-tui --policy <this file>`, or copy it into
# ~/.config/sentry-tui/policies/ to load it every time.
version: 1

projects:
  {qname}:
    # Pane roles: which tmux panes the pipeline talks about, by session and window name
    # (exact or glob). Rename them to match your layout; profile picks the screen reader.
    panes:
      agent: {{session: {qname}, window: agent, profile: auto}}
      shell: {{session: {qname}, window: shell, profile: shell}}

    # A run starts by hand (`sentry-tui start {name}`). To start one when the agent reports
    # finished work, uncomment:
    # trigger:
    #   pane: agent
    #   when: {{marker: {{type: STATUS, stage: code, ok: true}}}}

    # Only signed markers (printed by `sentry-tui wrap`, which every `run` below is sent
    # through) and agent hooks move stages; text that merely looks like a marker (a `cat`
    # of a log, a web page) cannot.
    require_signed: true

"""

NOTHING = """\
    # Nothing here says how to install, test, build or deploy yet, so this policy only
    # watches the panes (agents waiting for you, failures) and types nothing. Add stages
    # like this one when there is something to run:
    #   - name: test
    #     pane: shell
    #     run: make test
    #     timeout: 30m
    stages: []
"""

STAGES = """\
    # Stages run in this order, in the shell pane. done/fail default to the wrapper's
    # exit status: 0 is done, anything else fails the stage.
    stages:
"""


def _c(text: str) -> str:
    """Text for a YAML comment: one line, no control characters (names come from files)."""
    from sentry_tui.ansi import one_line

    return one_line(text, 120)


def render(found: Findings) -> str:
    read = "".join(f"# Read: {_c(f)}\n" for f in found.seen)
    read += "".join(f"# Note: {_c(n)}\n" for n in found.notes)
    out = HEADER.format(name=found.name, qname=_q(found.name), read=read)
    steps = [found.steps[k] for k in KINDS if k in found.steps and k != "deploy"]
    deploy, flow = found.steps.get("deploy"), found.deploy_workflow
    if not steps and not deploy and not flow:
        return out + NOTHING
    out += STAGES
    for step in steps:
        out += f"      - name: {step.kind}  # from {_c(step.source)}\n"
        out += "        pane: shell\n"
        out += f"        run: {_q(step.run or '')}\n"
        if step.kind in RETRIES:
            out += f"        retries: {RETRIES[step.kind]}\n"
        out += f"        timeout: {TIMEOUTS[step.kind]}\n"
    if deploy or flow:
        out += "\n" + "".join(f"{ln}\n" for ln in _deploy_lines(found, deploy, flow))
    return out


def _deploy_lines(found: Findings, deploy: Step | None, flow: Workflow | None) -> list[str]:
    then = ", then for the GitHub Actions run of the commit it deployed" if flow else ""
    lines = [
        "      # Deploy waits for a human first (the TUI, `sentry-tui approve ID`, a dropped",
        f"      # file or a phone link){then}.",
        "      - name: deploy" + (f"  # from {_c(deploy.source)}" if deploy else ""),
        "        pane: shell",
        "        approve: before",
    ]
    run = deploy.run if deploy else None
    if run is None and flow is not None:
        if "push" in flow.triggers:
            lines.append(
                f"        # {_c(flow.file)} runs on push: pushing the tested commit deploys it."
            )
            run = "git push"
        elif "workflow_dispatch" in flow.triggers:
            lines.append(f"        # {_c(flow.file)} is started by hand; this needs GitHub's gh.")
            ref = ["--ref", flow.branch] if flow.branch else []
            run = f"gh workflow run {_sh(flow.file, *ref)}"
        else:
            starts = _c(", ".join(flow.triggers)) or "its own triggers"
            lines.append(f"        # {_c(flow.file)} starts on {starts}: start it the way you")
            lines.append("        # release (a tag, a GitHub release); this stage waits for it.")
    if run is not None:
        lines.append(f"        run: {_q(run)}")
    lines.append(f"        timeout: {TIMEOUTS['deploy']}")
    if flow is None:
        return lines
    if found.repo:
        repo = f"            repo: {_q(found.repo)}  # from git remote origin"
    else:
        repo = f"            repo: {REPO_PLACEHOLDER}  # TODO: your owner/repo (no origin remote)"
    named = f"  # {_c(flow.name)}" if flow.name != flow.file else ""
    lines += ["        await:", "          github_actions:", repo]
    lines.append(f"            workflow: {_q(flow.file)}{named}")
    if flow.branch:
        lines.append(f"            branch: {_q(flow.branch)}")
    if found.base_url:
        lines.append(f"            base_url: {_q(found.base_url)}")
    lines.append(
        "            # The token comes from the environment (GITHUB_TOKEN), never this file."
    )
    lines.append("          timeout: 1h")
    return lines


# --------------------------------------------------------------------------------------------
# The command


def init(directory: Path, *, force: bool = False, output: Path | None = None) -> tuple[Path, str]:
    """Scan ``directory`` and write its policy; return where it went and the text."""
    root = directory.expanduser()
    found = scan(root)
    text = render(found)
    _validate(text, found)
    target = output.expanduser() if output else root / OUTPUT_NAME
    if target.exists() and not force:
        raise UserError(f"{target} already exists; use --force to overwrite it or --output PATH")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{target}: cannot write it ({exc.strerror})") from None
    return target, text


def _validate(text: str, found: Findings) -> None:
    """The generated file must load; if the policy loader refuses it, that is our bug."""
    try:
        from sentry_tui.policy import load_text
    except ImportError:
        return
    load_text(text, f"<generated policy for {found.name}>")


def summary_lines(found: Findings) -> list[str]:
    steps = [found.steps[k] for k in KINDS if k in found.steps]
    out = [f"{s.kind:8} {s.run or '(no command)':40} from {s.source}" for s in steps]
    if found.deploy_workflow:
        out.append(f"await    {found.deploy_workflow.file} ({found.repo or REPO_PLACEHOLDER})")
    return out
