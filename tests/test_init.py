"""`sentry-tui init`: policies generated from realistic fixture projects load and make sense."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sentry_tui.errors import UserError
from sentry_tui.model import Gate, Policy
from sentry_tui.project_init import (
    OUTPUT_NAME,
    github_repo,
    init,
    makefile_targets,
    nox_sessions,
    tox_envs,
)

FIXTURES = Path(__file__).parent / "fixtures" / "projects"
PY = sys.executable


def project(tmp_path: Path, name: str, origin: str | None = None) -> Path:
    """A copy of a fixture project (init writes into it), optionally a git checkout."""
    root = tmp_path / name
    shutil.copytree(FIXTURES / name, root)
    if origin:
        (root / ".git").mkdir()
        (root / ".git" / "config").write_text(
            "[core]\n\trepositoryformatversion = 0\n\tbare = false\n"
            f'[remote "origin"]\n\turl = {origin}\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n'
            '[branch "main"]\n\tremote = origin\n\tmerge = refs/heads/main\n'
        )
    return root


def load(text: str, source: str) -> Policy:
    policy = pytest.importorskip("sentry_tui.policy")
    return policy.load_text(text, source)


def stages(policy: Policy) -> list[tuple[str, str | None]]:
    [proj] = policy.projects
    return [(s.name, s.run) for s in proj.stages]


def test_node_app_with_deploy_workflow(tmp_path: Path) -> None:
    root = project(tmp_path, "node-app", origin="git@github.com:acme/storyapp.git")
    target, text = init(root)
    assert target == root / OUTPUT_NAME and target.read_text() == text
    policy = load(text, str(target))
    [proj] = policy.projects
    assert proj.name == "storyapp"  # "@acme/storyapp" without the scope
    assert set(proj.panes) == {"agent", "shell"}
    assert stages(policy) == [
        ("install", "npm ci"),
        ("lint", "npm run lint"),
        ("test", "npm test"),
        ("build", "npm run build"),
        ("deploy", "git push"),  # deploy.yml runs on push to main
    ]
    deploy = proj.stages[-1]
    assert deploy.approve is Gate.BEFORE
    assert deploy.await_ is not None
    assert deploy.await_.params["repo"] == "acme/storyapp"
    assert deploy.await_.params["workflow"] == "deploy.yml"
    assert deploy.await_.params["branch"] == "main"
    assert all(s.approve is Gate.NONE for s in proj.stages[:-1])
    assert proj.require_signed


def test_python_package_with_tox_nox_and_release_workflow(tmp_path: Path) -> None:
    root = project(tmp_path, "python-pkg")  # no git remote: a placeholder that still loads
    target, text = init(root)
    policy = load(text, str(target))
    assert policy.projects[0].name == "points"
    assert stages(policy) == [
        ("install", "python -m pip install -e '.[test]'"),
        ("lint", "tox -e lint"),
        ("test", "tox -e py311,py312"),
        ("build", "python -m build"),
        ("deploy", None),  # release.yml runs on a GitHub release: the stage only waits
    ]
    deploy = policy.projects[0].stages[-1]
    assert deploy.approve is Gate.BEFORE and deploy.await_ is not None
    assert deploy.await_.params["workflow"] == "release.yml"
    assert deploy.await_.params["repo"] == "OWNER/REPO"
    assert "TODO" in text
    assert "[project.scripts]" in text  # said why console scripts are not stages


def test_makefile_project(tmp_path: Path) -> None:
    root = project(tmp_path, "make-project")
    target, text = init(root)
    policy = load(text, str(target))
    assert stages(policy) == [
        ("install", "make deps"),
        ("lint", "make lint"),
        ("test", "make test"),
        ("build", "make build"),
        ("deploy", "make deploy"),
    ]
    deploy = policy.projects[0].stages[-1]
    assert deploy.approve is Gate.BEFORE and deploy.await_ is None  # no workflow to await


def test_empty_directory_gives_a_watch_only_policy(tmp_path: Path) -> None:
    root = project(tmp_path, "empty")
    target, text = init(root)
    policy = load(text, str(target))
    [proj] = policy.projects
    assert proj.name == "empty" and proj.stages == () and set(proj.panes) == {"agent", "shell"}


def test_never_overwrites_without_force(tmp_path: Path) -> None:
    root = project(tmp_path, "make-project")
    target, _ = init(root)
    target.write_text("# my edits\n")
    with pytest.raises(UserError, match="already exists; use --force"):
        init(root)
    assert target.read_text() == "# my edits\n"
    init(root, force=True)
    assert "make test" in target.read_text()
    other, _ = init(root, output=tmp_path / "policies" / "gizmo.yaml")
    assert other.is_file()


def test_cli_says_where_it_wrote_and_check_accepts_it(tmp_path: Path) -> None:
    root = project(tmp_path, "node-app", origin="https://github.com/acme/storyapp")
    run = subprocess.run(
        [PY, "-m", "sentry_tui", "init", str(root)], capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 0, run.stderr
    target = root / OUTPUT_NAME
    assert f"wrote {target}" in run.stdout
    again = subprocess.run(
        [PY, "-m", "sentry_tui", "init", str(root)], capture_output=True, text=True, timeout=30
    )
    assert again.returncode == 2 and "--force" in again.stderr and "Traceback" not in again.stderr
    pytest.importorskip("sentry_tui.cmd.check")
    check = subprocess.run(
        [PY, "-m", "sentry_tui", "check", str(target)], capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a directory"):
        init(tmp_path / "nope")


# -- the readers ----------------------------------------------------------------------------------


def test_makefile_targets() -> None:
    text = (FIXTURES / "make-project" / "Makefile").read_text()
    assert makefile_targets(text) == ["all", "deps", "lint", "build", "test", "deploy", "clean"]
    assert makefile_targets("x := 1\ny ::= 2\n%.o: %.c\n\tcc\na b: c\n") == ["a", "b"]


def test_tox_envs_and_nox_sessions() -> None:
    assert tox_envs("[tox]\nenvlist = lint, py311,\n  py312\n") == ["lint", "py311", "py312"]
    assert tox_envs("not ini at all [") == []
    nox = (FIXTURES / "python-pkg" / "noxfile.py").read_text()
    assert nox_sessions(nox) == ["lint", "tests", "docs-build"]
    assert nox_sessions("def broken(:\n") == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("git@github.com:acme/storyapp.git", ("acme/storyapp", None)),
        ("https://github.com/acme/storyapp", ("acme/storyapp", None)),
        ("https://github.com/acme/storyapp.git/", ("acme/storyapp", None)),
        ("ssh://git@github.com:22/acme/storyapp.git", ("acme/storyapp", None)),
        (
            "git@git.example.com:team/svc.git",
            ("team/svc", "https://git.example.com/api/v3"),
        ),
        ("/srv/git/local.git", None),
    ],
)
def test_github_repo(url: str, expected: tuple[str, str | None] | None) -> None:
    assert github_repo(url) == expected


def test_hostile_names_stay_inside_comments_and_quotes(tmp_path: Path) -> None:
    root = tmp_path / "weird"
    (root / ".github" / "workflows").mkdir(parents=True)
    (root / "package.json").write_text('{"name": "we ird: {x}", "scripts": {"test": "jest"}}')
    (root / "tox.ini").write_text("[tox]\nenvlist = lint, py311 && touch /tmp/pwned\n")
    (root / ".github" / "workflows" / "deploy.yaml").write_text(
        'name: "Deploy\\nprojects: {evil: 1}"\non: workflow_dispatch\njobs: {}\n'
    )
    target, text = init(root)
    policy = load(text, str(target))
    [proj] = policy.projects
    assert proj.name == "we-ird-x"
    runs = dict(stages(policy))
    assert runs["lint"] == "tox -e lint"
    assert runs["test"] == "npm test"  # package.json comes before tox
    assert runs["deploy"] == "gh workflow run deploy.yaml"
    assert "evil" not in {p.name for p in policy.projects}
    root2 = tmp_path / "tox-only"
    root2.mkdir()
    (root2 / "tox.ini").write_text("[tox]\nenvlist = lint, py311 && touch /tmp/pwned\n")
    _, text2 = init(root2)
    assert dict(stages(load(text2, "t")))["test"] == "tox -e 'py311 && touch /tmp/pwned'"
