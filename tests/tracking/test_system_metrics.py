"""System metrics: sampled at the configured rate into system/ series, stopped with the run."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections import namedtuple
from pathlib import Path

import pytest

import gitxp
from gitxp.tracking import system_metrics

pytest.importorskip("psutil")


@pytest.fixture(autouse=True)
def _no_system_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITXP_SYSTEM_METRICS", raising=False)
    monkeypatch.delenv("GITXP_SYSTEM_METRICS_SECONDS", raising=False)


def _sampler_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("gitxp-system-metrics")]


def test_samples_land_as_system_series_with_wall_clock_steps(repo: Path) -> None:
    with gitxp.start_run(system_metrics=True, system_metrics_seconds=0.25) as run:
        assert _sampler_threads()
        for i in range(20):
            run.log_metric("loss", 1 / (i + 1))
            time.sleep(0.06)  # ~1.2 s of "training"
    assert not _sampler_threads()
    record = gitxp.open().run(run.id)
    df = record.metrics()
    system = df[df["key"].str.startswith("system/")]
    keys = set(system["key"])
    assert {
        "system/cpu_percent",
        "system/memory_percent",
        "system/memory_used_mb",
        "system/process_cpu_percent",
        "system/process_memory_rss_mb",
    } <= keys
    cpu = system[system["key"] == "system/cpu_percent"]
    # ~1.2 s at 0.25 s: 4 samples from the thread plus the final one at the end
    assert 3 <= len(cpu) <= 7
    assert cpu["step"].min() >= 0 and cpu["step"].max() <= 3  # whole seconds since start
    assert cpu["step"].is_monotonic_increasing
    assert (cpu["value"] >= 0).all() and (cpu["value"] <= 100).all()
    rss = system[system["key"] == "system/process_memory_rss_mb"]["value"]
    assert (rss > 10).all()  # this Python process holds more than 10 MB
    # GPUs: reported exactly when NVML finds some (absent GPUs are simply not reported)
    gpu_keys = {k for k in keys if k.startswith("system/gpu")}
    assert bool(gpu_keys) == bool(system_metrics._Gpus().handles)
    # the user's own series is untouched by the sampler
    assert list(df[df["key"] == "loss"]["step"]) == list(range(20))
    assert record.meta["system_metrics_seconds"] == 0.25


def test_off_by_default_and_env_turns_it_on(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with gitxp.start_run() as quiet:
        assert not _sampler_threads()
    monkeypatch.setenv("GITXP_SYSTEM_METRICS", "1")
    monkeypatch.setenv("GITXP_SYSTEM_METRICS_SECONDS", "0.2")
    with gitxp.start_run() as sampled:
        assert _sampler_threads()
        time.sleep(0.5)
    repo_ = gitxp.open()
    assert not any(k.startswith("system/") for k in repo_.run(quiet.id).metrics()["key"])
    assert "system/cpu_percent" in set(repo_.run(sampled.id).metrics()["key"])
    # an explicit False beats the environment
    with gitxp.start_run(system_metrics=False):
        assert not _sampler_threads()


def test_short_run_still_gets_one_sample(repo: Path) -> None:
    with gitxp.start_run(system_metrics=True) as run:  # default interval: 10 s
        time.sleep(0.6)
    keys = set(gitxp.open().run(run.id).metrics()["key"])
    assert "system/cpu_percent" in keys


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ({"GITXP_SYSTEM_METRICS": "maybe"}, None),
        ({"GITXP_SYSTEM_METRICS": "1", "GITXP_SYSTEM_METRICS_SECONDS": "soon"}, None),
        ({"GITXP_SYSTEM_METRICS": "1", "GITXP_SYSTEM_METRICS_SECONDS": "-1"}, None),
        ({}, 0),
        ({}, float("nan")),
    ],
)
def test_bad_settings_fail_before_a_run_is_created(
    repo: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], value: float | None
) -> None:
    for key, val in env.items():
        monkeypatch.setenv(key, val)
    with pytest.raises(gitxp.InvalidValueError, match=r"GITXP_SYSTEM_METRICS|system_metrics"):
        gitxp.start_run(
            system_metrics=True if value is not None else None, system_metrics_seconds=value
        )
    assert gitxp.active_run() is None
    assert gitxp.open().runs().empty


def test_sampler_stops_when_the_script_crashes(repo: Path) -> None:
    script = repo / "crash.py"
    script.write_text(
        textwrap.dedent(
            """
            import time, gitxp
            run = gitxp.start_run(system_metrics=True, system_metrics_seconds=0.2)
            print(run.id, flush=True)
            time.sleep(0.7)
            raise RuntimeError("diverged")
            """
        )
    )
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=repo
    )
    assert proc.returncode == 1
    assert "diverged" in proc.stderr
    assert time.monotonic() - started < 30  # the sampler thread does not hold the exit up
    run_id = proc.stdout.split()[0]
    record = gitxp.open().run(run_id)
    assert record.status == "FAILED"
    cpu = record.metric_history("system/cpu_percent")
    assert len(cpu) >= 2


def test_sampler_feeds_any_sink_and_measures_a_child_process_tree() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; x = bytearray(50 * 2**20); time.sleep(5)"]
    )
    try:
        time.sleep(0.5)
        got: list[tuple[str, float, int, int]] = []
        start = time.time_ns() // 1_000_000
        sampler = system_metrics.SystemMetricsSampler(
            lambda *point: got.append(point), start, 0.1, pid=child.pid
        ).start()
        time.sleep(0.35)
        sampler.stop()
        assert not sampler.running
        rss = [v for k, v, _, _ in got if k == "system/process_memory_rss_mb"]
        assert rss and min(rss) > 50  # the child's 50 MB buffer is counted
        assert all(step == 0 for _, _, step, _ in got)
        assert all(ts >= start for _, _, _, ts in got)
        count = len(got)
        time.sleep(0.3)
        assert len(got) == count  # nothing after stop
        sampler.stop()  # twice is fine
    finally:
        child.kill()
        child.wait()


def test_disk_and_network_rates_are_megabytes_per_second_and_never_negative() -> None:
    import psutil

    probe = system_metrics.Probe()
    time.sleep(0.05)
    keys = set(probe.sample())
    for counters, names in (
        (psutil.disk_io_counters(), system_metrics.DISK_RATES),
        (psutil.net_io_counters(), system_metrics.NETWORK_RATES),
    ):
        wanted = {system_metrics.PREFIX + name for name in names}
        assert (wanted <= keys) == (counters is not None), keys
    net_io = namedtuple("net_io", "bytes_recv bytes_sent")  # the fields read of psutil's
    old, new = net_io(10 * 2**20, 50 * 2**20), net_io(14 * 2**20, 2**20)  # sent: reset
    rates = system_metrics._rates(new, old, 2.0, system_metrics.NETWORK_RATES)
    assert rates == {"system/network_recv_mb_per_s": 2.0, "system/network_sent_mb_per_s": 0.0}
    assert system_metrics._rates(new, None, 2.0, system_metrics.NETWORK_RATES) == {}


CHILD = """
import os, time
import gitxp
print("ENV", os.environ.get("GITXP_SYSTEM_METRICS"), flush=True)
with gitxp.start_run(system_metrics=True) as run:  # the launcher samples; this must not
    data = bytearray(40 * 2**20)  # 40 MB the launcher should see in CMD's tree
    for i in range(5):
        gitxp.log_metric("loss", 1 / (i + 1))
        time.sleep(0.2)
