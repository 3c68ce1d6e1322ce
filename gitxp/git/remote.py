"""Talking to other repositories: list a remote's refs, push and fetch objects.

This is the only module that drives dulwich's transports (local path,
file://, ssh://, git://, http(s)://). It knows nothing about runs: callers
pass the refs they want moved and decide, from the remote's refs, what each
update means. Every push is one connection and one pack; every fetch is one
negotiation and one pack.

dulwich has no wildcard refspecs and `porcelain.fetch` only writes
`refs/remotes/*`, so refs are expanded here and local refs are set by the
caller through `gitxp.git.refs` (compare-and-swap). Nothing here triggers
auto-gc. Which remote a command means is `gitxp.git.remote_config`; which
objects travel, and how, is `gitxp.git.packing`.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._text import count
from ..errors import GitxpError, RemoteError
from .http_reads import buffer_responses
from .incoming import Incoming
from .packed_refs import create_refs
from .packing import (
    UNPACK_LIMIT,
    add_loose,
    counting,
    generate_unpacked,
    missing_objects,
    pack_for,
)
from .refs import accepted_refs, list_refs, update_ref
from .remote_config import Remote
from .repository import GitRepo
from .types import ObjectID, as_oid
from .wire import check_advertised, mismatch, send_pack_sha256

Progress = Callable[[str], None]

# fetch: never "+": a plain `git fetch` must refuse to overwrite a diverged local run
RUNS_REFSPEC = "refs/gitxp/runs/*:refs/gitxp/runs/*"
# tags: never "+" either; a tag is immutable, so git refuses to replace a local one
TAGS_REFSPEC = "refs/tags/*:refs/tags/*"
# the shipped listing index: derived data, so a plain `git fetch` takes the remote's as it is
INDEX_REFSPEC = "+refs/gitxp/index/*:refs/gitxp/index/*"
Prefixes = str | tuple[str, ...]
# a path fetch of at least this many tips, half of the source's or more, copies its packs whole
BULK_WANTS = 1000


def _prefixes(prefix: Prefixes) -> tuple[str, ...]:
    return (prefix,) if isinstance(prefix, str) else tuple(prefix)


def _accepted(where: str, refs: Mapping[bytes, bytes | None], prefix: Prefixes) -> dict[str, str]:
    """The refs of an advertisement under *prefix* (or any of them) that gitxp accepts."""
    out: dict[str, str] = {}
    for one in _prefixes(prefix):
        out.update(accepted_refs(where, refs, one))
    return out


@dataclass
class PushOutcome:
    """What a push did: the remote's refs before it, and per pushed ref an error or None."""

    remote_refs: dict[str, str]
    sent: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    objects: int = 0


def _client(git: GitRepo, remote: Remote, operation: str) -> tuple[Any, str]:
    from dulwich.client import get_transport_and_path

    # like git: GIT_SSH_COMMAND, then GIT_SSH, then core.sshCommand (read by dulwich)
    ssh = os.environ.get("GIT_SSH_COMMAND") or os.environ.get("GIT_SSH") or None
    try:
        config = git.dulwich.get_config_stack()
        client, path = get_transport_and_path(
            remote.url, config=config, operation=operation, ssh_command=ssh
        )
    except Exception as exc:  # unsupported scheme, malformed URL
        raise RemoteError(remote.display, f"cannot use this URL: {exc}") from None
    buffer_responses(client)  # over http(s): not one urllib3 call per pkt-line
    return client, path


def _scrub(text: str) -> str:
    """*text* with any `scheme://user:secret@` credentials removed."""
    return re.sub(r"(\w+://)[^/@\s]+@", r"\1", text)


def _translate(remote: Remote, exc: BaseException) -> RemoteError:
    """A transport failure as a one-line RemoteError that says what to check."""
    from dulwich.errors import GitProtocolError, HangupException, NotGitRepository

    where = remote.display
    text = _scrub(str(exc)).strip()
    try:
        from dulwich.client import HTTPUnauthorized
    except ImportError:  # pragma: no cover - older dulwich
        HTTPUnauthorized = ()  # type: ignore[assignment,misc]
    if isinstance(exc, HTTPUnauthorized):
        return RemoteError(where, "the server wants credentials; put them in the URL or a helper")
    if isinstance(exc, NotGitRepository):
        return RemoteError(where, "is not a git repository; check the URL or path")
    if isinstance(exc, HangupException):
        detail = text or "the remote hung up"
        return RemoteError(where, f"{detail}; check the URL and that the server is running")
    if isinstance(exc, GitProtocolError):
        return RemoteError(where, f"{text}; retry the command, nothing was half-applied")
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return RemoteError(where, f"cannot connect ({text}); check the host, port and network")
    if isinstance(exc, OSError):
        detail = _scrub(exc.strerror) if exc.strerror else text
        return RemoteError(where, f"{detail}; check the URL or path")
    return RemoteError(where, f"{text or type(exc).__name__}; check the URL, credentials, server")


