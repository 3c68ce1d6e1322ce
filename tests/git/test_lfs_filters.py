"""`.gitattributes` in snapshots and checkout: eol conversion, filter drivers, Git LFS.

Every verdict is compared with the real git (2.39) and git-lfs (3.x): a
file `git status` calls clean gives a clean snapshot, a modified one is
stored as `git add` stores it, and `gitxp checkout` writes what `git
checkout` would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import gitxp
from gitxp.git.repository import GitRepo
from gitxp.git.snapshot import take_snapshot
from tests.gitutil import GIT_ENV, fsck, git

needs_lfs = pytest.mark.skipif(
    shutil.which("git-lfs") is None,
    reason="git-lfs is not installed (CI installs it: .ci/run adds it to its apt-get list)",
)


def _new_repo(path: Path, config: dict[str, str] | None = None) -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    for key, value in (config or {}).items():
        git(path, "config", key, value)
    return path


def _status(repo: Path) -> str:
    """`git status --porcelain` without refreshing the index (so it cannot help gitxp)."""
    return git(repo, "--no-optional-locks", "status", "--porcelain", "--untracked-files=all")


def _git_add_blob(repo: Path, path: str) -> str:
    """The blob id `git add` stores for *path*, computed in a copy of the index."""
    index = repo / ".git" / "index-probe"
    shutil.copy(repo / ".git" / "index", index)
    env = {**os.environ, **GIT_ENV, "GIT_INDEX_FILE": str(index)}
    subprocess.run(["git", "add", "--", path], cwd=repo, env=env, check=True)
    out = subprocess.run(
        ["git", "ls-files", "-s", "--", path], cwd=repo, env=env, check=True, capture_output=True
    ).stdout.decode()
    index.unlink()
    return out.split()[1]


def _snapshot(repo: Path) -> tuple[str | None, bool, list[str]]:
    with GitRepo(str(repo)) as g:
        snap = take_snapshot(g)
    return snap.code_commit, snap.dirty, snap.changed


def _blob_at(repo: Path, commit: str, path: str) -> str:
    return git(repo, "rev-parse", f"{commit}:{path}").strip()


def _touch_later(path: Path) -> None:
    """Give *path* a new mtime so neither git nor gitxp can trust the index's stat."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))


# -- eol -------------------------------------------------------------------------------
def _git_add_all_tree(repo: Path) -> str:
    """The tree `git add -A && git write-tree` gives, computed in a copy of the index."""
    index = repo / ".git" / "index-probe"
    shutil.copy(repo / ".git" / "index", index)
    env = {**os.environ, **GIT_ENV, "GIT_INDEX_FILE": str(index)}
    subprocess.run(["git", "add", "-A"], cwd=repo, env=env, check=True)
    tree = subprocess.run(
        ["git", "write-tree"], cwd=repo, env=env, check=True, capture_output=True
    ).stdout.decode()
    index.unlink()
    return tree.strip()


EOL_CASES = [
    # (id, config, .gitattributes, bytes when committed, bytes later (None: only touched))
    ("autocrlf-true-touched", {"core.autocrlf": "true"}, None, b"a\r\nb\r\n", None),
    ("autocrlf-true-edit", {"core.autocrlf": "true"}, None, b"a\r\nb\r\n", b"a\r\nc\r\n"),
    ("autocrlf-true-crlf-of-lf", {"core.autocrlf": "true"}, None, b"a\nb\n", b"a\r\nb\r\n"),
    ("autocrlf-input-touched", {"core.autocrlf": "input"}, None, b"a\r\nb\r\n", None),
    ("autocrlf-input-edit", {"core.autocrlf": "input"}, None, b"a\n", b"a\r\nz\r\n"),
    ("text-auto-touched", {}, "* text=auto\n", b"a\r\nb\r\n", None),
    ("text-auto-crlf-of-lf", {}, "* text=auto\n", b"a\nb\n", b"a\r\nb\r\n"),
    ("text-auto-edit", {}, "* text=auto\n", b"a\nb\n", b"x\r\nb\r\n"),
    ("eol-crlf-touched", {}, "*.txt eol=crlf\n", b"a\r\nb\r\n", None),
    ("eol-crlf-edit", {}, "*.txt eol=crlf\n", b"a\r\nb\r\n", b"a\r\nb\r\nc\n"),
    ("minus-text-touched", {"core.autocrlf": "true"}, "*.txt -text\n", b"a\r\nb\r\n", None),
    ("minus-text-crlf", {"core.autocrlf": "true"}, "*.txt -text\n", b"a\nb\n", b"a\r\nb\r\n"),
    ("binary-crlf", {"core.autocrlf": "true"}, None, b"a\nb\n", b"\0a\r\nb\r\n"),
    ("autocrlf-false-crlf", {}, None, b"a\nb\n", b"a\r\nb\r\n"),
]


