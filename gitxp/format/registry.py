"""The model registry's names, as pure code: GTO's tag grammar, model references, semver.

gitxp's registry is GTO's (https://github.com/iterative/gto): every action is an
annotated git tag whose name says what happened, so `gto` reads what gitxp writes
and gitxp reads what `gto` writes. The tag names (docs/format.md, Model registry):

- ``NAME@vX.Y.Z`` registers version vX.Y.Z of model NAME;
- ``NAME@vX.Y.Z!#N`` deregisters it;
- ``NAME#STAGE#N`` assigns STAGE to the version at the tag's commit;
- ``NAME#STAGE!#N`` unassigns it;
- ``NAME@deprecated#N`` (or ``NAME@deprecated``) deprecates the model.

``N`` counts a model's numbered tags: one more than the highest number any tag of
that model carries. A model name may carry a directory (``dir/x:name``), written
``dir/x=name`` in a tag.

Model references name a registered run wherever a run is accepted:
``NAME@vX.Y.Z``, ``NAME@latest`` (or ``@greatest``) and ``NAME#STAGE``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InvalidValueError

REGISTER = "register"
DEREGISTER = "deregister"
ASSIGN = "assign"
UNASSIGN = "unassign"
DEPRECATE = "deprecate"
ACTIONS = (REGISTER, DEREGISTER, ASSIGN, UNASSIGN, DEPRECATE)
# GTO's event priorities: the order of two events tagged in the same second
PRIORITY = {DEPRECATE: 2, REGISTER: 3, DEREGISTER: 4, ASSIGN: 5, UNASSIGN: 6}
BUMPS = ("major", "minor", "patch")
LATEST = ("latest", "greatest")
FIRST_VERSION = "v0.0.1"
TAGS_PREFIX = "refs/tags/"

# the trailers gitxp adds below GTO's first message line
TRAILER_RUN = "Gitxp-Run"
TRAILER_PATH = "Gitxp-Path"

_NAME = r"[a-zA-Z0-9](?:[a-zA-Z0-9\-/_]*[a-zA-Z0-9])?"
_DIRNAME = r"[a-zA-Z0-9\-_./]+"
_ID = r"(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
_SEMVER = (
    r"(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    rf"(?:-(?P<pre>{_ID}(?:\.{_ID})*))?(?:\+(?P<build>[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)
NAME_RE = re.compile(_NAME)
MODEL_RE = re.compile(rf"(?:{_DIRNAME}:)?{_NAME}")
VERSION_RE = re.compile(rf"v{_SEMVER}")
TAG_RE = re.compile(
    rf"(?P<model>(?:{_DIRNAME}=)?{_NAME})"
    rf"(?:(?:#(?P<stage>{_NAME})|@(?P<version>v{_SEMVER}))(?P<cancel>!?)"
    r"|@(?P<deprecated>deprecated)|@(?P<created>created))"
    r"(?:#(?P<counter>[0-9]+))?"
)
REFERENCE_RE = re.compile(
    rf"(?P<model>(?:{_DIRNAME}:)?{_NAME})"
    rf"(?:#(?P<stage>{_NAME})|@(?P<version>latest|greatest|v{_SEMVER}))"
)


@dataclass(frozen=True)
class TagName:
    """What one registry tag's name says: the model, the action, and its version or stage."""

    model: str
    action: str
    version: str | None = None
    stage: str | None = None
    counter: int | None = None


@dataclass(frozen=True)
class ModelReference:
    """A parsed ``NAME@vX.Y.Z``, ``NAME@latest`` or ``NAME#STAGE``."""

    model: str
    version: str | None = None
    stage: str | None = None

    @property
    def latest(self) -> bool:
        return self.version in LATEST

    def __str__(self) -> str:
        return f"{self.model}#{self.stage}" if self.stage else f"{self.model}@{self.version}"


def parse_tag(name: str) -> TagName | None:
    """What registry tag *name* (without ``refs/tags/``) says; None for any other tag.

    GTO's ``NAME@created`` tags carry no action GTO acts on, so they are None too.
    """
    if not isinstance(name, str):
        return None
    m = TAG_RE.fullmatch(name)
    if m is None or m["created"]:
        return None
    model = m["model"].replace("=", ":")
    counter = int(m["counter"]) if m["counter"] else None
    cancel = m["cancel"] == "!"
    if m["deprecated"]:
        return TagName(model, DEPRECATE, counter=counter)
    if m["version"]:
        return TagName(model, DEREGISTER if cancel else REGISTER, m["version"], None, counter)
    return TagName(model, UNASSIGN if cancel else ASSIGN, None, m["stage"], counter)


def tag_name(
    action: str,
    model: str,
    version: str | None = None,
    stage: str | None = None,
    counter: int | None = None,
) -> str:
    """The tag name of *action* on *model*, numbered with *counter* when given."""
    model = model.replace(":", "=")
    if action == REGISTER:
        base = f"{model}@{version}"
    elif action == DEREGISTER:
        base = f"{model}@{version}!"
    elif action == ASSIGN:
        base = f"{model}#{stage}"
    elif action == UNASSIGN:
        base = f"{model}#{stage}!"
    elif action == DEPRECATE:
        base = f"{model}@deprecated"
    else:
        raise ValueError(f"unknown registry action {action!r}")
    return base if counter is None else f"{base}#{counter}"


