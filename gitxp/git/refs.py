"""Run refs: compare-and-swap updates with retry, and fast listing.

Every ref update gitxp makes is a compare-and-swap under git's `<ref>.lock`
protocol. A held lock is retried with jittered backoff (DVC's parallel
workers failed on exactly this), so many processes can record runs at once.

Listing reads loose ref files directly and remembers each file's
(mtime, size, inode): git replaces a ref file by renaming a new one over it,
so an unchanged stat means unchanged content and 10,000 refs are listed
with 10,000 `stat` calls and no reads.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Mapping, MutableMapping

from dulwich.file import FileLocked

from ..errors import RefUpdateError
from ..format.refs import PENDING_PREFIX as PENDING_PREFIX
from ..format.refs import RUNS_PREFIX as RUNS_PREFIX  # re-exported: callers import it from here
from ..format.refs import TRASH_PREFIX as TRASH_PREFIX
from ..format.refs import decode as decode_name
from ..format.refs import problem as name_problem
from ..format.refs import shown
from .hashing import HEX_LENGTHS
from .repository import GitRepo, read_file
from .stamps import SETTLED_NS as SETTLED_NS
from .stamps import file_stamp as file_stamp
from .stamps import loose_unchanged as loose_unchanged
from .stamps import stamp_holds as stamp_holds
from .types import as_oid, as_ref

log = logging.getLogger("gitxp.git.refs")
LOCK_TIMEOUT_SECONDS = 20.0
ZERO = "0" * 40  # "no object" in a SHA-1 repository; `is_zero` knows both formats
_HEX_BYTES = frozenset(b"0123456789abcdef")

StatKey = tuple[int, int, int]


_warned: set[tuple[str, str]] = set()


def warn_ignored(where: str, name: str, reason: str) -> None:
    """Say once per process that ref *name* found in *where* was ignored, and why."""
    key = (where, name)
    if key in _warned:
        return
    _warned.add(key)
    log.warning(
        "warning: ignored the ref %s in %s: %s (gitxp neither reads nor writes such names)",
        shown(name),
        where,
        reason,
    )


# a run ref name as gitxp writes it, and an object id: need no other check (100,000 runs)
_PLAIN_RUN_NAME = re.compile(re.escape(RUNS_PREFIX.encode()) + rb"[0-9a-hjkmnp-tv-z]{26}")
_PLAIN_SHA = re.compile(rb"[0-9a-f]{40}|[0-9a-f]{64}").fullmatch


def accepted_refs(
    where: str, refs: Mapping[bytes, bytes | None], prefix: str = ""
) -> dict[str, str]:
    """The refs under *prefix* of a ref advertisement that gitxp accepts, as {name: commit id}.

    A name that git or gitxp's grammar refuses (`gitxp.format.refs`), or a value
    that is not a commit id, is left out with one warning naming it and
    *where* it came from: a hostile remote's names never reach a ref file, a
    path or a message. Peeled tags (``^{}``) and deletions are skipped.
    """
    out: dict[str, str] = {}
    plain = _PLAIN_RUN_NAME.fullmatch if RUNS_PREFIX.startswith(prefix) else None
    for raw, value in refs.items():
        if plain and value and plain(raw) and _PLAIN_SHA(value) and value.strip(b"0"):
            out[raw.decode()] = value.decode()
            continue
        if value is None or not value.strip(b"0") or raw.endswith(b"^{}"):
            continue
        name = decode_name(raw)
        if name is not None and not name.startswith(prefix):
            continue
        reason = "it is not UTF-8" if name is None else name_problem(name) or sha_problem(value)
        if reason is not None:
            warn_ignored(where, name or raw.decode("utf-8", "backslashreplace"), reason)
            continue
        out[str(name)] = value.decode()
    return out


def _check_name(ref: str) -> None:
    """Raise RefUpdateError when gitxp must not write ref *ref* (see `gitxp.format.refs`)."""
    reason = name_problem(ref)
    if reason is not None:
        raise RefUpdateError(shown(ref), f"not a ref name gitxp writes: {reason}")


def retry_locked(ref: str, action, git_dir: str | None = None):  # type: ignore[no-untyped-def]
    """Run *action*, retrying while a lock is held; with *git_dir*, a lock of *ref* whose
    gitxp owner is gone is cleared (with a notice) instead of waited for."""
    deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
    delay = 0.001
    while True:
        try:
            return action()
        except FileLocked:
            if git_dir is not None:
                from .locks import clear_if_owner_gone

                lock = os.path.join(git_dir, *ref.split("/")) + ".lock"
                if clear_if_owner_gone(git_dir, lock) is not None:
                    continue
            if time.monotonic() > deadline:
                raise RefUpdateError(
                    ref,
                    f"{ref}.lock has been held for {LOCK_TIMEOUT_SECONDS:.0f}s; if no gitxp or "
                    "git process is running, delete the .lock file under .git and retry",
                ) from None
            import random  # only a contended lock pays for it

            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.1)


def read_ref(repo: GitRepo, ref: str) -> str | None:
    """The commit id *ref* points at, or None when it does not exist (or is not a valid name)."""
    if name_problem(ref) is not None:
        return None
    if ref.startswith("refs/gitxp/"):
        # a loose run ref is one line of hex: read it without dulwich's generic path
        try:
            value = read_file(os.path.join(repo.git_dir, ref), 128).strip()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            pass
        else:
            if len(value) == repo.ids.hex_length and _HEX_BYTES.issuperset(value):
                return value.decode()
    try:
        return repo.dulwich.refs[as_ref(ref)].decode()
    except KeyError:
        return None


def update_ref(repo: GitRepo, ref: str, old: str | None, new: str, message: str | None) -> None:
    """Point *ref* at *new* if it still points at *old* (None: must not exist).

    *message* goes into the ref's reflog; None writes no reflog line (a run's
    own commits need none: its first-parent chain is its history).
    Raises RefUpdateError when the ref moved under us, or when *ref* is not
    a name gitxp writes (`gitxp.format.refs`).
    """
    _check_name(ref)
    if message is None:
        if not retry_locked(ref, lambda: _swap_loose(repo, ref, old, new)):
            _moved(repo, ref, old)
        return
    refs = repo.dulwich.refs
    msg = message.encode()
    _reflog_dir(repo, ref)
    # Naming the committer spares dulwich re-reading every git config file to
    # find it for the reflog line; it is the identity gitxp already resolved.
    who = repo.identity().signature()

    def attempt() -> bool:
        if old is None:
            return bool(refs.add_if_new(as_ref(ref), as_oid(new), committer=who, message=msg))
        return bool(
            refs.set_if_equals(as_ref(ref), as_oid(old), as_oid(new), committer=who, message=msg)
        )

    if not retry_locked(ref, attempt):
        _moved(repo, ref, old)


def _moved(repo: GitRepo, ref: str, old: str | None) -> None:
    current = read_ref(repo, ref)
    raise RefUpdateError(
        ref,
        f"it moved to {current or 'nothing'} while gitxp expected {old or 'no ref'}; "
        "another process changed this run at the same time, retry the command",
    )


def _swap_loose(repo: GitRepo, ref: str, old: str | None, new: str) -> bool:
    """Compare-and-swap *ref* under git's `<ref>.lock` protocol, with no reflog line.

    The same protocol dulwich and git follow (create the lock exclusively,
    check the current value under it, write, rename over the ref), minus
    dulwich's unconditional fsync: like git, the ref file is flushed only
    when `core.fsync` asks for references. A killed process cannot leave a
    half-written ref either way (the rename is atomic); the flush only matters
    for a power cut, which would lose the unflushed loose objects too.
    """
    path = os.path.join(repo.git_dir, *ref.split("/"))
    lock = path + ".lock"
    try:
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        raise FileLocked(path, lock) from None
    try:
        try:
            with open(path, "rb") as f:
                current: str | None = f.read().strip().decode("ascii", "replace")
        except FileNotFoundError:
            current = _packed_refs(repo.git_dir, ref).get(ref)
        if current != old:
            os.close(fd)
            os.unlink(lock)
            return False
        os.write(fd, f"{new}\n".encode())
        if fsync_refs(repo):
            os.fsync(fd)
        os.close(fd)
        os.replace(lock, path)
        return True
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(lock)
        raise


def fsync_refs(repo: GitRepo) -> bool:
    """Whether git's `core.fsync` asks for ref files to be flushed (not by default)."""
    value = repo.config_value("core", "fsync")
    if not value:
        return False
    flush = False
    for word in (w.strip() for w in value.split(",")):
        if word == "none":
            flush = False
        elif word in ("reference", "committed", "added", "all"):
            flush = True
        elif word in ("-reference", "-committed", "-added", "-all"):
            flush = False
    return flush


