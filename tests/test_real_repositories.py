"""gitxp on the repositories real projects have, driven with the real git CLI.

Bare repositories (the server side, CI mirrors) are read like any other and
refuse, in one line and without writing, what needs a work tree. Runs
recorded in a linked worktree land in the common repository; submodules,
sparse checkouts and partial clones snapshot correctly.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import gitxp
from gitxp.cli.main import cli
from gitxp.git.repository import GitRepo
from tests.gitutil import GIT_ENV, fsck, git, run_refs
from tests.ui_helpers import get_json

SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(gitxp.__file__)))
BARE_MESSAGE = "is a bare repository (no work tree); run it in a clone with a work tree"


def _tree_state(path: Path) -> dict[str, tuple[int, int]]:
    """Every file below *path* with its size and mtime: what 'nothing was written' compares."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            state[os.path.relpath(full, path)] = (st.st_size, st.st_mtime_ns)
    return state


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """A bare repository holding two runs, pushed there from a clone with plain `git push`.

    Returns the bare repository's path and {run name: run id}.
    """
    base = tmp_path_factory.mktemp("bare")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(base))
        mp.setenv("XDG_CONFIG_HOME", str(base / ".config"))
        for key, value in GIT_ENV.items():
            mp.setenv(key, value)
        work = base / "work"
        work.mkdir()
        git(work, "init", "-q", "-b", "main")
        (work / "train.py").write_text("print('training')\n")
        git(work, "add", ".")
        git(work, "commit", "-q", "-m", "initial")
        ids = {}
        with gitxp.start_run(name="calm-heron", params={"lr": 0.1}, repo=work) as run:
            run.log_metric("acc", 0.8, step=1)
            ids["calm-heron"] = run.id
        (work / "train.py").write_text("print('training')\nlr = 0.3\n")  # a snapshot run
        launched = gitxp.launch(
            [sys.executable, "-c", "import gitxp; gitxp.log_metric('acc', 0.9, step=1)"],
            name="swift-otter",
            params={"lr": 0.3},
            repo=work,
            cwd=work,
            env={"PYTHONPATH": SOURCE_ROOT},
            stream=False,
        )
        assert launched.status == "FINISHED", launched
        ids["swift-otter"] = launched.run_id
        bare = base / "server.git"
        git(base, "init", "-q", "--bare", str(bare))
        git(work, "push", "-q", str(bare), "main", "refs/gitxp/*:refs/gitxp/*")
        yield bare, ids


# -- bare repositories: reading ------------------------------------------------------
def test_a_bare_repository_opens_as_bare_from_itself_and_below(
    server: tuple[Path, dict[str, str]],
) -> None:
    bare, _ = server
    for where in (bare, bare / "refs" / "gitxp"):
        with GitRepo.discover(where) as repo:
            assert repo.bare and repo.root == str(bare) and repo.git_dir == str(bare)
            assert repo.gitxp_dir("index-v1.json") == str(bare / "gitxp" / "index-v1.json")


