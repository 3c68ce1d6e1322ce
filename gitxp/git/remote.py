"""Talking to other repositories: resolve a remote, list its refs, push and fetch objects.

This is the only module that drives dulwich's transports (local path,
file://, ssh://, git://, http(s)://). It knows nothing about runs: callers
pass the refs they want moved and decide, from the remote's refs, what each
update means. Every push is one connection and one pack; every fetch is one
negotiation and one pack.

dulwich has no wildcard refspecs and `porcelain.fetch` only writes
`refs/remotes/*`, so refs are expanded here and local refs are set by the
caller through `gitxp.git.refs` (compare-and-swap). Nothing here triggers
auto-gc.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._text import count
from ..errors import GitxpError, RemoteError
from .incoming import Incoming
from .refs import accepted_refs
from .remote_config import add_refspecs as add_refspecs  # re-exported: it used to live here
from .remote_config import refspecs as refspecs
from .repository import GitRepo, strip_credentials
from .types import ObjectID, as_oid, as_ref
from .wire import check_advertised, mismatch, send_pack_sha256

Progress = Callable[[str], None]

# fetch: never "+": a plain `git fetch` must refuse to overwrite a diverged local run
RUNS_REFSPEC = "refs/gitxp/runs/*:refs/gitxp/runs/*"
UNPACK_LIMIT = 100


@dataclass(frozen=True)
class Remote:
    """Where to push or fetch: a configured remote's name (if any) and its URL."""

    name: str | None
    url: str

    @property
    def display(self) -> str:
        """The remote as shown to people: its name, else its URL without credentials."""
        return self.name or strip_credentials(self.url)


@dataclass
class PushOutcome:
    """What a push did: the remote's refs before it, and per pushed ref an error or None."""

    remote_refs: dict[str, str]
    sent: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    objects: int = 0


def _looks_like_url(text: str) -> bool:
    if "://" in text:
        return True
    # scp-like `user@host:path` (a colon before any slash, not a Windows drive)
    head = text.split("/", 1)[0]
    return ":" in head and not re.match(r"^[A-Za-z]:$", head[:2])


def configured_remotes(git: GitRepo) -> list[str]:
    """The names of the remotes in the repository's git config."""
    config = git.dulwich.get_config()
    names = []
    for section in config.sections():
        if len(section) == 2 and section[0] == b"remote":
            names.append(section[1].decode("utf-8", "replace"))
    return names


def default_remote_name(git: GitRepo, operation: str) -> str:
    """The remote git would use: pushRemote/pushDefault (push), branch upstream, then origin."""
    branch = git.head_branch()
    candidates: list[str | None] = []
    if operation == "push":
        if branch:
            candidates.append(git.config_value("branch", "pushRemote", branch))
        candidates.append(git.config_value("remote", "pushDefault"))
    if branch:
        candidates.append(git.config_value("branch", "remote", branch))
    for name in candidates:
        if name and name != ".":
            return name
    return "origin"


def resolve_remote(git: GitRepo, remote: str | None, operation: str = "fetch") -> Remote:
    """Turn a remote name, URL or path (None: git's default remote) into a `Remote`."""
    explicit = remote is not None
    name = remote if remote is not None else default_remote_name(git, operation)
    if not isinstance(name, str) or not name.strip():
        raise RemoteError(str(name), "a remote is a name, a URL or a path")
    name = name.strip()
    url = None
    if operation == "push":
        url = git.config_value("remote", "pushurl", name)
    url = url or git.config_value("remote", "url", name)
    if url is not None:
        if not _looks_like_url(url) and not os.path.isabs(url):
            url = os.path.normpath(os.path.join(git.root, url))  # git resolves from the top
        return Remote(name, url)
    if _looks_like_url(name):
        return Remote(None, name)
    if explicit and os.path.exists(name):
        return Remote(None, os.path.abspath(name))
    known = configured_remotes(git)
    if not explicit:
        hint = f" (configured: {', '.join(known)})" if known else ""
        raise RemoteError(
            name,
            f"no remote given and no remote {name!r} is configured{hint}; "
            "name one (`gitxp push REMOTE`) or add it with `git remote add origin URL`",
        )
    hint = f"configured remotes: {', '.join(known)}" if known else "no remote is configured"
    raise RemoteError(name, f"not a configured remote, a URL or an existing path ({hint})")


