"""A hostile remote: ref names built to break the puller's repository, and runs that cannot be fetched.

The remote is a real bare repository whose `packed-refs` and `refs/` files
are written by hand (as an attacker with write access to it would), served
as a path, a file:// URL, by `git daemon`, and by a smart-HTTP server that
advertises names no git server would (the newline injection). The victim
pulls with the real `gitxp` CLI; its `main` must not move, `git fsck
--strict` and `git gc` must pass, the good runs must arrive.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import gitxp
from tests.gitutil import fsck, git, run_refs
from tests.servers import git_daemon, git_exec_path

ROOT = Path(gitxp.__file__).resolve().parents[1]  # the gitxp under test


def gitxp_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "gitxp", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def record(path: Path, n: int) -> list[str]:
    ids = []
    for i in range(n):
        with gitxp.start_run(experiment="exp", repo=str(path), params={"i": i}) as r:
            r.log_metric("loss", 1.0 / (i + 1))
            ids.append(r.id)
    return ids


def evil_commit(bare: Path) -> str:
    """A commit with the attacker's file, stored in *bare*."""
    blob = git(bare, "hash-object", "-w", "--stdin", input="attacker's file\n").strip()
    tree = git(bare, "mktree", input=f"100644 blob {blob}\tevil.txt\n").strip()
    return git(bare, "commit-tree", tree, "-m", "evil").strip()


def add_packed(bare: Path, lines: list[str]) -> None:
    with open(bare / "packed-refs", "a", encoding="utf-8", newline="\n") as f:
        if f.tell() == 0:
            f.write("# pack-refs with: peeled fully-peeled sorted \n")
        f.writelines(line + "\n" for line in lines)


