"""Render benchmarks/results/latest.json as docs/performance.md."""

from __future__ import annotations

import json
import os
from typing import Any

from .common import RESULTS, ROOT

DOC = os.path.join(ROOT, "docs", "performance.md")

INTRO = """# Performance

gitxp is measured side by side with the trackers people move from: MLflow
(its default sqlite store), TensorBoard (through tensorboardX) and DVC
experiments. Every figure below comes from one run of the benchmark suite on
one machine: each measure runs gitxp and the peer on the same work, in the
same run, and the ratio is peer / gitxp (higher is better for gitxp).

Reproduce with:

```sh
pip install '.[bench]'          # a regular install, as users get it (see below)
python -m benchmarks            # everything (builds cached fixtures on first use)
python -m benchmarks --quick    # a few minutes, smaller fixtures
python -m benchmarks --only listing,cli   # some groups; the others keep their figures
```

The targets are judged on wall-clock time, as a user feels it. The machine
these figures come from is shared by several jobs (see its load average
below), so a process often waits for a core; the "ratio of CPU time"
column divides the CPU seconds (user + system, children included) each
side used for the same work, which is what the code costs whatever else
the machine is doing.

Install gitxp normally (not `pip install -e`) before measuring: an editable
install adds an import hook that costs every Python start-up 10-20 ms,
which the command-line figures would otherwise include. Profile one side
with `pyinstrument -m benchmarks.bench_listing` or `py-spy record -- python
-m benchmarks.bench_create` (pyinstrument is in the `bench` extra).

Results are written to `benchmarks/results/latest.json` and rendered here.
Fixture repositories (up to 10,000 runs for each tool) are cached under
`benchmarks/.cache/` and reused. The machine is shared: figures vary by a
few tens of percent from one run to the next.
"""

METHOD = """## What is measured

- **Logging a point**: a loop of `Run.log_metric(key, value, step)` then
  `end()` (the final Parquet encode and commit included), divided by the
  points; tensorboardX `add_scalar` then `close()`; MLflow `log_metric` per
  point and `log_batch` of 1,000 points, sqlite store.
- **Creating a run**: 5 params and 3 metrics x 100 steps, committed. gitxp
  with its defaults (the work tree is checked, HEAD recorded as the code);
  MLflow through its fastest client path (one `log_batch` with everything).
  Medians over 100 runs each in one process, after 20 warm-up runs each, the
  tools taking turns in blocks of 20 runs; then the same on tmpfs
  (`/dev/shm`), which shows the code's cost without the disk. On disk, the
  measure first waits (up to a minute) until creating a file costs under
  150 µs, as it does when this VM's disk is not busy discarding deleted
  blocks, and its notes give that cost before and after. The first run
  of a process, which captures the environment, is shown separately.
- **Listing**: `gitxp.open(path).runs()` into a DataFrame, warm (listing
  cache present) and cold (cache deleted: every run read from git objects,
  timed after one unmeasured cold listing so the objects are in the page
  cache, as right after a clone); `mlflow.search_runs` over the same runs.
  Fixture runs have 5 params and 3 metrics x 100 steps, in three
  experiments.
- **Metric history**: `repo.run(id).metric_history(key)` against
  `MlflowClient.get_metric_history` (100 points): each call after a full
  garbage collection (so with cold CPU caches), and back to back. Each side
  is measured in five fresh processes, taking turns, and the median of the
  process medians is reported: how a process's memory lands in the caches
  moves gitxp's cold figure by a third from one process to the next.
- **Bulk reads**: every `loss` point of 2,000 runs x 300 steps (3 metrics
  a run, 1.8M points stored, 600,000 read) into one DataFrame:
  `gitxp.open(path).metrics(keys="loss")`, opening and listing included,
  warm (the parts cache in place) and cold (deleted before each call);
  MLflow: a loop of `get_metric_history` over the run ids, and the sqlite
  store's `get_metric_history_bulk_interval` with every run id in one call
  and `max_results=300` (every point), each turned into the same DataFrame
  (MLflow's run listing not timed). `Repo.dataset()` the first time and
  again, and a query over it (DuckDB where installed, pyarrow otherwise),
  in a hard-linked copy of the fixture.
- **Runs at scale**: see "MLflow at 100,000 runs" above.
- **Storage**: all bytes gitxp wrote (loose objects, run refs, reflogs; the
  rebuildable listing cache excluded) divided by the points; MLflow's sqlite
  file divided by the same points.
- **Where**: scratch projects and stores go to `.bench-scratch/` in the
  checkout (`GITXP_BENCH_TMP` moves it), and are deleted only once the whole
  suite has measured: on this VM deleting thousands of files slows the
  disk for minutes, and /tmp is slower than the checkout to begin with. The
  cost of creating one file there is reported with the machine.
- **Command line**: the installed console scripts, each a fresh process.
- **Snapshot**: `take_snapshot` of a 10,000-file project against
  `cp .git/index <tmp> && GIT_INDEX_FILE=<tmp> git add -A && git write-tree`.
- **Memory**: a fresh process logs 10M points with `log_metric`, peak RSS
  from `getrusage`.
- **Sharing** (no peer, no target): `benchmarks/bench_push.py` makes runs of
  one commit each with `git fast-import`, then times `gitxp push` of 1,000
  runs to an empty bare remote and again with nothing new, one new run
  pushed to a remote holding 10,000 (by path, through a real `git daemon`
  and over smart HTTP, `git http-backend` under a small threaded server,
  beside the `git` CLI's push of the same kind of run), and `gitxp fetch`
  of every run into an empty repository (path and git daemon), of nothing
  new and of 10 new runs, with client and server CPU seconds.
"""


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("s",) and value < 1:
        return f"{value * 1000:,.1f} ms"
    if unit == "s":
        return f"{value:,.2f} s"
    if unit == "x":
        return f"{value:,.1f}x"
    if abs(value) >= 100:
        return f"{value:,.0f} {unit}"
    if abs(value) >= 10:
        return f"{value:,.1f} {unit}"
    return f"{value:,.2f} {unit}"


