"""`gitxp ui` under load and hostile input (issue 16, items 14, 15 and the UI half of 3).

Real servers on 127.0.0.1, real sockets, real repositories recorded with
`gitxp.start_run`: slowloris connections, a connection flood over the cap,
bad numbers in every numeric query parameter, a run with a 10 MB param,
conditional polling, and a request stuck in a genuinely slow read (a loose
object turned into a FIFO nobody writes to yet).
"""

from __future__ import annotations

import json
import os
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest

import gitxp
from gitxp.ui import UIServer
from tests.gitutil import GIT_ENV, git
from tests.ui_helpers import get_json, request

BIG = 10 * 1024 * 1024  # a 10 MB param value


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """A repository with a small run, a run with a 10 MB param, and one with an artifact."""
    path = tmp_path_factory.mktemp("uiload") / "project"
    path.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        for k, v in GIT_ENV.items():
            mp.setenv(k, v)
        mp.setenv("HOME", str(path.parent))
        git(path, "init", "-q", "-b", "main")
        (path / "train.py").write_text("print('training')\n")
        git(path, "add", ".")
        git(path, "commit", "-q", "-m", "initial")
        ids = {}
        with gitxp.start_run(
            experiment="load", name="small", params={"lr": 0.1}, repo=path, snapshot=False
        ) as run:
            run.log_metric_array("loss", np.linspace(1.0, 0.1, 500))
            ids["small"] = run.id
        with gitxp.start_run(
            experiment="load",
            name="huge-param",
            params={"blob": "x" * BIG, "lr": 0.2},
            repo=path,
            snapshot=False,
        ) as run:
            run.log_metric("loss", 0.5)
            ids["huge"] = run.id
        artifact = path.parent / "weights.bin"
        artifact.write_bytes(os.urandom(4096))
        with gitxp.start_run(
            experiment="load", name="with-artifact", repo=path, snapshot=False
        ) as run:
            run.log_metric("loss", 0.4)
            run.log_artifact(artifact)
            ids["artifact"] = run.id
    yield path, ids


@pytest.fixture(scope="module")
def server(project: tuple[Path, dict[str, str]]) -> Iterator[UIServer]:
    """The UI with its default limits."""
    srv = UIServer(str(project[0]), port=0).start()
    try:
        yield srv
    finally:
        srv.close()


