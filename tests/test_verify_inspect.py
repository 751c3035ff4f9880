"""``verify_bundle`` and ``read_record`` on signed copies of the session's real build.

Every copy's executable is made non-executable first (chmod 0644): verifying
and inspecting must read the bundle, never run it.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console

from bundler import manifest as mf
from bundler.errors import UsageError
from bundler.freeze import bundled_names
from bundler.inspect import read_record, record_rows, record_table
from bundler.sbom import build_sbom, frozen_distributions
from bundler.verify import record_schema, validate_record, verify_bundle


@dataclass(frozen=True)
class Keys:
    private: Path
    public: Path


@pytest.fixture(scope="module")
def sbom(built) -> str:
    names = bundled_names(built.onefile)
    return build_sbom(frozen_distributions(names), app_name="penguins", app_version="1.0.0")


@pytest.fixture()
def keys(tmp_path: Path) -> Keys:
    k = Keys(tmp_path / "keys" / "signing.pem", tmp_path / "keys" / "signing.pub.pem")
    mf.keygen(k.private, k.public)
    return k


@pytest.fixture()
def onedir(built, sbom: str, keys: Keys, tmp_path: Path) -> Path:
    """A signed, non-executable copy of the onedir folder."""
    folder = tmp_path / "bundle" / "penguins"
    shutil.copytree(built.out / "onedir" / "penguins", folder, symlinks=True)
    (folder / "penguins").chmod(0o644)
    manifest = mf.write_onedir_manifest(folder, sbom)
    mf.sign_manifest(manifest, mf.load_private_key(keys.private))
    return folder


@pytest.fixture()
def onefile(built, sbom: str, keys: Keys, tmp_path: Path) -> Path:
    """A signed, non-executable copy of the onefile executable."""
    exe = tmp_path / "onefile" / "penguins"
    exe.parent.mkdir()
    shutil.copyfile(built.onefile, exe)
    exe.chmod(0o644)
    manifest = mf.write_onefile_manifest(exe, sbom)
    mf.sign_manifest(manifest, mf.load_private_key(keys.private))
    return exe


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def problems(report) -> dict[str, str]:
    return {f.path: f.status for f in report.problems}


def make_tarball(folder: Path, target: Path) -> Path:
    with tarfile.open(target, "w:gz", compresslevel=1) as tar:
        tar.add(folder, arcname=folder.name)
    return target


def payload_record(built) -> dict:
    return json.loads((built.out / "payload" / "record.json").read_text())


# -- verify: onedir --------------------------------------------------------------------


@pytest.mark.frozen
def test_untouched_onedir_verifies(onedir: Path, keys: Keys) -> None:
    report = verify_bundle(onedir, keys.public)
    assert report.ok, report.lines()
    assert report.signature == "valid" and not report.record_errors
    assert report.kind == "onedir" and report.app == {"name": "penguins", "version": "1.0.0"}
    assert len(report.files) > 50
    assert report.lines()[-1] == "verdict: OK"
    # given the executable instead of the folder: the same bundle
    assert verify_bundle(onedir / "penguins", keys.public).ok


@pytest.mark.frozen
def test_onedir_tampered_missing_and_extra_files_are_named(onedir: Path, keys: Keys) -> None:
    flip(onedir / "_internal/mlbundle_payload/gate/e2e.csv", 10)
    library = next(p for p in sorted((onedir / "_internal").glob("lib*.so*")) if not p.is_symlink())
    library.unlink()
    gone = library.relative_to(onedir).as_posix()
    (onedir / "_internal/mlbundle_payload/backdoor.py").write_text("print('hi')\n")
    report = verify_bundle(onedir, keys.public)
    assert not report.ok
    assert problems(report) == {
        "_internal/mlbundle_payload/gate/e2e.csv": "tampered",
        gone: "missing",
        "_internal/mlbundle_payload/backdoor.py": "extra",
    }
    assert report.signature == "valid"  # the manifest itself is intact
    text = "\n".join(report.lines())
    assert "TAMPERED: _internal/mlbundle_payload/gate/e2e.csv" in text
    assert f"MISSING: {gone}" in text
    assert "EXTRA: _internal/mlbundle_payload/backdoor.py" in text
    assert text.endswith("verdict: FAILED")


@pytest.mark.frozen
def test_retargeted_symlink_is_tampered(onedir: Path, keys: Keys) -> None:
    links = [p for p in (onedir / "_internal").iterdir() if p.is_symlink()]
    if not links:
        pytest.skip("this build has no symlinks")
    link = links[0]
    link.unlink()
    link.symlink_to("libz.so.1")
    report = verify_bundle(onedir, keys.public)
    assert problems(report) == {link.relative_to(onedir).as_posix(): "tampered"}


@pytest.mark.frozen
def test_signature_checks(onedir: Path, keys: Keys, tmp_path: Path) -> None:
    assert verify_bundle(onedir).signature == "not checked"
    assert verify_bundle(onedir).ok
    other = Keys(tmp_path / "other.pem", tmp_path / "other.pub.pem")
    mf.keygen(other.private, other.public)
    wrong = verify_bundle(onedir, other.public)
    assert wrong.signature == "invalid" and not wrong.ok
    assert not wrong.problems  # the files are fine; only the signer is not who we trust
    # a manifest rewritten to match tampered files no longer matches its signature
    manifest = onedir / mf.MANIFEST_NAME
    data = json.loads(manifest.read_bytes())
    data["files"] = [e for e in data["files"] if e["path"] != "_internal/libz.so.1"]
    manifest.write_bytes(mf.dump_manifest(data))
    (onedir / "_internal/libz.so.1").unlink()
    edited = verify_bundle(onedir, keys.public)
    assert not edited.problems and edited.signature == "invalid" and not edited.ok
    (onedir / mf.SIGNATURE_NAME).unlink()
    assert verify_bundle(onedir, keys.public).signature == "missing"
    assert not verify_bundle(onedir, keys.public).ok
    with pytest.raises(mf.IntegrityError, match="private key"):
        verify_bundle(onedir, keys.private)


@pytest.mark.frozen
def test_record_schema_violation_is_reported(onedir: Path, keys: Keys, sbom: str) -> None:
    record_path = onedir / "_internal/mlbundle_payload/record.json"
    record = json.loads(record_path.read_text())
    del record["gate"]
    record["parity"]["rows"] = "many"
    record_path.write_text(json.dumps(record))
    # re-sign so that only the schema check can catch it
    mf.sign_manifest(mf.write_onedir_manifest(onedir, sbom), mf.load_private_key(keys.private))
    report = verify_bundle(onedir, keys.public)
    assert not report.problems and report.signature == "valid"
    assert not report.ok
    joined = "\n".join(report.record_errors)
    assert "'gate' is a required property" in joined
    assert "parity/rows" in joined
    assert "model record: does NOT match its schema" in report.lines()


@pytest.mark.frozen
def test_no_manifest_is_an_error(built, tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    shutil.copytree(built.out / "onedir" / "penguins", folder, symlinks=True)
    (folder / mf.MANIFEST_NAME).unlink(missing_ok=True)  # the build writes one
    with pytest.raises(mf.IntegrityError, match="no mlbundle-manifest.json"):
        verify_bundle(folder)
    with pytest.raises(UsageError, match="does not exist; expected a onedir folder"):
        verify_bundle(tmp_path / "nothing")


# -- verify: onefile -------------------------------------------------------------------


def _entry_span(exe: Path, name: str) -> tuple[int, int]:
    """Absolute offset and length of a CArchive entry (or ``PYZ.pyz::module``) in the file."""
    from PyInstaller.archive.readers import CArchiveReader

    reader = CArchiveReader(str(exe))
    if mf.PYZ_SEPARATOR in name:
        pyz_name, module = name.split(mf.PYZ_SEPARATOR)
        pyz = reader.open_embedded_archive(pyz_name)
        _type, offset, length = pyz.toc[module]
        return pyz._start_offset + offset, length
    offset, length, *_ = reader.toc[name]
    return reader._start_offset + offset, length


@pytest.mark.frozen
def test_untouched_onefile_verifies(onefile: Path, keys: Keys) -> None:
    report = verify_bundle(onefile, keys.public)
    assert report.ok, report.lines()
    assert report.kind == "onefile" and report.signature == "valid"
    paths = {f.path for f in report.files}
    assert {"penguins", "penguins.mlbundle-sbom.cdx.json", "mlbundle_payload/record.json"} <= paths
    assert "PYZ.pyz::mlbundle_runtime.scorer" in paths


@pytest.mark.frozen
@pytest.mark.parametrize(
    "entry", ["mlbundle_payload/plan.json", "PYZ.pyz::mlbundle_runtime.scorer"]
)
def test_flipped_byte_in_an_archive_entry_names_the_entry(
    onefile: Path, keys: Keys, entry: str
) -> None:
    offset, length = _entry_span(onefile, entry)
    flip(onefile, offset + length // 2)
    report = verify_bundle(onefile, keys.public)
    found = problems(report)
    assert found["penguins"] == "tampered"
    assert found[entry] == "tampered"
    # only the entry (and the PYZ archive holding it) changed
    assert set(found) <= {"penguins", entry, "PYZ.pyz"}
    assert not report.ok and report.signature == "valid"


@pytest.mark.frozen
def test_flipped_byte_outside_the_archive_is_still_caught(onefile: Path, keys: Keys) -> None:
    flip(onefile, 0x400)  # inside the bootloader, before the appended archive
    report = verify_bundle(onefile, keys.public)
    assert problems(report) == {"penguins": "tampered"}
    assert "outside the archive's entries" in report.problems[0].detail


@pytest.mark.frozen
def test_onefile_missing_sbom_and_wrong_key(onefile: Path, keys: Keys, tmp_path: Path) -> None:
    onefile.with_name("penguins.mlbundle-sbom.cdx.json").unlink()
    assert problems(verify_bundle(onefile)) == {"penguins.mlbundle-sbom.cdx.json": "missing"}
    other = Keys(tmp_path / "o.pem", tmp_path / "o.pub.pem")
    mf.keygen(other.private, other.public)
    assert verify_bundle(onefile, other.public).signature == "invalid"


# -- verify: installer -----------------------------------------------------------------


@pytest.mark.frozen
def test_installer_tarball_verifies_and_reports_tampering(
    onedir: Path, keys: Keys, tmp_path: Path
) -> None:
    good = make_tarball(onedir, tmp_path / "penguins-1.0.0.tar.gz")
    report = verify_bundle(good, keys.public)
    assert report.ok, report.lines()
    assert report.kind == "installer" and report.signature == "valid"
    flip(onedir / "_internal/mlbundle_payload/plan.json", 5)
    bad = make_tarball(onedir, tmp_path / "bad.tar.gz")
    assert problems(verify_bundle(bad, keys.public)) == {
        "_internal/mlbundle_payload/plan.json": "tampered"
    }


def make_deb(folder: Path, work: Path) -> Path:
    """A minimal .deb with the bundle under /opt and a launcher outside it, as dpkg-deb makes."""
    dpkg = shutil.which("dpkg-deb")
    if dpkg is None:
        pytest.skip("dpkg-deb is not installed")
    root = work / "deb-root"
    shutil.copytree(folder, root / "opt" / "penguins", symlinks=True)
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "penguins").write_text("#!/bin/sh\nexec /opt/penguins/penguins\n")
    (root / "DEBIAN").mkdir()
    (root / "DEBIAN" / "control").write_text(
        "Package: penguins\nVersion: 1.0.0\nArchitecture: amd64\n"
        "Maintainer: test <test@localhost>\nDescription: test\n"
    )
    target = work / "penguins_1.0.0_amd64.deb"
    subprocess.run(
        [dpkg, "--root-owner-group", "-Zgzip", "-z1", "--build", str(root), str(target)],
        check=True,
        capture_output=True,
    )
    return target


@pytest.mark.frozen
def test_deb_installer_verifies_and_lists_package_files_outside_the_bundle(
    built, onedir: Path, keys: Keys, tmp_path: Path
) -> None:
    deb = make_deb(onedir, tmp_path)
    report = verify_bundle(deb, keys.public)
    assert report.ok, report.lines()
    assert report.kind == "installer" and report.uncovered == ["usr/bin/penguins"]
    assert any("not covered by the manifest" in line for line in report.lines())
    assert read_record(deb) == payload_record(built)
    flip(onedir / "_internal/base_library.zip", 100)
    bad = make_deb(onedir, tmp_path / "bad")
    assert problems(verify_bundle(bad, keys.public)) == {"_internal/base_library.zip": "tampered"}


def _evil_tarball(path: Path, member: tarfile.TarInfo, data: bytes = b"x") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        member.size = len(data) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


@pytest.mark.parametrize(
    "name, kind, link",
    [
        ("../escaped.txt", tarfile.REGTYPE, ""),
        ("/tmp/absolute-mlbundle.txt", tarfile.REGTYPE, ""),
        ("penguins/../../escaped.txt", tarfile.REGTYPE, ""),
        ("penguins/link", tarfile.SYMTYPE, "../../etc/passwd"),
        ("penguins/abs-link", tarfile.SYMTYPE, "/etc/passwd"),
        ("penguins/fifo", tarfile.FIFOTYPE, ""),
    ],
)
def test_unsafe_installer_members_are_refused(
    tmp_path: Path, name: str, kind: bytes, link: str
) -> None:
    member = tarfile.TarInfo(name)
    member.type = kind
    member.linkname = link
    work = tmp_path / "work"
    work.mkdir()
    tarball = _evil_tarball(work / "evil.tar.gz", member)
    with pytest.raises(mf.IntegrityError, match="refusing"):
        verify_bundle(tarball)
    assert not (tmp_path / "escaped.txt").exists()
    assert not Path("/tmp/absolute-mlbundle.txt").exists()


# -- the record schema -----------------------------------------------------------------


@pytest.mark.frozen
def test_schema_is_valid_draft_2020_12_and_accepts_the_built_record(built) -> None:
    from jsonschema import Draft202012Validator

    schema = record_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    assert validate_record(payload_record(built)) == []


@pytest.mark.frozen
@pytest.mark.parametrize(
    "change, where",
    [
        (lambda r: r.pop("model"), "(top level)"),
        (lambda r: r.update(surprise=1), "(top level)"),
        (lambda r: r["inputs"][0].pop("categories"), "inputs/0"),
        (lambda r: r["inputs"][1].update(kind="text"), "inputs/1/kind"),
        (lambda r: r["scoring_code"].update(plan_sha256="abc"), "scoring_code/plan_sha256"),
        (lambda r: r["gate"].update(passed="yes"), "gate/passed"),
        (lambda r: r["build"].update(time="yesterday"), "build/time"),
        (lambda r: r.update(schema_version="2.0"), "schema_version"),
    ],
)
def test_schema_rejects_malformed_records(built, change, where: str) -> None:
    record = payload_record(built)
    change(record)
    errors = validate_record(record)
    assert errors and any(e.startswith(where + ":") for e in errors), errors


@pytest.mark.frozen
def test_schema_1_1_requires_audit_and_only_a_release_is_approved(built) -> None:
    record = payload_record(built)
    if record["schema_version"] == "1.0":
        pytest.skip("the build still writes record 1.0")
    assert validate_record(record) == []
    approved_dev = json.loads(json.dumps(record))
    approved_dev["audit"].update(status="APPROVED", release_build=False)
    assert any(e.startswith("audit/release_build:") for e in validate_record(approved_dev))
    unsigned_off = json.loads(json.dumps(record))
    unsigned_off["audit"].update(status="APPROVED", release_build=True, approved_by=None)
    assert any(e.startswith("audit/approved_by:") for e in validate_record(unsigned_off))
    del record["audit"]
    assert any("'audit' is a required property" in e for e in validate_record(record))


@pytest.mark.frozen
def test_schema_allows_free_form_hyperparameters_and_no_extractor(built) -> None:
    record = payload_record(built)
    record["model"]["hyperparameters"] = {"anything": {"nested": [1, "two", None]}}
    record["extractor"] = None
    assert validate_record(record) == []


# -- inspect ---------------------------------------------------------------------------


@pytest.mark.frozen
def test_read_record_never_needs_to_execute(built, onedir: Path, onefile: Path, tmp_path) -> None:
    expected = payload_record(built)
    exe = onedir / "penguins"
    assert not os.access(exe, os.X_OK) and not os.access(onefile, os.X_OK)
    assert read_record(onedir) == expected
    assert read_record(exe) == expected
    assert read_record(onefile) == expected
    assert read_record(make_tarball(onedir, tmp_path / "penguins.tar.gz")) == expected
    with pytest.raises(mf.IntegrityError):
        read_record(tmp_path / "keys" / "signing.pub.pem")


@pytest.mark.frozen
def test_record_table_shows_each_section_readably(built) -> None:
    record = payload_record(built)
    record["audit"] = {"approved_by": "Jane Doe", "approved_date": "2026-01-02"}
    rows = record_rows(record)
    sections = [s for s, _f, _v in rows]
    for section in (
        "app",
        "model",
        "extractor",
        "training",
        "inputs",
        "outputs",
        "gate",
        "parity",
        "scoring_code",
        "build",
        "audit",
    ):
        assert section in sections, section
    values = {(s, f): v for s, f, v in rows}
    assert values[("inputs", "island")].startswith("categorical: Biscoe, Dream, Torgersen")
    assert values[("inputs", "bill_length_mm")].startswith("numeric [mm]")
    assert values[("audit", "approved_by")] == "Jane Doe"
    console = Console(record=True, width=160, color_system=None)
    console.print(record_table(record))
    text = console.export_text()
    assert "RandomForestClassifier" in text and "numeric [mm]" in text
    assert "balanced_accuracy" in text and "Penguin species classifier" in text