@contextlib.contextmanager
def _talking_to(remote: Remote, connection: Any) -> Iterator[None]:
    """Close *connection* (a client or a local repository) at the end of the block, and
    turn its failures into one-line RemoteErrors; gitxp's own errors pass through."""
    try:
        yield
    except GitxpError:  # raised by the caller's callbacks: pass through
        raise
    except Exception as exc:
        raise _translate(remote, exc) from None
    finally:
        connection.close()


def _wrap_progress(progress: Progress | None) -> Callable[[bytes], None] | None:
    if progress is None:
        return None

    def report(data: bytes) -> None:
        text = data.decode("utf-8", "replace")
        for piece in re.split(r"(?<=[\r\n])", text):
            if piece.strip():
                progress(piece.rstrip("\r\n") + ("\r" if piece.endswith("\r") else "\n"))

    return report


def ls_remote(git: GitRepo, remote: Remote, prefix: str = "refs/") -> dict[str, str]:
    """The remote's refs under *prefix* ({name: commit id}), in one round trip.

    Over protocol v2 the server is asked for *prefix* alone (`ref-prefix`), so a
    remote holding 100,000 runs does not send them all to list its branches.
    """
    client, path = _client(git, remote, "fetch")
    with _talking_to(remote, client):
        where = path.encode() if isinstance(path, str) else path
        result = client.get_refs(where, ref_prefix=[prefix.encode()])
    return accepted_refs(f"remote {remote.display}", getattr(result, "refs", result), prefix)


def push(
    git: GitRepo,
    remote: Remote,
    decide: Callable[[dict[str, str]], dict[str, str]],
    relevant_haves: Callable[[dict[str, str]], tuple[list[str], list[str]]],
    progress: Progress | None = None,
) -> PushOutcome:
    """Push in one connection and one pack.

    *decide* gets the remote's refs ({name: id}) and returns the refs to set
    there ({name: new id}). *relevant_haves* picks, from the remote's refs,
    the tips worth negotiating against, and commits (present on the remote)
    whose trees' objects count as present too; only objects not reachable
    from those are sent (walking all of a 10,000-run remote's history would
    cost more than the few objects it could save).
    """

    client, path = _client(git, remote, "push")
    from dulwich.client import LocalGitClient

    if isinstance(client, LocalGitClient):
        client.close()
        return _push_local(git, remote, path, decide, relevant_haves, progress)
    sha256 = git.ids.name == "sha256"  # dulwich's own push sends SHA-1 packs only
    if sha256 and not hasattr(client, "_connect"):
        client.close()
        raise RemoteError(
            remote.display,
            "pushing a SHA-256 repository over http(s) is not "
            "supported yet; push over ssh://, git:// or a path",
        )
    wire = _WirePush(git, remote, decide, relevant_haves, progress)
    with _talking_to(remote, client):
        where = path.encode() if isinstance(path, str) else path
        if sha256:
            status = send_pack_sha256(
                client,
                where,
                remote.display,
                wire.update_refs,
                wire.generate_pack_data,
                _wrap_progress(progress),
            )
        else:
            status = client.send_pack(
                where, wire.update_refs, wire.generate_pack_data, progress=_wrap_progress(progress)
            ).ref_status
    for ref, error in (status or {}).items():
        if error:
            name = ref.decode("utf-8", "replace") if isinstance(ref, bytes) else str(ref)
            wire.outcome.errors[name] = str(error)
    return wire.outcome


