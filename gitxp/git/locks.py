"""Lock files left in a repository: who may hold them, how old they are, and when
one is provably stale.

git (and dulwich) take a lock by creating `<file>.lock` exclusively and
release it by renaming it over `<file>` or deleting it. A process killed in
between leaves the lock behind, and every later writer of that file fails.
git never deletes such a lock on its own (it tells the user to), except for
`gc.pid`, which `git gc` treats as stale when the process it names is not
running on this host or the file is older than 12 hours. gitxp follows the
same two rules for the locks its maintenance meets:

- `.git/gitxp/gc.pid` (gitxp's twin of git's `gc.pid`) and the ref locks
  gitxp's ref packing takes record their owner (`gitxp <pid> <host>`): such
  a lock is stale when that process is gone from this host;
- any other lock under `refs/`, `packed-refs.lock` and `objects/pack/` is
  stale when nothing has touched it for `STALE_LOCK_SECONDS` (an hour; a
  live holder keeps one of these for milliseconds to seconds).

Only `gitxp gc` removes stale locks, while it holds `gc.pid`, so two
cleaners never race each other.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import GitxpError
from .repository import GitRepo

log = logging.getLogger("gitxp.git.locks")

STALE_LOCK_SECONDS = 3600.0
GC_PID_STALE_SECONDS = 12 * 3600.0  # git's own limit for gc.pid
OWNER_TAG = b"gitxp "


def owner_line() -> bytes:
    """What gitxp writes into a lock it holds but never renames: `gitxp <pid> <host>`."""
    return OWNER_TAG + f"{os.getpid()} {socket.gethostname()}\n".encode()


def packed_refs_header() -> bytes:
    """The first line gitxp writes into `packed-refs.lock`, naming its owner.

    That lock becomes `packed-refs` when renamed, so the owner rides in the
    header's list of traits, which git and dulwich read past (git keeps the
    ones it knows: `peeled`); the next rewrite drops it.
    """
    return (
        b"# pack-refs with: peeled "
        + PACKED_OWNER
        + owner_line()[len(OWNER_TAG) :].replace(b" ", b",")
    )


PACKED_OWNER = b"gitxp-owner="


def owner_gone(data: bytes) -> bool:
    """Whether *data* (a lock's content) names a process of this host that no longer runs."""
    if data.startswith(b"# pack-refs with:") and PACKED_OWNER in data.split(b"\n", 1)[0]:
        token = data.split(b"\n", 1)[0].split(PACKED_OWNER, 1)[1].split(b" ", 1)[0]
        data = OWNER_TAG + token.replace(b",", b" ")
    if not data.startswith(OWNER_TAG):
        return False
    parts = data[len(OWNER_TAG) :].split()
    if len(parts) != 2 or not parts[0].isdigit():
        return False
    if parts[1].decode("utf-8", "replace") != socket.gethostname():
        return False  # another machine's process: cannot tell, fall back to age
    try:
        os.kill(int(parts[0]), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


@dataclass(frozen=True)
class LockFile:
    """A lock file found in the repository."""

    path: str  # relative to the git directory, e.g. "packed-refs.lock"
    age: float  # seconds since it was last written
    stale: bool
    why: str  # what makes it stale, or who may hold it

    def describe(self) -> str:
        return f"{self.path} ({_age(self.age)} old{', ' + self.why if self.why else ''})"


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def inspect_lock(git_dir: str, path: str, now: float | None = None) -> LockFile | None:
    """Describe the lock file at *path* (absolute), or None when it is gone."""
    try:
        st = os.stat(path)
        with open(path, "rb") as f:
            head = f.read(200)
    except FileNotFoundError:
        return None
    age = max(0.0, (time.time() if now is None else now) - st.st_mtime)
    rel = os.path.relpath(path, git_dir)
    if owner_gone(head):
        return LockFile(rel, age, True, "its gitxp process is gone")
    if age > STALE_LOCK_SECONDS:
        return LockFile(rel, age, True, f"untouched for over {_age(STALE_LOCK_SECONDS)}")
    return LockFile(rel, age, False, "")


def _lock_paths(git_dir: str) -> Iterator[str]:
    packed = os.path.join(git_dir, "packed-refs.lock")
    if os.path.exists(packed):
        yield packed
    for base in (os.path.join(git_dir, "refs"), os.path.join(git_dir, "objects", "pack")):
        for directory, _dirs, files in os.walk(base):
            for name in files:
                if name.endswith(".lock"):
                    yield os.path.join(directory, name)


def clear_if_owner_gone(git_dir: str, path: str) -> LockFile | None:
    """Delete the lock at *path* if gitxp took it and its process is gone; return it.

    For a writer that finds a lock in its way: a lock whose owner line names a
    process gone from this host can never be released, so waiting for it is
    pointless. A lock without such a line (git's, or a live process's) is
    left alone, to be waited for. The lock is renamed aside and deleted only
    if it is still the file judged stale, so a lock another writer took
    meanwhile is put back.
    """
    try:
        ino = os.stat(path).st_ino
    except FileNotFoundError:
        return None
    lock = inspect_lock(git_dir, path)
    if lock is None or lock.why != "its gitxp process is gone":
        return None
    aside = f"{path}.stale-{os.getpid()}"
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return None
    if os.stat(aside).st_ino != ino:  # someone cleared it and took the lock: give it back
        with contextlib.suppress(FileExistsError):
            os.link(aside, path)
        os.remove(aside)
        return None
    os.remove(aside)
    log.warning("removed the stale lock %s", lock.describe())
    return lock


def find_locks(git: GitRepo) -> list[LockFile]:
    """Every lock file under `refs/`, `packed-refs.lock` and `objects/pack/`, oldest first."""
    now = time.time()
    found = [lock for p in _lock_paths(git.git_dir) if (lock := inspect_lock(git.git_dir, p, now))]
    return sorted(found, key=lambda lock: -lock.age)


def clear_stale_locks(git: GitRepo) -> list[LockFile]:
    """Delete the provably stale locks (see the module docstring); return them.

    Call only while holding `gc_lock`: no other cleaner then runs, a stale
    lock's owner cannot come back, and no writer can take a lock that exists.
    """
    cleared = []
    for lock in find_locks(git):
        if not lock.stale:
            continue
        path = os.path.join(git.git_dir, lock.path)
        again = inspect_lock(git.git_dir, path)
        if again is None or not again.stale:
            continue
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
            log.warning("removed the stale lock %s", lock.describe())
            cleared.append(lock)
    return cleared


@contextlib.contextmanager
def gc_lock(git: GitRepo) -> Iterator[None]:
    """Hold `.git/gitxp/gc.pid` for one `gitxp gc`, as `git gc` holds its `gc.pid`.

    Raises GitxpError naming the other process when a live `gitxp gc` holds
    it; a file whose process is gone from this host, or older than 12 hours,
    is taken over.
    """
    path = git.gitxp_dir("gc.pid")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    for _ in range(3):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            lock = inspect_lock(git.git_dir, path)
            if lock is None:
                continue
            if not lock.stale and lock.age <= GC_PID_STALE_SECONDS:
                try:
                    with open(path, "rb") as f:
                        owner = f.read(200).decode("utf-8", "replace").split()[1:2]
                except OSError:
                    owner = []
                raise GitxpError(
                    f"another `gitxp gc` (pid {owner[0] if owner else '?'}) is running "
                    f"({lock.describe()}); wait for it, or delete .git/{lock.path} if it is not"
                ) from None
            log.warning("taking over %s", lock.describe())
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
            continue
        with os.fdopen(fd, "wb") as f:
            f.write(owner_line())
        break
    else:
        raise GitxpError("could not take .git/gitxp/gc.pid; retry `gitxp gc`")
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
