"""The command line against DVC experiments: recording a run, listing 50 runs.

Both tools get a project holding `params.yaml` and `metrics.json` (DVC's
`dvc.yaml` declares them). Before each recording both files are changed,
so each tool has a new state to store. gitxp: `gitxp run -- true` (the
work-tree snapshot holds both files); DVC: `dvc exp save`. Listing: the
50 runs each tool recorded, `gitxp log --format json` against
`dvc exp show --json`, the latter first with its cache removed (its first
call) and then with its cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

from .common import BIN, cmd_cpu, discard, emit, med, quiet_env, result, timecmd

N_RUNS = 50


def _project(path: str, dvc: bool) -> None:
    env = quiet_env()
    subprocess.run(["git", "init", "-q", "-b", "main", path], check=True, env=env)
    _write(path, 0)
    with open(os.path.join(path, "train.py"), "w") as f:
        f.write("print('train')\n")
    if dvc:
        subprocess.run([os.path.join(BIN, "dvc"), "init", "-q"], cwd=path, check=True, env=env)
        with open(os.path.join(path, "dvc.yaml"), "w") as f:
            f.write("params:\n  - params.yaml\nmetrics:\n  - metrics.json\n")
    subprocess.run(["git", "add", "-A"], cwd=path, check=True, env=env)
    subprocess.run(["git", "commit", "-q", "-m", "project"], cwd=path, check=True, env=env)


def _write(path: str, i: int) -> None:
    with open(os.path.join(path, "params.yaml"), "w") as f:
        f.write(f"lr: {0.001 * (i + 1):.4f}\nepochs: {10 + i}\nmodel: resnet\n")
    with open(os.path.join(path, "metrics.json"), "w") as f:
        json.dump({"acc": 0.5 + i / 200, "loss": 1 / (i + 1)}, f)


def main(quick: bool) -> None:
    gitxp_bin = os.path.join(BIN, "gitxp")
    dvc_bin = os.path.join(BIN, "dvc")
    reps = 5 if quick else 9
    tmp = tempfile.mkdtemp(prefix="gitxp-bench-dvc-")
    try:
        g_path, d_path = os.path.join(tmp, "gitxp"), os.path.join(tmp, "dvc")
        _project(g_path, dvc=False)
        _project(d_path, dvc=True)
        counter = {"g": 0, "d": 0}

        def g_change() -> None:
            counter["g"] += 1
            _write(g_path, counter["g"])

        def d_change() -> None:
            counter["d"] += 1
            _write(d_path, counter["d"])

        g_rec = med(
            timecmd([gitxp_bin, "run", "-q", "--", "true"], reps, cwd=g_path, before=g_change)
        )
        g_rec_cpu = cmd_cpu(reps)
        d_rec = med(timecmd([dvc_bin, "exp", "save"], reps, cwd=d_path, before=d_change))
        d_rec_cpu = cmd_cpu(reps)
        # fill both to N_RUNS recorded runs
        timecmd(
            [gitxp_bin, "run", "-q", "--", "true"],
            N_RUNS - reps - 1,
            cwd=g_path,
            before=g_change,
            warmup=0,
        )
        timecmd([dvc_bin, "exp", "save"], N_RUNS - reps - 1, cwd=d_path, before=d_change, warmup=0)
        out = subprocess.run(
            [gitxp_bin, "log", "--format", "json"],
            cwd=g_path,
            check=True,
            capture_output=True,
            text=True,
            env=quiet_env(),
        ).stdout
        assert len(json.loads(out)) == N_RUNS, len(json.loads(out))
        out = subprocess.run(
            [dvc_bin, "exp", "show", "--json"],
            cwd=d_path,
            check=True,
            capture_output=True,
            text=True,
            env=quiet_env(),
        ).stdout
        d_count = sum(len(b.get("experiments") or []) for b in json.loads(out))
        g_list = med(timecmd([gitxp_bin, "log", "--format", "json"], reps, cwd=g_path))
        g_list_cpu = cmd_cpu(reps)
        cache = os.path.join(d_path, ".dvc", "tmp", "exps", "cache")
        d_first = med(
            timecmd(
                [dvc_bin, "exp", "show", "--json"],
                max(3, reps // 2),
                cwd=d_path,
                before=lambda: shutil.rmtree(cache, ignore_errors=True),
            )
        )
        d_first_cpu = cmd_cpu(max(3, reps // 2))
        d_cached = med(timecmd([dvc_bin, "exp", "show", "--json"], max(3, reps // 2), cwd=d_path))
        d_cached_cpu = cmd_cpu(max(3, reps // 2))
    finally:
        discard(tmp)
    group = "Command line"
    emit(
        [
            result(
                "cli.record",
                group,
                "record a run from the command line (params + metrics files changed)",
                "s",
                g_rec,
                "dvc exp save",
                d_rec,
                ratio_min=5,
                cpu=g_rec_cpu,
                peer_cpu=d_rec_cpu,
            ),
            result(
                "cli.list50.first",
                group,
                f"list {N_RUNS} runs as JSON",
                "s",
                g_list,
                "dvc exp show --json (first: cache removed)",
                d_first,
                ratio_min=10,
                cpu=g_list_cpu,
                peer_cpu=d_first_cpu,
                dvc_experiments=d_count,
            ),
            result(
                "cli.list50.cached",
                group,
                f"list {N_RUNS} runs as JSON",
                "s",
                g_list,
                "dvc exp show --json (cached)",
                d_cached,
                notes="no target",
                cpu=g_list_cpu,
                peer_cpu=d_cached_cpu,
            ),
        ]
    )


if __name__ == "__main__":
    main("--quick" in sys.argv)
