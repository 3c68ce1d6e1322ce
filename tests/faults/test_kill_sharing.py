"""SIGKILL at random points of `gitxp push` and `gitxp pull`, against a local bare remote and `git daemon`.

After every kill both repositories must pass `git fsck --strict`, every run
ref on the receiving side must point at a commit it pointed at before or at
the sender's one, and running the same command again must complete and
make both sides agree.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import gitxp
from tests.gitutil import fsck, git
from tests.servers import git_daemon

ROOT = Path(gitxp.__file__).resolve().parents[1]  # the gitxp under test
KILLS_PER_TRANSPORT = 8
KILLS: list[int] = []  # the number of processes actually killed, reported at the end


def refs_of(repo: Path) -> dict[str, str]:
    out = git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/gitxp/runs/")
    return dict(line.split() for line in out.splitlines())


def settle(repo: Path) -> None:
    """Wait until *repo*'s run refs stop changing (a server may outlive its killed client)."""
    last = refs_of(repo)
    for _ in range(50):
        time.sleep(0.1)
        now = refs_of(repo)
        if now == last:
            return
        last = now


def start(cwd: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gitxp", *args, "-q"],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def finish(cwd: Path, *args: str) -> None:
    proc = start(cwd, *args)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()


def record(path: Path, n: int, size: int = 2000) -> None:
    rng = random.Random(n)
    for i in range(n):
        with gitxp.start_run(experiment="k", repo=str(path), params={"i": i}) as r:
            r.log_metrics({"loss": rng.random()}, step=0)
            r.log_metric("noise", rng.random(), step=1)
            r.set_tag("blob", "x" * size)


@contextmanager
def remote_url(kind: str, base: Path) -> Iterator[str]:
    if kind == "path":
        yield str(base / "runs.git")
    else:
        with git_daemon(base) as url:
            yield f"{url}/runs.git"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["path", "git"])
def test_sigkill_during_push_and_pull_leaves_both_sides_consistent(
    tmp_path: Path, kind: str
) -> None:
    rng = random.Random(1600 + len(kind))
    source = tmp_path / "source"
    git(tmp_path, "init", "-q", "-b", "main", str(source))
    (source / "train.py").write_text("print(1)\n")
    git(source, "add", ".")
    git(source, "commit", "-q", "-m", "code")
    base = tmp_path / "srv"
    base.mkdir()
    bare = base / "runs.git"
    git(base, "init", "-q", "--bare", str(bare))
    git(source, "push", "-q", str(bare), "main")
    victim = tmp_path / "victim"
    git(tmp_path, "clone", "-q", str(bare), str(victim))
    record(source, 8)

    with remote_url(kind, base) as url:
        began = time.monotonic()
        finish(victim, "pull", url)  # nothing there yet: measures a process's start-up
        budget = max(time.monotonic() - began, 0.3) * 1.6
        kills = 0
        for round_ in range(KILLS_PER_TRANSPORT):
            if round_ % 3 == 0:
                record(source, 3)
            push = round_ % 2 == 0
            cwd, receiver, sender = (source, bare, source) if push else (victim, victim, bare)
            before_receiver, before_sender = refs_of(receiver), refs_of(sender)
            proc = start(cwd, "push" if push else "pull", url)
            time.sleep(rng.uniform(0.0, budget))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait(timeout=60)
            assert proc.stderr is not None
            proc.stderr.close()
            settle(bare)  # git daemon's receive-pack may finish a killed client's push
            for repo in (receiver, sender):
                fsck(repo)
            after = refs_of(receiver)
            for ref, sha in after.items():
                assert sha in (before_receiver.get(ref), before_sender.get(ref)), (ref, sha)
        KILLS.append(kills)
        finish(source, "push", url)
        finish(victim, "pull", url)
    sizes = [len(refs_of(r)) for r in (source, bare, victim)]
    assert refs_of(source) == refs_of(bare), sizes
    assert refs_of(bare) == refs_of(victim), sizes
    for repo in (source, bare, victim):
        fsck(repo)
    print(f"\n{kind}: {kills} of {KILLS_PER_TRANSPORT} processes killed mid-way")
    assert kills >= KILLS_PER_TRANSPORT // 3  # the delays must really hit running processes
