"""Ref updates racing in one repository: threads of one process, each deleting its own ref.

A parallel `gitxp sweep` ends the start delay of several runs at once, and
each run deletes its pending pin (`refs/gitxp/pending/<id>`) with a reflog
line. The first reflog under a new directory must not fail the others.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from gitxp.format.ids import new_run_id
from gitxp.git.refs import delete_ref, pin_pending, read_ref
from gitxp.git.repository import GitRepo
from tests.gitutil import git

THREADS = 8
ROUNDS = 15


def _delete(
    gitrepo: GitRepo, ref: str, head: str, start: threading.Barrier, errors: list[BaseException]
) -> None:
    start.wait()
    try:
        delete_ref(gitrepo, ref, head)
    except BaseException as exc:
        errors.append(exc)


def test_threads_deleting_pins_at_once_all_succeed(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD").strip()
    gitrepo = GitRepo(str(repo))
    logs = repo / ".git" / "logs" / "refs" / "gitxp"
    for _ in range(ROUNDS):
        shutil.rmtree(logs, ignore_errors=True)  # the first reflog line creates it
        refs = [pin_pending(gitrepo, new_run_id(), head) for _ in range(THREADS)]
        start = threading.Barrier(THREADS, timeout=30)
        errors: list[BaseException] = []

        threads = [
            threading.Thread(target=_delete, args=(gitrepo, ref, head, start, errors))
            for ref in refs
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert errors == []
        assert [read_ref(gitrepo, ref) for ref in refs] == [None] * THREADS
    git(repo, "fsck", "--strict")
