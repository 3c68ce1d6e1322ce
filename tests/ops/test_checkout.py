"""`gitxp checkout`: a run's exact code on disk, never at the cost of uncommitted work or safety."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

import gitxp
from gitxp.store.edit import RunState, edit_run
from tests.gitutil import fsck, git
from tests.workflows_util import gitxp as run_gitxp
from tests.workflows_util import write


def _dirty_run(repo: Path) -> gitxp.RunRecord:
    """A run recorded with a modified tracked file, an untracked file, an exec bit, a symlink."""
    (repo / "train.py").write_text("print('changed')\n")
    write(repo / "new" / "helper.py", "X = 1\n")
    write(repo / "run.sh", "#!/bin/sh\necho hi\n").chmod(0o755)
    os.symlink("train.py", repo / "link.py")
    with gitxp.start_run(name="dirty") as run:
        run.log_metric("acc", 1.0)
    return gitxp.open(repo).run(run.id)


def test_path_materialises_the_snapshot(repo: Path, tmp_path: Path) -> None:
    record = _dirty_run(repo)
    assert record.meta["dirty"]
    target = tmp_path / "out"
    result = run_gitxp(repo, "checkout", "dirty", "--path", str(target))
    assert result.returncode == 0, result.stderr
    assert (target / "train.py").read_text() == "print('changed')\n"
    assert (target / "new" / "helper.py").read_text() == "X = 1\n"
    assert os.readlink(target / "link.py") == "train.py"
    assert os.stat(target / "run.sh").st_mode & stat.S_IXUSR
    assert not (target / ".git").exists()
    # the same files as git's own view of the code commit
    listed = git(repo, "ls-tree", "-r", "--name-only", record.code_commit).split()
    written = sorted(
        str(p.relative_to(target)) for p in target.rglob("*") if p.is_file() or p.is_symlink()
    )
    assert written == sorted(listed)
    assert f"Wrote {len(listed)} files of run dirty" in result.stdout + result.stderr
    # the user's work tree is untouched
    assert (repo / "train.py").read_text() == "print('changed')\n"
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"


def test_path_must_be_new_or_empty(repo: Path, tmp_path: Path) -> None:
    _dirty_run(repo)
    occupied = tmp_path / "occupied"
    write(occupied / "keep.txt", "mine")
    with pytest.raises(gitxp.GitxpError, match="not empty"):
        gitxp.checkout("dirty", path=occupied)
    assert (occupied / "keep.txt").read_text() == "mine"
    with pytest.raises(gitxp.UsageError):
        gitxp.checkout("dirty")


def test_checkout_without_a_destination_says_what_to_give(repo: Path, tmp_path: Path) -> None:
    _dirty_run(repo)
    result = run_gitxp(repo, "checkout", "dirty")
    assert result.returncode == 2
    assert result.stderr.startswith("error: checkout: say where the code goes: --path DIR")
    assert "gitxp checkout dirty --path ../code-copy" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    both = run_gitxp(repo, "checkout", "dirty", "--path", str(tmp_path / "x"), "-b", "y")
    assert both.returncode == 2 and "give one of them, not both" in both.stderr
    assert not (tmp_path / "x").exists()
    assert "y" not in git(repo, "branch", "--list", "y")


def _hostile_commit(repo: Path, entry_name: str, nested: str | None = None) -> str:
    """A commit whose tree holds *entry_name* (optionally a tree holding *nested*), built raw."""
    blob = git(repo, "hash-object", "-w", "--stdin", input="pwned\n").strip()
    if nested is None:
        entry = b"100644 " + entry_name.encode() + b"\0" + bytes.fromhex(blob)
    else:
        inner = b"100644 " + nested.encode() + b"\0" + bytes.fromhex(blob)
        inner_id = _hash_tree(repo, inner)
        entry = b"40000 " + entry_name.encode() + b"\0" + bytes.fromhex(inner_id)
    ok = b"100644 ok.txt\0" + bytes.fromhex(blob)
    entries = sorted([entry, ok], key=lambda e: e.split(b"\0")[0].split(b" ", 1)[1])
    tree = _hash_tree(repo, b"".join(entries))
    return git(repo, "commit-tree", tree, "-m", "hostile").strip()


def _hash_tree(repo: Path, raw: bytes) -> str:
    result = subprocess.run(
        ["git", "hash-object", "-t", "tree", "-w", "--literally", "--stdin"],
        cwd=repo,
        input=raw,
        capture_output=True,
        check=True,
    )
    return result.stdout.decode().strip()


def _run_with_code(repo: Path, name: str, code: str) -> None:
    """A run whose recorded code commit is *code* (as if fetched from someone else)."""
    with gitxp.start_run(name=name) as run:
        pass
    with gitxp.open(repo) as r:
        ref, tip = r.resolve(run.id)

        def change(state: RunState) -> None:
            state.meta["code_commit"] = code

        edit_run(r.git, ref, tip, "point at foreign code", change)


@pytest.mark.parametrize(
    ("entry", "nested"),
    [
        ("../escape.txt", None),
        ("..", "escape.txt"),
        (".git", "config"),
        (".GIT", "hooks-pwned"),
        ("/abs.txt", None),
        ("sub", "../../escape.txt"),
        ("git~1", "config"),
    ],
)
def test_a_hostile_tree_is_refused_and_nothing_is_written(
    repo: Path, tmp_path: Path, entry: str, nested: str | None
) -> None:
    code = _hostile_commit(repo, entry, nested)
    _run_with_code(repo, "hostile", code)
    target = tmp_path / "deep" / "out"
    config_before = (repo / ".git" / "config").read_text()
    result = run_gitxp(repo, "checkout", "hostile", "--path", str(target))
    assert result.returncode == 1, result.stdout
    assert result.stderr.startswith("error: refusing to write") and "Traceback" not in result.stderr
    assert not target.exists()  # validated before anything was written
    assert not (tmp_path / "deep" / "escape.txt").exists()
    assert not (tmp_path / "escape.txt").exists()
    # and -b refuses before touching the work tree, HEAD or the index
    head = git(repo, "rev-parse", "HEAD").strip()
    result = run_gitxp(repo, "checkout", "hostile", "-b", "evil")
    assert result.returncode == 1 and "refusing to write" in result.stderr
    assert git(repo, "rev-parse", "HEAD").strip() == head
    assert git(repo, "branch", "--list", "evil") == ""
    assert not (repo.parent / "escape.txt").exists()
    assert (repo / ".git" / "config").read_text() == config_before
    assert git(repo, "status", "--porcelain") == ""


def _committed_run(repo: Path) -> str:
    """A run on a clean tree, then a new commit on main so the run's code is not HEAD."""
    with gitxp.start_run(name="old") as run:
        pass
    (repo / "train.py").write_text("print('v2')\n")
    git(repo, "commit", "-qam", "v2")
    return run.id


