"""Remotes in git config: which one a command means, its URL, its refspecs.

A remote is named on the command line (a configured name, a URL or a path)
or left to git's defaults; `resolve_remote` turns either into a `Remote`
with the URL git would use. `refspecs` reads `remote.<name>.fetch/push`;
`add_refspecs` adds gitxp's.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ..errors import RemoteError
from .repository import GitRepo, strip_credentials


@dataclass(frozen=True)
class Remote:
    """Where to push or fetch: a configured remote's name (if any) and its URL."""

    name: str | None
    url: str

    @property
    def display(self) -> str:
        """The remote as shown to people: its name, else its URL without credentials."""
        return self.name or strip_credentials(self.url)


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