@pytest.mark.parametrize(
    ("config", "attributes", "committed", "later"),
    [case[1:] for case in EOL_CASES],
    ids=[case[0] for case in EOL_CASES],
)
def test_eol_verdict_and_stored_blob_match_git(
    tmp_path: Path,
    config: dict[str, str],
    attributes: str | None,
    committed: bytes,
    later: bytes | None,
) -> None:
    repo = _new_repo(tmp_path / "r", config)
    if attributes:
        (repo / ".gitattributes").write_text(attributes)
    (repo / "f.txt").write_bytes(committed)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "one")
    head = git(repo, "rev-parse", "HEAD").strip()
    if later is not None:
        (repo / "f.txt").write_bytes(later)
    _touch_later(repo / "f.txt")
    code, dirty, changed = _snapshot(repo)
    if later is None:  # same bytes, new stat: git re-reads the file and calls it clean
        assert _status(repo) == ""
    # the snapshot is HEAD exactly when `git add -A` would give HEAD's tree
    same_as_head = _git_add_all_tree(repo) == git(repo, "rev-parse", "HEAD^{tree}").strip()
    assert (code == head) == same_as_head and dirty != same_as_head, changed
    if not same_as_head:
        assert code is not None and changed == ["f.txt"]
        assert _blob_at(repo, code, "f.txt") == _git_add_blob(repo, "f.txt")