def log_ref_value(repo: GitRepo, ref: str, sha: str, message: str) -> None:
    """Append a reflog line saying *ref* is at *sha*, so `git reflog REF` lists it.

    Run refs get no reflog line per commit; before a forced update replaces
    a run's tip, this keeps the replaced tip listed (and safe from `git gc`).
    """
    path = os.path.join(repo.git_dir, "logs", *ref.split("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    now = time.time()
    offset = time.localtime(now).tm_gmtoff // 60
    tz = f"{'+' if offset >= 0 else '-'}{abs(offset) // 60:02d}{abs(offset) % 60:02d}"
    who = repo.identity().signature().decode()
    line = f"{sha} {sha} {who} {int(now)} {tz}\t{message}\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)


def reflog_time(repo: GitRepo, ref: str) -> int | None:
    """When *ref* last moved, in ms since the epoch, from its reflog (None without one)."""
    path = os.path.join(repo.git_dir, "logs", *ref.split("/"))
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 4096))
            last = f.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
    except OSError:
        return None
    fields = last.split(b"\t", 1)[0].rsplit(b" ", 2)
    return int(fields[1]) * 1000 if len(fields) == 3 and fields[1].isdigit() else None


def _reflog_dir(repo: GitRepo, ref: str) -> None:
    """Create the directory of *ref*'s reflog before dulwich writes a line to it.

    dulwich creates it without `exist_ok`: two threads or processes writing
    the first reflog line under a new directory (`logs/refs/gitxp/...`) race,
    and the loser's ref update fails with FileExistsError.
    """
    os.makedirs(os.path.join(repo.git_dir, "logs", *ref.split("/")[:-1]), exist_ok=True)


