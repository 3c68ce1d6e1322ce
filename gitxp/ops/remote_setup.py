"""Making plain `git fetch` / `git push` of a remote carry runs: gitxp's refspecs in git config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import UsageError
from ..git.remote import INDEX_REFSPEC, RUNS_REFSPEC, TAGS_REFSPEC
from ..git.remote_config import add_refspecs, refspecs, resolve_remote
from ._repoarg import opened


@dataclass(frozen=True)
class SetupResult:
    """What `setup_remote` added to git config."""

    remote: str
    fetch: list[str]
    push: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"remote": self.remote, "fetch": self.fetch, "push": self.push}


def setup_remote(
    repo: Any = ".", remote: str | None = None, push: bool = True, tags: bool = True
) -> SetupResult:
    """Make plain `git fetch` / `git push` of *remote* carry runs (and model registry tags).

    Adds ``remote.<name>.fetch = refs/gitxp/runs/*:refs/gitxp/runs/*``
    (without ``+``: git then refuses, like gitxp, to overwrite a diverged
    local run), and ``+refs/gitxp/index/*:refs/gitxp/index/*`` (fetch only),
    so a clone gets the listing index `gitxp push` maintains. With *tags*, adds ``refs/tags/*:refs/tags/*`` too, so the
    registry's tags (`gitxp model`, GTO) travel; git refuses to replace a
    tag that exists on the receiving side. With *push*, adds the same push
    refspecs; because a remote with any push refspec makes a bare `git push`
    push only those, ``HEAD`` is added too when the remote had none, so `git
    push` keeps pushing the current branch. Idempotent.
    """
    with opened(repo if repo is not None else ".") as r:
        git = r.git
        target = resolve_remote(git, remote, "fetch")
        if target.name is None:
            raise UsageError(
                f"{target.display} is a URL, not a configured remote; "
                "add it first with `git remote add NAME URL`"
            )
        specs = [RUNS_REFSPEC, TAGS_REFSPEC] if tags else [RUNS_REFSPEC]
        added_fetch = add_refspecs(git, target.name, "fetch", [*specs, INDEX_REFSPEC])
        added_push: list[str] = []
        if push:
            wanted = list(specs)
            if not refspecs(git, target.name, "push"):
                wanted.insert(0, "HEAD")
            added_push = add_refspecs(git, target.name, "push", wanted)
        return SetupResult(target.name, added_fetch, added_push)
