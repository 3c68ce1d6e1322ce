"""`gitxp ui`: a local, read-only web application over a repository's runs.

Standard library HTTP parsing (`BaseHTTPRequestHandler`) over
`connections.ConnectionServer`: one thread reads every connection without
blocking and under deadlines, a fixed pool of workers answers complete
requests, so idle or slow clients cost no thread and one slow request holds
up no other (each worker reads the repository through its own `Repo`; see
`gitxp.present.views.UIData`, onto which `api` maps the `/api/` URLs). It
answers only GET and HEAD. Security, because a browser tab is an attack
surface:

- binds to 127.0.0.1 unless told otherwise (and warns when told otherwise);
- checks the Host header against the address it is bound to, so a web page
  on another origin cannot reach it through DNS rebinding (403);
- refuses cross-site API requests (Sec-Fetch-Site) and sends a strict
  Content-Security-Policy with no inline scripts, so even a slip in escaping
  could not run injected code; the page itself builds its DOM with
  ``textContent`` only;
- serves nothing but the package's static files (looked up by name in a
  list made at start-up), plotly.js from the installed `plotly` package,
  JSON from the read-only API, and artifact blobs from the runs' own trees,
  always as downloads.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import ipaddress
import logging
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from ..errors import GitxpError, InvalidValueError, RunNotFoundError
from ..present.assets import Asset, plotly_js, plotly_version, static_assets
from ..present.jsonable import compact_json
from ..present.views import UIData
from .api import ENDPOINTS, JSON_TYPE, Answer, Query
from .connections import ConnectionServer, Limits

log = logging.getLogger("gitxp.ui.server")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# plotly's parallel-coordinates trace (WebGL via regl) compiles shaders with
# `new Function`, hence 'unsafe-eval'; inline scripts stay forbidden.
CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
GZIP_MIN_BYTES = 1024


def _etags(header: str | None) -> set[str]:
    """The entity tags an If-None-Match header lists, as weak tags (weak comparison)."""
    tags = set()
    for item in (header or "").split(","):
        item = item.strip()
        if item:
            tags.add(item if item.startswith("W/") else "W/" + item)
    return tags


class _Response(Exception):
    """Raised inside a handler to answer with an error status and message."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def allowed_host_names(host: str) -> frozenset[str]:
    """The names a Host header may carry for a server bound to *host*.

    Local binds accept only loopback names. A wider bind (0.0.0.0, a LAN
    address) also accepts this machine's host names; IP literals are always
    fine because DNS rebinding needs a DNS name.
    """
    names = {host.lower().strip("[]")} | set(LOCAL_NAMES)
    if host not in LOCAL_NAMES:
        hostname = socket.gethostname().lower()
        names |= {hostname, socket.getfqdn().lower(), hostname.split(".")[0]}
    return frozenset(names)