def test_text_auto_keeps_crlf_that_was_committed_as_such(tmp_path: Path) -> None:
    """git leaves CRLF alone on `git add` when the index already holds it with CRLF."""
    repo = _new_repo(tmp_path / "r")
    (repo / "f.txt").write_bytes(b"a\r\nb\r\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "crlf committed")
    (repo / ".gitattributes").write_text("* text=auto\n")
    git(repo, "add", ".gitattributes")
    git(repo, "commit", "-q", "-m", "attributes")
    (repo / "f.txt").write_bytes(b"a\r\nb\r\nc\r\n")
    code, dirty, _ = _snapshot(repo)
    assert dirty and code
    assert _blob_at(repo, code, "f.txt") == _git_add_blob(repo, "f.txt")
    shown = subprocess.run(["git", "show", f"{code}:f.txt"], cwd=repo, capture_output=True)
    assert shown.stdout == b"a\r\nb\r\nc\r\n"


def test_untracked_file_is_normalised_as_git_add_would(tmp_path: Path) -> None:
    repo = _new_repo(tmp_path / "r", {"core.autocrlf": "true"})
    (repo / "a.txt").write_bytes(b"a\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "one")
    (repo / "new.txt").write_bytes(b"x\r\ny\r\n")
    code, dirty, changed = _snapshot(repo)
    assert dirty and code and changed == ["new.txt"]
    assert _blob_at(repo, code, "new.txt") == _git_add_blob(repo, "new.txt")
    fsck(repo)


# -- filter drivers ---------------------------------------------------------------------
def test_custom_clean_filter_applies_and_a_clean_file_stays_clean(tmp_path: Path) -> None:
    repo = _new_repo(tmp_path / "r", {"filter.upper.clean": "tr a-z A-Z"})
    (repo / ".gitattributes").write_text("*.up filter=upper\n")
    (repo / "x.up").write_text("hello\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "one")
    head = git(repo, "rev-parse", "HEAD").strip()
    assert git(repo, "show", "HEAD:x.up") == "HELLO\n"
    _touch_later(repo / "x.up")  # its bytes ("hello") differ from the blob ("HELLO")
    assert _status(repo) == ""
    assert _snapshot(repo)[0] == head
    (repo / "x.up").write_text("hello world\n")
    code, dirty, _ = _snapshot(repo)
    assert dirty and code
    assert git(repo, "show", f"{code}:x.up") == "HELLO WORLD\n"
    assert _blob_at(repo, code, "x.up") == _git_add_blob(repo, "x.up")


def test_a_filter_that_is_not_configured_stores_raw_and_says_so(repo: Path, tmp_path: Path) -> None:
    (repo / ".gitattributes").write_text("*.dat filter=nothere\n")
    (repo / "d.dat").write_text("raw content\n")
    with gitxp.start_run() as run:
        pass
    rec = gitxp.open().run(run.id)
    code = rec.code_commit
    assert git(repo, "show", f"{code}:d.dat") == "raw content\n"
    assert _blob_at(repo, code, "d.dat") == _git_add_blob(repo, "d.dat")
    unfiltered = rec.meta["snapshot"]["unfiltered"]
    assert unfiltered == [{"path": "d.dat", "filter": "nothere", "reason": "driver not configured"}]


def test_a_failing_required_filter_is_a_clear_error(repo: Path, runner: object) -> None:
    from gitxp.cli.main import cli

    git(repo, "config", "filter.strict.clean", "echo 'strict: cannot clean' >&2; exit 3")
    git(repo, "config", "filter.strict.required", "true")
    (repo / ".gitattributes").write_text("*.s filter=strict\n")
    (repo / "x.s").write_text("data\n")
    # git refuses to add it, and so does the snapshot
    assert subprocess.run(["git", "add", "x.s"], cwd=repo, capture_output=True).returncode != 0
    result = runner.invoke(cli, ["run", "--", "true"])  # type: ignore[attr-defined]
    assert result.exit_code == 1
    assert "x.s: the 'strict' filter failed (strict: cannot clean)" in result.output
    assert "Traceback" not in result.output


# -- Git LFS ------------------------------------------------------------------------------
def _lfs_repo(path: Path, process_cmd: str | None = None) -> Path:
    repo = _new_repo(path)
    git(repo, "lfs", "install", "--local")
    if process_cmd is not None:
        git(repo, "config", "filter.lfs.process", process_cmd)
    git(repo, "lfs", "track", "*.bin")
    (repo / "model.bin").write_bytes(os.urandom(200_000))
    (repo / "train.py").write_text("print('x')\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "lfs")
    return repo


def _lfs_objects(repo: Path) -> set[str]:
    root = repo / ".git" / "lfs" / "objects"
    return {p.name for p in root.rglob("*") if p.is_file()} if root.exists() else set()


@needs_lfs
def test_lfs_file_touched_but_unchanged_gives_a_clean_snapshot(tmp_path: Path) -> None:
    repo = _lfs_repo(tmp_path / "r")
    head = git(repo, "rev-parse", "HEAD").strip()
    _touch_later(repo / "model.bin")
    assert _status(repo) == ""
    assert _snapshot(repo) == (head, False, [])


@needs_lfs
def test_modified_lfs_file_is_stored_as_a_pointer_with_content_in_the_lfs_store(
    tmp_path: Path,
) -> None:
    repo = _lfs_repo(tmp_path / "r")
    content = os.urandom(300_000)
    (repo / "model.bin").write_bytes(content)
    (repo / "extra.bin").write_bytes(b"untracked weights")
    code, dirty, changed = _snapshot(repo)
    assert dirty and code and changed == ["extra.bin", "model.bin"]
    for path in ("model.bin", "extra.bin"):
        assert _blob_at(repo, code, path) == _git_add_blob(repo, path)
        pointer = git(repo, "show", f"{code}:{path}")
        assert pointer.startswith("version https://git-lfs.github.com/spec/v1\n")
    oid = git(repo, "show", f"{code}:model.bin").split("oid sha256:")[1].split()[0]
    assert oid in _lfs_objects(repo)
    # git-lfs itself turns the stored pointer back into the content
    smudged = subprocess.run(
        ["git", "lfs", "smudge"],
        cwd=repo,
        input=git(repo, "show", f"{code}:model.bin").encode(),
        capture_output=True,
        check=True,
    ).stdout
    assert smudged == content
    fsck(repo)


@needs_lfs
def test_one_filter_process_per_snapshot_and_none_when_stat_matches(tmp_path: Path) -> None:
    log = tmp_path / "starts.log"
    repo = _lfs_repo(tmp_path / "r", f"echo start >> {log}; exec git-lfs filter-process")
    log.unlink()  # git's own `git add` above started it too
    assert _snapshot(repo)[1] is False
    assert not log.exists()  # every file's stat matched the index: no filter ran
    for i in range(3):
        (repo / f"w{i}.bin").write_bytes(os.urandom(1000))
    (repo / "model.bin").write_bytes(b"changed")
    assert _snapshot(repo)[1] is True
    assert log.read_text() == "start\n"


# -- checkout -----------------------------------------------------------------------------
@needs_lfs
def test_checkout_of_an_lfs_snapshot_gives_the_real_file_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = _lfs_repo(tmp_path / "r")
    monkeypatch.chdir(repo)
    content = os.urandom(250_000)
    (repo / "model.bin").write_bytes(content)
    with gitxp.start_run() as run:
        pass
    (repo / "model.bin").write_bytes(b"later work")
    gitxp.checkout(run.id, path=str(tmp_path / "copy"))
    assert (tmp_path / "copy" / "model.bin").read_bytes() == content
    assert (tmp_path / "copy" / "train.py").read_text() == "print('x')\n"
    # on a branch, too: git then finds the work tree clean
    git(repo, "checkout", "-q", "--", "model.bin")
    gitxp.checkout(run.id, branch="from-run")
    assert (repo / "model.bin").read_bytes() == content
    assert _status(repo) == ""


@needs_lfs
def test_checkout_force_restores_an_edited_lfs_file_as_the_real_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # model.bin is the same at HEAD and in the run; a local edit is saved and
    # the file put back: it must come back smudged, not as its LFS pointer
    repo = _lfs_repo(tmp_path / "r")
    original = (repo / "model.bin").read_bytes()
    monkeypatch.chdir(repo)
    (repo / "train.py").write_text("print('run')\n")
    with gitxp.start_run() as run:
        pass
    (repo / "model.bin").write_bytes(b"local edit")
    gitxp.checkout(run.id, branch="from-run", force=True)
    assert (repo / "model.bin").read_bytes() == original
    assert (repo / "train.py").read_text() == "print('run')\n"
    assert _status(repo) == ""


def test_checkout_applies_eol_as_git_checkout_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = _new_repo(tmp_path / "r", {"core.autocrlf": "true"})
    (repo / ".gitattributes").write_text("*.sh eol=lf\n*.bat eol=crlf\n*.raw -text\n")
    (repo / "a.txt").write_bytes(b"one\ntwo\n")
    (repo / "b.sh").write_bytes(b"echo\n")
    (repo / "c.bat").write_bytes(b"rem\n")
    (repo / "d.raw").write_bytes(b"x\ny\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "one")
    monkeypatch.chdir(repo)
    (repo / "a.txt").write_bytes(b"one\r\ntwo\r\nthree\r\n")
    with gitxp.start_run() as run:
        pass
    code = gitxp.open().run(run.id).code_commit
    assert code is not None
    gitxp.checkout(run.id, path=str(tmp_path / "ours"))
    subprocess.run(
        ["git", "-c", "core.autocrlf=true", "worktree", "add", "-q", "--detach", "../theirs", code],
        cwd=repo,
        check=True,
        env={**os.environ, **GIT_ENV},
    )
    for name in ("a.txt", "b.sh", "c.bat", "d.raw", ".gitattributes"):
        assert (tmp_path / "ours" / name).read_bytes() == (tmp_path / "theirs" / name).read_bytes()
    assert (tmp_path / "ours" / "a.txt").read_bytes() == b"one\r\ntwo\r\nthree\r\n"


# -- push and the new user's path -----------------------------------------------------------
def _gitxp(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The gitxp CLI as a user runs it: its own process, this checkout's code."""
    root = str(Path(gitxp.__file__).resolve().parent.parent)
    env = {**os.environ, **GIT_ENV, "PYTHONPATH": root, "GITXP_START_DELAY": "0"}
    import sys

    return subprocess.run(
        [sys.executable, "-m", "gitxp", *args], cwd=cwd, env=env, capture_output=True, text=True
    )


def _run_ok(cwd: Path, *cmd: str) -> str:
    """Run a git or gitxp command; it must succeed and print no error or warning."""
    if cmd[0] == "gitxp":
        result = _gitxp(cwd, *cmd[1:])
    else:
        result = subprocess.run(
            list(cmd), cwd=cwd, env={**os.environ, **GIT_ENV}, capture_output=True, text=True
        )
    out = result.stdout + result.stderr
    assert result.returncode == 0, f"{cmd}: {out}"
    lowered = out.lower()
    assert "error" not in lowered and "warning" not in lowered and "fatal" not in lowered, out
    return result.stdout


def _lfs_origin(tmp_path: Path) -> Path:
    """A bare origin with one commit holding an LFS-tracked file (content on its LFS store)."""
    _run_ok(tmp_path, "git", "lfs", "install")  # this test's own HOME, never the machine's
    origin = tmp_path / "origin.git"
    _run_ok(tmp_path, "git", "init", "-q", "--bare", "-b", "main", str(origin))
    seed = _new_repo(tmp_path / "seed")
    _run_ok(seed, "git", "lfs", "track", "*.bin")
    (seed / "model.bin").write_bytes(os.urandom(100_000))
    (seed / "train.py").write_text("print('train')\n")
    _run_ok(seed, "git", "add", ".")
    _run_ok(seed, "git", "commit", "-q", "-m", "seed")
    # git-lfs's standalone transfer serves file:// remotes (a plain path is not an LFS URL)
    _run_ok(seed, "git", "push", "-q", origin.as_uri(), "main")
    return origin


@needs_lfs
@pytest.mark.slow
def test_gitxp_push_says_which_lfs_objects_the_remote_lacks(tmp_path: Path) -> None:
    origin = _lfs_origin(tmp_path)
    work = tmp_path / "work"
    _run_ok(tmp_path, "git", "clone", "-q", origin.as_uri(), str(work))
    content = os.urandom(120_000)
    (work / "model.bin").write_bytes(content)
    _run_ok(work, "gitxp", "run", "-n", "tuned", "--", "true")
    oid = next(iter(_lfs_objects(work) - _lfs_objects_of_bare(origin)))
    pushed = _gitxp(work, "push", "origin")
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert (
        f"warning: 1 LFS object of the pushed snapshots is not on origin: run "
        f"`git lfs push --object-id origin {oid}` (or `git lfs push --all origin`)"
    ) in pushed.stderr
    # the advice works, and a second look finds nothing missing
    _run_ok(work, "git", "lfs", "push", "--object-id", "origin", oid)
    assert oid in _lfs_objects_of_bare(origin)
    from gitxp.git.repository import GitRepo as _GitRepo
    from gitxp.ops.lfs import lfs_push_advice, unpushed_lfs_objects
    from gitxp.ops.sharing import RefResult

    with _GitRepo(str(work)) as g:
        tip = git(work, "rev-parse", "refs/gitxp/runs/" + _only_run(work)).strip()
        check = unpushed_lfs_objects(g, [RefResult("x", "r", "new", "", None, tip)], "origin")
    assert check is not None and check.checked and lfs_push_advice(check) is None


def _lfs_objects_of_bare(bare: Path) -> set[str]:
    root = bare / "lfs" / "objects"
    return {p.name for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def _only_run(repo: Path) -> str:
    refs = git(repo, "for-each-ref", "--format=%(refname:lstrip=3)", "refs/gitxp/runs/").split()
    assert len(refs) == 1, refs
    return refs[0]


@needs_lfs
@pytest.mark.slow
def test_a_new_users_path_through_an_lfs_repository_has_no_error(tmp_path: Path) -> None:
    origin = _lfs_origin(tmp_path)
    work = tmp_path / "work"
    _run_ok(tmp_path, "git", "clone", "-q", origin.as_uri(), str(work))
    content = os.urandom(150_000)
    (work / "model.bin").write_bytes(content)
    _run_ok(work, "gitxp", "run", "-n", "first", "--", "true")
    run_id = _only_run(work)
    _run_ok(work, "gitxp", "remote", "setup")
    _run_ok(work, "gitxp", "hooks", "install")
    (work / "model.bin").write_bytes(os.urandom(1000))  # the next experiment's weights...
    _run_ok(work, "git", "checkout", "-q", "--", "model.bin")  # ...thrown away
    (work / "train.py").write_text("print('train better')\n")
    _run_ok(work, "git", "commit", "-q", "-am", "better training")
    _run_ok(work, "git", "push", "-q")
    elsewhere = tmp_path / "elsewhere"
    _run_ok(tmp_path, "git", "clone", "-q", origin.as_uri(), str(elsewhere))
    _run_ok(elsewhere, "gitxp", "pull")
    _run_ok(elsewhere, "gitxp", "checkout", run_id, "--path", str(tmp_path / "copy"))
    assert (tmp_path / "copy" / "model.bin").read_bytes() == content
    _run_ok(elsewhere, "gitxp", "checkout", run_id, "-b", "first-run")
    assert (elsewhere / "model.bin").read_bytes() == content
    assert _status(elsewhere) == ""