def _slowloris(port: int, n: int) -> list[socket.socket]:
    """*n* connections that each send half a request line and then hang."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /api/runs?offset=0 HTT")
        socks.append(s)
    return socks


def _closed_by_peer(socks: list[socket.socket], within: float, enough: int = 0) -> int:
    """How many of *socks* the server closes (EOF or reset) within *within* seconds
    (stops counting once *enough* are closed, when given)."""
    deadline = time.monotonic() + within
    open_ = {s.fileno(): s for s in socks}
    closed = 0
    while open_ and time.monotonic() < deadline and not (enough and closed >= enough):
        ready, _, _ = select.select(list(open_.values())[:1000], [], [], 0.1)
        for s in ready:
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if not data:  # EOF, or a reset: the server let go of it
                closed += 1
                del open_[s.fileno()]
    return closed


def _close_all(socks: list[socket.socket]) -> None:
    for s in socks:
        s.close()


# -- item 14: slow and idle connections ------------------------------------------------
def test_500_slowloris_connections_take_no_thread_each_and_a_normal_request_answers(
    server: UIServer,
) -> None:
    get_json(server.port, "/api/runs")  # workers started, listing cached
    before = threading.active_count()
    socks = _slowloris(server.port, 500)
    try:
        time.sleep(0.5)  # let the server accept and read them all
        started = time.monotonic()
        status, _, body = request(server.port, "/api/runs?limit=10")
        elapsed = time.monotonic() - started
        during = threading.active_count()
        print(f"threads: {before} before, {during} under 500 slowloris; /api/runs {elapsed:.3f} s")
        assert status == 200, body
        assert elapsed < 2.0
        assert during - before <= 20, f"{during - before} more threads under 500 slow connections"
    finally:
        _close_all(socks)


def test_idle_and_slow_connections_are_closed_after_the_timeouts(
    project: tuple[Path, dict[str, str]],
) -> None:
    with UIServer(str(project[0]), port=0, idle_timeout=0.5, request_timeout=0.5).start() as srv:
        idle = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        slow = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        kept = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        try:
            slow.sendall(b"GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
            kept.sendall(f"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n\r\n".encode())
            head = kept.recv(65536)
            assert head.startswith(b"HTTP/1.1 200"), head[:200]
            started = time.monotonic()
            # the keep-alive connection has its body already (small) or soon; drain it
            assert _closed_by_peer([idle, slow, kept], within=4.0) == 3
            assert time.monotonic() - started < 3.0
        finally:
            _close_all([idle, slow, kept])


def test_over_the_connection_cap_the_oldest_waiting_are_dropped_and_clients_get_answers(
    project: tuple[Path, dict[str, str]],
) -> None:
    with UIServer(str(project[0]), port=0, max_connections=32).start() as srv:
        socks = _slowloris(srv.port, 200)
        try:
            dropped = _closed_by_peer(socks, within=2.0, enough=200 - 32)
            print(f"cap 32: {dropped} of 200 slow connections dropped")
            assert dropped >= 200 - 32
            started = time.monotonic()
            status, _, _ = request(srv.port, "/api/experiments")
            assert status == 200 and time.monotonic() - started < 2.0
        finally:
            _close_all(socks)


# -- item 15: bad numbers, huge values, polling ------------------------------------------
BAD_NUMBERS = ["nan", "NaN", "inf", "-inf", "Infinity", "1e309", "abc", "9" * 400, "1_0", "0x10"]
NUMERIC = [
    ("runs", "offset", ""),
    ("runs", "limit", ""),
    ("series", "points", "&key=loss"),
    ("series", "lo", "&key=loss"),
    ("series", "hi", "&key=loss"),
]


@pytest.mark.parametrize(("endpoint", "name", "extra"), NUMERIC)
def test_a_bad_number_in_any_numeric_parameter_is_a_400_naming_it(
    server: UIServer, project: tuple[Path, dict[str, str]], endpoint: str, name: str, extra: str
) -> None:
    run = project[1]["small"]
    values = BAD_NUMBERS + (["-1", "1.5", "100000000000"] if name not in ("lo", "hi") else [])
    for raw in values:
        path = f"/api/{endpoint}?run={run}{extra}&{name}={quote(raw)}"
        status, headers, body = request(server.port, path)
        assert status == 400, (path, status, body[:200])
        assert headers["content-type"].startswith("application/json")
        answer = json.loads(body)
        assert name in answer["error"] and answer.get("parameter") == name, answer
        assert len(body) < 400 and "\n" not in answer["error"]


def test_good_numbers_still_work(server: UIServer, project: tuple[Path, dict[str, str]]) -> None:
    run = project[1]["small"]
    page = get_json(server.port, "/api/runs?offset=1&limit=1")
    assert page["offset"] == 1 and len(page["rows"]) == 1
    zoom = get_json(server.port, f"/api/series?run={run}&key=loss&lo=-5&hi=99.5&points=50")
    assert zoom["in_range"] == 101 and len(zoom["value"]) <= 52


def test_a_10mb_param_is_cut_in_listings_and_whole_on_the_run_page(
    server: UIServer, project: tuple[Path, dict[str, str]]
) -> None:
    ids = project[1]
    status, _, body = request(server.port, "/api/runs")
    assert status == 200
    print(f"/api/runs with a 10 MB param: {len(body)} bytes")
    assert len(body) < 32 * 1024, len(body)
    row = next(r for r in json.loads(body)["rows"] if r["id"] == ids["huge"])
    assert row["params"]["blob"].startswith("xxx") and row["params"]["blob"].endswith("…")
    assert row["params"]["lr"] == 0.2  # short values are untouched, types kept
    assert row["truncated"] == ["params.blob"]
    status, _, body = request(server.port, f"/api/compare?runs={ids['huge']},{ids['small']}")
    assert status == 200 and len(body) < 32 * 1024, len(body)
    assert json.loads(body)["differing_params"] == ["blob", "lr"]  # judged on full values
    full = get_json(server.port, f"/api/run?run={ids['huge']}")
    assert full["params"]["blob"] == "x" * BIG


def test_polling_with_the_etag_gets_304_until_a_new_run_lands(
    server: UIServer, project: tuple[Path, dict[str, str]]
) -> None:
    path = "/api/runs?experiment=poll"
    status, headers, first = request(server.port, path)
    assert status == 200 and json.loads(first)["total"] == 0
    etag = headers["etag"]
    status, headers, body = request(server.port, path, headers={"If-None-Match": etag})
    assert status == 304 and body == b"" and headers["etag"] == etag
    with pytest.MonkeyPatch.context() as mp:
        for k, v in GIT_ENV.items():
            mp.setenv(k, v)
        with gitxp.start_run(experiment="poll", repo=project[0], snapshot=False) as run:
            run.log_metric("loss", 1.0)
    deadline = time.monotonic() + 5
    while True:  # the listing is re-read at most once a second
        status, headers, body = request(server.port, path, headers={"If-None-Match": etag})
        if status == 200 or time.monotonic() > deadline:
            break
        assert status == 304
        time.sleep(0.2)
    assert status == 200
    assert [r["id"] for r in json.loads(body)["rows"]] == [run.id]
    assert headers["etag"] != etag


# -- item 3 (UI half): one slow request does not hold up the others ----------------------
def test_a_request_stuck_in_a_slow_read_does_not_block_other_requests(
    server: UIServer, project: tuple[Path, dict[str, str]]
) -> None:
    path, ids = project
    get_json(server.port, "/api/runs")  # the listing is cached: it reads no artifact
    blob = git(path, "rev-parse", f"refs/gitxp/runs/{ids['artifact']}:artifacts/weights.bin")
    obj = path / ".git" / "objects" / blob.strip()[:2] / blob.strip()[2:]
    assert obj.is_file(), "the artifact should be a loose object"
    original = obj.read_bytes()
    obj.unlink()
    os.mkfifo(obj)  # opening it for reading blocks until someone writes: a stuck disk
    stuck: dict[str, object] = {}

    def fetch_artifact() -> None:
        stuck["answer"] = request(
            server.port, f"/api/artifact?run={ids['artifact']}&name=weights.bin"
        )

    reader = threading.Thread(target=fetch_artifact)
    reader.start()
    try:
        time.sleep(0.5)  # the artifact request is now blocked in open() on the FIFO
        assert reader.is_alive()
        for other in ("/api/runs", f"/api/run?run={ids['small']}", "/api/experiments"):
            conn = socket.create_connection(("127.0.0.1", server.port), timeout=3)
            try:
                started = time.monotonic()
                conn.sendall(
                    f"GET {other} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode()
                )
                head = conn.recv(65536)  # times out (fails) if it waits behind the stuck one
                elapsed = time.monotonic() - started
            finally:
                conn.close()
            print(f"{other} while another request is stuck: {elapsed:.3f} s")
            assert head.startswith(b"HTTP/1.1 200"), head[:100]
            assert elapsed < 2.0
    finally:
        deadline = time.monotonic() + 10
        while True:  # release the stuck reader: write the real object into the FIFO
            try:
                fd = os.open(obj, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                if time.monotonic() > deadline or not reader.is_alive():
                    break
                time.sleep(0.05)
                continue
            os.set_blocking(fd, True)
            os.write(fd, original)
            os.close(fd)
            break
        reader.join(30)
        obj.unlink()
        obj.write_bytes(original)
    status, _, body = stuck["answer"]  # type: ignore[misc]
    assert status == 200 and len(body) == 4096


def test_concurrent_requests_over_packed_objects_all_read_correctly(
    project: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """Many threads at once, objects in one pack (dulwich's shared pack files): no lock, no mixups."""
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(project[0]), str(clone))
    git(clone, "fetch", "-q", "origin", "refs/gitxp/*:refs/gitxp/*")
    git(clone, "repack", "-a", "-d", "-q")
    ids = project[1]
    with UIServer(str(clone), port=0).start() as srv:
        expected = {
            f"/api/run?run={ids['small']}": lambda d: d["params"] == {"lr": 0.1},
            f"/api/series?run={ids['small']}&key=loss&points=100": lambda d: d["total"] == 500,
            f"/api/run?run={ids['artifact']}": lambda d: d["artifacts"][0]["size"] == 4096,
            "/api/runs?experiment=load": lambda d: d["total"] == 3,
        }
        failures: list[str] = []

        def hammer(k: int) -> None:
            for i in range(12):
                url = list(expected)[(i + k) % len(expected)]
                status, _, body = request(srv.port, url)
                if status != 200 or not expected[url](json.loads(body)):
                    failures.append(f"{url}: {status} {body[:200]!r}")

        threads = [threading.Thread(target=hammer, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not failures, failures[:3]
