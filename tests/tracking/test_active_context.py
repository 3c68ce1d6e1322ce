"""The active run belongs to a thread or asyncio task: concurrent runs never write into each other.

Every test records real runs in a real git repository and reads them back.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import gitxp
from gitxp import tracking  # the public activate/push_active/pop_active

POINTS = 1_000


def _in_threads(*targets: Callable[[], None]) -> None:
    """Run each target in its own thread; re-raise the first error any of them hit."""
    errors: list[BaseException] = []

    def wrap(target: Callable[[], None]) -> Callable[[], None]:
        def body() -> None:
            try:
                target()
            except BaseException as exc:
                errors.append(exc)

        return body

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    if errors:
        raise errors[0]


def _values(repo: Path, run_id: str, key: str) -> list[float]:
    return gitxp.open(repo).run(run_id).metric_history(key)["value"].tolist()


def test_two_threads_each_log_into_their_own_run(repo: Path) -> None:
    barrier = threading.Barrier(2, timeout=30)
    ids: dict[str, str] = {}
    still: dict[str, bool] = {}

    def train(name: str, value: float) -> None:
        with gitxp.start_run(name=name) as run:
            ids[name] = run.id
            barrier.wait()  # both runs are open before either logs
            for step in range(POINTS):
                gitxp.log_metric("m", value, step=step)
                if step % 100 == 0:
                    barrier.wait()  # and they keep taking turns
            still[name] = gitxp.active_run() is run

    _in_threads(lambda: train("a", 1.0), lambda: train("b", 2.0))
    assert _values(repo, ids["a"], "m") == [1.0] * POINTS
    assert _values(repo, ids["b"], "m") == [2.0] * POINTS
    assert still == {"a": True, "b": True}
    assert gitxp.active_run() is None


def test_two_asyncio_tasks_each_log_into_their_own_run(repo: Path) -> None:
    ids: dict[str, str] = {}
    still: dict[str, bool] = {}

    async def train(name: str, value: float) -> None:
        with gitxp.start_run(name=name) as run:
            ids[name] = run.id
            for step in range(POINTS):
                gitxp.log_metrics({"m": value}, step=step)
                await asyncio.sleep(0)  # the other task logs in between
            still[name] = gitxp.active_run() is run

    async def main() -> None:
        await asyncio.gather(train("a", 1.0), train("b", 2.0))

    asyncio.run(main())
    assert _values(repo, ids["a"], "m") == [1.0] * POINTS
    assert _values(repo, ids["b"], "m") == [2.0] * POINTS
    assert still == {"a": True, "b": True}


def test_two_threads_and_two_tasks_at_once_each_keep_their_own_points(repo: Path) -> None:
    """Four runs at the same time: two in threads, two in asyncio tasks of the main thread."""
    ids: dict[str, str] = {}
    started = threading.Barrier(3, timeout=30)  # two threads and the event loop

    def in_thread(name: str, value: float) -> None:
        with gitxp.start_run(name=name) as run:
            ids[name] = run.id
            started.wait()
            for step in range(POINTS):
                gitxp.log_metric("m", value, step=step)
                gitxp.set_tag("who", name)

    async def in_task(name: str, value: float) -> None:
        with gitxp.start_run(name=name) as run:
            ids[name] = run.id
            for step in range(POINTS):
                gitxp.log_metric("m", value, step=step)
                gitxp.set_tag("who", name)
                await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.sleep(0)
        tasks = [asyncio.create_task(in_task("t1", 3.0)), asyncio.create_task(in_task("t2", 4.0))]
        await asyncio.to_thread(started.wait)
        await asyncio.gather(*tasks)

    threads = [
        threading.Thread(target=in_thread, args=("a", 1.0)),
        threading.Thread(target=in_thread, args=("b", 2.0)),
    ]
    for t in threads:
        t.start()
    asyncio.run(main())
    for t in threads:
        t.join(timeout=60)
    expected = {"a": 1.0, "b": 2.0, "t1": 3.0, "t2": 4.0}
    for name, value in expected.items():
        assert _values(repo, ids[name], "m") == [value] * POINTS
        assert gitxp.open(repo).run(ids[name]).tags == {"who": name}
    assert gitxp.active_run() is None


def test_a_worker_thread_does_not_see_the_main_threads_run(repo: Path) -> None:
    seen: list[object] = []

    def worker() -> None:
        seen.append(gitxp.active_run())
        with pytest.raises(gitxp.NoActiveRunError, match="per thread"):
            gitxp.log_metric("m", 9.0)

    with gitxp.start_run() as run:
        gitxp.log_metric("m", 1.0)
        _in_threads(worker)
        assert gitxp.active_run() is run
    assert seen == [None]
    assert _values(repo, run.id, "m") == [1.0]


def test_activate_shares_a_run_with_a_worker_thread_and_tasks_inherit_it(repo: Path) -> None:
    def worker(run: gitxp.Run) -> None:
        with tracking.activate(run) as same:
            assert same is run and gitxp.active_run() is run
            gitxp.log_metric("worker", 1.0)
        assert gitxp.active_run() is None

    async def task() -> None:
        gitxp.log_metric("task", 2.0)  # a task sees the run active where it was created

    with gitxp.start_run() as run:
        _in_threads(lambda: worker(run))
        asyncio.run(task())
    assert _values(repo, run.id, "worker") == [1.0]
    assert _values(repo, run.id, "task") == [2.0]


def test_push_and_pop_nest_and_a_run_ended_elsewhere_is_no_longer_active(repo: Path) -> None:
    outer = gitxp.start_run(name="outer")
    inner = gitxp.start_run(name="inner")
    assert gitxp.active_run() is inner
    tracking.pop_active(inner)
    assert gitxp.active_run() is outer
    tracking.push_active(inner)
    assert gitxp.active_run() is inner

    # a run started in this thread but ended in another one stops being active here
    _in_threads(inner.end)
    assert gitxp.active_run() is outer
    outer.end()
    assert gitxp.active_run() is None
    with pytest.raises(gitxp.GitxpError, match="has ended"):
        tracking.push_active(outer)
    with pytest.raises(gitxp.GitxpError, match="not active"):
        tracking.pop_active(outer)


def test_runs_left_open_in_two_threads_are_ended_at_exit(repo: Path) -> None:
    (repo / "two.py").write_text(
        "import threading, gitxp\n"
        "barrier = threading.Barrier(2)\n"
        "def train(name, value):\n"
        "    gitxp.start_run(name=name)\n"
        "    barrier.wait()\n"
        "    for step in range(200):\n"
        "        gitxp.log_metric('m', value, step=step)\n"
        "        if step % 20 == 0:\n"
        "            barrier.wait()\n"
        "threads = [threading.Thread(target=train, args=(n, v)) for n, v in (('a', 1.0), ('b', 2.0))]\n"
        "for t in threads: t.start()\n"
        "for t in threads: t.join()\n"
    )
    subprocess.run([sys.executable, "two.py"], cwd=repo, check=True, timeout=120)
    project = gitxp.open(repo)
    for name, value in (("a", 1.0), ("b", 2.0)):
        record = project.run(name)
        assert record.status == "FINISHED"
        assert record.metric_history("m")["value"].tolist() == [value] * 200


def test_mlflow_runs_in_two_threads_and_two_tasks_stay_apart(repo: Path) -> None:
    import gitxp.mlflow as mlflow

    barrier = threading.Barrier(2, timeout=30)
    ids: dict[str, str] = {}

    def train(name: str, value: float) -> None:
        with mlflow.start_run(run_name=name) as run:
            ids[name] = run.info.run_id
            barrier.wait()
            for step in range(100):
                mlflow.log_metric("m", value, step=step)
                gitxp.log_metric("native", value, step=step)
                barrier.wait()
            assert mlflow.active_run() is run

    _in_threads(lambda: train("a", 1.0), lambda: train("b", 2.0))

    async def train_async(name: str, value: float) -> None:
        with mlflow.start_run(run_name=name) as run:
            ids[name] = run.info.run_id
            for step in range(100):
                mlflow.log_metric("m", value, step=step)
                gitxp.log_metric("native", value, step=step)
                await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(train_async("c", 3.0), train_async("d", 4.0))

    asyncio.run(main())
    for name, value in (("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 4.0)):
        assert _values(repo, ids[name], "m") == [value] * 100
        assert _values(repo, ids[name], "native") == [value] * 100
    assert mlflow.active_run() is None and gitxp.active_run() is None


def test_under_gitxp_run_every_thread_and_task_joins_the_one_run(repo: Path) -> None:
    script = (
        "import asyncio, threading, gitxp\n"
        "def worker():\n"
        "    gitxp.log_metric('worker', 1.0)\n"
        "async def task():\n"
        "    gitxp.log_metric('task', 2.0)\n"
        "with gitxp.start_run(params={'k': 1}) as run:\n"
        "    t = threading.Thread(target=worker)\n"
        "    t.start(); t.join()\n"
        "    asyncio.run(task())\n"
        "    gitxp.log_metric('main', 3.0)\n"
    )
    result = gitxp.launch([sys.executable, "-c", script], repo=repo, stream=False)
    assert (result.status, result.exit_code) == ("FINISHED", 0)
    record = gitxp.open(repo).run(result.run_id)
    assert record.last_metrics == {"worker": 1.0, "task": 2.0, "main": 3.0}
    assert len(gitxp.open(repo).runs()) == 1
