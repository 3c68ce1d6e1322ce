"""Real git servers on 127.0.0.1 for sharing tests: `git daemon` and smart HTTP via `git http-backend`."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def git_exec_path() -> str:
    return subprocess.run(
        ["git", "--exec-path"], capture_output=True, text=True, check=True
    ).stdout.strip()


@contextmanager
def git_daemon(base: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """Serve every repository under *base* over git:// (push enabled); yield the URL prefix.

    *env* is added to the daemon's environment (and so to the git commands it runs).
    """
    port = free_port()
    proc = subprocess.Popen(
        [
            "git",
            "daemon",
            "--export-all",
            "--enable=receive-pack",
            "--reuseaddr",
            "--informative-errors",
            f"--base-path={base}",
            "--listen=127.0.0.1",
            f"--port={port}",
            str(base),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    try:
        wait_for_port(port)
        yield f"git://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body, whether sent with Content-Length or chunked (git and urllib3 do both)."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                break
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
        return b"".join(chunks)
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def _cgi_handler(base: Path, backend: str) -> type[BaseHTTPRequestHandler]:
    class GitCGI(BaseHTTPRequestHandler):
        """A minimal CGI gateway: every request runs `git http-backend` once."""

        def _run(self) -> None:
            path, _, query = self.path.partition("?")
            body = _read_body(self)
            drops = self.server.drop_pushes  # type: ignore[attr-defined]
            if self.command == "POST" and path.endswith("git-receive-pack") and drops:
                drops.pop()
                self.close_connection = True  # the network dies mid-push: no answer at all
                self.connection.shutdown(2)
                return
            env = {
                "PATH": os.environ.get("PATH", ""),
                "GIT_PROJECT_ROOT": str(base),
                "GIT_HTTP_EXPORT_ALL": "1",
                "REQUEST_METHOD": self.command,
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "REMOTE_USER": "tester",  # http-backend allows receive-pack for users
                "REMOTE_ADDR": "127.0.0.1",
                "GATEWAY_INTERFACE": "CGI/1.1",
                "SERVER_PROTOCOL": "HTTP/1.1",
            }
            for header, var in (
                ("Content-Encoding", "HTTP_CONTENT_ENCODING"),
                ("Git-Protocol", "GIT_PROTOCOL"),
            ):
                if self.headers.get(header):
                    env[var] = self.headers[header]
            out = subprocess.run([backend], input=body, capture_output=True, env=env).stdout
            head, _, payload = out.partition(b"\r\n\r\n")
            if not _:
                head, _, payload = out.partition(b"\n\n")
            status = 200
            headers = []
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

    return GitCGI


@contextmanager
def git_http(base: Path, drop_pushes: int = 0) -> Iterator[str]:
    """Serve every repository under *base* over smart HTTP (push enabled); yield the URL prefix.

    The first *drop_pushes* pushes lose their connection after the pack was sent.
    """
    backend = os.path.join(git_exec_path(), "git-http-backend")
    if not os.path.exists(backend):
        backend = shutil.which("git-http-backend") or backend
    server = ThreadingHTTPServer(("127.0.0.1", 0), _cgi_handler(base, backend))
    server.drop_pushes = [True] * drop_pushes  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
