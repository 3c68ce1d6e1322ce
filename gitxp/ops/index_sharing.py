"""The shipped listing index in `push` and `fetch`/`pull`: which rows travel, and merging.

A push adds the rows of the runs it sends (new or updated there; every run
of the push with `reindex`) to the index ref `refs/gitxp/index/v1`, in the
same connection and pack as the runs, as a compare-and-swap against the
remote's index. When another machine moved the remote's index meanwhile, its
index is fetched, the two are merged (a union keyed by run commit id) and
pushed again, twice at most; if that still fails, one warning line, and the
push of the runs stands: the index only makes a clone's first listing fast.

A fetch takes the remote's index beside the runs. The local index then
becomes the remote's, or, when the local one holds rows the remote's lacks
(an index push that failed), their merge, which the next push sends.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import GitxpError
from ..format.listing_index import INDEX_PREFIX, INDEX_REF
from ..git.incoming import Incoming
from ..git.refs import RUNS_PREFIX, update_ref
from ..git.remote import fetch as fetch_objects
from ..git.remote import push as push_objects
from ..store.shipped_index import build_index, index_tip, needs_merge
from ..store.shipped_index import shards as index_shards

if TYPE_CHECKING:
    from ..git.remote_config import Remote
    from ..git.repository import GitRepo

log = logging.getLogger("gitxp.ops.sharing")
RETRIES = 2
READ_EACH_BELOW = 5_000  # runs: fewer are read one by one, more through the listing cache


def rows_of(git: GitRepo, runs: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """{commit: listing row} of *runs* ({ref: tip}) as read here; CORRUPT runs left out."""
    from ..store.query import RunIndex
    from ..store.record import listing_row

    if len(runs) < READ_EACH_BELOW:
        rows = [listing_row(git, sha, ref[len(RUNS_PREFIX) :])[0] for ref, sha in runs.items()]
    else:
        rows = [r for r in RunIndex(git).rows() if runs.get(r["ref"]) == r["commit"]]
    out = {}
    for row in rows:
        if not row.get("corrupt"):
            out[row["commit"]] = {k: v for k, v in row.items() if k not in ("summary", "ref")}
    return out


class IndexPush:
    """The index update one push carries: `decide` adds the index ref to the push's
    updates, `haves` gives the remote's index to negotiate against, `finish` sets the
    local index or retries when the remote's index could not be built on."""

    def __init__(self, git: GitRepo, local: Mapping[str, str], reindex: bool) -> None:
        self.git = git
        self.local = local
        self.reindex = reindex
        self.rows: dict[str, dict[str, Any]] = {}
        self.sent: str | None = None  # the index commit pushed
        self.theirs: str | None = None  # the remote's index before the push
        self.deferred = False  # the remote's index is not stored here: merged in `finish`

    def decide(
        self, remote_refs: Mapping[str, str], run_status: Mapping[str, str]
    ) -> dict[str, str]:
        """{INDEX_REF: new index commit} holding the rows of the runs this push sends."""
        wanted = ("new", "updated", "up-to-date") if self.reindex else ("new", "updated")
        runs = {ref: sha for ref, sha in self.local.items() if run_status.get(ref) in wanted}
        self.theirs = remote_refs.get(INDEX_REF)
        try:
            self.rows = rows_of(self.git, runs) if runs else {}
            if self.theirs is not None and not self.git.has_object(self.theirs):
                self.deferred = True  # another machine's index: fetched and merged in `finish`
                return {}
            self.sent = self._build(self.theirs)
        except Exception as exc:  # the index only speeds listings up: never fail the push
            log.warning("warning: the listing index was not updated: %s", exc)
            self.sent = None
        return {INDEX_REF: self.sent} if self.sent else {}

    def _build(self, theirs: str | None) -> str | None:
        """The index to push over the remote's *theirs*: on top of it, or, when it is not
        an index this gitxp reads, a new one that replaces it (None: nothing to change)."""
        base = theirs
        try:
            if theirs is not None:
                index_shards(self.git, theirs)
        except Exception as exc:  # a blob, a tree missing, another format: not an index
            log.warning("warning: replacing the remote's listing index: %s", exc)
            base = None
        ours = index_tip(self.git)
        merge = ours if needs_merge(self.git, base, ours) else None
        if not self.rows and merge is None:
            return None
        return build_index(self.git, base, self.rows, merge)

    def haves(self, remote_refs: Mapping[str, str]) -> list[str]:
        """The remote's index commit, when stored here: the objects below it are not sent."""
        sha = remote_refs.get(INDEX_REF)
        return [sha] if sha and self.git.has_object(sha) else []

    def finish(self, target: Remote, errors: Mapping[str, str]) -> None:
        """After the push: set the local index to what the remote now holds, or fetch the
        remote's index, merge and push again; one warning line if that keeps failing."""
        if self.sent and INDEX_REF not in errors:
            self._settle(self.sent)
            return
        if not self.deferred and INDEX_REF not in errors:
            return
        why = errors.get(INDEX_REF, "the remote's index moved")
        for _ in range(RETRIES):
            try:
                theirs = self._fetch_theirs(target)
                new = self._build(theirs)
                if new is None:
                    if theirs is not None:
                        self._settle(theirs)
                    return
                if self._push_alone(target, theirs, new):
                    self._settle(new)
                    return
                why = "the remote's index moved again"
            except Exception as exc:  # the runs are pushed whatever happens to the index
                why = str(exc) if isinstance(exc, GitxpError) else f"{type(exc).__name__}: {exc}"
        log.warning(
            "warning: the runs were pushed, but not the listing index of %s (%s); "
            "a clone lists them from their objects; `gitxp push --reindex` retries",
            target.display,
            why,
        )

    def _fetch_theirs(self, target: Remote) -> str | None:
        keep = Incoming(self.git)
        seen: dict[str, str] = {}
        try:

            def choose(refs: dict[str, str]) -> list[str]:
                seen.update(refs)
                return [refs[INDEX_REF]] if INDEX_REF in refs else []

            def heads(refs: dict[str, str]) -> list[str]:
                return [sha for sha in (index_tip(self.git),) if sha]

            fetch_objects(self.git, target, choose, heads, INDEX_PREFIX, None, keep)
            return seen.get(INDEX_REF)
        finally:
            keep.release()

    def _push_alone(self, target: Remote, theirs: str | None, new: str) -> bool:
        moved: list[bool] = []

        def decide(refs: dict[str, str]) -> dict[str, str]:
            if refs.get(INDEX_REF) != theirs:
                moved.append(True)
                return {}
            return {INDEX_REF: new}

        def relevant(refs: dict[str, str]) -> tuple[list[str], list[str]]:
            return ([theirs], [theirs]) if theirs else ([], [])

        outcome = push_objects(self.git, target, decide, relevant)
        return not moved and INDEX_REF not in outcome.errors

    def _settle(self, sha: str) -> None:
        """Point the local index at *sha* (what the remote holds now); a local index that
        moved meanwhile is left as it is (it is merged on the next push)."""
        ours = index_tip(self.git)
        if ours == sha:
            return
        try:
            update_ref(self.git, INDEX_REF, ours, sha, None)  # derived data: no reflog
        except Exception as exc:
            log.info("local listing index not moved: %s", exc)