def test_read_commands_work_on_a_bare_repository_through_dash_c(
    server: tuple[Path, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bare, ids = server
    monkeypatch.chdir(tmp_path)  # not inside any repository
    runner = CliRunner()

    def ok(*args: str) -> str:
        result = runner.invoke(cli, list(args))
        assert result.exit_code == 0, result.output
        return result.stdout

    import json

    listed = json.loads(ok("log", "-C", str(bare), "--format", "json"))
    assert {r["name"]: r["id"] for r in listed} == ids
    # the listing cache goes to the git directory itself: a bare repository has no .git
    assert (bare / "gitxp" / "index-v1.json").is_file() and not (bare / ".git").exists()
    assert "swift-otter" in ok("show", "-C", str(bare), "swift-otter")
    assert "lr" in ok("diff", "-C", str(bare), "calm-heron", "swift-otter")
    assert "params.lr" in ok("compare", "-C", str(bare), "calm-heron", "swift-otter")
    ok("export", "parquet", "-C", str(bare), str(tmp_path / "out"))
    assert (tmp_path / "out" / "runs.parquet").is_file()
    ok("report", "-C", str(bare), "-o", str(tmp_path / "report.html"))
    assert "swift-otter" in (tmp_path / "report.html").read_text()
    # a copy of a run's code, and a reproduction's plan, are reads too
    ok("checkout", "-C", str(bare), "swift-otter", "--path", str(tmp_path / "code"))
    assert (tmp_path / "code" / "train.py").read_text().endswith("lr = 0.3\n")
    assert (
        "dry run"
        in runner.invoke(cli, ["reproduce", "-C", str(bare), "swift-otter", "--dry-run"]).output
    )
    # and from inside the bare repository, like git itself
    monkeypatch.chdir(bare / "refs")
    assert "calm-heron" in ok("log")


def test_the_python_api_reads_a_bare_repository(server: tuple[Path, dict[str, str]]) -> None:
    bare, ids = server
    with gitxp.open(str(bare)) as repo:
        runs = repo.runs()
        assert dict(zip(runs["name"], runs["id"], strict=True)) == ids
        assert runs.set_index("name")["metrics.acc"].to_dict() == {
            "calm-heron": 0.8,
            "swift-otter": 0.9,
        }
        record = repo.run("swift-otter")
        assert record.params == {"lr": 0.3}
        assert list(record.metric_history("acc")["value"]) == [0.9]


def test_gitxp_ui_serves_a_bare_repository(server: tuple[Path, dict[str, str]]) -> None:
    bare, ids = server
    env = {**os.environ, "PYTHONPATH": SOURCE_ROOT}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitxp.cli.main", "ui", "-C", str(bare), "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd="/",
    )
    try:
        port = None
        deadline = time.monotonic() + 30
        lines = []
        while time.monotonic() < deadline and port is None:
            line = proc.stderr.readline()  # type: ignore[union-attr]
            lines.append(line)
            if not line:
                break
            found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
            if found:
                port = int(found.group(1))
        assert port is not None, "".join(lines)
        data = get_json(port, "/api/runs")
        assert {r["id"] for r in data["rows"]} == set(ids.values())
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# -- bare repositories: what needs a work tree -------------------------------------------
@pytest.mark.parametrize(
    ("args", "action"),
    [
        (["run", "-n", "x", "--", sys.executable, "-c", "pass"], "gitxp run"),
        (["sweep", "-p", "lr=1,2", "--", sys.executable, "-c", "pass"], "gitxp sweep"),
        (["checkout", "-C", "{bare}", "swift-otter", "-b", "try"], "gitxp checkout -b"),
        (["reproduce", "-C", "{bare}", "swift-otter"], "gitxp reproduce"),
        (["hooks", "install", "-C", "{bare}"], "gitxp hooks install"),
        (["hook", "no-run-outputs"], "gitxp hook no-run-outputs"),
    ],
)
def test_work_tree_commands_refuse_in_one_line_and_write_nothing(
    server: tuple[Path, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    action: str,
) -> None:
    bare, _ = server
    monkeypatch.chdir(bare)
    before = _tree_state(bare)
    result = CliRunner().invoke(cli, [a.format(bare=bare) for a in args])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert f"{action}: {bare} {BARE_MESSAGE}" in lines[0]
    assert _tree_state(bare) == before


def test_the_python_api_refuses_to_record_into_a_bare_repository(
    server: tuple[Path, dict[str, str]],
) -> None:
    bare, _ = server
    before = _tree_state(bare)
    with pytest.raises(gitxp.BareRepositoryError, match=r"gitxp\.start_run\(\): .*bare"):
        gitxp.start_run(repo=str(bare))
    with pytest.raises(gitxp.BareRepositoryError, match=r"gitxp run: .*bare"):
        gitxp.launch([sys.executable, "-c", "pass"], repo=str(bare))
    with pytest.raises(gitxp.BareRepositoryError, match="gitxp checkout -b"):
        gitxp.checkout("swift-otter", branch="try", repo=str(bare))
    assert _tree_state(bare) == before


def test_core_bare_makes_a_repository_bare_but_not_its_linked_worktrees(
    tmp_path: Path,
) -> None:
    bare = tmp_path / "project.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    seed = tmp_path / "seed"
    git(tmp_path, "clone", "-q", str(bare), str(seed))
    (seed / "train.py").write_text("print(1)\n")
    git(seed, "add", ".")
    git(seed, "commit", "-q", "-m", "initial")
    git(seed, "push", "-q", "origin", "main")
    # the bare-repository-plus-worktrees layout: every checkout is a linked worktree
    git(bare, "worktree", "add", "-q", str(tmp_path / "main-wt"), "main")
    with GitRepo.discover(tmp_path / "main-wt") as repo:
        assert not repo.bare and repo.git_dir == str(bare)
    with gitxp.start_run(name="from-worktree", repo=str(tmp_path / "main-wt")) as run:
        pass
    assert run_refs(bare) == [f"refs/gitxp/runs/{run.id}"]
    # a `.git` whose config says core.bare = true has no work tree either
    git(seed, "config", "core.bare", "true")
    with GitRepo.discover(seed) as repo:
        assert repo.bare and repo.root == str(seed / ".git")
    with pytest.raises(gitxp.BareRepositoryError):
        gitxp.start_run(repo=str(seed))


def test_gitxp_push_and_pull_to_from_and_between_bare_repositories(
    server: tuple[Path, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bare, ids = server
    runner = CliRunner()
    # a mirror pulls the runs from the server, then pushes them on, both bare
    mirror = tmp_path / "mirror.git"
    git(tmp_path, "clone", "-q", "--bare", str(bare), str(mirror))
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["pull", "-C", str(mirror), "origin"])
    assert result.exit_code == 0, result.output
    assert sorted(run_refs(mirror)) == sorted(f"refs/gitxp/runs/{i}" for i in ids.values())
    onward = tmp_path / "onward.git"
    git(tmp_path, "init", "-q", "--bare", str(onward))
    git(tmp_path, "--git-dir", str(onward), "fetch", "-q", str(mirror), "main:main")
    result = runner.invoke(cli, ["push", "-C", str(mirror), str(onward)])
    assert result.exit_code == 0, result.output
    assert sorted(run_refs(onward)) == sorted(run_refs(bare))
    # a clone records a run and pushes it to the bare repository with gitxp push
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(onward), str(clone))
    with gitxp.start_run(name="from-clone", repo=str(clone)) as run:
        run.log_metric("acc", 0.95)
    monkeypatch.chdir(clone)
    result = runner.invoke(cli, ["push", "origin"])
    assert result.exit_code == 0, result.output
    with gitxp.open(str(onward)) as repo:
        assert repo.run("from-clone").id == run.id
    fsck(onward)
