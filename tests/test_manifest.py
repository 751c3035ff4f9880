"""Manifest, SBOM and signing, on copies of the session's real build.

The build does not write manifests yet, so these tests call the functions on
copies of the frozen outputs, as the build will after its self-test.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from bundler import manifest as mf
from bundler.freeze import bundled_names
from bundler.sbom import build_sbom, frozen_distributions
from mlbundle_runtime import __version__

ROOT = Path(__file__).resolve().parents[1]


def _sbom(executable: Path) -> str:
    return build_sbom(
        frozen_distributions(bundled_names(executable)), app_name="penguins", app_version="1.0.0"
    )


@pytest.fixture()
def onedir(built, tmp_path: Path) -> Path:
    folder = tmp_path / "penguins"
    shutil.copytree(built.out / "onedir" / "penguins", folder, symlinks=True)
    return folder


@pytest.fixture()
def onefile(built, tmp_path: Path) -> Path:
    exe = tmp_path / "penguins"
    shutil.copy2(built.onefile, exe)
    return exe


# -- SBOM ------------------------------------------------------------------------------


@pytest.mark.frozen
def test_sbom_lists_what_shipped_with_versions_and_licences(built) -> None:
    dists = {d.name: d for d in frozen_distributions(bundled_names(built.onefile))}
    assert {"numpy", "mlbundle", "cpython", "pyinstaller"} <= set(dists)
    assert not {"scikit-learn", "scipy", "joblib", "numba", "llvmlite"} & set(dists)  # aot
    assert dists["numpy"].version == metadata.version("numpy")
    assert dists["numpy"].purl == f"pkg:pypi/numpy@{metadata.version('numpy')}"
    assert dists["mlbundle"].version == __version__
    assert dists["cpython"].licenses == ("PSF-2.0",)
    assert dists["cpython"].version == ".".join(map(str, sys.version_info[:3]))
    assert all(d.licenses for d in dists.values()), dists


def test_sbom_for_a_jit_bundle_names_numba_and_llvmlite() -> None:
    names = [
        "numpy._core.multiarray",
        "numba.core.types",
        "llvmlite.binding",
        "json",
        "mlbundle_runtime.cli",
    ]
    dists = {d.name for d in frozen_distributions(names)}
    assert dists == {"numpy", "numba", "llvmlite", "cpython", "mlbundle"}


@pytest.mark.frozen
def test_sbom_is_valid_cyclonedx_1_6(built) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    text = _sbom(built.onefile)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    doc = json.loads(text)
    assert doc["specVersion"] == "1.6"
    assert doc["metadata"]["component"] == {
        "bom-ref": "app:penguins@1.0.0",
        "name": "penguins",
        "type": "application",
        "version": "1.0.0",
    }
    numpy = next(c for c in doc["components"] if c["name"] == "numpy")
    assert numpy["licenses"] and numpy["purl"].startswith("pkg:pypi/numpy@")
    names = [c["name"] for c in doc["components"]]
    assert names == sorted(names)


@pytest.mark.frozen
def test_sbom_is_deterministic(built, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    first, second = _sbom(built.onefile), _sbom(built.onefile)
    assert first == second
    assert json.loads(first)["metadata"]["timestamp"].startswith("1980-01-01")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    dated = json.loads(_sbom(built.onefile))
    assert dated["metadata"]["timestamp"].startswith("2023-11-14T22:13:20")
    assert dated["serialNumber"] == json.loads(first)["serialNumber"]  # content, not time
    other = json.loads(
        build_sbom(frozen_distributions([]), app_name="penguins", app_version="1.0.1")
    )
    assert other["serialNumber"] != dated["serialNumber"]


@pytest.mark.frozen
def test_sbom_and_manifest_are_byte_identical_across_processes(
    built, onedir: Path, tmp_path: Path
) -> None:
    """Set and dict order must not leak into the files: run with two hash seeds."""
    script = (
        "import sys; from pathlib import Path\n"
        "from bundler.freeze import bundled_names\n"
        "from bundler.sbom import build_sbom, frozen_distributions\n"
        "from bundler.manifest import write_onedir_manifest\n"
        "d = frozen_distributions(bundled_names(Path(sys.argv[1])))\n"
        "s = build_sbom(d, app_name='penguins', app_version='1.0.0')\n"
        "sys.stdout.write(write_onedir_manifest(Path(sys.argv[2]), s).read_text())\n"
    )
    outputs = []
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        env.pop("SOURCE_DATE_EPOCH", None)
        proc = subprocess.run(
            [sys.executable, "-c", script, str(built.onefile), str(onedir)],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            check=True,
        )
        outputs.append((proc.stdout, (onedir / mf.SBOM_NAME).read_bytes()))
    assert outputs[0] == outputs[1]


# -- manifests -------------------------------------------------------------------------


@pytest.mark.frozen
def test_onedir_manifest_lists_every_file(built, onedir: Path) -> None:
    sbom = _sbom(onedir / "penguins")
    path = mf.write_onedir_manifest(onedir, sbom)
    assert path == onedir / mf.MANIFEST_NAME
    assert (onedir / mf.SBOM_NAME).read_text() == sbom
    manifest = json.loads(path.read_bytes())
    assert manifest["format"] == "mlbundle.manifest" and manifest["version"] == "1.0"
    assert manifest["kind"] == "onedir"
    assert manifest["app"] == {"name": "penguins", "version": "1.0.0"}
    listed = [e["path"] for e in manifest["files"]]
    assert listed == sorted(listed)
    on_disk = sorted(
        p.relative_to(onedir).as_posix()
        for p in onedir.rglob("*")
        if (p.is_file() or p.is_symlink()) and p.name != mf.MANIFEST_NAME
    )
    assert listed == on_disk
    assert {"penguins", mf.SBOM_NAME, "_internal/mlbundle_payload/record.json"} <= set(listed)
    for entry in manifest["files"]:
        file = onedir / entry["path"]
        if "symlink" in entry:
            assert file.is_symlink() and os.readlink(file) == entry["symlink"]
        else:
            assert entry["size"] == file.stat().st_size
    record = next(e for e in manifest["files"] if e["path"].endswith("record.json"))
    data = (onedir / record["path"]).read_bytes()
    assert record["sha256"] == hashlib.sha256(data).hexdigest()
    first = path.read_bytes()
    mf.write_onedir_manifest(onedir, sbom)
    assert path.read_bytes() == first  # reproducible: the manifest does not list itself


@pytest.mark.frozen
def test_onefile_manifest_records_the_executable_and_each_archive_entry(
    built, onefile: Path
) -> None:
    sbom = _sbom(onefile)
    path = mf.write_onefile_manifest(onefile, sbom, app_name="penguins", app_version="1.0.0")
    assert path.name == "penguins.mlbundle-manifest.json" and path.parent == onefile.parent
    assert (onefile.parent / "penguins.mlbundle-sbom.cdx.json").read_text() == sbom
    manifest = json.loads(path.read_bytes())
    assert manifest["kind"] == "onefile"
    assert manifest["executable"] == {
        "path": "penguins",
        "size": onefile.stat().st_size,
        "sha256": hashlib.sha256(onefile.read_bytes()).hexdigest(),
    }
    assert manifest["sbom"]["sha256"] == hashlib.sha256(sbom.encode()).hexdigest()
    entries = {e["path"]: e for e in manifest["files"]}
    assert "PYZ.pyz" in entries and "PYZ.pyz::mlbundle_runtime.scorer" in entries
    # the record inside the archive is the very file the onedir folder carries
    onedir_record = built.onedir.parent / "_internal/mlbundle_payload/record.json"
    assert entries["mlbundle_payload/record.json"]["sha256"] == (
        hashlib.sha256(onedir_record.read_bytes()).hexdigest()
    )
    first = path.read_bytes()
    mf.write_onefile_manifest(onefile, sbom, app_name="penguins", app_version="1.0.0")
    assert path.read_bytes() == first


def test_manifest_refuses_what_is_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(mf.IntegrityError):
        mf.write_onedir_manifest(tmp_path / "nope", "{}")
    junk = tmp_path / "junk"
    junk.write_bytes(b"not an executable")
    with pytest.raises(mf.IntegrityError, match="PyInstaller archive"):
        mf.write_onefile_manifest(junk, "{}")


# -- keys and signatures ---------------------------------------------------------------


def test_keygen_writes_a_private_key_only_its_owner_can_read(tmp_path: Path) -> None:
    private, public = tmp_path / "keys" / "signing.pem", tmp_path / "keys" / "signing.pub.pem"
    mf.keygen(private, public)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert sorted(p.name for p in private.parent.iterdir()) == sorted([private.name, public.name])
    before = private.read_bytes()
    with pytest.raises(mf.IntegrityError, match="refusing to overwrite"):
        mf.keygen(private, tmp_path / "other.pub.pem")
    with pytest.raises(mf.IntegrityError, match="refusing to overwrite"):
        mf.keygen(tmp_path / "other.pem", public)
    assert private.read_bytes() == before
    assert not (tmp_path / "other.pem").exists()


def test_private_key_from_file_or_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private, public = tmp_path / "k.pem", tmp_path / "k.pub.pem"
    mf.keygen(private, public)
    from_file = mf.load_private_key(private)
    monkeypatch.setenv(mf.KEY_ENV, private.read_text())
    from_env = mf.load_private_key(None)
    assert from_file.public_key().public_bytes_raw() == from_env.public_key().public_bytes_raw()


@pytest.mark.parametrize("case", ["unset", "public", "garbage", "ec", "missing file"])
def test_bad_key_input_is_a_clear_error_without_key_material(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    monkeypatch.delenv(mf.KEY_ENV, raising=False)
    mf.keygen(tmp_path / "k.pem", tmp_path / "k.pub.pem")
    secret = "".join((tmp_path / "k.pem").read_text().splitlines()[1:-1])
    path: Path | None = tmp_path / "key.pem"
    if case == "unset":
        path = None
    elif case == "public":
        path = tmp_path / "k.pub.pem"
    elif case == "garbage":
        path.write_text("-----BEGIN PRIVATE KEY-----\n" + secret[::-1] + "\n")
    elif case == "ec":
        pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.write_bytes(pem)
    with pytest.raises(mf.IntegrityError) as info:
        mf.load_private_key(path)
    assert info.value.exit_code == 10
    assert secret not in str(info.value) and secret[::-1] not in str(info.value)
    assert info.value.__cause__ is None  # no chained parser error quoting the input


@pytest.mark.frozen
def test_signature_is_detached_base64_ed25519_over_the_manifest(
    onedir: Path, tmp_path: Path
) -> None:
    manifest = mf.write_onedir_manifest(onedir, _sbom(onedir / "penguins"))
    mf.keygen(tmp_path / "k.pem", tmp_path / "k.pub.pem")
    key = mf.load_private_key(tmp_path / "k.pem")
    sig = mf.sign_manifest(manifest, key)
    assert sig == onedir / mf.SIGNATURE_NAME
    assert len(base64.b64decode(sig.read_text().strip(), validate=True)) == 64
    public = mf.load_public_key(tmp_path / "k.pub.pem")
    assert mf.check_signature(manifest.read_bytes(), sig.read_text(), public)
    assert not mf.check_signature(manifest.read_bytes() + b" ", sig.read_text(), public)
    assert not mf.check_signature(manifest.read_bytes(), "not base64!", public)
    # the private key is in no file of the bundle, in any form
    raw = key.private_bytes_raw()
    pem = (tmp_path / "k.pem").read_bytes()
    for file in onedir.rglob("*"):
        if file.is_file() and not file.is_symlink():
            data = file.read_bytes()
            assert raw not in data and pem not in data, file
    # rewriting the manifest drops the now-stale signature
    mf.write_onedir_manifest(onedir, _sbom(onedir / "penguins"))
    assert not sig.exists()


@pytest.mark.frozen
def test_onefile_signature_sits_beside_the_executable(onefile: Path, tmp_path: Path) -> None:
    manifest = mf.write_onefile_manifest(onefile, _sbom(onefile))
    mf.keygen(tmp_path / "k.pem", tmp_path / "k.pub.pem")
    sig = mf.sign_manifest(manifest, mf.load_private_key(tmp_path / "k.pem"))
    assert sig == onefile.with_name("penguins.mlbundle-manifest.sig")
