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
DIRTY_SUBMODULE = "submodule with uncommitted changes: only its commit is recorded"
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
    assert (bare / "gitxp" / "index-v4.bin").is_file() and not (bare / ".git").exists()
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


# -- linked worktrees, submodules, sparse checkouts, partial clones -------------------
def _record(path: Path, name: str) -> gitxp.RunRecord:
    """Record a short run in the repository at *path*; return it as read back."""
    with gitxp.start_run(name=name, repo=str(path)) as run:
        run.log_metric("acc", 0.5)
    with gitxp.open(str(path)) as repo:
        return repo.run(run.id)


def _tree_entries(repo: Path, commit: str) -> dict[str, tuple[str, str]]:
    """{path: (mode, id)} of every entry below *commit*'s tree, as git lists it."""
    entries = {}
    for line in git(repo, "ls-tree", "-r", commit).splitlines():
        meta, path = line.split("\t", 1)
        mode, _, sha = meta.split()
        entries[path] = (mode, sha)
    return entries


def test_a_run_in_a_linked_worktree_lands_in_the_common_repository(
    repo: Path, tmp_path: Path, runner: CliRunner
) -> None:
    wt = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "feature", str(wt))
    (wt / "train.py").write_text("print('feature')\n")
    git(wt, "commit", "-q", "-am", "feature")
    wt_head = git(wt, "rev-parse", "HEAD").strip()
    clean = _record(wt, "clean-in-worktree")
    (wt / "train.py").write_text("print('feature, edited')\n")
    dirty = _record(wt, "dirty-in-worktree")

    assert clean.code_commit == wt_head != git(repo, "rev-parse", "HEAD").strip()
    assert clean.meta["branch"] == "feature"
    assert git(repo, "rev-parse", f"{dirty.code_commit}^").strip() == wt_head
    assert git(repo, "show", f"{dirty.code_commit}:train.py") == "print('feature, edited')\n"
    # one set of refs, in the common repository, seen the same from both checkouts
    expected = sorted(f"refs/gitxp/runs/{r.id}" for r in (clean, dirty))
    assert sorted(run_refs(repo)) == expected == sorted(run_refs(wt))
    assert not list((repo / ".git" / "worktrees" / "wt").glob("refs/gitxp/**/*"))
    result = runner.invoke(cli, ["log", "--format", "json"])  # in the main checkout
    assert result.exit_code == 0, result.output
    import json

    assert {r["name"] for r in json.loads(result.stdout)} == {
        "clean-in-worktree",
        "dirty-in-worktree",
    }
    assert (repo / ".git" / "gitxp").is_dir()
    assert not (repo / ".git" / "worktrees" / "wt" / "gitxp").exists()
    assert (repo / "train.py").read_text() == "print('training')\n"  # main untouched
    fsck(repo)


def test_a_submodule_is_recorded_as_its_checked_out_commit_and_its_changes_reported(
    repo: Path, tmp_path: Path, runner: CliRunner
) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    git(lib, "init", "-q", "-b", "main")
    (lib / "util.py").write_text("VERSION = 1\n")
    git(lib, "add", ".")
    git(lib, "commit", "-q", "-m", "lib v1")
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib), "lib")
    git(repo, "commit", "-q", "-m", "add lib")
    head = git(repo, "rev-parse", "HEAD").strip()
    sub = repo / "lib"

    clean = _record(repo, "clean")
    assert clean.code_commit == head and "snapshot" not in clean.meta

    # a newer commit checked out in the submodule, not yet staged in the superproject
    (sub / "util.py").write_text("VERSION = 2\n")
    git(sub, "commit", "-q", "-am", "lib v2")
    moved = git(sub, "rev-parse", "HEAD").strip()
    ahead = _record(repo, "submodule-ahead")
    assert ahead.code_commit != head
    assert _tree_entries(repo, ahead.code_commit)["lib"] == ("160000", moved)
    assert ahead.meta["snapshot"]["changed"] == ["lib"]
    assert ahead.meta["snapshot"]["excluded"] == []

    # uncommitted edits inside the submodule: not in a gitlink, and the run says so
    (sub / "util.py").write_text("VERSION = 3  # uncommitted\n")
    edited = _record(repo, "submodule-edited")
    assert _tree_entries(repo, edited.code_commit)["lib"] == ("160000", moved)
    assert {"path": "lib/", "reason": DIRTY_SUBMODULE} in edited.meta["snapshot"]["excluded"]
    shown = runner.invoke(cli, ["show", "submodule-edited"])
    assert shown.exit_code == 0 and "submodule with uncommitted changes" in shown.stdout

    # an untracked file in it counts as well; an ignored one does not
    git(sub, "checkout", "-q", "--", "util.py")
    (sub / "notes.txt").write_text("scratch\n")
    untracked = _record(repo, "submodule-untracked")
    assert {"path": "lib/", "reason": DIRTY_SUBMODULE} in untracked.meta["snapshot"]["excluded"]
    (sub / "notes.txt").unlink()
    exclude = Path(git(sub, "rev-parse", "--absolute-git-dir").strip()) / "info" / "exclude"
    exclude.parent.mkdir(exist_ok=True)
    exclude.write_text("*.log\n")
    (sub / "debug.log").write_text("ignored\n")
    tidy = _record(repo, "submodule-tidy")
    assert tidy.meta["snapshot"]["excluded"] == []
    fsck(repo)