def _client(git: GitRepo, remote: Remote, operation: str) -> tuple[Any, str]:
    from dulwich.client import get_transport_and_path

    # like git: GIT_SSH_COMMAND, then GIT_SSH, then core.sshCommand (read by dulwich)
    ssh = os.environ.get("GIT_SSH_COMMAND") or os.environ.get("GIT_SSH") or None
    try:
        config = git.dulwich.get_config_stack()
        return get_transport_and_path(
            remote.url, config=config, operation=operation, ssh_command=ssh
        )
    except Exception as exc:  # unsupported scheme, malformed URL
        raise RemoteError(remote.display, f"cannot use this URL: {exc}") from None


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
    """The remote's refs under *prefix* ({name: commit id}), in one round trip."""
    client, path = _client(git, remote, "fetch")
    try:
        result = client.get_refs(path.encode() if isinstance(path, str) else path)
    except GitxpError:  # raised by the caller's callbacks: pass through
        raise
    except Exception as exc:
        raise _translate(remote, exc) from None
    finally:
        client.close()
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
    store = git.dulwich.object_store
    outcome = PushOutcome({}, {})
    sha256 = git.ids.name == "sha256"  # dulwich's own push sends SHA-1 packs only
    if sha256 and not hasattr(client, "_connect"):
        client.close()
        raise RemoteError(
            remote.display,
            "pushing a SHA-256 repository over http(s) is not "
            "supported yet; push over ssh://, git:// or a path",
        )

    def update_refs(old: dict[bytes, bytes]) -> dict[bytes, bytes]:
        check_advertised(git.ids, remote.display, old, "pushed")
        outcome.remote_refs = accepted_refs(f"remote {remote.display}", old)
        outcome.sent = dict(decide(dict(outcome.remote_refs)))
        if progress and outcome.sent:
            progress(f"updating {count(len(outcome.sent), 'ref')} on {remote.display}\n")
        return {k.encode(): v.encode() for k, v in outcome.sent.items()}

    def generate_pack_data(
        have: Iterable[ObjectID],
        want: Iterable[ObjectID],
        *,
        ofs_delta: bool = True,
        progress: Any = None,
    ) -> tuple[int, Iterator[Any]]:
        tips, trees = relevant_haves(dict(outcome.remote_refs))
        keep = {h.encode() for h in tips}
        haves = {h for h in have if h in keep and h in store}
        known = {as_oid(c) for c in trees if as_oid(c) in store} | haves
        count, records = _pack_for(store, haves, known, set(want), ofs_delta, progress)
        outcome.objects = count
        return count, _counting(records, count, report)

    report = progress

    try:
        where = path.encode() if isinstance(path, str) else path
        if sha256:
            status = send_pack_sha256(
                client,
                where,
                remote.display,
                update_refs,
                generate_pack_data,
                _wrap_progress(progress),
            )
        else:
            status = client.send_pack(
                where, update_refs, generate_pack_data, progress=_wrap_progress(progress)
            ).ref_status
    except GitxpError:  # raised by the caller's callbacks: pass through
        raise
    except Exception as exc:
        raise _translate(remote, exc) from None
    finally:
        client.close()
    for ref, error in (status or {}).items():
        if error:
            name = ref.decode("utf-8", "replace") if isinstance(ref, bytes) else str(ref)
            outcome.errors[name] = str(error)
    return outcome


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
    refs, each a compare-and-swap against the value `decide` saw. New refs
    are created in one packed-refs rewrite: dulwich's client would fsync each
    ref file, and 1,000 fsyncs on a network disk take longer than the push.
    """
    from .refs import create_refs, list_refs, update_ref

    try:
        target = GitRepo(path)
    except GitxpError:
        raise RemoteError(remote.display, "is not a git repository; check the path") from None
    try:
        if target.ids is not git.ids:
            raise mismatch(git.ids, remote.display, target.ids.name, "pushed")
        store = git.dulwich.object_store
        remote_refs = list_refs(target, "refs/")
        outcome = PushOutcome(remote_refs, dict(decide(dict(remote_refs))))
        if not outcome.sent:
            return outcome
        tips, trees = relevant_haves(dict(remote_refs))
        haves = {as_oid(t) for t in tips if as_oid(t) in store}
        known = {as_oid(c) for c in trees if as_oid(c) in store} | haves
        wants = {as_oid(sha) for sha in outcome.sent.values()}
        wants = {w for w in wants if w not in target.dulwich.object_store}
        if wants:
            ids, remote_has = _missing(store, haves, known, wants)
            outcome.objects = len(ids)
            if len(ids) < UNPACK_LIMIT:
                # like git's receive.unpackLimit: a few objects are cheaper loose
                # than as a new pack (dulwich re-reads every pack to name one)
                _add_loose(target.dulwich.object_store, store, ids)
            else:
                records = generate_unpacked(store, ids, remote_has, True, None)
                target.dulwich.object_store.add_pack_data(
                    len(ids), _counting(records, len(ids), progress)
                )
        new = {ref: sha for ref, sha in outcome.sent.items() if ref not in remote_refs}
        outcome.errors.update(create_refs(target, new))
        for ref, tip in outcome.sent.items():
            if ref in new:
                continue
            try:
                update_ref(target, ref, remote_refs[ref], tip, "gitxp: push")
            except GitxpError as exc:
                outcome.errors[ref] = str(exc)
        return outcome
    except GitxpError:
        raise
    except Exception as exc:
        raise _translate(remote, exc) from None
    finally:
        target.close()


def _missing(
    store: Any, haves: set[ObjectID], known: set[ObjectID], wants: set[ObjectID]
) -> tuple[list[ObjectID], set[ObjectID]]:
    """The ids of objects reachable from *wants* but not from *haves*, and the
    objects known to be on the other side (usable as delta bases).

    Like dulwich's own negotiation, plus one thing it lacks: every object in
    the trees of the *known* commits counts as present, so a blob shared
    between runs (the same env.json, the same small artifact) is not sent
    again with each new run.
    """
    from dulwich.object_store import MissingObjectFinder, iter_tree_contents
    from dulwich.objects import Commit

    finder = MissingObjectFinder(store, haves=haves, wants=wants)
    for sha in known:
        commit = store[sha]
        if isinstance(commit, Commit) and commit.tree not in finder.sha_done:
            finder.sha_done.add(commit.tree)
            for entry in iter_tree_contents(store, commit.tree, include_trees=True):
                finder.sha_done.add(entry.sha)
    ids = [sha for sha, _ in finder]
    return ids, finder.get_remote_has()


def _add_loose(dest: Any, source: Any, ids: list[ObjectID]) -> None:
    """Copy objects *ids* from *source* to *dest* as loose objects, each after those it names.

    A receiver takes a present commit to mean its tree and parents are
    present too: so a process killed half-way must never leave a commit
    without them. (`_missing` lists a commit before its tree, a tree before
    its entries, and commits in no particular order.)
    """
    objects = [source[sha] for sha in reversed(ids)]
    commits = {obj.id: obj for obj in objects if obj.type_name == b"commit"}
    for obj in objects:
        if obj.id not in commits:
            dest.add_object(obj)
    done: set[bytes] = set()
    for start in commits:  # parents first (a run's history is a chain: no deep recursion)
        stack = [start]
        while stack:
            sha = stack[-1]
            pending = [p for p in commits[sha].parents if p in commits and p not in done]
            if sha in done or not pending:
                stack.pop()
                if sha not in done:
                    done.add(sha)
                    dest.add_object(commits[sha])
            else:
                stack.extend(pending)


def generate_unpacked(
    store: Any, ids: list[ObjectID], other_haves: set[ObjectID], ofs_delta: bool, progress: Any
) -> Iterator[Any]:
    """Pack records for *ids*, without delta reuse.

    Finding reusable deltas decompresses every object of every pack the
    objects live in (seconds in a 10,000-run repository), while run objects
    are small, new and seldom deltas of anything.
    """
    from dulwich.pack import generate_unpacked_objects

    return generate_unpacked_objects(
        store,
        [(sha, None) for sha in ids],
        reuse_deltas=False,
        progress=progress,
        ofs_delta=ofs_delta,
        other_haves=other_haves,
    )


def _pack_for(
    store: Any,
    haves: set[ObjectID],
    known: set[ObjectID],
    wants: set[ObjectID],
    ofs_delta: bool,
    progress: Any,
) -> tuple[int, Iterator[Any]]:
    """The objects reachable from *wants* but not from *haves*, as pack records."""
    ids, remote_has = _missing(store, haves, known, wants)
    return len(ids), generate_unpacked(store, ids, remote_has, ofs_delta, progress)


def _counting(records: Iterable[Any], total: int, progress: Progress | None) -> Iterator[Any]:
    """Pass pack records through, reporting `Writing objects: n/total` now and then."""
    if progress is None or total < 200:
        yield from records
        return
    last = 0.0
    done = 0
    for done, record in enumerate(records, 1):
        now = time.monotonic()
        if now - last > 0.2:
            progress(f"Writing objects: {100 * done // total}% ({done}/{total})\r")
            last = now
        yield record
    progress(f"Writing objects: 100% ({total}/{total}), done.\n")


def fetch(
    git: GitRepo,
    remote: Remote,
    choose: Callable[[dict[str, str]], list[str]],
    heads: Callable[[dict[str, str]], Iterable[str]],
    prefix: str,
    progress: Progress | None = None,
    keep: Incoming | None = None,
) -> dict[str, str]:
    """Fetch objects in one negotiation and one pack; return the remote's refs under *prefix*.

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
    repo = git.dulwich
    store = repo.object_store
    seen: dict[str, str] = {}

    def determine_wants(refs: Mapping[bytes, bytes], depth: int | None = None) -> list[ObjectID]:
        check_advertised(git.ids, remote.display, refs, "fetched")
        seen.update(accepted_refs(f"remote {remote.display}", refs, prefix))
        wanted = {as_oid(sha) for sha in choose(dict(seen))}
        missing = [sha for sha in sorted(wanted) if sha not in store]
        if missing:
            walker.heads.update(as_oid(h) for h in heads(dict(seen)) if as_oid(h) in store)
        return missing

    branches = [sha for sha in repo.refs.as_dict(as_ref("refs/heads")).values() if sha in store]
    walker = repo.get_graph_walker(heads=branches)
    spool = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - closed in the finally below
        max_size=16 * 1024 * 1024, prefix="incoming-", dir=getattr(store, "path", None)
    )
    received = [0, 0.0]

    def pack_data(data: bytes) -> int:
        received[0] += len(data)
        now = time.monotonic()
        if progress and now - received[1] > 0.2 and received[0] > 1 << 20:
            progress(f"Receiving objects: {received[0] / (1 << 20):.1f} MiB\r")
            received[1] = now
        return spool.write(data)

    wrapped = _wrap_progress(progress)
    try:
        result = client.fetch_pack(
            path.encode() if isinstance(path, str) else path,
            determine_wants,
            walker,
            pack_data,
            progress=wrapped,
            ref_prefix=[prefix.encode()],
        )
        theirs = getattr(result, "object_format", None) or "sha1"
        if theirs != git.ids.name:  # a remote with no refs: nothing was received either
            raise mismatch(git.ids, remote.display, theirs, "fetched")
        if spool.tell():
            if progress and received[0] > 1 << 20:
                progress(f"Receiving objects: {received[0] / (1 << 20):.1f} MiB, done.\n")
            spool.seek(0)
            # a thin pack (deltas against objects we have) is completed while indexed
            keep.add_thin_pack(spool.read, progress=wrapped)
    except GitxpError:  # raised by the caller's callbacks: pass through
        raise
    except Exception as exc:
        raise _translate(remote, exc) from None
    finally:
        spool.close()
        client.close()
    return seen


