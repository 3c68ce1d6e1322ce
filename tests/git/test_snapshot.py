"""The code a run ran: HEAD when clean, else a snapshot commit of the work tree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import gitxp
from tests.gitutil import fsck, git


def _record(**kwargs: object) -> gitxp.RunRecord:
    with gitxp.start_run(**kwargs) as run:  # type: ignore[arg-type]
        pass
    return gitxp.open().run(run.id)


def _files(repo: Path, commit: str) -> dict[str, str]:
    """{path: mode} of every entry in *commit*'s tree, as git itself lists it."""
    out = {}
    for line in git(repo, "ls-tree", "-r", commit).splitlines():
        meta, path = line.split("\t", 1)
        out[path] = meta.split()[0]
    return out


def test_clean_work_tree_records_head_itself(repo: Path) -> None:
    rec = _record()
    assert rec.code_commit == git(repo, "rev-parse", "HEAD").strip()
    assert rec.meta["dirty"] is False
    # no snapshot commit was created
    # initial + the run's one commit (it ended within its start delay)
    assert git(repo, "rev-list", "--count", "--all").strip() == "2"


def test_snapshot_holds_the_work_tree_as_it_is(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD").strip()
    (repo / "train.py").write_text("print('modified')\n")
    (repo / "README.md").unlink()
    (repo / "src").mkdir()
    (repo / "src" / "model.py").write_text("W = 1\n")
    (repo / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (repo / "run.sh").chmod(0o755)
    os.symlink("train.py", repo / "link.py")
    (repo / "scratch.tmp").write_text("ignored\n")
    (repo / "cache").mkdir()
    (repo / "cache" / "big.bin").write_text("ignored dir\n")
    rec = _record()
    code = rec.code_commit
    assert code and code != head
    assert git(repo, "rev-parse", f"{code}^1").strip() == head
    files = _files(repo, code)
    assert set(files) == {".gitignore", "train.py", "src/model.py", "run.sh", "link.py"}
    assert files["run.sh"] == "100755" and files["link.py"] == "120000"
    assert files["train.py"] == "100644"
    assert git(repo, "show", f"{code}:train.py") == "print('modified')\n"
    assert git(repo, "show", f"{code}:link.py") == "train.py"
    snap = rec.meta["snapshot"]
    assert set(snap["changed"]) == {"README.md", "train.py", "src/model.py", "run.sh", "link.py"}
    excluded = {e["path"]: e["reason"] for e in snap["excluded"]}
    assert excluded == {"scratch.tmp": "ignored", "cache/": "ignored"}
    assert rec.meta["dirty"] is True
    # the work tree and index are exactly as they were
    assert (repo / "train.py").read_text() == "print('modified')\n"
    assert "README.md" in git(repo, "ls-files")
    fsck(repo)


def test_staged_changes_are_part_of_the_snapshot(repo: Path) -> None:
    (repo / "staged.py").write_text("s = 1\n")
    git(repo, "add", "staged.py")
    rec = _record()
    assert "staged.py" in _files(repo, rec.code_commit or "")


def test_secret_looking_and_large_files_are_left_out_and_listed(repo: Path) -> None:
    (repo / ".env").write_text("API_KEY=hunter2\n")
    (repo / "deploy.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    (repo / "id_rsa").write_text("key\n")
    (repo / ".env.example").write_text("API_KEY=\n")
    (repo / "weights.bin").write_bytes(b"\0" * 2048)
    (repo / "ok.py").write_text("ok = 1\n")
    rec = _record(max_snapshot_file_size=1024)
    files = _files(repo, rec.code_commit or "")
    assert "ok.py" in files and ".env.example" in files
    for secret in (".env", "deploy.pem", "id_rsa", "weights.bin"):
        assert secret not in files
    reasons = {e["path"]: e["reason"] for e in rec.meta["snapshot"]["excluded"]}
    assert reasons[".env"] == reasons["deploy.pem"] == reasons["id_rsa"] == "secret-looking file"
    assert reasons["weights.bin"].startswith("larger than 1024 bytes")
    assert "hunter2" not in git(repo, "log", "--all", "-p")


def test_tracked_secret_file_changes_are_not_snapshotted(repo: Path) -> None:
    (repo / "service.key").write_text("old\n")
    git(repo, "add", "service.key")
    git(repo, "commit", "-q", "-m", "add key (oops)")
    (repo / "service.key").write_text("new secret\n")
    (repo / "train.py").write_text("changed\n")
    rec = _record()
    assert git(repo, "show", f"{rec.code_commit}:service.key") == "old\n"


def test_rewrite_with_same_size_and_mtime_is_still_detected(repo: Path) -> None:
    # Only the ctime tells this change apart, as for git itself.
    path = repo / "train.py"
    st = path.stat()
    path.write_text("print('TRAINING')\n")  # same length as the original
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    rec = _record()
    assert git(repo, "show", f"{rec.code_commit}:train.py") == "print('TRAINING')\n"
    assert git(repo, "status", "--porcelain").strip() == "M train.py"


def test_submodule_is_kept_as_gitlink(repo: Path, tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    git(sub, "init", "-q", "-b", "main")
    (sub / "f").write_text("x\n")
    git(sub, "add", ".")
    git(sub, "commit", "-q", "-m", "sub")
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub), "vendor/sub")
    git(repo, "commit", "-q", "-m", "add submodule")
    (repo / "train.py").write_text("dirty\n")
    rec = _record()
    files = _files(repo, rec.code_commit or "")
    assert files["vendor/sub"] == "160000"
    fsck(repo)


def test_snapshot_can_be_turned_off(repo: Path) -> None:
    (repo / "train.py").write_text("dirty\n")
    rec = _record(snapshot=False)
    assert rec.code_commit == git(repo, "rev-parse", "HEAD").strip()


@pytest.mark.parametrize("name", ["notes.txt", "data.csv"])
def test_untracked_files_in_new_directories_are_included(repo: Path, name: str) -> None:
    (repo / "a" / "b").mkdir(parents=True)
    (repo / "a" / "b" / name).write_text("hello\n")
    rec = _record()
    assert f"a/b/{name}" in _files(repo, rec.code_commit or "")


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("config/.env", True),
        (".env.local", True),
        ("certs/Server.PEM", True),
        ("id_ed25519", True),
        ("id_rsa.pub", False),
        ("gcp_credentials_prod.json", True),
        ("service-account-ci.json", True),
        ("secrets.yaml", True),
        ("kubeconfig", True),
        (".env.example", False),
        ("train.py", False),
        ("credentials.py", False),
        ("envoy.yaml", False),
        ("keys/notes.txt", False),
    ],
)
def test_a_file_name_looks_secret_as_its_patterns_say(name: str, secret: bool) -> None:
    from gitxp.git.snapshot import looks_secret

    assert looks_secret(name) is secret
