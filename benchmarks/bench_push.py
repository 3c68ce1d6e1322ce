"""Benchmark `gitxp.ops.sharing.push`: many runs to an empty remote, one new run to a full one.

Runs standalone and prints one JSON line:

    python benchmarks/bench_push.py [--empty 1000] [--existing 10000]

Runs are synthesised with `git fast-import` (one commit each, as gitxp
writes a run that ends within its start delay, with run.json, params.json,
summary.json, a shared env.json and a small Parquet-sized metrics blob) so
the set-up takes seconds; only `push` itself is timed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import discard
from benchmarks.git_servers import Server, git_daemon, git_http
from gitxp.format.ids import new_run_id
from gitxp.ops import sharing

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str, data: bytes | None = None) -> str:
    out = subprocess.run(
        ["git", *args], cwd=cwd, input=data, capture_output=True, env=ENV, check=True
    )
    return out.stdout.decode()


def _blob(lines: list[bytes], data: bytes) -> None:
    lines.append(b"data %d\n" % len(data))
    lines.append(data)
    lines.append(b"\n")


def synthesise(repo: Path, n: int, base: str) -> list[str]:
    """Add *n* finished runs on top of commit *base* with one `git fast-import`."""
    env_json = json.dumps({"python": {"version": "3.11"}, "packages": {"numpy": "2.0"}}).encode()
    lines: list[bytes] = []
    ids = []
    now = int(time.time())
    for i in range(n):
        run_id = new_run_id()
        ids.append(run_id)
        ref = f"refs/gitxp/runs/{run_id}".encode()
        meta = {
            "format": 1,
            "id": run_id,
            "name": f"run-{i}",
            "experiment": "bench",
            "status": "FINISHED",
        }
        lines.append(b"commit " + ref + b"\n")
        lines.append(b"committer bench <bench@example.com> %d +0000\n" % now)
        message = f"gitxp: run run-{i} FINISHED\n\nGitxp-Run: {run_id}\nGitxp-Status: FINISHED\n"
        _blob(lines, message.encode())
        lines.append(b"from " + base.encode() + b"\n")
        for path, content in (
            ("run.json", json.dumps(meta).encode()),
            ("params.json", json.dumps({"lr": i / n, "seed": i}).encode()),
            ("summary.json", json.dumps({"loss": {"last": 1 / (i + 1)}}).encode()),
            ("env.json", env_json),
            ("metrics/part-000001.parquet", os.urandom(600)),
        ):
            lines.append(f"M 100644 inline {path}\n".encode())
            _blob(lines, content)
        lines.append(b"\n")
    git(repo, "fast-import", "--quiet", data=b"".join(lines))
    return ids


def timed(func):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    value = func()
    return time.perf_counter() - start, value


def repeated(results: dict[str, object], key: str, reps: int, once) -> None:  # type: ignore[no-untyped-def]
    """Time *once()* (which creates and pushes one new run) *reps* times: median and best,
    and this process's CPU seconds (user+system) per repetition."""
    cpu = _cpu()
    times = sorted(once() for _ in range(reps))
    results[key + "_median_s"] = round(times[len(times) // 2], 3)
    results[key + "_best_s"] = round(times[0], 3)
    results[key + "_client_cpu_s"] = round((_cpu() - cpu) / reps, 3)


def measured(results: dict[str, object], server: Server, key: str, reps: int, once) -> None:  # type: ignore[no-untyped-def]
    """`repeated`, plus the CPU seconds the server's git processes spent per repetition."""
    before = server.cpu_seconds()
    repeated(results, key, reps, once)
    results[key + "_server_cpu_s"] = round((server.cpu_seconds() - before) / reps, 3)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--empty", type=int, default=1000, help="runs pushed to an empty remote")
    parser.add_argument("--existing", type=int, default=10000, help="runs already on the remote")
    parser.add_argument("--reps", type=int, default=5, help="repetitions of the one-run pushes")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gitxp-bench-push-"))
    results: dict[str, object] = {"bench": "push", "empty_runs": args.empty}
    results["load_average_1m"] = round(os.getloadavg()[0], 2)  # the machine may be shared
    try:
        repo = work / "project"
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        (repo / "train.py").write_text("print('train')\n")
        git(repo, "add", ".")
        git(repo, "commit", "-q", "-m", "code")
        base = git(repo, "rev-parse", "HEAD").strip()

        # 1. push N runs to an empty bare remote (the code commit travels too)
        synthesise(repo, args.empty, base)
        empty = work / "empty.git"
        git(work, "init", "-q", "--bare", str(empty))
        seconds, res = timed(lambda: sharing.push(repo, str(empty)))
        assert [r.status for r in res] == ["new"] * args.empty, "push to empty failed"
        results["push_runs_to_empty_path_s"] = round(seconds, 3)
        results["push_runs_to_empty_per_run_ms"] = round(1000 * seconds / args.empty, 3)
        again, res = timed(lambda: sharing.push(repo, str(empty)))
        results["push_again_all_up_to_date_s"] = round(again, 3)

        # 2. the remote holds EXISTING runs; push one new one
        synthesise(repo, args.existing - args.empty, base)
        full = work / "full.git"
        git(work, "init", "-q", "--bare", str(full))
        git(repo, "push", "-q", str(full), "main", "refs/gitxp/runs/*:refs/gitxp/runs/*")
        results["existing_runs"] = args.existing

        def one_new(url: str, named: bool) -> float:
            new = synthesise(repo, 1, base)[0]
            seconds, res = timed(lambda: sharing.push(repo, url, runs=[new] if named else None))
            statuses = [r.status for r in res]
            assert statuses.count("new") == 1, statuses[:5]
            return seconds

        repeated(
            results, "push_1_new_named_to_full_path", args.reps, lambda: one_new(str(full), True)
        )
        repeated(
            results,
            "push_1_new_all_selected_to_full_path",
            args.reps,
            lambda: one_new(str(full), False),
        )

        seconds, res = timed(lambda: sharing.fetch(repo, str(full)))
        assert {r.status for r in res} == {"up-to-date"}
        results["fetch_nothing_new_from_full_path_s"] = round(seconds, 3)

        # every run of the full remote into a repository that has none yet
        fresh = work / "fresh"
        fresh.mkdir()
        git(fresh, "init", "-q", "-b", "main")
        seconds, res = timed(lambda: sharing.fetch(fresh, str(full)))
        assert res and {r.status for r in res} == {"new"}, "fetch into an empty repository"
        results["fetch_all_into_empty_path_runs"] = len(res)
        results["fetch_all_into_empty_path_s"] = round(seconds, 3)
        discard(str(fresh))

        # the same over git:// (a real git daemon) and smart HTTP (git http-backend as CGI)
        for kind, serve in (("git_daemon", git_daemon), ("http", git_http)):
            with serve(work) as server:
                url = f"{server.url}/full.git"
                for named in (True, False):
                    label = "named" if named else "all_selected"

                    def gitxp_push(url: str = url, named: bool = named) -> float:
                        return one_new(url, named)

                    measured(
                        results, server, f"push_1_new_{label}_to_full_{kind}", args.reps, gitxp_push
                    )

                def git_cli(url: str = url) -> float:
                    new = synthesise(repo, 1, base)[0]
                    ref = f"refs/gitxp/runs/{new}"
                    seconds, _ = timed(lambda: git(repo, "push", "-q", url, f"{ref}:{ref}"))
                    return seconds

                # the yardstick: the real git CLI pushing the same kind of run to the same server
                measured(
                    results, server, f"reference_git_cli_push_1_new_{kind}", args.reps, git_cli
                )
        # fetches over git://, the route users have: everything into an empty repository,
        # nothing new, then 10 new runs
        with git_daemon(work) as server:
            url = f"{server.url}/full.git"
            fresh = work / "fresh-wire"
            fresh.mkdir()
            git(fresh, "init", "-q", "-b", "main")
            for key, expect in (("all_into_empty", "new"), ("nothing_new", "up-to-date")):
                cpu, served = _cpu(), server.cpu_seconds()
                seconds, res = timed(lambda: sharing.fetch(fresh, url))
                assert res and {r.status for r in res} == {expect}, key
                results[f"fetch_{key}_git_daemon_s"] = round(seconds, 3)
                results[f"fetch_{key}_git_daemon_client_cpu_s"] = round(_cpu() - cpu, 3)
                results[f"fetch_{key}_git_daemon_server_cpu_s"] = round(
                    server.cpu_seconds() - served, 3
                )
            ten = synthesise(repo, 10, base)
            git(
                repo,
                "push",
                "-q",
                str(full),
                *[f"refs/gitxp/runs/{i}:refs/gitxp/runs/{i}" for i in ten],
            )
            cpu, served = _cpu(), server.cpu_seconds()
            seconds, res = timed(lambda: sharing.fetch(fresh, url))
            assert [r.status for r in res].count("new") == 10
            results["fetch_10_new_git_daemon_s"] = round(seconds, 3)
            results["fetch_10_new_git_daemon_client_cpu_s"] = round(_cpu() - cpu, 3)
            results["fetch_10_new_git_daemon_server_cpu_s"] = round(
                server.cpu_seconds() - served, 3
            )
            discard(str(fresh))
        subprocess.run(
            ["git", "fsck", "--strict", "--no-progress"], cwd=full, check=True, capture_output=True
        )
        results["remote_fsck_strict"] = "ok"
    finally:
        discard(str(work))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