@dataclass
class _WirePush:
    """The two callbacks of a push over the wire, filling in its `PushOutcome`:
    which refs to set (asked of `decide`) and the pack that carries them."""

    git: GitRepo
    remote: Remote
    decide: Callable[[dict[str, str]], dict[str, str]]
    relevant_haves: Callable[[dict[str, str]], tuple[list[str], list[str]]]
    progress: Progress | None
    outcome: PushOutcome = field(default_factory=lambda: PushOutcome({}, {}))

    def update_refs(self, old: dict[bytes, bytes]) -> dict[bytes, bytes]:
        """The refs to set on the remote, given the refs it advertised."""
        display = self.remote.display
        check_advertised(self.git.ids, display, old, "pushed")
        self.outcome.remote_refs = accepted_refs(f"remote {display}", old)
        self.outcome.sent = dict(self.decide(dict(self.outcome.remote_refs)))
        if self.progress and self.outcome.sent:
            self.progress(f"updating {count(len(self.outcome.sent), 'ref')} on {display}\n")
        return {k.encode(): v.encode() for k, v in self.outcome.sent.items()}

    def generate_pack_data(
        self,
        have: Iterable[ObjectID],
        want: Iterable[ObjectID],
        *,
        ofs_delta: bool = True,
        progress: Any = None,
    ) -> tuple[int, Iterator[Any]]:
        """The pack to send: objects of *want* the remote's relevant tips do not reach."""
        store = self.git.dulwich.object_store
        tips, trees = self.relevant_haves(dict(self.outcome.remote_refs))
        keep = {h.encode() for h in tips}
        haves = {h for h in have if h in keep and h in store}
        known = {as_oid(c) for c in trees if as_oid(c) in store} | haves
        total, records = pack_for(store, haves, known, set(want), ofs_delta, progress)
        self.outcome.objects = total
        return total, counting(records, total, self.progress)


def _open_local(git: GitRepo, remote: Remote, path: str, action: str) -> GitRepo:
    """The repository at *path* on this machine, refused (RemoteError) when it is not
    one or its object format is not *git*'s (nothing would be *action*)."""
    try:
        other = GitRepo(path)
    except GitxpError:
        raise RemoteError(remote.display, "is not a git repository; check the path") from None
    if other.ids is not git.ids:
        other.close()
        raise mismatch(git.ids, remote.display, other.ids.name, action)
    return other


def _push_local(
    git: GitRepo,
    remote: Remote,
    path: str,
    decide: Callable[[dict[str, str]], dict[str, str]],
    relevant_haves: Callable[[dict[str, str]], tuple[list[str], list[str]]],
    progress: Progress | None,
) -> PushOutcome:
    """Push to a repository on this machine (a path or file:// URL, e.g. on a shared disk).

    Same contract as a push over the wire: objects first (one pack), then the
    refs, each a compare-and-swap against the value `decide` saw.
    """
    target = _open_local(git, remote, path, "pushed")
    with _talking_to(remote, target):
        remote_refs = list_refs(target, "refs/")
        outcome = PushOutcome(remote_refs, dict(decide(dict(remote_refs))))
        if outcome.sent:
            _send_local(git, target, outcome, relevant_haves(dict(remote_refs)), progress)
            _set_local_refs(target, outcome)
    return outcome


def _send_local(
    git: GitRepo,
    target: GitRepo,
    outcome: PushOutcome,
    relevant: tuple[list[str], list[str]],
    progress: Progress | None,
) -> None:
    """Copy into *target* the objects of the refs in *outcome* it lacks.

    *relevant* is (tips, commits whose trees are there) as `relevant_haves`
    picked them from the target's refs.
    """
    store = git.dulwich.object_store
    tips, trees = relevant
    haves = {as_oid(t) for t in tips if as_oid(t) in store}
    known = {as_oid(c) for c in trees if as_oid(c) in store} | haves
    wants = {as_oid(sha) for sha in outcome.sent.values()}
    wants = {w for w in wants if w not in target.dulwich.object_store}
    if not wants:
        return
    ids, remote_has = missing_objects(store, haves, known, wants)
    outcome.objects = len(ids)
    if len(ids) < UNPACK_LIMIT:
        # like git's receive.unpackLimit: a few objects are cheaper loose
        # than as a new pack (dulwich re-reads every pack to name one)
        add_loose(target.dulwich.object_store, store, ids)
    else:
        records = generate_unpacked(store, ids, remote_has, True, None)
        target.dulwich.object_store.add_pack_data(len(ids), counting(records, len(ids), progress))


def _set_local_refs(target: GitRepo, outcome: PushOutcome) -> None:
    """Set the refs of *outcome* in *target*, noting each failure in `outcome.errors`.

    Each update is a compare-and-swap against the value `decide` saw. New refs
    are created in one packed-refs rewrite: dulwich's client would fsync each
    ref file, and 1,000 fsyncs on a network disk take longer than the push.
    """
    new = {ref: sha for ref, sha in outcome.sent.items() if ref not in outcome.remote_refs}
    outcome.errors.update(create_refs(target, new))
    for ref, tip in outcome.sent.items():
        if ref in new:
            continue
        try:
            update_ref(target, ref, outcome.remote_refs[ref], tip, "gitxp: push")
        except GitxpError as exc:
            outcome.errors[ref] = str(exc)


