"""The model registry beside GTO's own, on the same tags: reading the state, finding a stage.

Both read the same repository: 25 models x 4 versions, each with its prod stage
(125 annotated tags, written by gitxp, which GTO reads as its own). gitxp:
`read_models` (what `gitxp model list` and `Repo.models()` fold) and
`Repo.resolve("m7#prod")`; GTO: `gto.api.show` (what `gto show` prints) and
`gto.api.find_versions_in_stage`. Registering: `Repo.register_model`-level
`registry_actions.register` against `gto.api.register`, each on fresh commits.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from .common import emit, med, quiet_env, result, timeit_cpu

MODELS, VERSIONS = 25, 4


def _commits(path: str, count: int) -> list[str]:
    """A repository at *path* with *count* commits on main; their ids, newest first."""
    env = quiet_env()
    subprocess.run(["git", "init", "-q", "-b", "main", path], check=True, env=env)
    stream = "".join(
        f"commit refs/heads/main\ncommitter b <b@e> {1_700_000_000 + i} +0000\ndata 2\nc\n\n"
        for i in range(count)
    )
    subprocess.run(["git", "fast-import", "--quiet"], cwd=path, input=stream, text=True,
                   check=True, env=env)  # fmt: skip
    out = subprocess.run(["git", "rev-list", "main"], cwd=path, capture_output=True, text=True)
    return out.stdout.split()


def main(quick: bool) -> None:
    from gto import api

    from gitxp.format.ids import new_run_id
    from gitxp.git.repository import GitRepo
    from gitxp.store import registry_actions
    from gitxp.store.registry import read_models

    path = tempfile.mkdtemp(prefix="registry-")
    spare = 20
    commits = _commits(path, MODELS * VERSIONS + 2 * spare)
    git = GitRepo.discover(path)
    for m in range(MODELS):
        for k in range(VERSIONS):
            registry_actions.register(git, f"m{m}", new_run_id(), commits[m * VERSIONS + k])
        registry_actions.assign(git, f"m{m}", "latest", "prod")
    assert {n: s["stage"]["prod"] for n, s in api.show(path).items()} == {
        n: m.stages["prod"].version for n, m in read_models(git).items()
    }
    slow = 2 if quick else 5
    gx_all, _ = timeit_cpu(lambda: read_models(git), 20, warmup=2)
    gto_all, _ = timeit_cpu(lambda: api.show(path), slow)
    gx_one, _ = timeit_cpu(lambda: read_models(git, "m7")["m7"].stages["prod"], 20, warmup=2)
    gto_one, _ = timeit_cpu(lambda: api.find_versions_in_stage(path, "m7", "prod"), slow)
    free = iter(commits[MODELS * VERSIONS :])
    gx_reg, _ = timeit_cpu(
        lambda: registry_actions.register(git, "fresh-gitxp", new_run_id(), next(free)), slow
    )
    gto_reg, _ = timeit_cpu(lambda: api.register(path, "fresh-gto", next(free)), slow)
    tags = MODELS * (VERSIONS + 1)
    note = f"{MODELS} models x {VERSIONS} versions + prod ({tags} tags); no target in the issue"
    emit(
        [
            result("registry.show", "Registry", f"read the registry state ({tags} tags)", "ms",
                   med(gx_all) * 1000, "gto show (gto.api.show)", med(gto_all) * 1000,
                   notes=note),
            result("registry.stage", "Registry", "find the version in a stage", "ms",
                   med(gx_one) * 1000, "gto.api.find_versions_in_stage", med(gto_one) * 1000,
                   notes=note),
            result("registry.register", "Registry", "register a version", "ms",
                   med(gx_reg) * 1000, "gto.api.register", med(gto_reg) * 1000, notes=note),
        ]
    )  # fmt: skip
    git.close()
    if os.environ.get("GITXP_BENCH_KEEP") is None:
        subprocess.run(["rm", "-rf", path], check=False)


if __name__ == "__main__":
    main("--quick" in sys.argv)
