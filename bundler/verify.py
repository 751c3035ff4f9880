"""``bundle verify``: is this bundle exactly what was built and signed?

It checks every file against the manifest (naming each tampered, missing or
extra one), the manifest's detached signature when a public key is given, and
the model record against its JSON Schema. It reads files and parses archives;
it never runs the bundle, so it is safe on a binary nobody trusts yet.

Accepted: a onedir folder (or its executable), a onefile executable with its
manifest beside it, or an installer: a ``.tar.gz`` of the onedir folder, or a
``.deb`` whose ``data.tar`` holds it under ``/opt``. An installer is unpacked
into a temporary folder, after every member has been checked to stay inside it.
"""

from __future__ import annotations

import json
import os
import re
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

from bundler import manifest as mf
from bundler.errors import UsageError
from bundler.inspect import (
    ARCHIVE_RECORD,
    EXPECTED_BUNDLE,
    ONEDIR_RECORD,
    archive_record,
    file_start,
    is_installer,
    is_pyinstaller_executable,
    not_a_bundle,
    open_installer,
)
from bundler.manifest import IntegrityError

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "record.schema.json"
#: Signature outcomes; only the first two let a report pass.
SIGNATURE_VALID, SIGNATURE_NOT_CHECKED = "valid", "not checked"
SIGNATURE_INVALID, SIGNATURE_MISSING = "invalid", "missing"
_DRIVE = re.compile(r"^[A-Za-z]:")
#: How many schema errors a report keeps: the first few say what is wrong.
_MAX_RECORD_ERRORS = 20


@dataclass(frozen=True)
class FileCheck:
    """One file (or archive entry) compared with the manifest."""

    path: str
    status: str  # "ok" | "tampered" | "missing" | "extra"
    detail: str = ""


@dataclass
class VerifyReport:
    """Everything ``bundle verify`` found; ``ok`` only when nothing at all is wrong."""

    target: Path
    kind: str  # "onedir" | "onefile" | "installer"
    manifest: str
    app: dict[str, Any] = field(default_factory=dict)
    files: list[FileCheck] = field(default_factory=list)
    signature: str = SIGNATURE_NOT_CHECKED
    record_errors: list[str] = field(default_factory=list)
    uncovered: list[str] = field(default_factory=list)  # .deb package files outside the bundle

    @property
    def problems(self) -> list[FileCheck]:
        return [f for f in self.files if f.status != "ok"]

    @property
    def ok(self) -> bool:
        return (
            not self.problems
            and not self.record_errors
            and self.signature in (SIGNATURE_VALID, SIGNATURE_NOT_CHECKED)
        )

    def lines(self) -> list[str]:
        """Human-readable report: a verdict, then each problem on its own line."""
        app = " ".join(str(v) for v in (self.app.get("name"), self.app.get("version")) if v)
        checked = sum(1 for f in self.files if f.status == "ok")
        out = [
            f"{self.kind} bundle {self.target}" + (f" ({app})" if app else ""),
            f"manifest: {self.manifest}",
            f"files: {checked} of {len(self.files)} match the manifest",
        ]
        out += [
            f"  {f.status.upper()}: {f.path}" + (f" ({f.detail})" if f.detail else "")
            for f in self.problems
        ]
        if self.uncovered:
            out.append(f"not covered by the manifest (package files): {', '.join(self.uncovered)}")
        hint = {
            SIGNATURE_NOT_CHECKED: " (give --key PUBLIC_KEY to check it)",
            SIGNATURE_MISSING: " (the bundle has no signature file)",
            SIGNATURE_INVALID: " (the manifest was changed, or signed with another key)",
        }.get(self.signature, "")
        out.append(f"signature: {self.signature}{hint}")
        if self.record_errors:
            out.append("model record: does NOT match its schema")
            out += [f"  {e}" for e in self.record_errors]
        else:
            out.append("model record: matches its schema")
        out.append("verdict: OK" if self.ok else "verdict: FAILED")
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "target": str(self.target),
            "kind": self.kind,
            "manifest": self.manifest,
            "app": self.app,
            "ok": self.ok,
            "signature": self.signature,
            "record_errors": self.record_errors,
            "files_checked": len(self.files),
            "uncovered": self.uncovered,
            "problems": [
                {"path": f.path, "status": f.status, "detail": f.detail} for f in self.problems
            ],
        }


