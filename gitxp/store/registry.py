"""The model registry's state: models, versions and stages, folded from GTO-style git tags.

Every registry action is an annotated tag (`gitxp.format.registry`). The
state is rebuilt from the tags each time it is asked for, as GTO does: the
tags of a model are put in event order (tagger time, then GTO's priority of
the action, then the tag's counter) and folded:

- a version is *active* while its newest register/deregister tag is a
  registration; a stage tag on a commit no version was registered at makes an
  unregistered version named by the commit id (GTO's "non-explicit" version);
- a version holds a stage while its newest assign/unassign tag of that stage is
  an assignment; the stage belongs to the active version assigned most recently;
- the model is deprecated while its newest event is a deprecation;
- `latest` is the greatest registered, active version (semver order).

Writing an action is `gitxp.store.registry_actions`.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ModelNotFoundError, RegistryError
from ..format import registry as fmt
from ..format import schema, storage
from ..format.ids import is_run_id
from ..git.tags import TagInfo, list_tags
from .blobs import read_run_file

if TYPE_CHECKING:
    from ..git.repository import GitRepo


@dataclass(frozen=True)
class RegistryEvent:
    """One registry tag, read: what it did to which model, version or stage, by whom, when."""

    model: str
    action: str  # register, deregister, assign, unassign, deprecate
    tag: str
    commit: str
    time: int  # the tagger time, seconds since the epoch
    author: str
    author_email: str
    message: str
    version: str | None = None  # of a stage event: the version at the tag's commit
    stage: str | None = None
    counter: int | None = None
    run_id: str | None = None  # from gitxp's Gitxp-Run trailer; None for GTO's own tags
    path: str | None = None  # the model's artifact in the run (Gitxp-Path trailer)

    @property
    def order(self) -> tuple[int, int, int]:
        """Where this event goes in the model's history (GTO's order, the counter last)."""
        return self.time, fmt.PRIORITY[self.action], self.counter or 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ModelVersion:
    """One version of a model: the commit it names (a run's commit) and what it holds now."""

    model: str
    version: str
    commit: str
    registered: bool = False  # registered by a tag (False: a commit a stage was assigned to)
    active: bool = True  # not deregistered
    created_at: int = 0
    author: str = ""
    message: str = ""
    tag: str | None = None
    run_id: str | None = None
    path: str | None = None
    stages: list[str] = field(default_factory=list)

    @property
    def reference(self) -> str:
        """How to name this version on any command (`churn@v1.0.0`)."""
        return f"{self.model}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Model:
    """A registered model: its versions (greatest first), its stages and its history."""

    name: str
    versions: list[ModelVersion]
    stages: dict[str, ModelVersion]
    deprecated: bool
    events: list[RegistryEvent]  # oldest first

    @property
    def latest(self) -> ModelVersion | None:
        """The greatest registered, active version (None: there is none)."""
        return next((v for v in self.versions if v.registered and v.active), None)

    def version(self, version: str) -> ModelVersion:
        """The version named *version* (`v1.2.3`, or `latest`), registered and active."""
        if version in fmt.LATEST:
            found = self.latest
            if found is None:
                raise ModelNotFoundError(f"{self.name}@{version}", "it has no active version")
            return found
        for v in self.versions:
            if v.version == version:
                if not v.active:
                    raise ModelNotFoundError(
                        f"{self.name}@{version}",
                        f"{version} was deregistered{self._others()}",
                    )
                return v
        close = difflib.get_close_matches(version, [v.version for v in self.versions], n=3)
        raise ModelNotFoundError(
            f"{self.name}@{version}", f"{self.name} has no version {version}{self._others()}", close
        )

    def stage(self, stage: str) -> ModelVersion:
        """The version that holds *stage* now."""
        found = self.stages.get(stage)
        if found is None:
            known = ", ".join(sorted(self.stages)) or "none"
            raise ModelNotFoundError(
                f"{self.name}#{stage}",
                f"no version of {self.name} is in stage {stage!r} (stages: {known})",
            )
        return found

    def find(self, reference: fmt.ModelReference) -> ModelVersion:
        """The version a parsed model reference names."""
        if reference.stage is not None:
            return self.stage(reference.stage)
        return self.version(str(reference.version))

    def _others(self) -> str:
        active = [v.version for v in self.versions if v.active and v.registered]
        return f" (versions: {', '.join(active)})" if active else " (it has no active version)"

    @property
    def counter(self) -> int:
        """The highest counter any tag of this model carries (0: none)."""
        return max((e.counter or 0 for e in self.events), default=0)

    def to_dict(self) -> dict[str, Any]:
        latest = self.latest
        return {
            "name": self.name,
            "latest": latest.version if latest else None,
            "deprecated": self.deprecated,
            "stages": {s: v.version for s, v in sorted(self.stages.items())},
            "versions": [v.to_dict() for v in self.versions],
        }


def _event(info: TagInfo, name: fmt.TagName) -> RegistryEvent:
    trailers = fmt.message_trailers(info.message)
    run_id = trailers.get(fmt.TRAILER_RUN)
    path = trailers.get(fmt.TRAILER_PATH) or None
    if path is not None and not path.isprintable():
        path = None  # a tag from anywhere: nothing that would garble a terminal
    return RegistryEvent(
        model=name.model,
        action=name.action,
        tag=info.name,
        commit=info.target,
        time=info.time,
        author=info.tagger_name,
        author_email=info.tagger_email,
        message=info.message.strip(),
        version=name.version,
        stage=name.stage,
        counter=name.counter,
        run_id=run_id if run_id and is_run_id(run_id) else None,
        path=path,
    )


def read_events(git: GitRepo, model: str | None = None) -> dict[str, list[RegistryEvent]]:
    """The registry tags of every model (or of *model*), in event order, by model name."""
    names: dict[str, fmt.TagName] = {}

    def accept(tag: str) -> bool:
        parsed = fmt.parse_tag(tag)
        if parsed is None or (model is not None and parsed.model != model):
            return False
        names[tag] = parsed
        return True

    out: dict[str, list[RegistryEvent]] = {}
    for info in list_tags(git, accept):
        event = _event(info, names[info.name])
        out.setdefault(event.model, []).append(event)
    for events in out.values():
        events.sort(key=lambda e: e.order)
    return out


def _versions(events: list[RegistryEvent]) -> dict[str, ModelVersion]:
    """The versions of one model's events, with GTO's rule: register/deregister tags first,
    then stage tags find their version by commit (or make an unregistered one)."""
    versions: dict[str, ModelVersion] = {}
    for e in events:
        if e.action not in (fmt.REGISTER, fmt.DEREGISTER) or e.version is None:
            continue
        v = versions.get(e.version)
        if v is None:
            v = versions[e.version] = ModelVersion(e.model, e.version, e.commit)
        if e.action == fmt.REGISTER:
            if not v.registered:
                v.registered, v.created_at, v.author = True, e.time, e.author
                v.message, v.tag, v.run_id, v.path = e.message, e.tag, e.run_id, e.path
            v.active = True
        else:
            v.active = False
    return versions


def fold(name: str, events: list[RegistryEvent]) -> Model:
    """The state of model *name* after *events* (in event order)."""
    versions = _versions(events)
    by_commit = {v.commit: v for v in versions.values()}
    holding: dict[tuple[str, str], tuple[bool, tuple[int, int, int]]] = {}
    resolved: list[RegistryEvent] = []
    for e in events:
        if e.action in (fmt.ASSIGN, fmt.UNASSIGN) and e.stage is not None:
            v = by_commit.get(e.commit)
            if v is None:
                v = by_commit[e.commit] = versions[e.commit] = ModelVersion(
                    name, e.commit, e.commit, created_at=e.time, author=e.author, run_id=e.run_id
                )
            holding[(v.version, e.stage)] = (e.action == fmt.ASSIGN, e.order)
            e = RegistryEvent(**{**e.to_dict(), "version": v.version})
        resolved.append(e)
    stages: dict[str, ModelVersion] = {}
    newest: dict[str, tuple[int, int, int]] = {}
    for (version, stage), (assigned, order) in holding.items():
        v = versions[version]
        if assigned and v.active and (stage not in newest or order > newest[stage]):
            stages[stage], newest[stage] = v, order
    for stage, v in stages.items():
        v.stages.append(stage)
    ordered = sorted(
        versions.values(),
        key=lambda v: (v.registered, fmt.semver_key(v.version) if v.registered else v.created_at),
        reverse=True,
    )
    deprecated = bool(resolved) and resolved[-1].action == fmt.DEPRECATE
    return Model(name, ordered, dict(sorted(stages.items())), deprecated, resolved)


def read_models(git: GitRepo, model: str | None = None) -> dict[str, Model]:
    """Every model of the registry (or only *model*), by name."""
    return {name: fold(name, events) for name, events in sorted(read_events(git, model).items())}


def find_model(git: GitRepo, name: str) -> Model:
    """Model *name*, or ModelNotFoundError (with the names of similar models)."""
    found = read_models(git, name).get(name)
    if found is None:
        names = list(read_models(git))
        close = difflib.get_close_matches(name, names, n=3)
        known = "" if close else f" (models: {', '.join(names[:8]) or 'none yet'})"
        raise ModelNotFoundError(name, f"no tag registers a model named {name!r}{known}", close)
    return found


def run_of(git: GitRepo, version: ModelVersion) -> str:
    """The id of the run whose commit *version* names (read from the commit's run.json when
    the tag does not record it), or RegistryError when that commit is not a run's."""
    if version.run_id is not None:
        return version.run_id
    why = "it has no run.json"
    try:
        entry = git.read_tree(git.commit_tree(version.commit)).get(storage.RUN_FILE)
        if entry is not None:
            data = read_run_file(git, entry[1], storage.RUN_FILE)
            meta = schema.load_json(data, storage.RUN_FILE)
            run_id = meta.get("id") if isinstance(meta, dict) else None
            if isinstance(run_id, str) and is_run_id(run_id):
                return run_id
            why = "its run.json names no run id"
    except (schema.Invalid, KeyError, ValueError) as exc:
        why = str(exc)
    except Exception as exc:  # a missing or unreadable commit
        why = f"the commit cannot be read ({exc})"
    raise RegistryError(
        version.model,
        f"{version.reference} names commit {version.commit[:12]}, which is not a gitxp run "
        f"({why}); register a run with `gitxp model register RUN {version.model}`",
    )


__all__ = [
    "Model",
    "ModelVersion",
    "RegistryEvent",
    "find_model",
    "fold",
    "read_events",
    "read_models",
    "run_of",
]
