"""Model registry tags in `push` and `fetch`/`pull`: which tags travel with runs, and how.

A registry action is an annotated tag (`gitxp.format.registry`) on one of a
run's commits. A push or fetch of runs carries the registry tags **of those
runs**: tags whose name is in the registry grammar and whose target is one of
the run's own commits (its tip or an earlier commit of its history, read from
the commit's `Gitxp-Run` trailer), so pushing one run never publishes other
runs' models, and a tag is never sent without the run history it names.

Tags are immutable. A tag is only ever created on the receiving side, never
moved or replaced: when both sides hold a tag of one name with different
contents (two people assigned a stage with the same counter), neither is
changed and the result says ``conflict``. A fetched tag is created only when
its target is a commit of a run this fetch chose and that commit is in the
local history of that run, so a remote cannot make a local tag name anything
but a run's commit that was asked for (docs/security.md).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ..format.ids import is_run_id
from ..format.registry import parse_tag
from ..format.storage import TRAILER_RUN
from ..git.packed_refs import create_refs
from ..git.refs import RUNS_PREFIX, list_refs
from ..git.tags import TAGS_PREFIX, read_tag
from ..store.history import is_ancestor

if TYPE_CHECKING:
    from ..git.repository import GitRepo

log = logging.getLogger("gitxp.ops.sharing")
TAG_STATUSES = ("new", "up-to-date", "conflict", "skipped", "error")
_TRAILER = re.compile(rf"^{TRAILER_RUN}: (\S+)\s*$", re.MULTILINE)
T = TypeVar("T")


@dataclass(frozen=True)
class TagResult:
    """What a push or fetch did with one registry tag (*tag*: its name without
    ``refs/tags/``) of run *run_id*: ``new``, ``up-to-date``, ``conflict`` (the
    other side has a different tag of that name; neither changed), ``skipped``
    (its run did not move) or ``error``. *id* is the tag object sent or received."""

    tag: str
    run_id: str
    status: str
    message: str = ""
    id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "run_id": self.run_id,
            "status": self.status,
            "message": self.message,
            "id": self.id,
        }


class SharingResults(list[T]):
    """A push's or fetch's per-run results (a plain list, as always), plus `tags`: one
    `TagResult` per registry tag of those runs that was compared."""

    def __init__(self, items: Iterable[T] = (), tags: Iterable[TagResult] = ()) -> None:
        super().__init__(items)
        self.tags: list[TagResult] = sorted(tags, key=lambda t: (t.run_id, t.tag))


def run_of_commit(git: GitRepo, sha: str) -> str | None:
    """The run whose own commit *sha* is (its `Gitxp-Run` trailer), or None."""
    try:
        message = git.read_commit(sha).message
    except Exception:  # not stored, not a commit, unreadable: no run's
        return None
    found = _TRAILER.findall(message)
    return found[-1] if found and is_run_id(found[-1]) else None


def _owner(git: GitRepo, name: str, sha: str, runs: Mapping[str, str]) -> str | None:
    """The run of *runs* ({ref: tip}) whose history holds registry tag *name*'s target."""
    info = read_tag(git, name, sha)
    if info is None:
        return None
    run_id = run_of_commit(git, info.target)
    tip = runs.get(RUNS_PREFIX + run_id) if run_id else None
    if run_id is None or tip is None or not is_ancestor(git, info.target, tip, run_id):
        return None
    return run_id


