"""How file content changes between the work tree and the repository, as git converts it.

`git add` does not store a work-tree file's bytes as they are: the path's
`.gitattributes` may name a filter driver (`filter=lfs`: Git LFS stores a
small pointer and keeps the content in `.git/lfs/objects/`) and ask for
line-ending conversion (`text`, `text=auto`, `eol=crlf`, `-text`, or
`core.autocrlf` where the attributes are silent). `git checkout` runs the
same conversions backwards. `WorkTreeFilters` applies both directions in
git's order: on the way in the driver's clean filter first, then the
line-ending conversion; on the way out the line-ending conversion first,
then the driver's smudge filter.

Drivers come from git's config (`filter.<name>.process`, `.clean`,
`.smudge`, `.required`). A `process` driver is one long-running process per
`WorkTreeFilters` (git's long-running filter protocol, version 2), started
only when a path first needs it; the single-shot `clean`/`smudge` commands
run through the shell with `%f` replaced by the quoted path, as git runs
them. As in git, a failing or missing driver whose `required` is set is an
error (`FilterFailedError`); otherwise the content passes through as it is
and the path is listed in `unfiltered`, so callers can say so.

Attributes are matched with dulwich's `.gitattributes` reader (every
directory's file, `$GIT_DIR/info/attributes`); the line-ending rules are
dulwich's translation of git's convert.c.
"""

from __future__ import annotations

import shlex
import subprocess
import tempfile
from collections.abc import Callable
from typing import IO, Any

from dulwich.objects import Blob

from ..errors import GitxpError
from .repository import GitRepo

_MAX_PKT_DATA = 65516
_FLUSH = b"0000"


class FilterFailedError(GitxpError):
    """A filter driver that `required` is set for could not convert a file."""

    def __init__(self, path: str, driver: str, reason: str) -> None:
        self.path = path
        self.driver = driver
        hint = (
            "install Git LFS (https://git-lfs.com) and run `git lfs install`"
            if driver == "lfs"
            else f"check `git config filter.{driver}.process` / `.clean` / `.smudge`"
        )
        super().__init__(f"{path}: the {driver!r} filter failed ({reason}); {hint}")


class _ProtocolError(Exception):
    pass


class _LongRunningFilter:
    """One `filter.<name>.process` command speaking git's long-running filter protocol."""

    def __init__(self, command: str, cwd: str) -> None:
        self.command = command
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.capabilities: set[str] = set()
        self.stderr: IO[bytes] | None = None
        self.broken = False

    # pkt-line framing: 4 hex digits of length (header included), then the payload
    def _write(self, payload: bytes) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(b"%04x" % (len(payload) + 4) + payload)

    def _flush(self) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(_FLUSH)
        self.proc.stdin.flush()

    def _read(self) -> bytes | None:
        assert self.proc is not None and self.proc.stdout is not None
        head = self.proc.stdout.read(4)
        if len(head) < 4:
            raise _ProtocolError("the filter process ended")
        size = int(head, 16)
        if size == 0:
            return None
        if size < 4:
            raise _ProtocolError(f"bad packet length {size}")
        body = self.proc.stdout.read(size - 4)
        if len(body) < size - 4:
            raise _ProtocolError("the filter process ended")
        return body

    def _read_lines(self) -> dict[str, str]:
        values: dict[str, str] = {}
        while (pkt := self._read()) is not None:
            key, _, value = pkt.rstrip(b"\n").decode("utf-8", "replace").partition("=")
            values[key] = value
        return values

    def start(self) -> None:
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 -- closed by close()
        self.proc = subprocess.Popen(
            self.command,
            shell=True,
            cwd=self.cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
        )
        self._write(b"git-filter-client\n")
        self._write(b"version=2\n")
        self._flush()
        welcome = [self._read(), self._read()]
        if welcome != [b"git-filter-server\n", b"version=2\n"] or self._read() is not None:
            raise _ProtocolError(f"unexpected handshake {welcome!r}")
        self._write(b"capability=clean\n")
        self._write(b"capability=smudge\n")
        self._flush()
        while (pkt := self._read()) is not None:
            key, _, value = pkt.rstrip(b"\n").decode("ascii", "replace").partition("=")
            if key == "capability":
                self.capabilities.add(value)

    def run(self, command: str, path: str, data: bytes) -> bytes:
        """Send *data* of *path* through the filter's *command* (clean or smudge)."""
        if self.proc is None:
            self.start()
        if command not in self.capabilities:
            return data  # git passes content through a direction the filter does not offer
        self._write(f"command={command}\n".encode())
        self._write(b"pathname=" + path.encode("utf-8", "surrogateescape") + b"\n")
        self._flush()
        view = memoryview(data)
        for start in range(0, len(data), _MAX_PKT_DATA):
            self._write(bytes(view[start : start + _MAX_PKT_DATA]))
        self._flush()
        status = self._read_lines().get("status", "error")
        if status != "success":
            raise _ProtocolError(f"status={status}")
        chunks = []
        while (pkt := self._read()) is not None:
            chunks.append(pkt)
        status = self._read_lines().get("status", status)
        if status != "success":
            raise _ProtocolError(f"status={status}")
        return b"".join(chunks)

    def error_text(self) -> str:
        """The last line the filter wrote to its stderr, if any."""
        if self.stderr is None:
            return ""
        self.stderr.seek(0)
        lines = [ln for ln in self.stderr.read().decode("utf-8", "replace").splitlines() if ln]
        return lines[-1].strip() if lines else ""

    def close(self) -> None:
        if self.proc is not None:
            try:
                if self.proc.stdin is not None:
                    self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None
        if self.stderr is not None:
            self.stderr.close()
            self.stderr = None


