"""Object formats on the wire: refusing SHA-1 <-> SHA-256 transfers, and pushing SHA-256.

git cannot move objects between a SHA-1 and a SHA-256 repository (each
names every object by its own hash), so a push or fetch between the two is
refused before anything is sent or stored, with one line saying why.

dulwich fetches from SHA-256 repositories over the wire, but its push
(`send_pack`) announces no `object-format` and ends the pack with a SHA-1
checksum, which a SHA-256 receive-pack rejects. `send_pack_sha256` is the
same receive-pack conversation (protocol v0/v1, as git itself pushes)
built from dulwich's parts with the SHA-256 pieces in place; it serves
ssh://, git:// and local subprocess transports. dulwich's HTTP push has
the same gap and no seam to fill it: pushing a SHA-256 repository over
http(s) is refused with a pointer to the transports that work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from ..errors import RemoteError
from .hashing import HEX_LENGTHS, SHA256_IDS, ObjectIds


def mismatch(ids: ObjectIds, remote: str, theirs: str, action: str) -> RemoteError:
    """The one-line refusal of *action* (push, fetch) between repositories of two formats."""
    labels = {"sha1": "SHA-1", "sha256": "SHA-256"}
    return RemoteError(
        remote,
        f"it is a {labels.get(theirs, theirs)} repository and this one is {ids.label}: git "
        f"cannot move objects between the two, so nothing was {action}; use a remote made "
        f"with `git init --object-format={ids.name}`",
    )


def check_advertised(ids: ObjectIds, remote: str, refs: Mapping[bytes, Any], action: str) -> None:
    """Refuse *action* when the ids a remote advertised are of the other format.

    One length check per advertised ref (none per object); a remote with no
    refs at all tells nothing, and the caller checks its capabilities.
    """
    for value in refs.values():
        if value and len(value) != ids.hex_length and len(value) in HEX_LENGTHS:
            theirs = "sha256" if len(value) == SHA256_IDS.hex_length else "sha1"
            raise mismatch(ids, remote, theirs, action)


def advertised_format(capabilities: Iterable[bytes]) -> str:
    """The object format a server announced (`object-format=...`); SHA-1 when it says none."""
    for cap in capabilities:
        if cap.startswith(b"object-format="):
            return cap.split(b"=", 1)[1].decode("ascii", "replace")
    return "sha1"


def send_pack_sha256(
    client: Any,
    path: bytes,
    remote: str,
    update_refs: Callable[[dict[bytes, bytes]], dict[bytes, bytes]],
    generate_pack_data: Callable[..., tuple[int, Iterator[Any]]],
    progress: Callable[[bytes], None] | None,
) -> dict[bytes, str | None]:
    """Push from a SHA-256 repository through *client* (a dulwich TraditionalGitClient).

    The contract of dulwich's `send_pack`: *update_refs* gets the remote's
    refs and returns those to set; *generate_pack_data* returns the pack
    records. Returns {ref: error or None} from the server's report.
    """
    from dulwich.client import ReportStatusParser, _v1ReceivePackHeader, read_pkt_refs_v1
    from dulwich.object_format import SHA256
    from dulwich.pack import PackChunkGenerator
    from dulwich.protocol import CAPABILITY_OFS_DELTA, CAPABILITY_REPORT_STATUS

    zero = SHA256_IDS.zero.encode()
    client.protocol_version = 0
    proto, _, _stderr = client._connect(b"receive-pack", path)
    with proto:
        advertised, server_caps = read_pkt_refs_v1(proto.read_pkt_seq())
        theirs = advertised_format(server_caps)
        if theirs != SHA256_IDS.name:
            proto.write_pkt_line(None)
            raise mismatch(SHA256_IDS, remote, theirs, "pushed")
        old_refs: dict[Any, Any] = {r: sha for r, sha in advertised.items() if sha != zero}
        wanted = {c for c in client._send_capabilities if not c.startswith(b"push-options")}
        caps = (wanted & server_caps) - {b"atomic"}
        caps.add(b"object-format=" + SHA256_IDS.name.encode())
        if CAPABILITY_REPORT_STATUS in caps:
            client._report_status_parser = ReportStatusParser()
        try:
            new_refs = update_refs(dict(old_refs))
        except BaseException:
            proto.write_pkt_line(None)
            raise
        changed: dict[Any, Any] = {r: sha for r, sha in new_refs.items() if old_refs.get(r) != sha}
        if not changed:
            proto.write_pkt_line(None)
            return {}
        # a ref the remote lacks is announced as moving from the 64-digit zero id
        before: dict[Any, Any] = {**dict.fromkeys(changed, zero), **old_refs}
        header = _v1ReceivePackHeader(sorted(caps), before, changed)
        for pkt in header:
            proto.write_pkt_line(pkt)
        count, records = generate_pack_data(
            header.have - {zero},
            header.want,
            ofs_delta=CAPABILITY_OFS_DELTA in caps,
            progress=progress,
        )
        for chunk in PackChunkGenerator(num_records=count, records=records, object_format=SHA256):
            proto.write(chunk)
        status = client._handle_receive_pack_tail(proto, caps, progress)
    return dict(status or {})