def delete_ref(repo: GitRepo, ref: str, old: str) -> None:
    """Delete *ref* if it still points at *old*."""
    _check_name(ref)
    refs = repo.dulwich.refs
    _reflog_dir(repo, ref)

    def attempt() -> bool:
        return bool(refs.remove_if_equals(as_ref(ref), as_oid(old), message=b"gitxp: delete"))

    if not retry_locked(ref, attempt):
        raise RefUpdateError(ref, "it changed while being deleted; retry the command")


def pin_pending(repo: GitRepo, run_id: str, sha: str) -> str:
    """Point `refs/gitxp/pending/<run-id>` at *sha*, a commit a run needs before its
    ref exists (its work-tree snapshot); return the ref.

    While a run waits for its start delay, nothing else reaches the snapshot:
    the pin keeps `git gc`, `git repack -a -d` and `gitxp gc` from dropping it.
    Listing, push and pull only look under refs/gitxp/runs/, so they ignore it.
    """
    ref = PENDING_PREFIX + run_id
    update_ref(repo, ref, None, sha, None)
    return ref


def unpin_pending(repo: GitRepo, run_id: str) -> None:
    """Delete the run's pending ref (its run ref now reaches the snapshot)."""
    ref = PENDING_PREFIX + run_id
    sha = read_ref(repo, ref)
    if sha is None:
        return
    try:
        delete_ref(repo, ref, sha)
    except RefUpdateError as exc:  # harmless: `gitxp gc` removes pins of existing runs
        logging.getLogger("gitxp.git.refs").info("could not remove %s: %s", ref, exc)
    with contextlib.suppress(OSError):
        os.remove(os.path.join(repo.git_dir, "logs", *ref.split("/")))


