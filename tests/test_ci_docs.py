"""docs/ci.md: the GitHub Actions and GitLab CI examples run, as written, against a real remote.

A developer's repository (main with runs, a feature branch with a commit and
a run) is pushed to a bare remote with its runs; the CI job's checkout is a
clone of that remote at the branch's tip. Each shell command of the example
then runs in that clone through bash, with the gitxp that `pip install gitxp`
put into a fresh virtual environment from a wheel of this checkout (pip is
pointed at that wheel instead of PyPI). Only the step that posts to the
forge's API is skipped: it needs a token.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitxp.ops import sharing
from tests.branch_helpers import commit, record
from tests.gitutil import GIT_ENV, git

ROOT = Path(__file__).resolve().parents[1]
GATE = '[tool.gitxp.gate]\nrequire = ["metrics.acc >= {bar}"]\n'


def _yaml_block(heading: str) -> Any:
    text = (ROOT / "docs" / "ci.md").read_text()
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```yaml\n(.*?)\n```", section, re.S)
    assert block is not None, f"no yaml block under ## {heading}"
    return yaml.safe_load(block.group(1))


@pytest.fixture(scope="module")
def installer(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of the CI job: a fresh venv whose `pip install gitxp` installs a wheel
    of this checkout (the venv sees this environment's packages for gitxp's dependencies)."""
    tmp = tmp_path_factory.mktemp("ci-install")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "gitxp", src / "gitxp", ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", "wheels", "./src"],
        cwd=tmp,
        check=True,
    )
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "venv"], cwd=tmp, check=True)
    venv = tmp / "venv"
    site = subprocess.run(
        [venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    deps = sysconfig.get_path("purelib")
    Path(site, "_ci_deps.pth").write_text(f"import site; site.addsitedir({deps!r})\n")
    launcher = venv / "bin" / "pip"  # the real pip, run by the venv's python
    launcher.write_text(
        f"#!{venv / 'bin' / 'python'}\nimport sys\n"
        "from pip._internal.cli.main import main\nsys.exit(main())\n"
    )
    launcher.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(GIT_ENV)
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}",
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(tmp / "wheels"),
        PIP_IGNORE_INSTALLED="1",
        PIP_NO_DEPS="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        VIRTUAL_ENV=str(venv),
    )
    return env


@pytest.fixture
def remote(repo: Path, tmp_path: Path) -> dict[str, Any]:
    """A bare remote holding main (a gate in pyproject.toml, two runs) and feature (one commit,
    one run that meets the gate), runs pushed with gitxp."""
    (repo / "pyproject.toml").write_text(GATE.format(bar=0.9))
    git(repo, "add", "pyproject.toml")
    git(repo, "commit", "-q", "-m", "Add the metric gate")
    record(repo, "base-a", 0.90, 0.30, 0.1)
    record(repo, "base-b", 0.85, 0.25, 0.2)
    git(repo, "checkout", "-q", "-b", "feature")
    tip = commit(repo, "dropout = 0.5", "Add dropout")
    record(repo, "feat-1", 0.93, 0.28, 0.05)
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    git(repo, "push", "-q", str(bare), "main", "feature")
    assert all(r.status == "new" for r in sharing.push(repo, str(bare)))
    return {"bare": bare, "tip": tip, "tmp": tmp_path}


def _bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _check_outcome(clone: Path, env: dict[str, str], gate: str, base: str) -> None:
    """The report the job wrote, and the gate failing once the bar is above the run."""
    where = subprocess.run(
        ["python", "-c", "import gitxp; print(gitxp.__file__)"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert where.stdout.startswith(env["VIRTUAL_ENV"]), where  # the pip-installed gitxp ran
    text = (clone / "report.md").read_text()
    assert text.startswith("<!-- gitxp-report -->\n## gitxp: runs on HEAD (`")
    assert (
        f"1 run on this branch, against the best of 2 finished runs reachable from {base}" in text
    )
    assert re.search(
        r"\| branch \| feat-1 `\w+` \| `\w+` \| 0\.05 \| \*\*0\.93\*\* \(\+0\.03\) ", text
    )
    assert "1 commit in" in text and "Add dropout" in text
    (clone / "pyproject.toml").write_text(GATE.format(bar=0.99))
    failed = _bash(gate, clone, env)
    assert failed.returncode == 1 and "fails 1 of 1 gate condition" in failed.stderr + failed.stdout


def _expand(value: str, context: dict[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        return context[m.group(1).strip()]

    return re.sub(r"\$\{\{(.*?)\}\}", one, str(value))


def test_the_github_actions_example_runs(remote: dict[str, Any], installer: dict[str, str]) -> None:
    workflow = _yaml_block("GitHub Actions")
    steps = workflow["jobs"]["report"]["steps"]
    context = {
        "github.event.pull_request.head.sha": remote["tip"],
        "github.base_ref": "main",
        "github.token": "not-used",
        "github.event.pull_request.number": "1",
    }
    checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0
    # actions/checkout with fetch-depth 0: every branch as origin/*, HEAD at the given sha
    clone = remote["tmp"] / "gh"
    git(remote["tmp"], "clone", "-q", str(remote["bare"]), str(clone))
    git(clone, "checkout", "-q", "--detach", _expand(checkout["with"]["ref"], context))
    skipped, gate = [], None
    for step in steps:
        if "run" not in step:
            continue
        env = {**installer, **{k: _expand(v, context) for k, v in (step.get("env") or {}).items()}}
        if "GH_TOKEN" in env:  # posts the comment through GitHub's API: needs a real token
            skipped.append(step["run"])
            continue
        result = _bash(step["run"], clone, env)
        assert result.returncode == 0, (step, result.stdout, result.stderr)
        if "metric-gate" in step["run"]:
            gate = step["run"]
    assert len(skipped) == 1 and "gh pr comment" in skipped[0]
    assert gate is not None
    _check_outcome(clone, installer, gate, "origin/main")


def test_the_gitlab_ci_example_runs(remote: dict[str, Any], installer: dict[str, str]) -> None:
    job = _yaml_block("GitLab CI")["experiments"]
    assert job["variables"]["GIT_DEPTH"] == "0"
    # GitLab's checkout: the source branch only, HEAD detached at its commit
    clone = remote["tmp"] / "gl"
    git(
        remote["tmp"],
        "clone",
        "-q",
        "--single-branch",
        "-b",
        "feature",
        str(remote["bare"]),
        str(clone),
    )
    git(clone, "checkout", "-q", "--detach", remote["tip"])
    assert not git(clone, "branch", "-r", "--list", "origin/main").strip()
    env = {
        **installer,
        **job["variables"],
        "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
        "CI_PIPELINE_SOURCE": "merge_request_event",
    }
    skipped, gate = [], None
    for line in job["script"]:
        if "$CI_API_V4_URL" in line:  # posts the note through GitLab's API: needs a token
            skipped.append(line)
            continue
        result = _bash(line, clone, env)
        assert result.returncode == 0, (line, result.stdout, result.stderr)
        if "metric-gate" in line:
            gate = line
    assert len(skipped) == 1 and skipped[0].lstrip("'").startswith("curl ")
    assert gate is not None
    _check_outcome(clone, env, gate, "origin/main")