def tags_of_runs(git: GitRepo, runs: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """{tag name: (tag object id, run id)} of the local registry tags of *runs* ({ref: tip})."""
    out: dict[str, tuple[str, str]] = {}
    if not runs:
        return out
    for ref, sha in sorted(list_refs(git, TAGS_PREFIX).items()):
        name = ref[len(TAGS_PREFIX) :]
        if parse_tag(name) is None:
            continue
        run_id = _owner(git, name, sha, runs)
        if run_id is not None:
            out[name] = (sha, run_id)
    return out


def _conflict(name: str, theirs: str, where: str) -> str:
    return (
        f"{where} has a different tag {name} ({theirs[:12]}); tags never change, so neither "
        f"was touched: drop yours (`git tag -d '{name}'`), `gitxp pull`, then redo the action"
    )


class TagPush:
    """The registry tags one push carries: those of the runs it pushes or finds up to date."""

    def __init__(self, git: GitRepo, local_runs: Mapping[str, str]) -> None:
        self.local = tags_of_runs(git, local_runs)
        self.results: dict[str, TagResult] = {}

    def decide(
        self, remote_refs: Mapping[str, str], run_status: Mapping[str, str]
    ) -> dict[str, str]:
        """The tag refs to create on the remote ({ref: tag id}), given each run's status."""
        updates: dict[str, str] = {}
        for name, (sha, run_id) in sorted(self.local.items()):
            theirs = remote_refs.get(TAGS_PREFIX + name)
            status = run_status.get(RUNS_PREFIX + run_id)
            if theirs == sha:
                result = TagResult(name, run_id, "up-to-date", "", sha)
            elif theirs is not None:
                result = TagResult(name, run_id, "conflict", _conflict(name, theirs, "the remote"))
            elif status not in ("new", "updated", "up-to-date"):
                result = TagResult(name, run_id, "skipped", f"its run was {status}, so not it")
            else:
                result = TagResult(name, run_id, "new", "", sha)
                updates[TAGS_PREFIX + name] = sha
            self.results[name] = result
        return updates

    def results_after(self, errors: Mapping[str, str]) -> list[TagResult]:
        """The results, the tags the remote refused (*errors*, by ref) as ``error``."""
        for ref, error in errors.items():
            name = ref[len(TAGS_PREFIX) :]
            old = self.results.get(name)
            if ref.startswith(TAGS_PREFIX) and old is not None:
                why = f"the remote refused it: {error}"
                self.results[name] = TagResult(name, old.run_id, "error", why)
        return list(self.results.values())


class TagFetch:
    """The registry tags one fetch asks for (every registry tag whose name is new here, or
    whose contents differ), and those it creates once the chosen runs are set."""

    def __init__(self, git: GitRepo) -> None:
        self.git = git
        self.local = list_refs(git, TAGS_PREFIX)
        self.wanted: dict[str, str] = {}  # name: tag object id on the remote
        self.same: dict[str, str] = {}  # name: id, held identically on both sides

    def choose(self, remote_refs: Mapping[str, str]) -> list[str]:
        """The remote's registry tag objects to download."""
        tags = sorted(item for item in remote_refs.items() if item[0].startswith(TAGS_PREFIX))
        for ref, sha in tags:  # not the 100,000 run refs beside them
            name = ref[len(TAGS_PREFIX) :]
            if parse_tag(name) is None:
                continue
            if self.local.get(ref) == sha:
                self.same[name] = sha
            else:
                self.wanted[name] = sha
        return list(self.wanted.values())

    def apply(self, runs: Mapping[str, str], where: str) -> list[TagResult]:
        """Create the fetched tags of *runs* ({ref: local tip now}); one result per tag."""
        git = self.git
        results: list[TagResult] = []
        creating: dict[str, str] = {}
        for name, sha in sorted(self.wanted.items()):
            if not git.has_object(sha):
                continue  # not sent (its run's history was broken there): nothing to say
            run_id = _owner(git, name, sha, runs)
            if run_id is None:
                log.debug("not taking the tag %s from %s: not a tag of a fetched run", name, where)
                continue
            ours = self.local.get(TAGS_PREFIX + name)
            if ours is not None:
                message = _conflict(name, sha, where).replace("yours", "the local one")
                log.warning("warning: tag %s: %s", name, message)
                results.append(TagResult(name, run_id, "conflict", message, sha))
                continue
            creating[TAGS_PREFIX + name] = sha
            results.append(TagResult(name, run_id, "new", "", sha))
        failed = create_refs(git, creating)
        results = [
            TagResult(r.tag, r.run_id, "error", failed[TAGS_PREFIX + r.tag], r.id)
            if TAGS_PREFIX + r.tag in failed
            else r
            for r in results
        ]
        for name, sha in self.same.items():
            run_id = _owner(git, name, sha, runs)
            if run_id is not None:
                results.append(TagResult(name, run_id, "up-to-date", "", sha))
        return results


def count_statuses(results: Iterable[Any], statuses: Iterable[str]) -> dict[str, int]:
    """Count *results* (anything with a ``status``) per status: every one of *statuses*
    present, in their order, then any other status met."""
    counts = dict.fromkeys(statuses, 0)
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    return counts


def summarize_tags(results: Iterable[TagResult]) -> dict[str, int]:
    """Count tag results per status (every status present, in a fixed order)."""
    return count_statuses(results, TAG_STATUSES)


__all__ = [
    "TAG_STATUSES",
    "SharingResults",
    "TagFetch",
    "TagPush",
    "TagResult",
    "count_statuses",
    "run_of_commit",
    "summarize_tags",
    "tags_of_runs",
]
