"""Ref names: which names gitxp accepts, from a remote, the local repository or a manifest.

A ref name is data that crosses trust boundaries: a remote advertises
names, a repository's `packed-refs` and `refs/` directory hold names that
anyone with write access may have put there. Before gitxp writes a name
into `packed-refs`, joins it into a path or prints it, the name passes the
rules here:

- git's own rules (those of `git check-ref-format`), as pure code: no
  control characters, space, ``~ ^ : ? * [ \\``; no ``..``, ``@{``, ``//``;
  no component starting with ``.`` or ending with ``.lock``; not ending
  with ``/`` or ``.``; not ``@``. Besides, a component longer than a file
  name may be, or a name longer than `MAX_LENGTH`, is refused;
- gitxp's namespaces: ``refs/gitxp/runs/``, ``refs/gitxp/trash/`` and ``refs/gitxp/pending/`` are
  followed by exactly one run id (see `gitxp.format.ids`), nothing else.

A name that breaks a rule is never "repaired": it is refused, with a reason.
"""

from __future__ import annotations

import re

from .ids import RUN_ID_RE

GITXP_PREFIX = "refs/gitxp/"
RUNS_PREFIX = "refs/gitxp/runs/"
TRASH_PREFIX = "refs/gitxp/trash/"
PENDING_PREFIX = "refs/gitxp/pending/"  # a run's snapshot, pinned until its run ref exists
RUN_NAMESPACES = (RUNS_PREFIX, TRASH_PREFIX, PENDING_PREFIX)
MAX_LENGTH = 1024  # git has no limit of its own; file systems and wire formats do
MAX_COMPONENT_BYTES = 255  # a loose ref component is a file name

_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
_RUN_REF = re.compile(
    "^refs/gitxp/(?:runs|trash|pending)/" + RUN_ID_RE.pattern.lstrip("^").rstrip("$") + "$"
)


def git_problem(name: str) -> str | None:
    """Why git would refuse *name* as a ref name (None: it is valid)."""
    if not isinstance(name, str) or not name:
        return "it is empty"
    if len(name) > MAX_LENGTH:
        return f"it is {len(name)} characters long (at most {MAX_LENGTH})"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "it is not UTF-8"
    bad = _FORBIDDEN.search(name)
    if bad:
        char = bad.group()
        what = "a control character" if char < " " or char == "\x7f" else repr(char)
        return f"it contains {'a space' if char == ' ' else what}"
    if name == "@":
        return "it is '@'"
    if "@{" in name:
        return "it contains '@{'"
    if ".." in name:
        return "it contains '..'"
    if name.startswith("/") or name.endswith("/"):
        return "it starts or ends with '/'"
    if name.endswith("."):
        return "it ends with '.'"
    for part in name.split("/"):
        if not part:
            return "it contains '//'"
        if part.startswith("."):
            return f"a component ({part!r}) starts with '.'"
        if part.endswith(".lock"):
            return f"a component ({part!r}) ends with '.lock'"
        if len(part.encode("utf-8")) > MAX_COMPONENT_BYTES:
            return f"a component is longer than {MAX_COMPONENT_BYTES} bytes"
    return None


def problem(name: str) -> str | None:
    """Why gitxp refuses *name* (None: accepted): git's rules, then gitxp's namespaces."""
    if isinstance(name, str) and _RUN_REF.fullmatch(name):
        return None  # the common case, decided by one match
    reason = git_problem(name)
    if reason is not None:
        return reason
    for prefix in RUN_NAMESPACES:
        if name.startswith(prefix):
            return f"{name[len(prefix) :]!r} is not a run id (26 lowercase base32 characters)"
    return None


def is_valid(name: str) -> bool:
    """Whether gitxp accepts *name* as a ref name (see `problem`)."""
    return problem(name) is None


def is_run_ref(name: str) -> bool:
    """Whether *name* is `refs/gitxp/{runs,trash,pending}/<run id>` (a name gitxp may write)."""
    return isinstance(name, str) and bool(_RUN_REF.fullmatch(name))


def decode(raw: bytes) -> str | None:
    """A ref name read as bytes (from the wire or a file), or None when it is not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def shown(name: object, limit: int = 80) -> str:
    """*name* quoted for a one-line message: control characters escaped, long names cut."""
    if isinstance(name, bytes):
        name = name.decode("utf-8", "backslashreplace")
    text = ascii(str(name))
    return text if len(text) <= limit else text[: limit - 4] + "...'"


__all__ = [
    "GITXP_PREFIX",
    "MAX_LENGTH",
    "RUNS_PREFIX",
    "RUN_NAMESPACES",
    "TRASH_PREFIX",
    "decode",
    "git_problem",
    "is_run_ref",
    "is_valid",
    "problem",
    "shown",
]