# A packed run ref as gitxp writes it: an object id, then a run id under RUNS_PREFIX.
# Such a line needs none of the checks below (100,000 of them cost a second).
_PLAIN_RUN_LINE = re.compile(
    rb"(?:[0-9a-f]{40}|[0-9a-f]{64}) "
    + re.escape(RUNS_PREFIX.encode())
    + rb"[0-9a-hjkmnp-tv-z]{26}"
)


def _packed_refs(
    git_dir: str, prefix: str, refused: dict[str, str] | None = None
) -> dict[str, str]:
    """{ref: sha} of the packed refs under *prefix*; invalid names are ignored with a warning
    (and, with *refused*, collected there as {name: reason})."""
    return read_packed_refs(git_dir, prefix, refused)[1]


def read_packed_refs(
    git_dir: str, prefix: str, refused: dict[str, str] | None = None
) -> tuple[list[int] | None, dict[str, str]]:
    """(stamp, {ref: sha}) of the packed refs under *prefix*; the stamp (see `file_stamp`)
    is of the very file read, None when there is no packed-refs file."""
    path = os.path.join(git_dir, "packed-refs")
    found: dict[str, str] = {}
    plain = _PLAIN_RUN_LINE.fullmatch if RUNS_PREFIX.startswith(prefix) else None
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            stamp = [st.st_mtime_ns, st.st_size, st.st_ino, time.time_ns()]
            for line in f:
                line = line.rstrip(b"\n")
                if plain is not None and plain(line):
                    sha, _, name = line.partition(b" ")
                    found[name.decode()] = sha.decode()
                    continue
                if line[:1] in (b"#", b"^"):
                    continue
                sha, _, name = line.partition(b" ")
                ref = name.decode("utf-8", "surrogateescape")
                if not ref.startswith(prefix):
                    continue
                reason = name_problem(ref) or sha_problem(sha)
                if reason is not None:
                    warn_ignored(path, ref, reason)
                    if refused is not None:
                        refused[ref] = reason
                    continue
                found[ref] = sha.decode()
    except FileNotFoundError:
        return None, found
    return stamp, found


def refused_refs(repo: GitRepo, prefix: str = RUNS_PREFIX) -> dict[str, str]:
    """{name: why} of the refs under *prefix* that gitxp refuses to read (`list_refs`
    skips them): names breaking git's rules or gitxp's, values that are no object id.

    For the checks that must name what a listing passes over in silence (the
    validate hook); names are as found, so show them with `refnames.shown`.
    """
    found: dict[str, str] = {}
    top = os.path.join(repo.git_dir, *prefix.rstrip("/").split("/"))
    for directory, _dirs, files in os.walk(top):
        for file in files:
            path = os.path.join(directory, file)
            ref = os.path.relpath(path, repo.git_dir).replace(os.sep, "/")
            if ref.endswith(".lock"):
                continue  # a writer's lock, not a ref
            try:
                value = read_file(path, 128).strip()
            except OSError:
                continue
            reason = name_problem(ref) or sha_problem(value, repo.ids.hex_length)
            if reason is not None:
                found[ref] = reason
    try:
        with open(os.path.join(repo.git_dir, "packed-refs"), "rb") as f:
            for line in f:
                if line[:1] in (b"#", b"^"):
                    continue
                sha, _, name = line.rstrip(b"\n").partition(b" ")
                ref = name.decode("utf-8", "surrogateescape")
                if ref.startswith(prefix):
                    reason = name_problem(ref) or sha_problem(sha)
                    if reason is not None:
                        found.setdefault(ref, reason)
    except FileNotFoundError:
        pass
    return found