class _Driver:
    """A filter driver as git's config defines it."""

    def __init__(self, name: str, config: Any, cwd: str) -> None:
        def get(key: str) -> str | None:
            try:
                value = config.get(("filter", name), key)
            except KeyError:
                return None
            text = value.decode("utf-8") if isinstance(value, bytes) else str(value)
            return text or None

        self.name = name
        self.cwd = cwd
        self.clean_cmd = get("clean")
        self.smudge_cmd = get("smudge")
        process = get("process")
        self.process = _LongRunningFilter(process, cwd) if process else None
        self.required = bool(config.get_boolean(("filter", name), "required", False))

    @property
    def configured(self) -> bool:
        return bool(self.process or self.clean_cmd or self.smudge_cmd)

    def apply(self, command: str, path: str, data: bytes) -> bytes | None:
        """The filtered content, or None when this driver has nothing for *command*."""
        if self.process is not None and not self.process.broken:
            try:
                return self.process.run(command, path, data)
            except (OSError, ValueError, _ProtocolError) as exc:
                self.process.broken = True  # git, too, gives up on a process that failed
                reason = self.process.error_text() or str(exc)
                self.process.close()
                raise FilterFailedError(path, self.name, reason) from None
        if self.process is not None:
            raise FilterFailedError(path, self.name, "its process failed earlier")
        cmd = self.clean_cmd if command == "clean" else self.smudge_cmd
        if cmd is None:
            return None
        result = subprocess.run(
            cmd.replace("%f", shlex.quote(path)),
            shell=True,
            cwd=self.cwd,
            input=data,
            capture_output=True,
        )
        if result.returncode != 0:
            lines = result.stderr.decode("utf-8", "replace").strip().splitlines()
            reason = lines[-1] if lines else f"exit code {result.returncode}"
            raise FilterFailedError(path, self.name, reason)
        return result.stdout

    def close(self) -> None:
        if self.process is not None:
            self.process.close()


_EOL_ATTRIBUTES = (b"text", b"crlf", b"eol")
_CONVERTING_AUTOCRLF = (b"true", b"input")


def _autocrlf_off(config: Any) -> bool:
    """True when `core.autocrlf` converts nothing, so only attributes can ask for conversion.

    The same reading as dulwich's `read_eol_config` (only `true` and `input` convert).
    """
    try:
        value = config.get((b"core",), b"autocrlf")
    except KeyError:
        return True
    return not isinstance(value, bytes) or value.lower() not in _CONVERTING_AUTOCRLF