"""


def test_gitxp_run_samples_the_command_process_tree(repo: Path) -> None:
    (repo / "child.py").write_text(CHILD)
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    proc = subprocess.run(
        [sys.executable, "-m", "gitxp.cli.main", "run", "-n", "sampled", "--system-metrics",
         "--system-metrics-seconds", "0.25", "--", "python", "child.py"],
        cwd=repo, capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "ENV parent" in proc.stdout  # CMD is told its parent samples
    record = gitxp.open(repo).run("sampled")
    assert record.status == "FINISHED"
    assert record.meta["system_metrics_seconds"] == 0.25
    df = record.metrics()
    assert list(df[df["key"] == "loss"]["step"]) == [0, 1, 2, 3, 4]
    cpu = df[df["key"] == "system/cpu_percent"]
    # one sample per 0.25 s of the run, by the launcher alone: a second sampler would double
    # the count (bounded by the run's own duration, so a slow machine does not fail it)
    seconds = (record.end_time - record.start_time) / 1000
    assert 3 <= len(cpu) <= seconds / 0.25 + 2, (len(cpu), seconds)
    rss = df[df["key"] == "system/process_memory_rss_mb"]["value"]
    assert rss.max() > 40


def test_gitxp_run_without_the_flag_records_no_system_metrics(repo: Path) -> None:
    (repo / "child.py").write_text("import gitxp; gitxp.log_metric('x', 1.0)\n")
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    proc = subprocess.run(
        [sys.executable, "-m", "gitxp.cli.main", "run", "-n", "plain", "--", "python", "child.py"],
        cwd=repo, capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    keys = set(gitxp.open(repo).run("plain").metrics()["key"])
    assert keys == {"x"}