def fetch(
    git: GitRepo,
    remote: Remote,
    choose: Callable[[dict[str, str]], list[str]],
    heads: Callable[[dict[str, str]], Iterable[str]],
    prefix: Prefixes,
    progress: Progress | None = None,
    keep: Incoming | None = None,
) -> dict[str, str]:
    """Fetch objects in one negotiation and one pack; return the remote's refs under *prefix*
    (one prefix, or a tuple of them: run refs and tags come in the same negotiation).

    *choose* gets the remote's refs ({name: id}) and returns the commit ids to
    download (ids already present locally are skipped). *heads*, called after
    *choose*, names the local commits to offer as common ground (the local
    tips of the runs being updated, so updates arrive as small packs);
    local branches are always offered. No local ref is touched: the caller
    sets them, then calls `keep.release()` (a new pack stays kept till then).
    """
    keep = keep or Incoming(git)
    client, path = _client(git, remote, "fetch")
    from dulwich.client import LocalGitClient

    if isinstance(client, LocalGitClient):
        client.close()
        return _fetch_local(git, remote, path, choose, heads, prefix, progress, keep)
    wire = _WireFetch(git, remote, choose, heads, prefix, progress)
    wrapped = _wrap_progress(progress)
    with _talking_to(remote, client), contextlib.closing(wire.spool):
        result = client.fetch_pack(
            path.encode() if isinstance(path, str) else path,
            wire.determine_wants,
            wire.walker,
            wire.pack_data,
            progress=wrapped,
            ref_prefix=[p.encode() for p in _prefixes(prefix)],
        )
        theirs = getattr(result, "object_format", None) or "sha1"
        if theirs != git.ids.name:  # a remote with no refs: nothing was received either
            raise mismatch(git.ids, remote.display, theirs, "fetched")
        wire.store_pack(keep, wrapped)
    return wire.seen


class _WireFetch:
    """The callbacks of a fetch over the wire: which commits to want, which local
    commits to offer, and where the received pack is spooled until it is stored."""

    def __init__(
        self,
        git: GitRepo,
        remote: Remote,
        choose: Callable[[dict[str, str]], list[str]],
        heads: Callable[[dict[str, str]], Iterable[str]],
        prefix: Prefixes,
        progress: Progress | None,
    ) -> None:
        self.git, self.remote, self.prefix, self.progress = git, remote, prefix, progress
        self.choose, self.heads = choose, heads
        self.seen: dict[str, str] = {}  # the remote's refs under the prefix
        repo = git.dulwich
        self.store = store = repo.object_store
        # gitxp's own listing: dulwich's re-checks the name of every packed ref, 100,000 runs'
        tips = list_refs(git, "refs/heads/").values()
        branches = [as_oid(sha) for sha in tips if as_oid(sha) in store]
        self.walker = repo.get_graph_walker(heads=branches)
        self.spool = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - closed in `fetch`
            max_size=16 * 1024 * 1024, prefix="incoming-", dir=getattr(store, "path", None)
        )
        self.received = 0
        self.reported = 0.0

    def determine_wants(
        self, refs: Mapping[bytes, bytes], depth: int | None = None
    ) -> list[ObjectID]:
        """The chosen commits not stored here; offers the local heads when there are any."""
        check_advertised(self.git.ids, self.remote.display, refs, "fetched")
        self.seen.update(_accepted(f"remote {self.remote.display}", refs, self.prefix))
        wanted = {as_oid(sha) for sha in self.choose(dict(self.seen))}
        missing = [sha for sha in sorted(wanted) if sha not in self.store]
        if missing:
            offered = (as_oid(h) for h in self.heads(dict(self.seen)))
            self.walker.heads.update(h for h in offered if h in self.store)
        return missing

    def pack_data(self, data: bytes) -> int:
        """Spool a piece of the incoming pack, reporting `Receiving objects` now and then."""
        self.received += len(data)
        now = time.monotonic()
        if self.progress and now - self.reported > 0.2 and self.received > 1 << 20:
            self.progress(f"Receiving objects: {self.received / (1 << 20):.1f} MiB\r")
            self.reported = now
        return self.spool.write(data)

    def store_pack(self, keep: Incoming, wrapped: Callable[[bytes], None] | None) -> None:
        """Index the spooled pack (if anything came) into the store, kept by *keep*."""
        if not self.spool.tell():
            return
        if self.progress and self.received > 1 << 20:
            self.progress(f"Receiving objects: {self.received / (1 << 20):.1f} MiB, done.\n")
        self.spool.seek(0)
        # a thin pack (deltas against objects we have) is completed while indexed
        keep.add_thin_pack(self.spool.read, progress=wrapped)


