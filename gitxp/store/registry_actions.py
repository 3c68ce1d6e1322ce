"""Writing the model registry: register, assign, unassign, deregister, deprecate.

Each action checks everything first and then writes one annotated tag, named
as GTO names it (`gitxp.format.registry`), so a refused action writes nothing.
A tag's tagger time is later than every earlier tag of its model (at most a
second ahead of the clock when actions come in a burst): GTO orders a model's
events by that time alone, so gitxp and `gto` always agree on the order.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from ..errors import InvalidValueError, RefUpdateError, RegistryError
from ..format import registry as fmt
from ..git.refs import read_ref
from ..git.tags import TAGS_PREFIX, create_tag, read_tag
from .registry import Model, ModelVersion, find_model, read_models

if TYPE_CHECKING:
    from ..git.repository import GitRepo

log = logging.getLogger("gitxp.store.registry")
_UNSAFE_TEXT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
ATTEMPTS = 8
MAX_AHEAD = 86_400  # seconds: how far ahead of the clock a model's last event may pull a new one
T = TypeVar("T")


class _Taken(RegistryError):
    """The tag an action chose was created by another process meanwhile."""


def _retry(action: Callable[[], T]) -> T:
    """Run *action*, again (on the new state) while another process takes the tag it chose:
    parallel registrations of one model each get their own version."""
    for attempt in range(ATTEMPTS):
        try:
            return action()
        except _Taken:
            if attempt == ATTEMPTS - 1:
                raise
            time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


def _model_or_none(git: GitRepo, name: str) -> Model | None:
    return read_models(git, name).get(name)


def _write(
    git: GitRepo,
    model: Model | None,
    tag: str,
    target: str,
    message: str,
    trailers: dict[str, str],
) -> str:
    """Create registry tag *tag* at *target*; RegistryError when git refuses it."""
    if _UNSAFE_TEXT.search(message):
        raise InvalidValueError("message", "it contains control characters; give plain text")
    now = int(time.time())
    last = max((e.time for e in model.events), default=0) if model else 0
    # after the model's last event, unless that is dated absurdly far ahead (a bad clock)
    when = last + 1 if now <= last < now + MAX_AHEAD else now
    name = model.name if model else fmt.parse_tag(tag).model  # type: ignore[union-attr]
    try:
        create_tag(git, tag, target, fmt.tag_message(message, trailers), when)
    except RefUpdateError as exc:
        there = read_ref(git, TAGS_PREFIX + tag)
        if there is not None and read_tag(git, tag, there) is not None:
            raise _Taken(
                name, f"the tag {tag!r} was created by another process meanwhile"
            ) from None
        if there is not None:
            raise RegistryError(
                name,
                f"a tag {tag!r} exists but is no annotated tag, so neither gitxp nor GTO reads "
                f"it; delete it (`git tag -d '{tag}'`) or choose another version",
            ) from None
        raise RegistryError(name, f"cannot create the tag {tag!r}: {exc.reason}") from None
    log.info("created the tag %s", tag)
    return tag


def _check_path(path: str | None) -> str | None:
    if path is None:
        return None
    text = path.strip() if isinstance(path, str) else ""
    parts = text.strip("/").split("/")
    if (
        not text
        or text.startswith("/")
        or ".." in parts
        or _UNSAFE_TEXT.search(text)
        or ("\n" in text)
    ):
        raise InvalidValueError(
            "path", f"{path!r}: give the model's artifact path inside the run, e.g. model/"
        )
    return text


def _register(
    git: GitRepo,
    name: str,
    run_id: str,
    commit: str,
    version: str | None = None,
    bump: str | None = None,
    path: str | None = None,
    message: str | None = None,
) -> ModelVersion:
    """Register *commit* of run *run_id* as a new version of model *name*.

    Without *version*, the next one: v0.0.1 first, then the greatest version ever
    registered with *bump* (major, minor, patch; default patch) raised.
    """
    fmt.check_model_name(name)
    if version is not None and bump is not None:
        raise InvalidValueError("version", "give a version or a bump, not both")
    if version is not None:
        fmt.check_version(version)  # a malformed version is named before any conflict
    path = _check_path(path)
    model = _model_or_none(git, name)
    versions = model.versions if model else []
    counter = None
    held = next((v for v in versions if v.registered and v.commit == commit), None)
    if held is not None:
        if held.active or bump is not None or version not in (None, held.version):
            state = "" if held.active else " (deregistered: it can be registered again as that)"
            raise RegistryError(
                name,
                f"run {run_id} (commit {commit[:12]}) is already {held.reference}{state}; "
                "a commit holds one version of a model",
            )
        # registered again, as GTO's --force does it: the same version, a numbered tag
        version, counter = held.version, (model.counter if model else 0) + 1
    elif version is not None:
        fmt.check_version(version)
        if any(v.version == version for v in versions):
            raise RegistryError(
                name, f"{name}@{version} already exists; give another --version or use --bump"
            )
    else:
        greatest = next((v.version for v in versions if v.registered), None)
        version = fmt.bump(greatest, bump)
    assert version is not None
    first = message or fmt.default_message(fmt.REGISTER, name, version, None)
    tag = fmt.tag_name(fmt.REGISTER, name, version, counter=counter)
    trailers = {fmt.TRAILER_RUN: run_id, fmt.TRAILER_PATH: path or ""}
    _write(git, model, tag, commit, first, trailers)
    return find_model(git, name).version(version)


def _stage_version(model: Model, version: str | None, stage: str) -> ModelVersion:
    """The version an unassign acts on: *version*, or the one holding *stage*."""
    if version is None:
        return model.stage(stage)
    v = model.version(version)
    if stage not in v.stages:
        holder = model.stages.get(stage)
        now = f"; {stage} is at {holder.reference}" if holder else ""
        raise RegistryError(model.name, f"{v.reference} is not in stage {stage!r}{now}")
    return v


def _assign(
    git: GitRepo, name: str, version: str, stage: str, message: str | None = None
) -> ModelVersion:
    """Assign *stage* to *version* of model *name* (GTO's ``NAME#STAGE#N`` tag)."""
    fmt.check_stage(stage)
    model = find_model(git, name)
    v = model.version(version)
    if not v.registered:
        raise RegistryError(name, f"{v.reference} is not a registered version")
    if stage in v.stages:
        raise RegistryError(name, f"{v.reference} is already in stage {stage!r}")
    first = message or fmt.default_message(fmt.ASSIGN, name, v.version, stage)
    tag = fmt.tag_name(fmt.ASSIGN, name, stage=stage, counter=model.counter + 1)
    _write(git, model, tag, v.commit, first, {fmt.TRAILER_RUN: v.run_id or ""})
    return find_model(git, name).version(v.version)


def _unassign(
    git: GitRepo, name: str, stage: str, version: str | None = None, message: str | None = None
) -> ModelVersion:
    """Take *stage* from the version holding it (or from *version*): ``NAME#STAGE!#N``."""
    fmt.check_stage(stage)
    model = find_model(git, name)
    v = _stage_version(model, version, stage)
    first = message or fmt.default_message(fmt.UNASSIGN, name, v.version, stage)
    tag = fmt.tag_name(fmt.UNASSIGN, name, stage=stage, counter=model.counter + 1)
    _write(git, model, tag, v.commit, first, {fmt.TRAILER_RUN: v.run_id or ""})
    return v


def _deregister(git: GitRepo, name: str, version: str, message: str | None = None) -> ModelVersion:
    """Deregister *version* of model *name* (``NAME@vX.Y.Z!#N``); its stages go with it."""
    model = find_model(git, name)
    v = model.version(version)
    if not v.registered:
        raise RegistryError(name, f"{v.reference} is not a registered version")
    first = message or fmt.default_message(fmt.DEREGISTER, name, v.version, None)
    tag = fmt.tag_name(fmt.DEREGISTER, name, v.version, counter=model.counter + 1)
    _write(git, model, tag, v.commit, first, {fmt.TRAILER_RUN: v.run_id or ""})
    return v


def _deprecate(git: GitRepo, name: str, message: str | None = None) -> Model:
    """Deprecate model *name* (``NAME@deprecated#N``); registering a version revives it."""
    model = find_model(git, name)
    if model.deprecated:
        raise RegistryError(name, f"model {name} is already deprecated")
    first = message or fmt.default_message(fmt.DEPRECATE, name, None, None)
    tag = fmt.tag_name(fmt.DEPRECATE, name, counter=model.counter + 1)
    _write(git, model, tag, model.events[-1].commit, first, {})
    return find_model(git, name)


def register(
    git: GitRepo,
    name: str,
    run_id: str,
    commit: str,
    version: str | None = None,
    bump: str | None = None,
    path: str | None = None,
    message: str | None = None,
) -> ModelVersion:
    """Register *commit* of run *run_id* as a new version of model *name* (``NAME@vX.Y.Z``).

    Without *version*, the next one: v0.0.1 first, then the greatest version ever
    registered with *bump* (major, minor, patch; default patch) raised.
    """
    return _retry(lambda: _register(git, name, run_id, commit, version, bump, path, message))


def assign(
    git: GitRepo, name: str, version: str, stage: str, message: str | None = None
) -> ModelVersion:
    """Assign *stage* to *version* of model *name* (GTO's ``NAME#STAGE#N`` tag)."""
    return _retry(lambda: _assign(git, name, version, stage, message))


def unassign(
    git: GitRepo, name: str, stage: str, version: str | None = None, message: str | None = None
) -> ModelVersion:
    """Take *stage* from the version holding it (or from *version*): ``NAME#STAGE!#N``."""
    return _retry(lambda: _unassign(git, name, stage, version, message))


def deregister(git: GitRepo, name: str, version: str, message: str | None = None) -> ModelVersion:
    """Deregister *version* of model *name* (``NAME@vX.Y.Z!#N``); its stages go with it."""
    return _retry(lambda: _deregister(git, name, version, message))


def deprecate(git: GitRepo, name: str, message: str | None = None) -> Model:
    """Deprecate model *name* (``NAME@deprecated#N``); registering a version revives it."""
    return _retry(lambda: _deprecate(git, name, message))


__all__ = ["assign", "deprecate", "deregister", "register", "unassign"]