def _ratio(r: float | None) -> str:
    if r is None:
        return "-"
    if r >= 10:
        return f"{r:,.0f}x"
    return f"{r:,.2f}x"


def _verdict(row: dict[str, Any]) -> str:
    if row.get("pass") is None:
        return ""
    return "pass" if row["pass"] else "**miss**"


SCALE = """The 100,000 runs are one real run recorded by gitxp and repeated
with `git fast-import` (benchmarks/scale_fixture.py): each run has its own
run.json (id, name, one of three experiments, start and end times),
params.json (`lr`, `batch_size`, `optimizer`, `layers`, `dropout`) and
summary.json (the final `acc` and `loss`), and all share one metric part of
100 points of `acc` and `loss`. Every ref is packed, as after `git gc` or a
clone.

MLflow holds the same runs (benchmarks/mlflow_scale_fixture.py): its client
creates the sqlite store and the three experiments (so MLflow's own
migrations make the schema), then the runs are written with bulk SQL in one
transaction, row for row what `create_run(run_name=...)`, `log_batch` and
`set_terminated` write (checked by tests/benchmarks/, which reads 50 runs
back through MLflow's `search_runs`, `get_run` and `get_metric_history` and
compares them with gitxp's). The run sequence is the one the gitxp fixture
is made from, so names, experiments, times, params and the final `acc` and
`loss` (MLflow's `latest_metrics`, which its listing and filters read) are
equal; every run has the shared part's 200 points in `metrics` (20M rows,
4.8 GB). As in the gitxp fixture, a run's final `acc` and `loss` are its
own while its history is the shared one, so the two disagree alike in both
stores. Logging 100,000 runs through MLflow's client would take ~30
minutes; the bulk insert takes ~5.

Each gitxp figure is measured as in the listing rows; MLflow's in one fresh
process: its first `search_runs` of every run (the store opened and its
schema checked inside the call, as in any new process), then a second
(warm), the filter (median of two after one untimed) and the newest 20
(median of three). Its peak RSS is read right after its first listing. The
newest 20 as a command: a fresh `python -c` process calling `search_runs`
with `max_results=20, order_by=["start_time DESC"]` and printing the frame
(`mlflow runs list` prints every run of one experiment, not the newest
20). The MLflow process runs before the gitxp block and its commands after
it, in the same invocation."""