def verify_bundle(path: Path, public_key: Path | None = None) -> VerifyReport:
    """Check the bundle at ``path`` against its manifest, signature and record schema.

    Raises IntegrityError when ``path`` is not a bundle with a manifest, the manifest
    is not one, or the public key cannot be read: nothing could be verified then;
    UsageError when ``path`` does not exist.
    """
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path} does not exist; {EXPECTED_BUNDLE}")
    key = mf.load_public_key(public_key) if public_key is not None else None
    if path.is_file() and is_installer(path):
        return _verify_installer(path, key)
    if path.is_dir():
        return _verify_onedir(path, path, "onedir", key)
    if path.is_file() and (path.parent / mf.MANIFEST_NAME).is_file():
        return _verify_onedir(path.parent, path, "onedir", key)
    if path.is_file() and mf.onefile_paths(path)["manifest"].is_file():
        return _verify_onefile(path, key)
    if not is_pyinstaller_executable(path):
        raise not_a_bundle(path, f"not a folder, an installer or an executable: {file_start(path)}")
    raise IntegrityError(
        f"no manifest for {path}: expected {mf.MANIFEST_NAME} in a onedir folder or "
        f"{path.name}.{mf.MANIFEST_NAME} beside a onefile executable"
    )


def validate_record(record: Any) -> list[str]:
    """Schema errors of a model record as "where: what" lines (empty when valid)."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(record_schema())
    errors = sorted(validator.iter_errors(record), key=lambda e: list(map(str, e.absolute_path)))
    out = []
    for error in errors[:_MAX_RECORD_ERRORS]:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        out.append(f"{where}: {error.message}")
    if len(errors) > _MAX_RECORD_ERRORS:
        out.append(f"... and {len(errors) - _MAX_RECORD_ERRORS} more")
    return out


@cache
def record_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


# -- per kind --------------------------------------------------------------------------


def _verify_onedir(folder: Path, target: Path, kind: str, key: Any) -> VerifyReport:
    manifest_path = folder / mf.MANIFEST_NAME
    if not manifest_path.is_file():
        raise IntegrityError(f"{folder} has no {mf.MANIFEST_NAME}: it cannot be verified")
    raw, manifest = _read_manifest(manifest_path, "onedir")
    report = VerifyReport(
        target=target, kind=kind, manifest=str(manifest_path), app=manifest.get("app", {})
    )
    report.signature = _signature(raw, mf.signature_path(manifest_path), key)
    expected = {e["path"]: e for e in manifest["files"]}
    actual = {
        rel: p
        for rel, p in mf.walk_folder(folder)
        if rel not in (mf.MANIFEST_NAME, mf.SIGNATURE_NAME)
    }
    for rel in sorted(set(expected) | set(actual)):
        if rel not in actual:
            report.files.append(FileCheck(rel, "missing"))
        elif rel not in expected:
            report.files.append(FileCheck(rel, "extra", "not in the manifest"))
        else:
            report.files.append(_compare_file(rel, actual[rel], expected[rel]))
    report.record_errors = _record_errors(lambda: (folder / ONEDIR_RECORD).read_bytes())
    return report


def _verify_onefile(executable: Path, key: Any) -> VerifyReport:
    paths = mf.onefile_paths(executable)
    raw, manifest = _read_manifest(paths["manifest"], "onefile")
    report = VerifyReport(
        target=executable,
        kind="onefile",
        manifest=str(paths["manifest"]),
        app=manifest.get("app", {}),
    )
    report.signature = _signature(raw, paths["signature"], key)
    exe_check = _compare_file(executable.name, executable, manifest["executable"])
    sbom = manifest.get("sbom")
    if sbom is not None:
        sbom_path = executable.with_name(sbom["path"])
        report.files.append(
            _compare_file(sbom["path"], sbom_path, sbom)
            if sbom_path.is_file()
            else FileCheck(sbom["path"], "missing")
        )
    entries = _compare_archive(executable, manifest["files"])
    if exe_check.status != "ok" and all(e.status == "ok" for e in entries):
        exe_check = FileCheck(
            exe_check.path,
            exe_check.status,
            "the change lies outside the archive's entries: bootloader, archive table "
            "of contents or padding",
        )
    report.files = [exe_check, *report.files, *entries]
    report.record_errors = _record_errors(lambda: archive_record(executable))
    return report


def _verify_installer(installer: Path, key: Any) -> VerifyReport:
    with tempfile.TemporaryDirectory(prefix="mlbundle-verify-") as tmp:
        root = Path(tmp)
        with open_installer(installer) as tar:
            names = safe_extract(tar, root, str(installer))
        manifests = sorted(
            (p for p in root.rglob(mf.MANIFEST_NAME) if p.is_file() and not p.is_symlink()),
            key=lambda p: len(p.parts),
        )
        if not manifests:
            raise IntegrityError(f"{installer} holds no {mf.MANIFEST_NAME}: it cannot be verified")
        folder = manifests[0].parent
        report = _verify_onedir(folder, installer, "installer", key)
        prefix = folder.relative_to(root).as_posix()
        report.manifest = f"{installer}:{(PurePosixPath(prefix) / mf.MANIFEST_NAME).as_posix()}"
        # Files outside the bundle folder are not covered by the manifest: a .deb's or an
        # RPM's launcher and menu entry, a tarball's install.sh, uninstall.sh, menu entry
        # and icon. They are listed as uncovered, so a reader sees what was not checked.
        for name in names:
            inside = prefix == "." or name == prefix or name.startswith(prefix + "/")
            if inside or (root / name).is_dir():
                continue
            report.uncovered.append(name)
        return report


def safe_extract(tar: tarfile.TarFile, dest: Path, source: str) -> list[str]:
    """Unpack ``tar`` into ``dest``; refuse absolute paths, ``..``, devices and escaping links.

    Every member is checked before anything is written, and ``tarfile``'s own
    ``data`` filter runs as a second line of defence. Returns the normalised member names.
    """
    members = tar.getmembers()
    for m in members:
        _check_member(m, source)
    try:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4
            tar.extractall(dest, members=members, filter="data")
        else:  # pragma: no cover - the checks above are then the only defence
            tar.extractall(dest, members=members)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise IntegrityError(f"cannot unpack the installer {source}: {exc}") from exc
    return [PurePosixPath(m.name).as_posix() for m in members]


# -- helpers ---------------------------------------------------------------------------


def _is_ar(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == b"!<arch>\n"


def _check_member(member: tarfile.TarInfo, tarball: str) -> None:
    name = PurePosixPath(member.name)
    if name.is_absolute() or member.name.startswith(("/", "\\")) or _DRIVE.match(member.name):
        raise IntegrityError(f"{tarball}: refusing absolute path {member.name!r}")
    if ".." in name.parts or "\\" in member.name:
        raise IntegrityError(f"{tarball}: refusing path outside the folder {member.name!r}")
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise IntegrityError(f"{tarball}: refusing special file {member.name!r}")
    if member.issym() or member.islnk():
        target = PurePosixPath(member.linkname)
        resolved = (
            target if member.islnk() else PurePosixPath(os.path.normpath(name.parent / target))
        )
        if target.is_absolute() or resolved.parts[:1] == ("..",) or ".." in resolved.parts:
            raise IntegrityError(
                f"{tarball}: refusing link {member.name!r} -> {member.linkname!r} "
                "pointing outside the folder"
            )


def _read_manifest(path: Path, kind: str) -> tuple[bytes, dict[str, Any]]:
    raw = path.read_bytes()
    try:
        manifest = json.loads(raw)
    except ValueError as exc:
        raise IntegrityError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != mf.FORMAT:
        raise IntegrityError(f"{path} is not an mlbundle manifest (format {mf.FORMAT!r})")
    major = str(manifest.get("version", "")).split(".")[0]
    if major != mf.FORMAT_VERSION.split(".")[0]:
        raise IntegrityError(
            f"{path} is manifest version {manifest.get('version')}; this mlbundle reads "
            f"{mf.FORMAT_VERSION.split('.')[0]}.x"
        )
    if manifest.get("kind") != kind or not isinstance(manifest.get("files"), list):
        raise IntegrityError(f"{path} is not a {kind} manifest")
    entries = list(manifest["files"])
    if kind == "onefile":
        entries.append(manifest.get("executable"))
        if "sbom" in manifest:
            entries.append(manifest["sbom"])
    for entry in entries:
        if not _well_formed(entry):
            raise IntegrityError(f"{path} has a malformed entry: {str(entry)[:200]}")
    if kind == "onefile" and "/" in manifest.get("sbom", {}).get("path", ""):
        raise IntegrityError(f"{path}: the SBOM must sit beside the executable")
    return raw, manifest


def _well_formed(entry: Any) -> bool:
    """A file entry (path, size, sha256) or a symlink entry (path, symlink)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
        return False
    if "symlink" in entry:
        return isinstance(entry["symlink"], str)
    return isinstance(entry.get("sha256"), str) and isinstance(entry.get("size"), int)