def test_branch_switches_a_clean_tree_to_the_code(repo: Path) -> None:
    _committed_run(repo)
    code = gitxp.open(repo).run("old").code_commit
    result = run_gitxp(repo, "checkout", "old", "-b", "try-old")
    assert result.returncode == 0, result.stderr
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip() == "try-old"
    assert git(repo, "rev-parse", "HEAD").strip() == code
    assert (repo / "train.py").read_text() == "print('training')\n"
    assert git(repo, "status", "--porcelain") == ""  # real git agrees: index and tree match
    fsck(repo)


def test_branch_refuses_to_overwrite_uncommitted_work(repo: Path) -> None:
    _committed_run(repo)
    (repo / "train.py").write_text("precious edit\n")
    result = run_gitxp(repo, "checkout", "old", "-b", "try-old")
    assert result.returncode == 1
    assert "uncommitted changes would be overwritten: train.py" in result.stderr
    assert (repo / "train.py").read_text() == "precious edit\n"
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    assert git(repo, "branch", "--list", "try-old") == ""


def test_branch_refuses_to_overwrite_an_untracked_file(repo: Path) -> None:
    (repo / "extra.py").write_text("committed later\n")
    git(repo, "add", "extra.py")
    git(repo, "commit", "-qm", "extra")
    with gitxp.start_run(name="with-extra"):
        pass
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    (repo / "extra.py").write_text("my untracked draft\n")
    with pytest.raises(gitxp.UncommittedChangesError, match=r"extra\.py"):
        gitxp.checkout("with-extra", branch="try")
    assert (repo / "extra.py").read_text() == "my untracked draft\n"


def test_force_saves_the_work_to_a_ref_and_says_how_to_restore(repo: Path) -> None:
    _committed_run(repo)
    (repo / "train.py").write_text("precious edit\n")
    write(repo / "notes.txt", "untracked notes\n")
    result = run_gitxp(repo, "checkout", "old", "-b", "try-old", "--force")
    assert result.returncode == 0, result.stderr
    saved = next(w for w in result.stdout.split() if w.startswith("refs/gitxp/saved/"))
    assert git(repo, "show", f"{saved}:train.py") == "precious edit\n"
    assert git(repo, "show", f"{saved}:notes.txt") == "untracked notes\n"
    assert (repo / "train.py").read_text() == "print('training')\n"
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip() == "try-old"
    hint = result.stdout.split("to get it back: ", 1)[1].splitlines()[0]
    subprocess.run(hint, shell=True, cwd=repo, check=True, capture_output=True)
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    assert (repo / "train.py").read_text() == "precious edit\n"
    assert (repo / "notes.txt").read_text() == "untracked notes\n"
    fsck(repo)