def host_allowed(header: str | None, names: frozenset[str], port: int, local: bool) -> bool:
    """Whether a request's Host header names this server (name and port)."""
    if not header:
        return False
    header = header.strip().lower()
    if header.startswith("["):
        name, _, rest = header[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        name, _, port_text = header.rpartition(":") if ":" in header else (header, "", "")
    if (port_text or "80") != str(port):
        return False
    if name in names:
        return True
    return not local and _is_ip(name)


class UIServer:
    """The web UI server for one repository; `start()` runs it on a background thread."""

    def __init__(
        self,
        repo_path: str = ".",
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        quiet: bool = True,
        **limits: Any,
    ) -> None:
        """Open the repository at *repo_path* and listen on *host*:*port*.

        *limits* are `connections.Limits` fields: ``workers``,
        ``max_connections``, ``request_timeout``, ``idle_timeout``,
        ``write_timeout``, ``max_head_bytes``.
        """
        from ..store.repo import open as open_repo

        try:
            self.limits = Limits(**limits)
        except TypeError as exc:
            raise GitxpError(f"UIServer: {exc}; the limits are {Limits.__doc__}") from None

        self.plotly = plotly_js()  # fails early, with the extra to install, if plotly is missing
        self.plotly_version = plotly_version()
        self.repo = open_repo(repo_path)
        self.data = UIData(self.repo, per_thread=True)
        self.static = static_assets()
        self.quiet = quiet
        self._gzip: dict[str, bytes] = {}
        self.host = host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._handler: type[_Handler] = type("Handler", (_Handler,), {"app": self})
        try:
            self.httpd = ConnectionServer((host, port), family, self._answer, self.limits)
        except OSError as exc:
            self.repo.close()
            raise GitxpError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}); "
                "choose another port with --port, or --port 0 for any free one"
            ) from None
        self.port = int(self.httpd.server_address[1])
        self.local = host in LOCAL_NAMES
        self.host_names = allowed_host_names(host)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        if ":" in shown:
            shown = f"[{shown}]"
        return f"http://{shown}:{self.port}/"

    def gzipped(self, key: str, data: bytes) -> bytes:
        """*data* gzip-compressed, cached under *key* (for the big static files)."""
        hit = self._gzip.get(key)
        if hit is None:
            hit = self._gzip[key] = gzip.compress(data, 6)
        return hit

    def _answer(self, sock: socket.socket, addr: Any, head: bytes) -> bool:
        """Answer the request whose head is *head* on *sock*; whether to keep the connection."""
        handler = self._handler.__new__(self._handler)
        handler.request = sock
        handler.client_address = addr
        handler.server = self.httpd  # type: ignore[assignment]
        handler.rfile = io.BytesIO(head)
        handler.wfile = _SocketWriter(sock)
        handler.close_connection = True
        handler.handle_one_request()
        headers = getattr(handler, "headers", None)
        if headers is not None and (
            headers.get("Transfer-Encoding")
            or (headers.get("Content-Length") or "0").strip() != "0"
        ):
            return False  # a body we did not read would be taken for the next request
        return not handler.close_connection

    def serve_forever(self) -> None:
        try:
            self.httpd.serve_forever(poll_interval=0.2)
        finally:
            self.close()

    def start(self) -> UIServer:
        """Serve on a daemon thread (for tests and notebooks); stop with `close()`."""
        self._thread = threading.Thread(
            target=self._serve_in_background, name="gitxp-ui", daemon=True
        )
        self._thread.start()
        return self

    def _serve_in_background(self) -> None:
        from ..tracking.checkpointer import block_async_signals

        # Ctrl-C in a notebook or script must reach its main thread; the threads
        # that answer requests are started from this one and inherit its mask
        block_async_signals()
        self.httpd.serve_forever(poll_interval=0.1)

    def close(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join()
            self._thread = None
        self.httpd.server_close()
        self.data.close()
        self.repo.close()

    def __enter__(self) -> UIServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _SocketWriter(io.BufferedIOBase):
    """The handler's output: each write goes straight to the socket (sendall)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._sock.sendall(data)
        return len(data)


class _Handler(BaseHTTPRequestHandler):
    app: UIServer
    server_version = "gitxp-ui"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    # -- plumbing -----------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:
        if not self.app.quiet:
            super().log_message(format, *args)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        extra: dict[str, str] | None = None,
        cache: str = "no-store",
        gzip_key: str | None = None,
        validate: bool = False,
    ) -> None:
        """Send a whole answer. With *validate*, a 200 carries an ETag made from the
        body, and a request whose If-None-Match has it gets an empty 304 instead."""
        if validate and status == 200:
            etag = 'W/"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
            if etag in _etags(self.headers.get("If-None-Match")):
                self.send_response(HTTPStatus.NOT_MODIFIED)
                self.send_header("ETag", etag)
                self.send_header("Cache-Control", cache)
                self.end_headers()
                return
            extra = {**(extra or {}), "ETag": etag}
        headers = {
            "Content-Type": content_type,
            "Cache-Control": cache,
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
            "Cross-Origin-Resource-Policy": "same-origin",
            "Cross-Origin-Opener-Policy": "same-origin",
            **(extra or {}),
        }
        accepts_gzip = "gzip" in (self.headers.get("Accept-Encoding") or "")
        if accepts_gzip and len(body) >= GZIP_MIN_BYTES and "Content-Disposition" not in headers:
            body = self.app.gzipped(gzip_key, body) if gzip_key else gzip.compress(body, 5)
            headers["Content-Encoding"] = "gzip"
            headers["Vary"] = "Accept-Encoding"
        headers["Content-Length"] = str(len(body))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, value: Any, status: int = 200) -> None:
        self._send(status, compact_json(value).encode(), JSON_TYPE)

    def _error(self, status: int, message: str, parameter: str | None = None) -> None:
        if self.path.startswith("/api/"):
            answer = {"error": message}
            if parameter:
                answer["parameter"] = parameter
            self._json(answer, status)
        else:
            self._send(status, (message + "\n").encode(), "text/plain; charset=utf-8")

    def _refuse_method(self) -> None:
        self.close_connection = True
        self._send(
            HTTPStatus.METHOD_NOT_ALLOWED,
            b"gitxp ui is read-only: only GET and HEAD are allowed\n",
            "text/plain; charset=utf-8",
            {"Allow": "GET, HEAD"},
        )

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _refuse_method

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        try:
            if not host_allowed(
                self.headers.get("Host"), self.app.host_names, self.app.port, self.app.local
            ):
                raise _Response(
                    HTTPStatus.FORBIDDEN,
                    "forbidden: the Host header does not name this gitxp ui server "
                    f"(open {self.app.url})",
                )
            self._route()
        except _Response as r:
            self._error(r.status, r.message)
        except RunNotFoundError as exc:
            self._error(HTTPStatus.NOT_FOUND, str(exc))
        except InvalidValueError as exc:
            self._error(HTTPStatus.BAD_REQUEST, str(exc), exc.what)
        except GitxpError as exc:
            self._error(HTTPStatus.BAD_REQUEST, str(exc))
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True
        except Exception as exc:  # a bug: answer 500, say it on the console
            log.error("gitxp ui: internal error on %s: %r", self.path, exc)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error: {type(exc).__name__}")

    # -- routes ----------------------------------------------------------------------
    def _route(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path
        if path.startswith("/api/"):
            if (self.headers.get("Sec-Fetch-Site") or "same-origin") not in (
                "same-origin",
                "none",
            ):
                raise _Response(403, "forbidden: cross-site requests are refused")
            body, content_type, extra = self._api(path[len("/api/") :], Query(parts.query))
            self._send(200, body, content_type, extra, validate=extra is None)
            return
        if path in ("/", "/index.html"):
            asset = self.app.static["index.html"]
            self._send(200, asset.data, asset.content_type, cache="no-cache")
            return
        if path == "/vendor/plotly.min.js":
            self._asset(self.app.plotly, "public, max-age=86400")
            return
        if path.startswith("/static/"):
            found = self.app.static.get(path[len("/static/") :])
            if found is None:
                raise _Response(404, "not found")
            self._asset(found, "no-cache")
            return
        if path == "/favicon.ico":
            self._send(204, b"", "image/x-icon")
            return
        raise _Response(404, "not found")

    def _asset(self, asset: Asset, cache: str) -> None:
        self._send(200, asset.data, asset.content_type, cache=cache, gzip_key=asset.name)

    def _api(self, name: str, query: Query) -> Answer:
        """Answer an API call as (body, content type, extra headers).

        Runs on a worker thread, concurrently with others: the repository is
        the worker's own (`UIData.repo`), and UIData's caches take their locks.
        """
        endpoint = ENDPOINTS.get(name)
        if endpoint is None:
            raise _Response(404, f"no API endpoint {name!r}")
        return endpoint(self.app, query)


def ui(
    path: str = ".",
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    open_browser: bool = False,
    quiet: bool = True,
    announce: Callable[[str], None] = log.info,
) -> None:
    """Serve the web UI for the repository at *path* until interrupted.

    *announce* receives what the person who started it wants to see: where
    it serves and that it stopped (`gitxp ui` prints it; by default it is
    logged at INFO).
    """
    if host not in LOCAL_NAMES:
        log.warning(
            "warning: serving on %s: anyone who can reach this address can read every "
            "run, its params, notes, code and artifacts (use the default 127.0.0.1 to keep it "
            "private)",
            host,
        )
    server = UIServer(path, host, port, quiet=quiet)
    announce(f"gitxp ui: serving {server.repo.path} at {server.url} (Ctrl-C to stop)")
    if open_browser:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        announce("gitxp ui: stopped")
