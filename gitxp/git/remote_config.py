"""A remote's refspecs in git config: reading `remote.<name>.fetch/push`, adding gitxp's."""

from __future__ import annotations

import os

from ..errors import RemoteError
from .repository import GitRepo


def refspecs(git: GitRepo, name: str, kind: str) -> list[str]:
    """The `remote.<name>.<kind>` values (kind: fetch or push) from git config."""
    config = git.dulwich.get_config_stack()
    try:
        values = config.get_multivar((b"remote", name.encode()), kind.encode())
        return [v.decode("utf-8", "replace") for v in values]
    except KeyError:
        return []


def add_refspecs(git: GitRepo, name: str, kind: str, specs: list[str]) -> list[str]:
    """Append the *specs* missing from `remote.<name>.<kind>`; return those added.

    The lines are appended as a new `[remote "<name>"]` block (git merges
    blocks of the same name) so the rest of the config file is left byte for
    byte as it was, comments included.
    """
    if git.config_value("remote", "url", name) is None:
        raise RemoteError(name, "not a configured remote; add it with `git remote add`")
    present = set(refspecs(git, name, kind))
    missing = [s for s in specs if s not in present]
    if not missing:
        return []
    path = os.path.join(git.dulwich.controldir(), "config")
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    block = f'[remote "{quoted}"]\n' + "".join(f"\t{kind} = {s}\n" for s in missing)
    with open(path, "a+", encoding="utf-8") as f:
        f.seek(0, os.SEEK_END)
        if f.tell():
            f.seek(f.tell() - 1)
            if f.read(1) != "\n":
                f.write("\n")
        f.write(block)
    return missing
