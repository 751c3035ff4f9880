"""Model packs: a model that travels without its application, signed by the release key.

A pack is one file (``.mlpack``, format 1)::

    MLPACK 1\\n                     the magic line: format major version 1
    <128 hex digits>\\n             ed25519 signature of every byte that follows
    <zip archive>                   pack.json, pack.sig, payload/...

The outer signature covers every byte of the archive, so a single flipped byte anywhere
in the file (a zip header, a timestamp, a compressed block) is refused before any member
is read. Inside, ``pack.json`` is the one signed manifest (as The Update Framework's
targets metadata): which app the pack is for, its model version, approval, expiry, what
it needs of the app, and the sha256 of every payload file; ``pack.sig`` is its own
signature, so that an installed pack (unpacked into the user's data folder) is checked
again at every start without keeping the archive. The payload is a payload folder as a
build writes it (``bundle.json``, the plan, the record, the gate sets), so the app opens
an installed pack exactly as it opens the model it was frozen with.

Signatures are checked with PyNaCl (libsodium), imported only when a pack is read: an
app built without ``[updates]`` never loads it. Nothing here signs; ``write_pack`` takes
the signing function from the build side.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlbundle_runtime.errors import BundleError

__all__ = [
    "MAGIC",
    "META_FILE",
    "META_SIG",
    "PACK_FORMAT",
    "PACK_SUFFIX",
    "PAYLOAD_DIR",
    "UPDATES_FILE",
    "Pack",
    "PackError",
    "key_id",
    "parse_model_version",
    "read_installed",
    "read_pack",
    "verify_signature",
    "write_pack",
]

PACK_SUFFIX = ".mlpack"
MAGIC = b"MLPACK 1\n"
#: pack.json's format, major.minor: a reader refuses a major it does not know.
PACK_FORMAT = "1.0"
META_FILE = "pack.json"
META_SIG = "pack.sig"
PAYLOAD_DIR = "payload/"
#: The payload file of an app that accepts packs: its release key and where packs come from.
UPDATES_FILE = "updates.json"
#: Larger files are refused before they are read whole (a plan of a few hundred MB is
#: already far beyond any model this app format is for).
MAX_PACK_BYTES = 1 << 30

_SIG_HEX = 128
_NAME = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
_VERSION = re.compile(r"^\d+(\.\d+)*$")
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_REQUIRED = {
    "pack_format": str,
    "app": str,
    "model_version": str,
    "approval": str,
    "built_at": str,
    "requires": dict,
    "files": dict,
}


class PackError(BundleError):
    """A model pack that cannot be used: damaged, not signed by this app's key, for another
    app, or one this app cannot serve. The message says which, naming the file."""


@dataclass(frozen=True)
class Pack:
    """A pack whose signatures and hashes were checked: its manifest and payload files."""

    meta: dict[str, Any]
    meta_bytes: bytes  # pack.json exactly as signed
    meta_sig: bytes  # its signature (64 bytes)
    files: dict[str, bytes]  # payload file name (no "payload/") -> bytes
    source: str  # what messages call it: the user's file, or the installed folder

    @property
    def app(self) -> str:
        return str(self.meta["app"])

    @property
    def model_version(self) -> str:
        return str(self.meta["model_version"])

    @property
    def approved(self) -> bool:
        return self.meta["approval"] == "APPROVED"

    @property
    def expires(self) -> datetime | None:
        value = self.meta.get("expires")
        return None if value is None else _parse_time(value, self.source, "expires")

    @property
    def requires(self) -> dict[str, Any]:
        return dict(self.meta["requires"])

    def expired(self, now: datetime | None = None) -> bool:
        expires = self.expires
        return expires is not None and (now or datetime.now(UTC)) >= expires


def key_id(public_key: bytes) -> str:
    """A short name for a key, shown in messages and stored in packs: sha256, 16 hex digits."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def parse_model_version(text: str, source: str = "model version") -> tuple[int, ...]:
    """A model version as numbers, so that "1.10" is newer than "1.9" (rollback checks)."""
    if not isinstance(text, str) or not _VERSION.match(text):
        raise PackError(
            f"{source}: {text!r} is not a model version a pack can carry; "
            "valid: numbers separated by dots, such as 1.2.0"
        )
    return tuple(int(part) for part in text.split("."))


