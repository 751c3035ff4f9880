"""The bundle manifest: every shipped file with its sha256, and its detached ed25519 signature.

The manifest is what ``bundle verify`` checks a bundle against, and the one
thing that is signed: it lists the SBOM and the model record by hash too, so
one signature covers all of them. It is deterministic JSON (sorted keys and
paths, no timestamps), so two builds from the same inputs give the same bytes.

- onedir: ``mlbundle-manifest.json`` (and ``.sig``, and the SBOM) in the folder
  root, listing every file under the folder by relative posix path.
- onefile: ``<exe>.mlbundle-manifest.json`` (and ``.sig``, and the SBOM) beside
  the executable, which cannot hold them; it records the executable's own hash
  and every entry of its PyInstaller archive (the PYZ's modules as
  ``PYZ.pyz::module``), hashed over the uncompressed content, so a verifier can
  name the entry a changed byte belongs to.

The private key never goes into a bundle, a log or an error message: it is read
from a file or ``MLBUNDLE_SIGNING_KEY`` and only ever used in memory.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bundler.errors import BundleError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

MANIFEST_NAME = "mlbundle-manifest.json"
SIGNATURE_NAME = "mlbundle-manifest.sig"
SBOM_NAME = "mlbundle-sbom.cdx.json"
FORMAT = "mlbundle.manifest"
FORMAT_VERSION = "1.0"
KEY_ENV = "MLBUNDLE_SIGNING_KEY"
#: Separates a PYZ archive's name from a module inside it in onefile manifest paths.
PYZ_SEPARATOR = "::"
_CHUNK = 1 << 20


class IntegrityError(BundleError):
    """A key, manifest, signature or bundle cannot be read or used as given."""

    exit_code = 10


# -- writing manifests -----------------------------------------------------------------


def write_onedir_manifest(
    folder: Path,
    sbom_json: str,
    *,
    app_name: str | None = None,
    app_version: str | None = None,
) -> Path:
    """Write the SBOM, then the manifest of every file under ``folder``, into ``folder``.

    App name and version default to the SBOM's ``metadata.component``. An existing
    signature is removed: it would no longer match.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise IntegrityError(f"{folder} is not a onedir bundle folder")
    (folder / SIGNATURE_NAME).unlink(missing_ok=True)
    (folder / SBOM_NAME).write_text(sbom_json, encoding="utf-8")
    manifest = _header("onedir", sbom_json, app_name, app_version)
    manifest["files"] = folder_entries(folder)
    path = folder / MANIFEST_NAME
    path.write_bytes(dump_manifest(manifest))
    return path


def write_onefile_manifest(
    executable: Path,
    sbom_json: str,
    *,
    app_name: str | None = None,
    app_version: str | None = None,
) -> Path:
    """Write ``<exe>.mlbundle-sbom.cdx.json`` and ``<exe>.mlbundle-manifest.json`` beside it."""
    executable = Path(executable)
    if not executable.is_file():
        raise IntegrityError(f"{executable} is not a onefile executable")
    paths = onefile_paths(executable)
    paths["signature"].unlink(missing_ok=True)
    paths["sbom"].write_text(sbom_json, encoding="utf-8")
    manifest = _header("onefile", sbom_json, app_name, app_version)
    manifest["executable"] = {"path": executable.name, **file_digest(executable)}
    manifest["sbom"] = {"path": paths["sbom"].name, **file_digest(paths["sbom"])}
    manifest["files"] = archive_entries(executable)
    paths["manifest"].write_bytes(dump_manifest(manifest))
    return paths["manifest"]


def onefile_paths(executable: Path) -> dict[str, Path]:
    """Where the manifest, signature and SBOM of a onefile executable live (beside it)."""
    executable = Path(executable)
    return {
        "manifest": executable.with_name(f"{executable.name}.{MANIFEST_NAME}"),
        "signature": executable.with_name(f"{executable.name}.{SIGNATURE_NAME}"),
        "sbom": executable.with_name(f"{executable.name}.{SBOM_NAME}"),
    }