def add_loose(bare: Path, name: str, sha: str) -> None:
    path = bare.joinpath(*name.split("/"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(sha + "\n")


GOOD_ID = "01m8t2nrpzxya9w524y43zm2se"  # shape of a run id; never recorded here


def hostile_names(evil: str) -> dict[str, str]:
    """{name: how it is planted}: every way a name can be wrong."""
    return {
        f"refs/gitxp/runs/x\n{evil} refs/heads/main": "loose",  # newline injection
        "refs/gitxp/runs/../../heads/main": "packed",
        "refs/gitxp/runs/a\x1b[31mred": "packed",  # control characters
        "refs/gitxp/runs/a@{1}": "packed",
        f"refs/gitxp/runs/{GOOD_ID}.lock": "packed",
        "refs/gitxp/runs/not-a-run-id": "loose",  # valid for git, not a run id
        f"refs/gitxp/runs/{GOOD_ID}/x": "loose",  # a run id, then more
        "refs/gitxp/runs/" + "a" * 300: "packed",  # over-long component
        "refs/gitxp/runs/" + GOOD_ID.upper(): "loose",
    }


@pytest.fixture
def source(tmp_path: Path) -> tuple[Path, list[str]]:
    """A project with two recorded runs: what the attacker's remote really holds."""
    path = tmp_path / "source"
    git(tmp_path, "init", "-q", "-b", "main", str(path))
    (path / "train.py").write_text("print('hi')\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "code")
    return path, record(path, 2)


def make_remote(base: Path, source: Path) -> Path:
    bare = base / "runs.git"
    git(base, "init", "-q", "--bare", str(bare))
    git(source, "push", "-q", str(bare), "main", "refs/gitxp/*:refs/gitxp/*")
    return bare


def make_victim(tmp_path: Path) -> tuple[Path, str]:
    """A repository with its own `main`, packed (so only packed-refs says where it is)."""
    victim = tmp_path / "victim"
    git(tmp_path, "init", "-q", "-b", "main", str(victim))
    (victim / "mine.txt").write_text("mine\n")
    git(victim, "add", ".")
    git(victim, "commit", "-q", "-m", "mine")
    git(victim, "pack-refs", "--all")
    return victim, git(victim, "rev-parse", "refs/heads/main").strip()


def assert_victim_intact(victim: Path, main: str, good: list[str]) -> None:
    assert git(victim, "rev-parse", "refs/heads/main").strip() == main
    assert git(victim, "status", "--porcelain") == ""
    packed = (victim / ".git" / "packed-refs").read_text().splitlines()
    names = sorted(line.split(" ", 1)[1] for line in packed if not line.startswith(("#", "^")))
    assert names == sorted(["refs/heads/main", *(f"refs/gitxp/runs/{i}" for i in good)])
    assert sorted(run_refs(victim)) == sorted(f"refs/gitxp/runs/{i}" for i in good)
    git(victim, "branch")  # "packed refname is dangerous" would fail these
    fsck(victim)
    git(victim, "gc", "-q")
    fsck(victim)
    listed = gitxp_cli(victim, "log", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    assert all(i in listed.stdout for i in good)


# -- a smart-HTTP server that advertises whatever it likes ----------------------------------
def _pkt(line: bytes) -> bytes:
    return f"{len(line) + 4:04x}".encode() + line


def _hostile_http(base: Path, extra: dict[str, str]) -> type[BaseHTTPRequestHandler]:
    """`git http-backend`, protocol v0, with *extra* {name: sha} added to the advertisement."""
    backend = os.path.join(git_exec_path(), "git-http-backend")

    class Hostile(BaseHTTPRequestHandler):
        def _run(self) -> None:
            path, _, query = self.path.partition("?")
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            env = {
                "PATH": os.environ.get("PATH", ""),
                "GIT_PROJECT_ROOT": str(base),
                "GIT_HTTP_EXPORT_ALL": "1",
                "REQUEST_METHOD": self.command,
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "REMOTE_ADDR": "127.0.0.1",
                "GATEWAY_INTERFACE": "CGI/1.1",
                "SERVER_PROTOCOL": "HTTP/1.1",
            }
            out = subprocess.run([backend], input=body, capture_output=True, env=env).stdout
            head, _, payload = out.partition(b"\r\n\r\n")
            if path.endswith("/info/refs") and payload.endswith(b"0000"):
                lines = b"".join(_pkt(f"{s} {n}\n".encode()) for n, s in extra.items())
                payload = payload[:-4] + lines + b"0000"
            self.send_response(200)
            for line in head.decode("latin-1").splitlines():
                name, _, value = line.partition(":")
                if name and name.lower() not in ("status", "content-length"):
                    self.send_header(name, value.strip())
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = _run
        do_POST = _run

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Hostile


@contextmanager
def hostile_http(base: Path, extra: dict[str, str]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _hostile_http(base, extra))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# -- the tests ---------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("transport", ["path", "file", "http"])
def test_hostile_ref_names_are_refused_and_good_runs_pulled(
    tmp_path: Path, source: tuple[Path, list[str]], transport: str
) -> None:
    src, good = source
    base = tmp_path / "srv"
    base.mkdir()
    bare = make_remote(base, src)
    evil = evil_commit(bare)
    names = hostile_names(evil)
    if transport == "http":
        # the server itself advertises them: git's config lets it serve any wanted id
        git(bare, "config", "uploadpack.allowAnySHA1InWant", "true")
        extra = dict.fromkeys(names, evil)
    else:
        add_packed(bare, [f"{evil} {n}" for n, how in names.items() if how == "packed"])
        for name, how in names.items():
            if how == "loose":
                add_loose(bare, name, evil)
        extra = {}
    victim, main = make_victim(tmp_path)

    with (
        contextmanager(lambda: (yield None))()
        if transport != "http"
        else hostile_http(base, extra) as http
    ):
        url = {"path": str(bare), "file": bare.as_uri()}.get(transport) or f"{http}/runs.git"
        pulled = gitxp_cli(victim, "pull", url, "--format", "json")
        assert pulled.returncode == 0, pulled.stdout + pulled.stderr
        assert_victim_intact(victim, main, good)
        for name in names:
            assert ascii(name)[:60] in pulled.stderr, (name, pulled.stderr)
        assert "Traceback" not in pulled.stderr

        again = gitxp_cli(victim, "pull", url, "--format", "json")
        assert again.returncode == 0 and '"up-to-date": 2' in again.stdout, again.stdout
    assert git(victim, "rev-parse", "refs/heads/main").strip() == main


def test_git_daemon_serving_bad_names_cannot_move_main(
    tmp_path: Path, source: tuple[Path, list[str]]
) -> None:
    """Names git itself still serves (valid for git, not run ids) over git://."""
    src, good = source
    base = tmp_path / "srv"
    base.mkdir()
    bare = make_remote(base, src)
    evil = evil_commit(bare)
    served = ["refs/gitxp/runs/not-a-run-id", "refs/gitxp/runs/" + "b" * 200]
    for name in served:
        git(bare, "update-ref", name, evil)
    victim, main = make_victim(tmp_path)
    with git_daemon(base) as url:
        pulled = gitxp_cli(victim, "pull", f"{url}/runs.git")
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    for name in served:
        assert ascii(name)[:60] in pulled.stderr
    assert_victim_intact(victim, main, good)


def test_bad_local_names_are_ignored_with_one_warning(
    tmp_path: Path, source: tuple[Path, list[str]]
) -> None:
    """Names planted in the local repository itself: listing and pushing keep working."""
    src, good = source
    evil = git(src, "rev-parse", "HEAD").strip()
    dot_git = src / ".git"
    add_packed(
        dot_git, [f"{evil} refs/gitxp/runs/../../heads/x", f"{evil} refs/gitxp/runs/a@{{1}}"]
    )
    add_loose(dot_git, "refs/gitxp/runs/not-a-run-id", evil)
    add_loose(dot_git, "refs/gitxp/trash/nope", evil)
    listed = gitxp_cli(src, "log", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    assert all(i in listed.stdout for i in good) and "not-a-run-id" not in listed.stdout
    lines = listed.stderr.splitlines()
    for name in ("not-a-run-id", "../../heads/x", "a@{1}"):
        assert sum(f"ref 'refs/gitxp/runs/{name}'" in line for line in lines) == 1, lines

    bare = tmp_path / "empty.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    pushed = gitxp_cli(src, "push", str(bare))
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert sorted(run_refs(bare)) == sorted(f"refs/gitxp/runs/{i}" for i in good)
    fsck(bare)
    trash = gitxp_cli(src, "rm", "--list")
    assert trash.returncode == 0 and "Traceback" not in trash.stderr, trash.stderr


def _broken_run(bare: Path, like: str) -> tuple[str, str]:
    """A run on *bare* whose commit names a parent that does not exist anywhere."""
    tree = git(bare, "rev-parse", f"refs/gitxp/runs/{like}^{{tree}}").strip()
    run_id = like[:-2] + ("zz" if not like.endswith("zz") else "yy")
    body = (
        f"tree {tree}\nparent {'1234' * 10}\n"
        "author a <a@example.com> 1700000000 +0000\n"
        "committer a <a@example.com> 1700000000 +0000\n\n"
        f"gitxp: broken\n\nGitxp-Run: {run_id}\n"
    )
    sha = git(bare, "hash-object", "-t", "commit", "-w", "--stdin", input=body).strip()
    git(bare, "update-ref", f"refs/gitxp/runs/{run_id}", sha)
    return run_id, sha


@pytest.mark.parametrize("transport", ["path", "git"])
def test_a_run_with_a_missing_parent_is_skipped_and_the_rest_pulled(
    tmp_path: Path, source: tuple[Path, list[str]], transport: str
) -> None:
    src, good = source
    more = record(src, 3)
    base = tmp_path / "srv"
    base.mkdir()
    bare = make_remote(base, src)
    broken, _ = _broken_run(bare, good[0])
    victim, main = make_victim(tmp_path)
    with contextmanager(lambda: (yield None))() if transport == "path" else git_daemon(base) as url:
        where = str(bare) if transport == "path" else f"{url}/runs.git"
        pulled = gitxp_cli(victim, "pull", where, "--format", "json")
        assert pulled.returncode == 0, pulled.stdout + pulled.stderr
        assert f"skipped run {broken}" in pulled.stderr, pulled.stderr
        assert pulled.stderr.count("warning:") == 1, pulled.stderr
        assert_victim_intact(victim, main, good + more)
        again = gitxp_cli(victim, "pull", where, "--format", "json")
        assert again.returncode == 0 and '"up-to-date": 5' in again.stdout, again.stdout


NAMES = [
    "refs/heads/main",
    "refs/gitxp/runs/" + GOOD_ID,
    "refs/heads/a.b",
    "refs/heads/x.lock",
    "refs/heads/.hidden",
    "refs/heads/a..b",
    "refs/heads/a@{1}",
    "refs/heads/@",
    "refs/heads/a b",
    "refs/heads/a\tb",
    "refs/heads/a\x7fb",
    "refs/heads/a~1",
    "refs/heads/a^",
    "refs/heads/a:b",
    "refs/heads/a?",
    "refs/heads/a*",
    "refs/heads/a[",
    "refs/heads/a\\b",
    "refs/heads//a",
    "refs/heads/a/",
    "refs/heads/a.",
    "refs/heads/é",
]


def test_the_rules_agree_with_git_check_ref_format(tmp_path: Path) -> None:
    from gitxp.format import refs as refnames

    for name in NAMES:
        ok = subprocess.run(["git", "check-ref-format", name], cwd=tmp_path).returncode == 0
        assert (refnames.git_problem(name) is None) == ok, name
    assert refnames.problem("refs/gitxp/runs/not-a-run-id") is not None
    assert refnames.problem("refs/gitxp/trash/" + GOOD_ID) is None
    assert refnames.problem("refs/heads/" + "a" * 300) is not None  # longer than a file name
