"""Annotated tags: reading them with their tagger, time, target and message, and creating one.

The model registry is made of annotated tags (see `gitxp.format.registry`);
this module is all it needs from git. Creating a tag never replaces one: the
ref is written with a compare-and-swap from "no ref", so two processes
racing for one name leave exactly one tag.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from dulwich.objects import Commit, Tag

from ..errors import GitxpError, RefUpdateError
from ..format.refs import problem as name_problem
from ..format.refs import shown
from .objects import STRUCTURE_LIMIT
from .refs import list_refs, read_ref, update_ref
from .repository import GitRepo
from .types import as_oid

log = logging.getLogger("gitxp.git.tags")
TAGS_PREFIX = "refs/tags/"


@dataclass(frozen=True)
class TagInfo:
    """One annotated tag: its name (without ``refs/tags/``), object id, the commit it tags,
    who made it and when (seconds since the epoch), and its message."""

    name: str
    id: str
    target: str
    tagger_name: str
    tagger_email: str
    time: int
    message: str


def _parse_identity(raw: bytes) -> tuple[str, str]:
    text = raw.decode("utf-8", "replace")
    name, _, rest = text.partition("<")
    return name.strip(), rest.split(">", 1)[0].strip()


def read_tag(repo: GitRepo, name: str, sha: str) -> TagInfo | None:
    """The annotated tag *name* whose object is *sha*; None when it is a lightweight tag,
    does not tag a commit, or cannot be read (said once in the log)."""
    try:
        body = repo._read_raw(sha, b"tag", STRUCTURE_LIMIT)
        tag = Tag.from_raw_string(Tag.type_num, body, object_format=repo.ids.format)
        assert isinstance(tag, Tag)
        kind, target = tag.object
        tagger = tag.tagger or b""
        when = int(tag.tag_time or 0)
    except GitxpError as exc:
        if "is a commit" not in str(exc):
            log.warning("warning: ignored the tag %s: %s", shown(name), exc)
        return None
    except Exception as exc:  # a malformed tag object from anywhere: skipped, said
        log.warning("warning: ignored the tag %s: unreadable tag object (%s)", shown(name), exc)
        return None
    if kind is not Commit:
        return None
    who, email = _parse_identity(tagger)
    message = tag.message.decode("utf-8", "replace") if tag.message else ""
    return TagInfo(name, sha, target.decode(), who, email, when, message)


def list_tags(repo: GitRepo, accept: Callable[[str], bool] | None = None) -> list[TagInfo]:
    """The annotated tags of commits whose names *accept* takes (all: None), by name."""
    out = []
    for ref, sha in sorted(list_refs(repo, TAGS_PREFIX).items()):
        name = ref[len(TAGS_PREFIX) :]
        if accept is not None and not accept(name):
            continue
        info = read_tag(repo, name, sha)
        if info is not None:
            out.append(info)
    return out


def tag_problem(name: str) -> str | None:
    """Why git would refuse ``refs/tags/<name>`` (None: it is a valid tag name)."""
    return name_problem(TAGS_PREFIX + name)


def create_tag(repo: GitRepo, name: str, target: str, message: str, when: int | None = None) -> str:
    """Create the annotated tag *name* of commit *target*, by gitxp's identity, at *when*
    (seconds; None: now); return the tag object's id.

    Raises RefUpdateError when git refuses the name or the tag already exists (then
    nothing is written but an unreferenced tag object, which `git gc` drops).
    """
    ref = TAGS_PREFIX + name
    reason = tag_problem(name)
    if reason is not None:
        raise RefUpdateError(shown(ref), f"git refuses this tag name: {reason}")
    if read_ref(repo, ref) is not None:
        raise RefUpdateError(shown(ref), "the tag already exists")
    now = int(time.time() if when is None else when)
    tag = Tag()
    tag.object = (Commit, as_oid(target))
    tag.name = name.encode("utf-8")
    tag.tagger = repo.identity().signature()
    tag.tag_time = now
    tag.tag_timezone = time.localtime(now).tm_gmtoff
    tag.message = message.encode("utf-8")
    repo.add_object(tag)
    sha = repo.ids.object_id(tag)
    try:
        update_ref(repo, ref, None, sha, None)
    except RefUpdateError:
        raise RefUpdateError(
            shown(ref), "the tag was created by another process meanwhile"
        ) from None
    except OSError as exc:  # e.g. refs/tags/a is a tag, so refs/tags/a/b cannot be one
        raise RefUpdateError(shown(ref), _store_problem(repo, name, exc)) from None
    return sha


def _store_problem(repo: GitRepo, name: str, exc: OSError) -> str:
    """Why the ref file of tag *name* could not be written, in git's terms."""
    parts = name.split("/")
    for i in range(1, len(parts)):
        prefix = "/".join(parts[:i])
        if os.path.isfile(os.path.join(repo.git_dir, "refs", "tags", *parts[:i])):
            return f"a tag named {prefix!r} exists, so no tag name can start with '{prefix}/'"
    return f"git cannot store this tag: {exc.strerror}"


__all__ = ["TAGS_PREFIX", "TagInfo", "create_tag", "list_tags", "read_tag", "tag_problem"]