def _fetch_local(
    git: GitRepo,
    remote: Remote,
    path: str,
    choose: Callable[[dict[str, str]], list[str]],
    heads: Callable[[dict[str, str]], Iterable[str]],
    prefix: Prefixes,
    progress: Progress | None,
    keep: Incoming,
) -> dict[str, str]:
    """Fetch from a repository on this machine: same contract as over the wire.

    dulwich's local client re-reads every ref through its slow path and scans
    every pack for reusable deltas even when nothing is wanted; reading the
    source directly keeps a no-op fetch of 10,000 runs well under a second.
    """
    source = _open_local(git, remote, path, "fetched")
    with _talking_to(remote, source):
        try:
            seen = {k: v for p in _prefixes(prefix) for k, v in list_refs(source, p).items()}
            wanted = {as_oid(sha) for sha in choose(dict(seen))}
            wants = {sha for sha in wanted if sha not in git.dulwich.object_store}
            if wants and _wants_most(source, wants, seen):
                _copy_whole(source, progress, keep)
            elif wants:
                _copy_from_local(git, source, wants, list(heads(dict(seen))), progress, keep)
        except KeyError as exc:  # an object the source's refs reach is not stored there
            missing = exc.args[0] if exc.args else b"?"
            missing = missing.decode("ascii", "replace") if isinstance(missing, bytes) else missing
            raise RemoteError(remote.display, f"object {missing} is missing there") from None
    return seen


def _wants_most(source: GitRepo, wants: set[ObjectID], seen: dict[str, str]) -> bool:
    """Whether a fetch of *wants* from *source* (of *seen* refs) is better served by copying
    every object there: at least BULK_WANTS tips, half of the source's refs or more, and
    no alternates (their objects would not come along)."""
    alternates = os.path.join(source.dulwich.object_store.path, "info", "alternates")
    return (
        len(wants) >= BULK_WANTS and 2 * len(wants) >= len(seen) and not os.path.exists(alternates)
    )


def _copy_whole(source: GitRepo, progress: Progress | None, keep: Incoming) -> None:
    """Copy every object of *source*: each of its packs read as a pack received over the
    wire (re-indexed here, so no id in its `.idx` is trusted), its loose objects as one
    more pack; all kept by *keep*.

    Walking 100,000 runs object by object and writing them again costs minutes
    in Python; re-indexing the packs as they are costs what a fetch over the
    wire costs. What arrives that no fetched ref reaches is dropped by the next
    `git gc`, as after `git clone --local`.
    """
    store: Any = source.dulwich.object_store
    wrapped = _wrap_progress(progress)
    for name in sorted(os.listdir(store.pack_dir)):
        base = os.path.join(store.pack_dir, name[: -len(".pack")])
        if name.endswith(".pack") and os.path.exists(base + ".idx"):
            with open(base + ".pack", "rb") as f:
                keep.add_thin_pack(f.read, progress=wrapped)
    loose = [
        as_oid(prefix + rest)
        for prefix in sorted(os.listdir(store.path))
        if len(prefix) == 2 and os.path.isdir(os.path.join(store.path, prefix))
        for rest in os.listdir(os.path.join(store.path, prefix))
        if source.ids.is_id(prefix + rest)
    ]
    if loose:
        records = generate_unpacked(store, loose, set(), True, None)
        keep.add_pack_data(len(loose), counting(records, len(loose), progress))


def _copy_from_local(
    git: GitRepo,
    source: GitRepo,
    wants: set[ObjectID],
    offered: list[str],
    progress: Progress | None,
    keep: Incoming,
) -> None:
    """Copy the objects of *wants* from *source*, less those the *offered* commits and
    the local branches reach (loose when few, else one pack kept by *keep*)."""
    source_store = source.dulwich.object_store
    offered += list(list_refs(git, "refs/heads/").values())
    haves = {as_oid(h) for h in offered if as_oid(h) in source_store}
    ids, _ = missing_objects(source_store, haves, haves, wants)
    if progress:
        progress(f"Receiving objects: {len(ids)}\n")
    if len(ids) < UNPACK_LIMIT:
        add_loose(git.dulwich.object_store, source_store, ids)
    else:
        records = generate_unpacked(source_store, ids, set(), True, None)
        keep.add_pack_data(len(ids), counting(records, len(ids), progress))