def _signature(raw: bytes, signature: Path, key: Any) -> str:
    if key is None:
        return SIGNATURE_NOT_CHECKED
    if not signature.is_file():
        return SIGNATURE_MISSING
    text = signature.read_text(encoding="ascii", errors="replace")
    return SIGNATURE_VALID if mf.check_signature(raw, text, key) else SIGNATURE_INVALID


def _compare_file(rel: str, path: Path, expected: dict[str, Any]) -> FileCheck:
    if "symlink" in expected:
        if not path.is_symlink():
            return FileCheck(rel, "tampered", f"expected a link to {expected['symlink']}")
        target = os.readlink(path)
        if target != expected["symlink"]:
            return FileCheck(rel, "tampered", f"links to {target}, not {expected['symlink']}")
        return FileCheck(rel, "ok")
    if path.is_symlink():
        return FileCheck(rel, "tampered", f"is a link to {os.readlink(path)}, not a file")
    actual = mf.file_digest(path)
    if actual["sha256"] != expected.get("sha256"):
        size = (
            ""
            if actual["size"] == expected.get("size")
            else (f"; size {actual['size']}, expected {expected.get('size')}")
        )
        return FileCheck(rel, "tampered", "sha256 differs" + size)
    return FileCheck(rel, "ok")


def _compare_archive(
    executable: Path, expected_entries: Iterable[dict[str, Any]]
) -> list[FileCheck]:
    expected = {e["path"]: e for e in expected_entries}
    try:
        found = {p: data for p, _type, data in mf.iter_archive(executable)}
    except IntegrityError as exc:
        return [FileCheck(f"{executable.name} (archive)", "tampered", str(exc))]
    checks = []
    for name in sorted(set(expected) | set(found)):
        if name not in found:
            checks.append(FileCheck(name, "missing", "not in the executable's archive"))
        elif name not in expected:
            checks.append(FileCheck(name, "extra", "archive entry not in the manifest"))
        elif isinstance(found[name], Exception):
            checks.append(FileCheck(name, "tampered", f"unreadable: {found[name]}"))
        elif mf.bytes_digest(found[name])["sha256"] != expected[name].get("sha256"):
            checks.append(FileCheck(name, "tampered", "sha256 differs"))
        else:
            checks.append(FileCheck(name, "ok"))
    return checks


def _record_errors(read: Any) -> list[str]:
    try:
        data = read()
    except FileNotFoundError:
        return [f"the record is missing ({ONEDIR_RECORD} / archive entry {ARCHIVE_RECORD})"]
    except OSError as exc:
        return [f"the record cannot be read: {exc}"]
    except IntegrityError as exc:
        return [str(exc)]
    try:
        record = json.loads(data)
    except ValueError as exc:
        return [f"the record is not valid JSON: {exc}"]
    return validate_record(record)