def verify_signature(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """True when ``signature`` is ``public_key``'s ed25519 signature of ``message``."""
    from nacl.exceptions import BadSignatureError, CryptoError
    from nacl.signing import VerifyKey

    try:
        VerifyKey(public_key).verify(message, signature)
    except (BadSignatureError, CryptoError, ValueError, TypeError):
        return False
    return True


def write_pack(
    meta: Mapping[str, Any],
    payload: Mapping[str, bytes],
    sign: Callable[[bytes], bytes],
) -> bytes:
    """The pack file's bytes: ``meta`` (without ``files`` and ``pack_format``, which this
    adds) and the payload files, signed twice with ``sign`` (message -> 64-byte signature).

    Deterministic: sorted members, fixed timestamps and modes, so one model packed twice
    with one key gives the same file (ed25519 signatures are deterministic too)."""
    for name in payload:
        _check_name(name, "write_pack")
    full = {
        **meta,
        "pack_format": PACK_FORMAT,
        "files": {
            PAYLOAD_DIR + name: hashlib.sha256(data).hexdigest()
            for name, data in sorted(payload.items())
        },
    }
    meta_bytes = _canonical(full)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        members = [(META_FILE, meta_bytes), (META_SIG, sign(meta_bytes).hex().encode() + b"\n")]
        members += [(PAYLOAD_DIR + name, data) for name, data in sorted(payload.items())]
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            archive.writestr(info, data, compresslevel=9)
    body = buffer.getvalue()
    return MAGIC + sign(body).hex().encode() + b"\n" + body


def read_pack(data: bytes, source: str, public_key: bytes) -> Pack:
    """Check a pack file's bytes against ``public_key`` and return its contents.

    Order matters: nothing inside the archive is parsed before the outer signature
    over all of it has been checked, so a tampered file never reaches the zip reader."""
    if not data.startswith(MAGIC):
        if data.startswith(b"MLPACK "):
            head = data.split(b"\n", 1)[0].decode("ascii", "replace")
            raise PackError(
                f"{source}: {head!r} is a pack format this app cannot read (it reads MLPACK 1); "
                "update the application, or pack the model with a matching mlbundle"
            )
        raise PackError(f"{source}: not a model pack (it does not start with {MAGIC!r})")
    rest = data[len(MAGIC) :]
    sig_line, newline, body = rest[:_SIG_HEX], rest[_SIG_HEX : _SIG_HEX + 1], rest[_SIG_HEX + 1 :]
    signature = _unhex(sig_line, source) if newline == b"\n" else None
    if signature is None:
        raise PackError(f"{source}: the pack is damaged (its signature line is malformed)")
    if not verify_signature(public_key, signature, body):
        raise PackError(
            f"{source}: the signature does not match this app's release key "
            f"{key_id(public_key)}: the file was modified, damaged, or signed with another key"
        )
    try:
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            names = archive.namelist()
            if len(set(names)) != len(names):
                raise PackError(f"{source}: the pack lists a file twice")
            members = {name: archive.read(name) for name in names}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise PackError(f"{source}: the pack's archive cannot be read ({exc})") from None
    meta_bytes = members.pop(META_FILE, None)
    sig_text = members.pop(META_SIG, None)
    if meta_bytes is None or sig_text is None:
        raise PackError(f"{source}: the pack has no {META_FILE} or {META_SIG}")
    return _checked(meta_bytes, sig_text, members, source, public_key)


def read_installed(folder: Path, public_key: bytes) -> Pack:
    """An unpacked pack (``extract``'s layout), checked again: its manifest's signature and
    every payload file's hash; a file added to or missing from the folder is refused too."""
    source = str(folder)
    try:
        meta_bytes = (folder / META_FILE).read_bytes()
        sig_text = (folder / META_SIG).read_bytes()
        members = {
            path.relative_to(folder).as_posix(): path.read_bytes()
            for path in sorted((folder / PAYLOAD_DIR).rglob("*"))
            if path.is_file() and "__pycache__" not in path.parts
        }
    except OSError as exc:
        raise PackError(
            f"{source}: the installed pack cannot be read ({exc.strerror or exc})"
        ) from None
    return _checked(meta_bytes, sig_text, members, source, public_key)


def extract(pack: Pack, folder: Path) -> None:
    """Write ``pack`` into the empty folder ``folder`` (``read_installed`` reads it back)."""
    (folder / META_FILE).write_bytes(pack.meta_bytes)
    (folder / META_SIG).write_bytes(pack.meta_sig.hex().encode() + b"\n")
    for name, data in pack.files.items():
        path = folder / PAYLOAD_DIR / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


# -- helpers ----------------------------------------------------------------------------


def _checked(
    meta_bytes: bytes, sig_text: bytes, members: dict[str, bytes], source: str, public_key: bytes
) -> Pack:
    signature = _unhex(sig_text.strip(), source)
    if signature is None or not verify_signature(public_key, signature, meta_bytes):
        raise PackError(
            f"{source}: {META_FILE}'s signature does not match this app's release key "
            f"{key_id(public_key)}"
        )
    try:
        meta = json.loads(meta_bytes)
    except ValueError as exc:
        raise PackError(f"{source}: {META_FILE} is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise PackError(f"{source}: {META_FILE} is not a JSON object")
    for key, kind in _REQUIRED.items():
        if not isinstance(meta.get(key), kind):
            raise PackError(f"{source}: {META_FILE} has no valid {key!r} ({kind.__name__})")
    major = meta["pack_format"].split(".")[0]
    if major != PACK_FORMAT.split(".")[0]:
        raise PackError(
            f"{source}: pack format {meta['pack_format']} is not one this app reads "
            f"({PACK_FORMAT.split('.')[0]}.x)"
        )
    listed: dict[str, str] = meta["files"]
    if set(listed) != set(members):
        extra = sorted(set(members) - set(listed))
        missing = sorted(set(listed) - set(members))
        what = f"files not in {META_FILE}: {', '.join(extra)}" if extra else ""
        what += ("; " if what else "") + (f"missing: {', '.join(missing)}" if missing else "")
        raise PackError(f"{source}: the pack's files do not match its manifest ({what})")
    files = {}
    for name, data in members.items():
        if not name.startswith(PAYLOAD_DIR):
            raise PackError(f"{source}: {name} is outside the pack's payload folder")
        _check_name(name, source)
        if hashlib.sha256(data).hexdigest() != listed[name]:
            raise PackError(f"{source}: {name} does not match its sha256 in {META_FILE}")
        files[name[len(PAYLOAD_DIR) :]] = data
    parse_model_version(meta["model_version"], f"{source}: model_version")
    if meta.get("expires") is not None:
        _parse_time(meta["expires"], source, "expires")
    return Pack(meta=meta, meta_bytes=meta_bytes, meta_sig=signature, files=files, source=source)


def _check_name(name: str, source: str) -> None:
    if not _NAME.match(name) or any(part in {".", ".."} for part in name.split("/")):
        raise PackError(f"{source}: {name!r} is not a file name a pack may hold")


def _unhex(text: bytes, source: str) -> bytes | None:
    # Only the one spelling write_pack produces: bytes.fromhex also takes upper case,
    # so a flipped case bit would otherwise leave a changed file with a valid signature.
    if len(text) != _SIG_HEX or text.strip(b"0123456789abcdef"):
        return None
    return bytes.fromhex(text.decode("ascii"))


def _parse_time(value: Any, source: str, key: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise PackError(
            f"{source}: {key} {value!r} is not a date; valid: ISO 8601, such as 2027-06-30"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _canonical(data: Any) -> bytes:
    return (json.dumps(data, indent=1, sort_keys=True, allow_nan=False) + "\n").encode("utf-8")