def sha_problem(sha: bytes, hex_length: int | None = None) -> str | None:
    """Why *sha* is not an object id (of *hex_length* digits; None: of either format)."""
    length_ok = len(sha) == hex_length if hex_length else len(sha) in HEX_LENGTHS
    if length_ok and _HEX_BYTES.issuperset(sha):
        return None
    return "its value is not a commit id"


def list_refs(
    repo: GitRepo,
    prefix: str = RUNS_PREFIX,
    stat_cache: MutableMapping[str, tuple[StatKey, str]] | None = None,
    dir_stamps: MutableMapping[str, list[int]] | None = None,
) -> dict[str, str]:
    """Map every ref under *prefix* to its commit id, loose refs winning over packed.

    *stat_cache* ({ref: ((mtime_ns, size, ino), sha)}) is consulted and
    updated so unchanged loose refs are not re-read. With *dir_stamps*
    ({directory: [mtime_ns, read at ns]}, each directory relative to the git
    directory, so a repository copied with its cache checks its own) as
    well, a ref directory whose mtime has not moved is not even listed: git
    replaces a ref file by renaming a new one into place, which always
    changes the directory.
    """
    # Loose refs are read before packed-refs: packing (git's or gitxp's) writes
    # packed-refs before it deletes the loose files, so a ref whose loose file
    # vanished during the listing is in the packed-refs read afterwards.
    cache = stat_cache if stat_cache is not None else {}
    if dir_stamps is not None and cache and loose_unchanged(repo.git_dir, dir_stamps):
        found = _packed_refs(repo.git_dir, prefix)
        found.update((ref, hit[1]) for ref, hit in cache.items())
        return found
    loose = scan_loose_refs(repo, prefix, cache, dir_stamps)
    found = _packed_refs(repo.git_dir, prefix)
    found.update(loose)
    return found


def scan_loose_refs(
    repo: GitRepo,
    prefix: str,
    stat_cache: MutableMapping[str, tuple[StatKey, str]],
    dir_stamps: MutableMapping[str, list[int]] | None = None,
) -> dict[str, str]:
    """{ref: sha} of the loose ref files under *prefix*, listed now; *stat_cache* and
    *dir_stamps* are brought up to date (see `list_refs`)."""
    cache = stat_cache
    loose: dict[str, str] = {}
    if dir_stamps is not None:
        dir_stamps.clear()
    base = os.path.join(repo.git_dir, *prefix.rstrip("/").split("/"))
    seen: set[str] = set()
    stack = [(base, prefix)]
    while stack:
        directory, ref_prefix = stack.pop()
        try:
            # stamp before listing: a change made during the listing moves the mtime on
            stamp = [os.stat(directory).st_mtime_ns, time.time_ns()]
            entries = os.scandir(directory)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if dir_stamps is not None:
            dir_stamps[os.path.relpath(directory, repo.git_dir)] = stamp
        with entries:
            for entry in entries:
                name = entry.name
                if name.endswith(".lock"):
                    continue
                ref = ref_prefix + name
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, ref + "/"))
                    continue
                hit = cache.get(ref)
                if hit is None:  # a name seen for the first time: check it once
                    reason = name_problem(ref)
                    if reason is not None:
                        warn_ignored(repo.git_dir, ref, reason)
                        continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # deleted while we listed (packed, or removed)
                key = (st.st_mtime_ns, st.st_size, st.st_ino)
                if hit is not None and tuple(hit[0]) == key:
                    sha = hit[1]
                else:
                    try:
                        with open(entry.path, "rb") as f:
                            text = f.read().strip()
                    except FileNotFoundError:
                        continue  # deleted while we listed
                    if sha_problem(text, repo.ids.hex_length) is not None:
                        continue  # symbolic or garbage: not a run ref
                    sha = text.decode()
                    cache[ref] = (key, sha)
                loose[ref] = sha
                seen.add(ref)
    for ref in [r for r in cache if r not in seen]:
        del cache[ref]
    return loose