class WorkTreeFilters:
    """git's clean/smudge conversions for one repository; close it when done.

    *tree*: read `.gitattributes` from this tree (a checkout) instead of
    the work tree (a snapshot). `unfiltered` lists `{path, filter, reason}`
    for content stored unconverted because its driver is not configured or
    failed while not `required`.
    """

    def __init__(self, repo: GitRepo, tree: str | None = None) -> None:
        self.repo = repo
        self.config = repo.config_stack()
        self.attributes = repo.dulwich.get_gitattributes(tree.encode() if tree else None)
        self._eol_config: tuple[str, bytes, bytes] | None = None
        self._plain = _autocrlf_off(self.config)
        self.drivers: dict[str, _Driver] = {}
        self.unfiltered: list[dict[str, str]] = []

    def __enter__(self) -> WorkTreeFilters:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop every long-running filter process."""
        for driver in self.drivers.values():
            driver.close()

    def _attrs(self, path: str) -> dict[bytes, Any]:
        return self.attributes.match_path(path.encode("utf-8", "surrogateescape"))

    def _driver(self, attrs: dict[bytes, Any]) -> _Driver | None:
        name = attrs.get(b"filter")
        if not isinstance(name, bytes):
            return None
        text = name.decode("utf-8", "surrogateescape")
        if text not in self.drivers:
            self.drivers[text] = _Driver(text, self.config, self.repo.root)
        return self.drivers[text]

    def has_driver(self, path: str) -> bool:
        """True when *path*'s attributes name a filter driver that git's config defines."""
        driver = self._driver(self._attrs(path))
        return driver is not None and driver.configured

    def _eol(self, attrs: dict[bytes, Any], index_has_crlf: Callable[[], bool] | None) -> Any:
        if self._plain and not any(name in attrs for name in _EOL_ATTRIBUTES):
            return None  # no eol attribute and core.autocrlf off: git converts nothing
        # Imported here: dulwich.line_ending pulls in dulwich.patch and the email
        # package, a fifth of `gitxp run`'s start-up, for repositories that never convert.
        from dulwich.line_ending import (
            line_ending_filter_for_action,
            read_eol_config,
            resolve_crlf_action,
        )

        if self._eol_config is None:
            self._eol_config = read_eol_config(self.config)
        core_eol, autocrlf, _safecrlf = self._eol_config
        action = resolve_crlf_action(attrs, core_eol, autocrlf)
        return line_ending_filter_for_action(action, index_has_crlf=index_has_crlf)

    def _through_driver(self, command: str, path: str, data: bytes, driver: _Driver) -> bytes:
        if not driver.configured:
            if driver.required:
                raise FilterFailedError(path, driver.name, "it is required but not configured")
            if command == "clean":
                self.unfiltered.append(
                    {"path": path, "filter": driver.name, "reason": "driver not configured"}
                )
            return data
        try:
            out = driver.apply(command, path, data)
        except FilterFailedError as exc:
            if driver.required:
                raise
            if command == "clean":
                self.unfiltered.append({"path": path, "filter": driver.name, "reason": str(exc)})
            return data
        return data if out is None else out

    def clean(self, path: str, data: bytes, index_blob: str | None = None) -> bytes:
        """The content `git add` would store for *path* holding *data* in the work tree.

        *index_blob*: the path's blob id in the index, which decides (as in
        git) whether `text=auto` leaves CRLF that was committed as such alone.
        """
        attrs = self._attrs(path)
        driver = self._driver(attrs)
        if driver is not None:
            data = self._through_driver("clean", path, data, driver)

        def index_has_crlf() -> bool:
            if index_blob is None:
                return False
            from dulwich.patch import is_binary

            stored = self.repo.read_blob(index_blob)
            return b"\r\n" in stored and not is_binary(stored)

        eol = self._eol(attrs, index_has_crlf)
        return data if eol is None else eol.clean(data)

    def smudge(self, path: str, data: bytes) -> bytes:
        """The bytes `git checkout` would write for *path* whose blob holds *data*."""
        attrs = self._attrs(path)
        eol = self._eol(attrs, None)
        if eol is not None:
            data = eol.smudge(data)
        driver = self._driver(attrs)
        if driver is not None:
            data = self._through_driver("smudge", path, data, driver)
        return data

    # dulwich's blob-normaliser interface, for dulwich's own checkout code
    def checkin_normalize(self, blob: Blob, path: bytes) -> Blob:
        """Blob form of `clean`, as dulwich's `update_working_tree` calls it."""
        text = path.decode("utf-8", "surrogateescape")
        data = blob.as_raw_string()
        out = self.clean(text, data)
        return blob if out == data else Blob.from_string(out)

    def checkout_normalize(self, blob: Blob, path: bytes) -> Blob:
        """Blob form of `smudge`, as dulwich's `update_working_tree` calls it."""
        text = path.decode("utf-8", "surrogateescape")
        data = blob.as_raw_string()
        out = self.smudge(text, data)
        return blob if out == data else Blob.from_string(out)
