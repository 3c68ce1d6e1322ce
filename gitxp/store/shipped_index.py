"""The shipped listing index: reading rows from `refs/gitxp/index/v1`, writing and merging it.

A fresh clone has no listing cache; without this it would read five objects
per run (100,000 runs: minutes). `shipped_rows` answers, for the runs the
cache has not seen, with the rows `gitxp push` shipped, reading only the
shards those runs fall in. A row is used only for a run whose current tip is
the commit the row names, so a stale index never shows an old version of a run.

Trust: a shipped row passed the schema checks but cannot be proven to match
the run's files without reading them. The listing remembers such rows as
unverified, and each later listing reads the objects of a bounded number of
them (`verify_shipped`, ~0.2 s worth), replacing a row that lied and saying so
in one warning line. `Repo.run()` and `gitxp show` always read the objects.
The layout is `gitxp.format.listing_index`; docs/format.md describes it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..format import listing_index as fmt
from ..format import schema
from ..format.ids import is_run_id
from ..git.refs import RUNS_PREFIX, list_refs, read_ref
from ..git.trees import MODE_FILE
from .listing_cache import UNVERIFIED_FILE
from .listing_cache import VERIFIED_FILE as CURSOR_FILE
from .record import listing_row

if TYPE_CHECKING:
    from ..git.repository import GitRepo

log = logging.getLogger("gitxp.store.shipped_index")
VERIFY_SECONDS = 0.2  # what one listing spends re-reading unverified rows from their objects
MAX_WALK = 10_000  # index commits walked to tell whether one index is an ancestor of another
MODE_TREE = 0o040000


def index_tip(git: GitRepo) -> str | None:
    """The local index commit (`refs/gitxp/index/v1`), or None."""
    try:
        return read_ref(git, fmt.INDEX_REF)
    except Exception:  # packed-refs holds a name dulwich refuses: read it as listings do
        return list_refs(git, fmt.INDEX_PREFIX).get(fmt.INDEX_REF)


def shards(git: GitRepo, commit: str) -> dict[str, str]:
    """{shard file name: blob id} of index commit *commit*; `GitxpError` when it is not an
    index of a format this gitxp reads."""
    tree = git.read_tree(git.commit_tree(commit))
    manifest = tree.get(fmt.MANIFEST_FILE)
    if manifest is None:
        raise schema.Invalid(f"it has no {fmt.MANIFEST_FILE}")
    version = fmt.check_manifest(git.read_blob(manifest[1], limit=4096))
    if version != fmt.INDEX_FORMAT:
        raise schema.Invalid(f"it is in format {version}; this gitxp reads {fmt.INDEX_FORMAT}")
    entry = tree.get(fmt.SHARDS_DIR)
    if entry is None or entry[0] != MODE_TREE:
        return {}
    return {
        name: sha
        for name, (mode, sha) in git.read_tree(entry[1]).items()
        if mode == MODE_FILE and fmt.is_shard_name(name)
    }


def _read_shard(git: GitRepo, name: str, sha: str) -> dict[str, dict[str, Any]]:
    return fmt.decode_shard(git.read_blob(sha, limit=schema.max_json_bytes()), name)


def shipped_rows(git: GitRepo, wanted: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """{commit: row} of the runs of *wanted* ({run id: tip commit}) the local index holds
    at exactly that commit; reads only the shards those runs fall in. A shard that fails
    its checks is skipped, and said so in one warning line."""
    tip = index_tip(git) if wanted else None
    if tip is None:
        return {}
    try:
        files = shards(git, tip)
    except Exception as exc:  # a hostile or damaged index: list from the objects instead
        log.warning("warning: ignored the listing index %s: %s", fmt.INDEX_REF, exc)
        return {}
    by_shard: dict[str, list[tuple[str, str]]] = {}
    for run_id, commit in wanted.items():
        if is_run_id(run_id):
            by_shard.setdefault(fmt.shard_of(run_id), []).append((run_id, commit))
    out: dict[str, dict[str, Any]] = {}
    bad: list[str] = []
    for name, runs in sorted(by_shard.items()):
        sha = files.get(name)
        if sha is None:
            continue
        try:
            rows = _read_shard(git, name, sha)
        except Exception as exc:
            bad.append(f"{name} ({exc})")
            continue
        for run_id, commit in runs:
            row = rows.get(commit)
            if row is not None and row["id"] == run_id:
                out[commit] = row
    if bad:
        log.warning(
            "warning: skipped %d shard(s) of the listing index, read from the runs instead: %s",
            len(bad),
            "; ".join(bad)[:300],
        )
    return out


def rows_for_unseen(git: GitRepo, unseen: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """The shipped rows ({commit: row}) of the runs a listing has not seen ({ref: commit});
    each commit returned joins the queue of rows to check (`Unverified`)."""
    wanted = {ref[len(RUNS_PREFIX) :]: sha for ref, sha in unseen.items()}
    shipped = shipped_rows(git, wanted) if wanted else {}
    Unverified(git).add((sha, run_id) for run_id, sha in wanted.items() if sha in shipped)
    return shipped


class Unverified:
    """The rows a listing took from the shipped index and has not checked yet: a file of
    `<commit> <run id>` lines (`.git/gitxp/shipped-unverified-v1`) and the byte offset
    up to which they were checked (`shipped-verified-v1`). A listing reads only the
    lines it checks and writes a few bytes, never the whole listing cache."""

    def __init__(self, git: GitRepo) -> None:
        self.path = git.gitxp_dir(UNVERIFIED_FILE)
        self.cursor_path = git.gitxp_dir(CURSOR_FILE)

    def pending(self) -> bool:
        """Whether any row waits to be checked."""
        return os.path.exists(self.path)

    def add(self, entries: Iterable[tuple[str, str]]) -> None:
        """Queue (commit, run id) pairs to be checked."""
        text = "".join(f"{sha} {run_id}\n" for sha, run_id in entries)
        if not text:
            return
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with open(self.path, "a", encoding="ascii") as f:
                f.write(text)
        except OSError:
            pass  # a read-only repository: the rows are listed, just never checked

    def take(self, stop: float) -> Iterator[tuple[str, str]]:
        """The queued pairs from the cursor on, until the monotonic clock passes *stop*;
        the cursor moves past each pair taken, and both files go once all were taken."""
        try:
            with open(self.cursor_path, encoding="ascii") as f:
                offset = int(f.read().strip() or 0)
        except (OSError, ValueError):
            offset = 0
        try:
            f = open(self.path, encoding="ascii")  # noqa: SIM115 - closed below
        except OSError:
            return
        with f:
            f.seek(offset)
            while time.monotonic() <= stop:
                line = f.readline()
                if not line.endswith("\n"):
                    break
                sha, _, run_id = line.strip().partition(" ")
                yield sha, run_id
                offset = f.tell()
            done = not f.readline()
        self._save(offset, done)

    def _save(self, offset: int, done: bool) -> None:
        try:
            if done:
                os.remove(self.path)
                os.remove(self.cursor_path)
                return
            tmp = f"{self.cursor_path}.{os.getpid()}.tmp"
            with open(tmp, "w", encoding="ascii") as f:
                f.write(f"{offset}\n")
            os.replace(tmp, self.cursor_path)
        except OSError:
            pass


def verify_shipped(
    git: GitRepo,
    listed: Callable[[str], dict[str, Any] | None],
    budget: float = VERIFY_SECONDS,
) -> dict[str, dict[str, Any]]:
    """Read the objects of queued shipped rows for about *budget* seconds and return the
    rows ({commit: row}) of those whose listed row (*listed*: commit -> the row the
    listing holds, None when it holds none) differs from their run's files, each said
    in one warning line; the listing must take these instead."""
    queue = Unverified(git)
    if not queue.pending():
        return {}
    replaced: dict[str, dict[str, Any]] = {}
    retry = []
    for commit, run_id in queue.take(time.monotonic() + budget):
        shipped = listed(commit)
        if shipped is None:  # the run moved on, was deleted, or the cache was rebuilt
            continue
        real, cacheable = listing_row(git, commit, run_id)
        if not cacheable:
            retry.append((commit, run_id))  # an object is missing here: later
            continue
        real.pop("summary", None)
        if not fmt.same_row(real, shipped):
            replaced[commit] = real
            log.warning(
                "warning: the listing index described run %s (%s) unlike its files; "
                "listed from its files now",
                run_id,
                commit[:12],
            )
    queue.add(retry)
    return replaced


def _descends(git: GitRepo, tip: str, ancestor: str) -> bool:
    """Whether index commit *ancestor* is *tip* or among its first-parent ancestors."""
    sha: str | None = tip
    for _ in range(MAX_WALK):
        if sha is None or not git.has_object(sha):
            return False
        if sha == ancestor:
            return True
        parents = git.read_commit(sha).parents
        sha = parents[0] if parents else None
    return False


def needs_merge(git: GitRepo, base: str | None, other: str | None) -> bool:
    """Whether index *other* holds rows that index *base* may lack (it is not behind it)."""
    return other is not None and other != base and not (base and _descends(git, base, other))


def _usable(git: GitRepo, commit: str | None) -> dict[str, str]:
    if commit is None:
        return {}
    try:
        return shards(git, commit)
    except Exception as exc:
        log.warning("warning: the listing index %s is unreadable (%s); rewriting it", commit, exc)
        return {}


def build_index(
    git: GitRepo,
    base: str | None,
    add: Mapping[str, dict[str, Any]],
    merge: str | None = None,
) -> str | None:
    """Write an index commit on top of *base* holding *add* ({commit: row}) and, with
    *merge*, the rows of that index too (a union keyed by commit id); only the shards
    that change are rewritten. A row added for a run replaces that run's other rows.
    Returns the new commit, or None when it would hold exactly what *base* holds."""
    old = _usable(git, base)
    theirs = _usable(git, merge)
    adding: dict[str, list[dict[str, Any]]] = {}
    for row in add.values():
        adding.setdefault(fmt.shard_of(row["id"]), []).append(row)
    touched = set(adding) | {n for n, sha in theirs.items() if old.get(n) != sha}
    new = dict(old)
    for name in sorted(touched):
        rows = _rows_or_empty(git, name, old.get(name))
        if name in theirs and theirs[name] != old.get(name):
            rows.update(_rows_or_empty(git, name, theirs[name]))
        for row in adding.get(name, ()):
            for commit in [c for c, r in rows.items() if r["id"] == row["id"]]:
                del rows[commit]
        shipped = {c: fmt.encode_row(r) for c, r in rows.items()}
        shipped.update((r["commit"], fmt.encode_row(r)) for r in adding.get(name, ()))
        new[name] = git.write_blob(fmt.encode_shard(shipped.values()))
    if base is not None and new == old:
        return None
    files = {f"{fmt.SHARDS_DIR}/{n}": (MODE_FILE, sha) for n, sha in new.items()}
    files[fmt.MANIFEST_FILE] = (MODE_FILE, git.write_blob(fmt.manifest()))
    tree = git.write_tree(files)
    message = (
        f"gitxp: listing index, {len(add)} row(s) added, {len(touched)} shard(s) written\n\n"
        f"{fmt.TRAILER_INDEX}: {fmt.INDEX_FORMAT}\n"
    )
    return git.write_commit(tree, [base] if base else [], message)


def _rows_or_empty(git: GitRepo, name: str, sha: str | None) -> dict[str, dict[str, Any]]:
    """The rows of one shard; {} (and the shard rewritten without them) when it is bad."""
    if sha is None:
        return {}
    try:
        return _read_shard(git, name, sha)
    except Exception as exc:
        log.warning("warning: dropped the unreadable shard %s of the listing index: %s", name, exc)
        return {}