def dump_manifest(manifest: dict[str, Any]) -> bytes:
    """The one serialisation used for writing (and so for signing): stable bytes."""
    return (json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def folder_entries(folder: Path) -> list[dict[str, Any]]:
    """Every file (and symlink, by target) under ``folder`` except the manifest and signature."""
    entries = []
    for rel, path in walk_folder(folder):
        if rel in (MANIFEST_NAME, SIGNATURE_NAME):
            continue
        if path.is_symlink():
            entries.append({"path": rel, "symlink": os.readlink(path)})
        else:
            entries.append({"path": rel, **file_digest(path)})
    return entries


def walk_folder(folder: Path) -> Iterator[tuple[str, Path]]:
    """(relative posix path, path) of every file and symlink, sorted; symlinks are not followed."""
    found = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        base = Path(root)
        for name in [*files, *(d for d in dirs if (base / d).is_symlink())]:
            path = base / name
            found.append((path.relative_to(folder).as_posix(), path))
    yield from sorted(found)


def archive_entries(executable: Path) -> list[dict[str, Any]]:
    """Every CArchive entry of a PyInstaller executable and every module of its PYZ archives.

    Hashes are over the uncompressed content, as the bootloader unpacks it. Raises
    IntegrityError when the archive or one of its entries cannot be read.
    """
    entries = []
    for path, typecode, data in iter_archive(executable):
        if isinstance(data, Exception):
            raise IntegrityError(f"cannot read {path} in the archive of {executable}: {data}")
        entries.append({"path": path, "type": typecode, **bytes_digest(data)})
    return entries


def iter_archive(executable: Path) -> Iterator[tuple[str, str, bytes | Exception]]:
    """(path, typecode, content or the error reading it) for each archive entry, sorted.

    An unreadable entry (say, compressed data with a flipped byte) is yielded with its
    error so that a verifier can name it; an unreadable archive raises IntegrityError.
    """
    from PyInstaller.archive.readers import PKG_ITEM_PYZ, CArchiveReader

    try:
        pkg = CArchiveReader(str(executable))
    except Exception as exc:  # the reader raises bare struct/Unicode/Archive errors
        raise IntegrityError(f"{executable} has no readable PyInstaller archive: {exc}") from exc
    for name in sorted(pkg.toc):
        typecode = pkg.toc[name][-1]
        try:
            data: bytes | Exception = pkg.extract(name)
        except Exception as exc:
            data = exc
        yield name, typecode, data
        if typecode != PKG_ITEM_PYZ or isinstance(data, Exception):
            continue
        try:
            pyz = pkg.open_embedded_archive(name)
        except Exception as exc:
            yield f"{name}{PYZ_SEPARATOR}*", "?", exc
            continue
        for module in sorted(pyz.toc):
            try:
                content: bytes | Exception = pyz.extract(module, raw=True) or b""
            except Exception as exc:
                content = exc
            yield f"{name}{PYZ_SEPARATOR}{module}", str(pyz.toc[module][0]), content


def file_digest(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return {"size": size, "sha256": digest.hexdigest()}


def bytes_digest(data: bytes) -> dict[str, Any]:
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _header(
    kind: str, sbom_json: str, app_name: str | None, app_version: str | None
) -> dict[str, Any]:
    manifest: dict[str, Any] = {"format": FORMAT, "version": FORMAT_VERSION, "kind": kind}
    try:
        component = json.loads(sbom_json).get("metadata", {}).get("component", {})
    except (ValueError, AttributeError) as exc:
        raise IntegrityError(f"the SBOM given to the manifest is not JSON: {exc}") from exc
    name = app_name or component.get("name")
    version = app_version or component.get("version")
    if name or version:
        manifest["app"] = {k: v for k, v in (("name", name), ("version", version)) if v}
    return manifest


# -- keys and signatures ---------------------------------------------------------------


def keygen(private_path: Path, public_path: Path) -> None:
    """Create an ed25519 key pair: private key PEM (mode 0600), public key PEM beside it.

    Refuses to overwrite either file: replacing a signing key by accident makes every
    bundle signed with the old one unverifiable with the new public key.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private_path, public_path = Path(private_path), Path(public_path)
    if private_path.resolve() == public_path.resolve():
        raise IntegrityError("the private and public key paths must differ")
    for path in (private_path, public_path):
        if path.exists() or path.is_symlink():
            raise IntegrityError(f"{path} already exists; refusing to overwrite a key")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _write_new(private_path, private_pem, 0o600)
    _write_new(public_path, public_pem, 0o644)


def load_private_key(path: Path | None) -> Ed25519PrivateKey:
    """The signing key from ``path``, or from ``MLBUNDLE_SIGNING_KEY`` (PEM text) when None."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if path is None:
        text = os.environ.get(KEY_ENV, "")
        if not text.strip():
            raise IntegrityError(
                f"no signing key: give a key file or set {KEY_ENV} to the private key's PEM text "
                "(create one with `bundle keygen`)"
            )
        data, source = text.encode(), f"${KEY_ENV}"
    else:
        try:
            data, source = Path(path).read_bytes(), str(path)
        except OSError as exc:
            raise IntegrityError(f"cannot read the signing key {path}: {exc.strerror}") from None
    if b"PUBLIC KEY-----" in data:
        raise IntegrityError(f"{source} holds a public key; signing needs the private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise IntegrityError(
            f"{source} is a password-protected key; give an unencrypted ed25519 key"
        ) from None
    except Exception:  # ValueError, UnsupportedAlgorithm...
        # never chain the parser's exception: its message may quote key material
        raise IntegrityError(
            f"{source} is not a PEM private key (expected `-----BEGIN PRIVATE KEY-----` "
            "as written by `bundle keygen`)"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise IntegrityError(
            f"{source} is a {type(key).__name__.lstrip('_')}, not an ed25519 private key"
        )
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The verification key (PEM, as written by ``keygen``)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise IntegrityError(f"cannot read the public key {path}: {exc.strerror}") from None
    if b"PRIVATE KEY-----" in data:
        raise IntegrityError(f"{path} is a private key; verify with the public key")
    try:
        key = serialization.load_pem_public_key(data)
    except Exception:
        raise IntegrityError(
            f"{path} is not a PEM public key (expected `-----BEGIN PUBLIC KEY-----`)"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise IntegrityError(f"{path} is not an ed25519 public key")
    return key


def signature_path(manifest: Path) -> Path:
    """Where the detached signature goes: SIGNATURE_NAME beside a onedir manifest, else
    ``<exe>.mlbundle-manifest.sig``."""
    manifest = Path(manifest)
    if manifest.name == MANIFEST_NAME:
        return manifest.with_name(SIGNATURE_NAME)
    if manifest.name.endswith("." + MANIFEST_NAME):
        return manifest.with_name(manifest.name[: -len(MANIFEST_NAME)] + SIGNATURE_NAME)
    raise IntegrityError(f"{manifest} is not an mlbundle manifest (*{MANIFEST_NAME})")


def sign_manifest(manifest: Path, key: Ed25519PrivateKey) -> Path:
    """Sign the manifest's bytes; write the 64-byte signature as base64 text beside it."""
    manifest = Path(manifest)
    target = signature_path(manifest)
    signature = key.sign(manifest.read_bytes())
    target.write_text(base64.b64encode(signature).decode("ascii") + "\n", encoding="ascii")
    return target


def check_signature(manifest_bytes: bytes, signature_text: str, key: Ed25519PublicKey) -> bool:
    """True when ``signature_text`` (base64) is a valid signature of the bytes under ``key``."""
    from cryptography.exceptions import InvalidSignature

    try:
        signature = base64.b64decode(signature_text.strip(), validate=True)
        key.verify(signature, manifest_bytes)
    except (InvalidSignature, ValueError):
        return False
    return True


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to a new file with ``mode``: temp file, then an atomic no-clobber rename.

    The temp file is created 0600 from the start, so the key is never readable by
    others even briefly; ``os.link`` fails if ``path`` appeared meanwhile, where
    ``os.replace`` would silently overwrite it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise IntegrityError(f"{path} already exists; refusing to overwrite a key") from None
        except OSError:  # no hard links here (some network or FAT file systems)
            if path.exists():
                raise IntegrityError(
                    f"{path} already exists; refusing to overwrite a key"
                ) from None
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