class IndexFetch:
    """The index one fetch takes: `choose` wants the remote's index commit, `apply` sets
    the local index to it, or to its merge with local rows the remote lacks."""

    def __init__(self, git: GitRepo) -> None:
        self.git = git
        self.ours = index_tip(git)
        self.theirs: str | None = None

    def choose(self, remote_refs: Mapping[str, str]) -> list[str]:
        """The remote's index commit, when it differs from the local one."""
        self.theirs = remote_refs.get(INDEX_REF)
        return [self.theirs] if self.theirs and self.theirs != self.ours else []

    def heads(self) -> list[str]:
        """The local index commit: common ground, so only its new shards travel."""
        return [self.ours] if self.ours and self.theirs != self.ours else []

    def apply(self, where: str) -> None:
        """Set the local index after the fetch; a remote index that is not one is ignored
        with one warning line (the fetched runs stand)."""
        theirs, ours, git = self.theirs, self.ours, self.git
        if theirs is None or theirs == ours or not git.has_object(theirs):
            return
        try:
            index_shards(git, theirs)
            new = build_index(git, theirs, {}, ours) if needs_merge(git, theirs, ours) else None
            update_ref(git, INDEX_REF, ours, new or theirs, None)
        except Exception as exc:  # the fetched runs stand whatever happens to the index
            log.warning("warning: ignored the listing index of %s: %s", where, exc)