def parse_reference(text: str) -> ModelReference | None:
    """*text* as a model reference, or None when it does not have that shape."""
    if not isinstance(text, str):
        return None
    m = REFERENCE_RE.fullmatch(text.strip())
    if m is None:
        return None
    return ModelReference(m["model"], m["version"], m["stage"])


def check_model_name(name: object) -> str:
    """*name* when it can name a model, else InvalidValueError saying what is allowed."""
    if isinstance(name, str) and MODEL_RE.fullmatch(name) and "//" not in name:
        return name
    raise InvalidValueError(
        "model",
        f"{name!r} cannot name a model: use letters, digits, '-', '_' and '/', "
        "starting and ending with a letter or digit (e.g. churn or team/churn)",
    )


def check_stage(stage: object) -> str:
    """*stage* when it can name a stage, else InvalidValueError."""
    if isinstance(stage, str) and NAME_RE.fullmatch(stage) and "//" not in stage:
        return stage
    raise InvalidValueError(
        "stage",
        f"{stage!r} cannot name a stage: use letters, digits, '-', '_' and '/', "
        "starting and ending with a letter or digit (e.g. prod)",
    )


def check_version(version: object) -> str:
    """*version* when it is ``v`` plus a semantic version (v1.2.3, v1.0.0-rc.1), else
    InvalidValueError."""
    if isinstance(version, str) and VERSION_RE.fullmatch(version):
        return version
    hint = ""
    if isinstance(version, str) and VERSION_RE.fullmatch("v" + version):
        hint = f" (did you mean v{version}?)"
    raise InvalidValueError(
        "version",
        f"{version!r} is not a version: give 'v' and a semantic version, e.g. v1.2.3{hint}",
    )


def semver_key(version: str) -> tuple[int, int, int, tuple[int, tuple[tuple[int, int, str], ...]]]:
    """A sort key ordering versions as semver 2.0 does (build metadata ignored)."""
    m = VERSION_RE.fullmatch(version)
    if m is None:
        raise InvalidValueError("version", f"{version!r} is not a version like v1.2.3")
    pre = m["pre"]
    if pre is None:
        rank: tuple[int, tuple[tuple[int, int, str], ...]] = (1, ())
    else:
        parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
        rank = (0, parts)
    return int(m["major"]), int(m["minor"]), int(m["patch"]), rank


def bump(version: str | None, part: str | None) -> str:
    """The version after *version* with *part* (major, minor, patch; None: patch) raised.

    With no *version* yet, the first one: v0.0.1, or v0.1.0 / v1.0.0 when *part*
    asks for a minor or major bump.
    """
    part = part or "patch"
    if part not in BUMPS:
        raise InvalidValueError("bump", f"{part!r}: give one of {', '.join(BUMPS)}")
    if version is None:
        return {"major": "v1.0.0", "minor": "v0.1.0", "patch": FIRST_VERSION}[part]
    major, minor, patch, _ = semver_key(version)
    if part == "major":
        return f"v{major + 1}.0.0"
    if part == "minor":
        return f"v{major}.{minor + 1}.0"
    return f"v{major}.{minor}.{patch + 1}"


def tag_message(first_line: str, trailers: dict[str, str]) -> str:
    """A tag message: GTO's first line, a blank line, then gitxp's trailers."""
    body = first_line.strip() or "gitxp"
    lines = [f"{k}: {v}" for k, v in trailers.items() if v]
    return body + "\n" + ("\n" + "\n".join(lines) + "\n" if lines else "")


def message_trailers(message: str) -> dict[str, str]:
    """The ``Key: value`` trailers of a tag message's last paragraph ({} when there are none)."""
    paragraphs = message.strip().split("\n\n")
    if len(paragraphs) < 2:
        return {}
    out: dict[str, str] = {}
    for line in paragraphs[-1].splitlines():
        key, sep, value = line.partition(": ")
        if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]*", key):
            return {}
        out[key] = value.strip()
    return out


def default_message(action: str, model: str, version: str | None, stage: str | None) -> str:
    """GTO's own first line for *action*, so `gto history` reads the same either way."""
    if action == REGISTER:
        return f"Registering artifact {model} version {version}"
    if action == DEREGISTER:
        return f"Deregistering artifact {model} version {version}"
    if action == ASSIGN:
        return f"Assigning stage {stage} to artifact {model} version {version}"
    if action == UNASSIGN:
        return f"Unassigning stage '{stage}' to artifact '{model}' version '{version}'"
    return f"Deprecating artifact '{model}'"


__all__ = [
    "ACTIONS",
    "ASSIGN",
    "DEPRECATE",
    "DEREGISTER",
    "REGISTER",
    "UNASSIGN",
    "ModelReference",
    "TagName",
    "bump",
    "check_model_name",
    "check_stage",
    "check_version",
    "default_message",
    "message_trailers",
    "parse_reference",
    "parse_tag",
    "semver_key",
    "tag_message",
    "tag_name",
]