@pytest.mark.parametrize("index", ["--no-sparse-index", "--sparse-index"])
def test_a_sparse_checkout_snapshot_keeps_the_files_outside_the_cone(
    repo: Path, index: str
) -> None:
    for name in ("src/model.py", "src/data.py", "data/a.csv", "data/deep/b.csv"):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(f"{name}\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "layout")
    head = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "sparse-checkout", "set", index, "src")
    assert not (repo / "data").exists()
    sparse_entries = git(repo, "ls-files", "--sparse").split()
    assert ("data/" in sparse_entries) == (index == "--sparse-index")

    clean = _record(repo, "sparse-clean")
    assert clean.code_commit == head and not clean.meta["dirty"]

    (repo / "src" / "model.py").write_text("edited\n")
    edited = _record(repo, "sparse-edited")
    assert edited.meta["snapshot"]["changed"] == ["src/model.py"]
    before, after = _tree_entries(repo, head), _tree_entries(repo, edited.code_commit)
    assert set(after) == set(before)
    assert {p: v for p, v in after.items() if p != "src/model.py"} == {
        p: v for p, v in before.items() if p != "src/model.py"
    }
    fsck(repo)


def _missing_objects(repo: Path) -> set[str]:
    """Objects reachable from every ref that a partial clone does not have."""
    out = git(repo, "rev-list", "--objects", "--missing=print", "--all")
    return {line[1:] for line in out.splitlines() if line.startswith("?")}


def test_a_partial_clone_snapshots_without_its_missing_blobs(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    git(source, "init", "-q", "-b", "main")
    for version in (1, 2):
        for name in ("train.py", "models/net.py", "data/prep.py", "data/big/table.csv"):
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_text(f"{name} v{version}\n")
        git(source, "add", ".")
        git(source, "commit", "-q", "-m", f"v{version}")
    git(source, "config", "uploadpack.allowFilter", "true")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--filter=blob:none", "--sparse", source.as_uri(), str(clone))
    git(clone, "sparse-checkout", "set", "models")
    missing = _missing_objects(clone)
    head = git(clone, "rev-parse", "HEAD").strip()
    head_blobs = {sha for _, sha in _tree_entries(clone, head).values()}
    assert missing & head_blobs  # data/ of HEAD is not here, nor any v1 file
    source.rename(tmp_path / "gone")  # from now on, any fetch of a missing blob would fail
    packs = sorted(os.listdir(clone / ".git" / "objects" / "pack"))

    (clone / "models" / "net.py").write_text("edited\n")
    (clone / "notes.md").write_text("untracked\n")
    record = _record(clone, "partial")

    assert _missing_objects(clone) == missing  # nothing was fetched
    assert sorted(os.listdir(clone / ".git" / "objects" / "pack")) == packs
    assert record.meta["snapshot"]["changed"] == ["models/net.py", "notes.md"]
    before, after = _tree_entries(clone, head), _tree_entries(clone, record.code_commit)
    assert {p: v for p, v in after.items() if p.startswith("data/")} == {
        p: v for p, v in before.items() if p.startswith("data/")
    }
    assert git(clone, "show", f"{record.code_commit}:models/net.py") == "edited\n"