def _scale(data: dict[str, Any]) -> list[str]:
    """The 100,000-run rows with MLflow's figure and both CPU times side by side."""
    rows = [r for r in data["results"] if r["id"].startswith("scale.100000.")]
    if not rows:
        return []
    lines = [
        "## MLflow at 100,000 runs",
        "",
        "| measure | gitxp | gitxp CPU | MLflow | MLflow CPU | ratio | ratio of CPU time | "
        "target | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        unit = row["unit"]
        timed = unit == "s"  # CPU seconds beside the times; a memory row has none
        lines.append(
            f"| {row['title']} | {_fmt(row['gitxp'], unit)} | "
            f"{_fmt(row.get('cpu'), unit) if timed else '-'} | "
            f"{_fmt(row.get('peer_value'), unit)} | "
            f"{_fmt(row.get('peer_cpu'), unit) if timed else '-'} | "
            f"{_ratio(row.get('ratio'))} | {_ratio(row.get('cpu_ratio'))} | "
            f"{row.get('target') or '-'} | {_verdict(row)} |"
        )
    peers = [f"- {r['title']}: {r['peer']}" for r in rows if r.get("peer")]
    return [*lines, "", "MLflow's side of each row:", "", *peers, "", SCALE, ""]


def render(data: dict[str, Any]) -> str:
    m = data["machine"]
    lines = [INTRO, "## Machine", ""]
    lines.append(f"- measured {data['finished']} ({'quick' if data.get('quick') else 'full'} run)")
    for group, when in sorted((data.get("rerun") or {}).items()):
        lines.append(f"- measured again on its own: `{group}`, {when}")
    lines.append(
        f"- CPU: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB RAM; "
        f"load average at start {m['load_average'][0]}"
    )
    lines.append(f"- {m['os']}; Python {m['python']}; {m['git']}")
    fs = m.get("file_create_us")
    if fs:
        lines.append(
            f"- creating one small file: {fs['scratch']} µs where the measures write "
            f"(`.bench-scratch/` in the checkout), {fs['/tmp']} µs in /tmp"
        )
    pk = ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v)
    lines.append(f"- packages: {pk}")
    lines += ["", "## Results", ""]
    lines.append(
        "| measure | gitxp | peer | peer figure | ratio | ratio of CPU time | target | verdict |"
    )
    lines.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    scaling = None
    for row in data["results"]:
        if row["id"] == "list.scaling":
            scaling = row["details"].get("table")
            continue
        title = row["title"]
        if row.get("notes"):
            title += f" <br><sub>{row['notes']}</sub>"
        lines.append(
            f"| {title} | {_fmt(row['gitxp'], row['unit'])} | {row.get('peer') or '-'} | "
            f"{_fmt(row.get('peer_value'), row['unit'])} | {_ratio(row.get('ratio'))} | "
            f"{_ratio(row.get('cpu_ratio'))} | "
            f"{row.get('target') or '-'} | {_verdict(row)} |"
        )
    if scaling:
        lines += [
            "",
            "## Scaling of listing",
            "",
            "Seconds to list N runs into a DataFrame (gitxp warm and cold, a filtered "
            "gitxp query, MLflow `search_runs` plain and filtered).",
            "",
            "| runs | gitxp warm | gitxp cold | gitxp query | MLflow | MLflow query | "
            "ratio (warm) | gitxp warm CPU | MLflow CPU |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for s in scaling:
            lines.append(
                f"| {s['runs']:,} | {_fmt(s['gitxp_warm_s'], 's')} | "
                f"{_fmt(s['gitxp_cold_s'], 's')} | {_fmt(s['gitxp_query_s'], 's')} | "
                f"{_fmt(s['mlflow_s'], 's')} | {_fmt(s['mlflow_query_s'], 's')} | "
                f"{_ratio(s['mlflow_s'] / s['gitxp_warm_s'])} | "
                f"{_fmt(s.get('gitxp_warm_cpu_s'), 's')} | {_fmt(s.get('mlflow_cpu_s'), 's')} |"
            )
        first, last = scaling[0], scaling[-1]
        growth = last["runs"] / first["runs"]
        lines += [
            "",
            f"From {first['runs']:,} to {last['runs']:,} runs ({growth:,.0f}x the runs) "
            f"the warm gitxp listing grows "
            f"{last['gitxp_warm_s'] / first['gitxp_warm_s']:,.0f}x and MLflow's "
            f"{last['mlflow_s'] / first['mlflow_s']:,.0f}x.",
        ]
    lines += ["", *_scale(data), METHOD]
    if data.get("commentary"):
        lines += ["## Where targets are missed, and why", "", data["commentary"].strip(), ""]
    return "\n".join(lines).rstrip() + "\n"


def write(data: dict[str, Any]) -> None:
    os.makedirs(os.path.dirname(DOC), exist_ok=True)
    commentary = os.path.join(RESULTS, "commentary.md")
    if os.path.exists(commentary):
        with open(commentary) as f:
            data = {**data, "commentary": f.read()}
    with open(DOC, "w") as f:
        f.write(render(data))


if __name__ == "__main__":
    with open(os.path.join(RESULTS, "latest.json")) as f:
        write(json.load(f))
