"""Where an ordinary repository keeps its parts, read from its files alone.

`GitRepo` needs a repository's git directory, object directory, object
format and whether it is bare the moment it is opened, and dulwich's `Repo`
only when it reads through dulwich's object store, moves a ref or reads the
stacked config. Opening dulwich's `Repo` means importing its repository,
object store, pack and hook modules (about a fifth of the start-up of a
`gitxp log`, docs/performance.md "Everyday latency"), which a listing served
from the listing cache never uses. So for the ordinary case -- a work tree
with its own `.git` directory and a config without includes, worktree
settings or extensions other than the object format -- the layout is read
here, and `GitRepo` opens dulwich's `Repo` on first use. Anything else is
left to dulwich (`plain_layout` returns None), which then opens the
repository at once and raises what it raises for a repository it cannot use.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

_TRUE = ("true", "yes", "on", "1")
_FORMATS = ("sha1", "sha256")


@dataclass(frozen=True)
class Layout:
    """Where one repository's parts are, as dulwich's `Repo` would find them."""

    git_dir: str  # the `.git` directory: control and common directory at once
    objects: str  # its `objects/` directory
    object_format: str  # "sha1" or "sha256"
    bare: bool  # `core.bare = true` in the repository's own config


def file_stamp(path: str) -> tuple[int, int, int] | None:
    """What identifies a file's current contents: its stat fields (None: no file)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _read(path: str) -> bytes | None:
    """The bytes of *path*; b"" when there is no such file, None when it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return b""
    except OSError:
        return None


def plain_layout(root: str) -> Layout | None:
    """The layout of the repository whose work tree is *root*, when it is an ordinary one.

    None when dulwich must decide: `.git` is a file (a linked worktree, a
    submodule), the git directory has a `commondir`, or its config includes
    other files, names a work tree, is of a format version other than 0 or 1,
    uses an extension besides `objectformat`, or does not say whether the
    repository is bare (git and dulwich write `core.bare` when they create one).
    """
    git_dir = os.path.join(root, ".git")
    objects = os.path.join(git_dir, "objects")
    if not os.path.isdir(objects) or os.path.lexists(os.path.join(git_dir, "commondir")):
        return None
    raw = _read(os.path.join(git_dir, "config"))
    if not raw or b"include" in raw.lower():
        return None
    from dulwich.config import ConfigFile

    try:
        config = ConfigFile.from_file(io.BytesIO(raw), expand_includes=False)
        version = config.get((b"core",), b"repositoryformatversion")
        bare = config.get((b"core",), b"bare").decode("utf-8", "replace").lower()
    except (KeyError, ValueError, UnicodeError):
        return None
    if version.strip() not in (b"0", b"1"):
        return None
    try:
        config.get((b"core",), b"worktree")
    except KeyError:
        pass
    else:
        return None
    object_format = "sha1"
    for name, value in config.items((b"extensions",)):
        if name.lower() != b"objectformat" or version.strip() != b"1":
            return None
        object_format = value.decode("ascii", "replace").lower()
    if object_format not in _FORMATS:
        return None
    return Layout(os.path.abspath(git_dir), objects, object_format, bare.strip() in _TRUE)
