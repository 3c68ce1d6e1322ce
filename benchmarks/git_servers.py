"""Real git servers on 127.0.0.1 for the sharing benchmarks: `git daemon` (git://) and smart
HTTP (`git http-backend` run as CGI by a small threaded Python server), each reporting the
CPU seconds its git processes used, so a measure can say whose time it was."""

from __future__ import annotations

import os
import resource
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


@dataclass
class Server:
    """A running server: its URL prefix and how to read the CPU its git processes used."""

    url: str
    pid: int | None = None  # git daemon's; None: the git processes are this process's children
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def cpu_seconds(self) -> float:
        """User+system CPU seconds of the git processes the server ran so far (finished ones)."""
        if self.pid is None:
            with self.lock:
                r = resource.getrusage(resource.RUSAGE_CHILDREN)
            return r.ru_utime + r.ru_stime
        # git daemon reaps its children when woken: knock once, then read its children's time
        with suppress(OSError):
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        time.sleep(0.2)
        pids = [self.pid]  # `git daemon` runs git-daemon as its child: count both
        with open(f"/proc/{self.pid}/task/{self.pid}/children") as f:
            pids += [int(p) for p in f.read().split()]
        ticks = 0
        for pid in pids:
            with open(f"/proc/{pid}/stat") as f:
                ticks += sum(int(x) for x in f.read().rsplit(")", 1)[1].split()[11:15])
        return ticks / os.sysconf("SC_CLK_TCK")


@contextmanager
def git_daemon(base: Path) -> Iterator[Server]:
    """Serve every repository under *base* over git:// with push enabled."""
    port = free_port()
    proc = subprocess.Popen(
        [
            "git",
            "daemon",
            "--export-all",
            "--enable=receive-pack",
            "--reuseaddr",
            f"--base-path={base}",
            "--listen=127.0.0.1",
            f"--port={port}",
            str(base),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(port)
        yield Server(f"git://127.0.0.1:{port}", proc.pid, port)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


@contextmanager
def git_http(base: Path) -> Iterator[Server]:
    """Serve every repository under *base* over smart HTTP with push enabled."""
    backend = os.path.join(
        subprocess.run(["git", "--exec-path"], capture_output=True, text=True).stdout.strip(),
        "git-http-backend",
    )
    if not os.path.exists(backend):
        backend = shutil.which("git-http-backend") or backend

    class Handler(BaseHTTPRequestHandler):
        def _run(self) -> None:
            path, _, query = self.path.partition("?")
            body = _body(self)
            env = {
                "PATH": os.environ.get("PATH", ""),
                "GIT_PROJECT_ROOT": str(base),
                "GIT_HTTP_EXPORT_ALL": "1",
                "REQUEST_METHOD": self.command,
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "REMOTE_USER": "bench",  # http-backend allows receive-pack for a user
                "REMOTE_ADDR": "127.0.0.1",
                "GATEWAY_INTERFACE": "CGI/1.1",
                "SERVER_PROTOCOL": "HTTP/1.1",
            }
            if self.headers.get("Content-Encoding"):
                env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
            if self.headers.get("Git-Protocol"):  # protocol v2 rides in this header
                env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
            with server.lock:  # one child at a time, so RUSAGE_CHILDREN adds up exactly
                out = subprocess.run([backend], input=body, capture_output=True, env=env).stdout
            head, sep, payload = out.partition(b"\r\n\r\n")
            if not sep:
                head, sep, payload = out.partition(b"\n\n")
            status, headers = 200, []
            for line in head.decode("latin-1").splitlines():
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.strip().split()[0])
                elif name:
                    headers.append((name, value.strip()))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = _run
        do_POST = _run

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server = Server(f"http://127.0.0.1:{httpd.server_address[1]}")
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
