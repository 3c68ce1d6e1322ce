"""Run the benchmark suite: each group in a fresh process, results to JSON and Markdown.

    python -m benchmarks [--quick] [--only GROUP[,GROUP...]] [--list]

Groups: see GROUPS. With --only, the groups not run keep their figures from
the previous benchmarks/results/latest.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time

from . import common, machine, report
from .common import RESULTS, ROOT, quiet_env, result

GROUPS = {
    "logging": "benchmarks.bench_logging",
    "create": "benchmarks.bench_create",
    "listing": "benchmarks.bench_listing",
    "history": "benchmarks.bench_history",
    "bulk": "benchmarks.bench_bulk",
    "storage": "benchmarks.bench_storage",
    "cli": "benchmarks.bench_cli",
    "workflows": "benchmarks.bench_workflows",
    "snapshot": "benchmarks.bench_snapshot",
    "memory": "benchmarks.bench_memory",
    "push": "benchmarks.bench_push",
    "tensorboard": "benchmarks.bench_tensorboard",
    "registry": "benchmarks.bench_registry",
    "ranks": "benchmarks.bench_ranks",
    "mlflow_plugin": "benchmarks.bench_mlflow_plugin",
    "scale": "benchmarks.bench_scale",
}


def error_row(name: str, output: str) -> dict:
    """A row saying a group failed (its output's tail in the notes)."""
    return {
        "id": f"{name}.error",
        "group": name,
        "title": f"{name}: failed to run",
        "unit": "",
        "gitxp": None,
        "peer": None,
        "peer_value": None,
        "ratio": None,
        "target": None,
        "pass": False,
        "notes": output[-300:],
        "details": {},
        "group_key": name,
    }


def push_group(quick: bool) -> list[dict]:
    """benchmarks/bench_push.py (written with `gitxp push`) prints one JSON object; adapt it."""
    script = os.path.join(ROOT, "benchmarks", "bench_push.py")
    if not os.path.exists(script):
        print("[push] skipped: benchmarks/bench_push.py is not on this branch yet", file=sys.stderr)
        return []
    argv = [sys.executable, script, "--empty", "1000", "--existing", "2000" if quick else "10000"]
    t = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, env=quiet_env(), stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        print(f"[push] FAILED (exit {proc.returncode})", file=sys.stderr)
        return [error_row("push", proc.stdout)]
    raw = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"[push] done in {time.perf_counter() - t:.0f}s", file=sys.stderr)
    n, big = raw["empty_runs"], raw["existing_runs"]
    group = "Sharing"
    note = "no peer, no target in the issue"
    rows = [
        result(
            "push.empty",
            group,
            f"`gitxp push`: {n:,} runs to an empty remote (path)",
            "s",
            raw["push_runs_to_empty_path_s"],
            notes=note,
            raw=raw,
        ),
        result(
            "push.noop",
            group,
            f"`gitxp push` again: {n:,} runs, all up to date",
            "s",
            raw["push_again_all_up_to_date_s"],
            notes=note,
        ),
        result(
            "push.one.path",
            group,
            f"push 1 new run to a remote holding {big:,} (path)",
            "s",
            raw["push_1_new_all_selected_to_full_path_median_s"],
            notes=note,
        ),
        result(
            "fetch.all.path",
            group,
            f"`gitxp fetch`: {raw['fetch_all_into_empty_path_runs']:,} runs into an empty "
            "repository (path)",
            "s",
            raw["fetch_all_into_empty_path_s"],
            notes=note,
        ),
        result(
            "push.one.daemon",
            group,
            f"push 1 new run to a remote holding {big:,} (git:// daemon)",
            "s",
            raw["push_1_new_all_selected_to_full_git_daemon_median_s"],
            notes=note,
        ),
        result(
            "push.one.http",
            group,
            f"push 1 new run to a remote holding {big:,} (smart HTTP)",
            "s",
            raw["push_1_new_all_selected_to_full_http_median_s"],
            notes=note,
        ),
        result(
            "fetch.ten.daemon",
            group,
            f"`gitxp fetch` of 10 new runs from a remote holding {big:,} (git:// daemon)",
            "s",
            raw["fetch_10_new_git_daemon_s"],
            notes=note,
        ),
    ]
    for row in rows:
        row["group_key"] = "push"
    return rows


def run_group(name: str, quick: bool) -> list[dict]:
    if name == "push":
        return push_group(quick)
    module = GROUPS[name]
    path = os.path.join(ROOT, *module.split(".")) + ".py"
    if not os.path.exists(path):
        print(f"[{name}] skipped: {module} is not on this branch yet", file=sys.stderr)
        return []
    argv = [sys.executable, "-m", module] + (["--quick"] if quick else [])
    t = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, env=quiet_env(), stdout=subprocess.PIPE, text=True)
    took = time.perf_counter() - t
    marker = "@@RESULTS@@"
    if proc.returncode != 0 or marker not in proc.stdout:
        print(f"[{name}] FAILED (exit {proc.returncode}) after {took:.0f}s", file=sys.stderr)
        return [error_row(name, proc.stdout)]
    rows = json.loads(proc.stdout.rsplit(marker, 1)[1].strip().splitlines()[0])
    print(f"[{name}] done in {took:.0f}s", file=sys.stderr)
    for row in rows:
        row["group_key"] = name
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small fixtures, a few minutes")
    parser.add_argument("--only", default="", help="comma-separated groups to run")
    parser.add_argument("--list", action="store_true", help="list the groups and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(GROUPS))
        return 0
    only = [g.strip() for g in args.only.split(",") if g.strip()] or list(GROUPS)
    unknown = [g for g in only if g not in GROUPS]
    if unknown:
        parser.error(f"unknown group(s) {', '.join(unknown)}; choose from {', '.join(GROUPS)}")
    latest = os.path.join(RESULTS, "latest.json")
    previous: list[dict] = []
    base: dict = {}  # the run the groups not re-run come from
    if args.only and os.path.exists(latest):
        with open(latest) as f:
            base = json.load(f)
        previous = base.get("results", [])
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    info = machine.describe()
    fresh: dict[str, list[dict]] = {}
    for name in only:
        fresh[name] = run_group(name, args.quick)
    results = []
    for name in GROUPS:
        if name in fresh:
            results += fresh[name]
        else:
            results += [r for r in previous if r.get("group_key") == name]
    finished = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    data = {
        "started": started,
        "finished": finished,
        "quick": args.quick,
        "machine": info,
        "results": results,
    }
    if base and set(only) != set(GROUPS):
        # most figures still come from the earlier run: keep its date and machine
        # description, and say which groups were measured again, and when
        rerun = {**base.get("rerun", {}), **{name: finished for name in only}}
        data = {**base, "results": results, "rerun": rerun}
    common.empty_trash()  # the scratch directories, deleted now that nothing is measured
    os.makedirs(RESULTS, exist_ok=True)
    tmp = latest + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, latest)
    report.write(data)
    for r in results:
        if r["id"] == "list.scaling":
            continue
        ratio = f"{r['ratio']:.2f}x" if r.get("ratio") else "-"
        verdict = {True: "pass", False: "MISS", None: ""}[r.get("pass")]
        print(
            f"{r['id']:<28} gitxp={r['gitxp']!s:<12.8} peer={r.get('peer_value')!s:<12.8} "
            f"ratio={ratio:<10} {r.get('target') or '':<22} {verdict}"
        )
    return 0 if all(r.get("pass") is not False for r in results) else 1