def _fetch_local(
    git: GitRepo,
    remote: Remote,
    path: str,
    choose: Callable[[dict[str, str]], list[str]],
    heads: Callable[[dict[str, str]], Iterable[str]],
    prefix: str,
    progress: Progress | None,
    keep: Incoming,
) -> dict[str, str]:
    """Fetch from a repository on this machine: same contract as over the wire.

    dulwich's local client re-reads every ref through its slow path and scans
    every pack for reusable deltas even when nothing is wanted; reading the
    source directly keeps a no-op fetch of 10,000 runs well under a second.
    """
    from .refs import list_refs

    try:
        source = GitRepo(path)
    except GitxpError:
        raise RemoteError(remote.display, "is not a git repository; check the path") from None
    try:
        if source.ids is not git.ids:
            raise mismatch(git.ids, remote.display, source.ids.name, "fetched")
        seen = list_refs(source, prefix)
        store = git.dulwich.object_store
        wanted = {as_oid(sha) for sha in choose(dict(seen))}
        wants = {sha for sha in wanted if sha not in store}
        if not wants:
            return seen
        source_store = source.dulwich.object_store
        offered = list(heads(dict(seen)))
        offered += [sha.decode() for sha in git.dulwich.refs.as_dict(as_ref("refs/heads")).values()]
        haves = {as_oid(h) for h in offered if as_oid(h) in source_store}
        ids, _ = _missing(source_store, haves, haves, wants)
        if progress:
            progress(f"Receiving objects: {len(ids)}\n")
        if len(ids) < UNPACK_LIMIT:
            _add_loose(store, source_store, ids)
        else:
            records = generate_unpacked(source_store, ids, set(), True, None)
            keep.add_pack_data(len(ids), _counting(records, len(ids), progress))
        return seen
    except GitxpError:
        raise
    except KeyError as exc:  # an object the source's refs reach is not stored there
        missing = exc.args[0] if exc.args else b"?"
        missing = missing.decode("ascii", "replace") if isinstance(missing, bytes) else missing
        raise RemoteError(remote.display, f"object {missing} is missing there") from None
    except Exception as exc:
        raise _translate(remote, exc) from None
    finally:
        source.close()
