"""``bundle pack``, ``bundle inspect`` and ``bundle verify`` of a model pack: the build side.

A pack must be what ``mlbundle_runtime.packs.read_pack`` accepts with the release key,
carry the manifest the app checks before installing (which app, which model version,
what it needs of the app), be the same bytes when made twice from one model, and never
be made from a spec, key or version no app could use. Nothing here freezes an app.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from pathlib import Path

import pytest

from bundler import freeze
from bundler.build import prepare
from bundler.spec import load_spec
from mlbundle_runtime.backend import kernel_source_hash
from mlbundle_runtime.packs import PackError, key_id, read_pack
from tests._packs import spec_text
from tests.conftest import EPOCH, RESOURCES, SPEC, run_bundle

ART = RESOURCES / "artifacts"
PAYLOAD_FILES = {
    "bundle.json",
    "plan.json",
    "arrays.npz",
    "record.json",
    "gate.json",
    "gate/e2e.csv",
    "gate/confidence.csv",
    "requirements.txt",
}


def keypair(folder: Path, name: str = "release") -> tuple[Path, Path]:
    private, public = folder / f"{name}.pem", folder / f"{name}.pub"
    proc = run_bundle("keygen", str(private), str(public))
    assert proc.returncode == 0, proc.stderr
    return private, public


def raw_key(public: Path) -> bytes:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_public_key(public.read_bytes())
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return keypair(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory, keys: tuple[Path, Path]) -> Path:
    """The example's spec, trusting the module's release key."""
    path = tmp_path_factory.mktemp("spec") / "penguins.toml"
    path.write_text(spec_text(keys[1]), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory, spec: Path, keys: tuple[Path, Path]) -> Path:
    out = tmp_path_factory.mktemp("pack") / "penguins-1.0.0.mlpack"
    proc = run_bundle(
        "pack", str(spec), "--out", str(out), "--signing-key", str(keys[0]),
        "--expires", "2099-06-30",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "penguins model 1.0.0" in proc.stdout and "UNAPPROVED" in proc.stdout
    return out


def refused(proc, code: int, *fragments: str) -> str:
    text = proc.stdout + proc.stderr
    assert proc.returncode == code, text
    assert "Traceback" not in text
    flat = " ".join(text.split())
    for fragment in fragments:
        assert fragment in flat, f"{fragment!r} not in {flat!r}"
    return flat


# -- a pack the runtime reads ------------------------------------------------------------


def test_pack_is_read_by_the_runtime_with_the_contract_meta(
    packed: Path, keys: tuple[Path, Path]
) -> None:
    raw = raw_key(keys[1])
    pack = read_pack(packed.read_bytes(), str(packed), raw)
    assert set(pack.files) == PAYLOAD_FILES  # no updates.json, no __init__.py
    plan = json.loads(pack.files["plan.json"])
    meta = pack.meta
    assert meta["app"] == "penguins" and meta["title"] == "Penguin species classifier"
    assert meta["model_version"] == "1.0.0"
    assert meta["approval"] == "UNAPPROVED" and not pack.approved
    assert meta["built_at"] == "2025-11-29T00:00:00Z" and EPOCH == "1764374400"
    assert meta["expires"] == "2099-06-30T00:00:00Z" and not pack.expired()
    assert meta["key_id"] == key_id(raw)
    assert meta["pack_format"] == "1.0"
    requires = meta["requires"]
    assert requires["plan_format"] == plan["format_version"]
    assert requires["kernels"] == sorted({op["kernel"] for op in plan["ops"]})
    assert requires["kernel_source"] == kernel_source_hash()
    assert requires["inputs"] == [{"name": i["name"], "kind": i["kind"]} for i in plan["inputs"]]
    assert len(requires["inputs"]) == 6
    assert requires["task"] == "classification"
    assert requires["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    # the pack's own bundle.json lists every other payload file it carries, with its hash
    info = json.loads(pack.files["bundle.json"])
    assert set(info["files"]) == PAYLOAD_FILES - {"bundle.json"}
    for name, digest in info["files"].items():
        assert hashlib.sha256(pack.files[name]).hexdigest() == digest
    assert info["release"] is False and info["model_version"] == "1.0.0"


def test_another_key_and_a_flipped_byte_are_refused(
    packed: Path, tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    _, other = keypair(tmp_path, "other")
    data = packed.read_bytes()
    with pytest.raises(PackError, match="signature"):
        read_pack(data, "p", raw_key(other))
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 1
    with pytest.raises(PackError):
        read_pack(bytes(flipped), "p", raw_key(keys[1]))


def test_two_packs_of_one_model_are_identical(
    packed: Path, spec: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    again = tmp_path / "again.mlpack"
    proc = run_bundle(
        "pack", str(spec), "--out", str(again), "--signing-key", str(keys[0]),
        "--expires", "2099-06-30",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert again.read_bytes() == packed.read_bytes()
    assert not list(tmp_path.glob(".*tmp*"))  # the temp file was renamed, not left


def test_release_pack_is_approved(spec: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "release.mlpack"
    proc = run_bundle(
        "pack", str(spec), "--out", str(out), "--signing-key", str(keys[0]), "--release"
    )
    assert proc.returncode == 0, proc.stderr
    assert "UNAPPROVED" not in proc.stdout
    pack = read_pack(out.read_bytes(), str(out), raw_key(keys[1]))
    assert pack.approved and pack.meta["expires"] is None
    assert json.loads(pack.files["bundle.json"])["release"] is True


# -- refusals ---------------------------------------------------------------------------


def test_bad_output_names_keys_and_dates_are_refused_before_any_work(
    spec: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    private, public = keys
    out = str(tmp_path / "p.mlpack")
    cases = [
        (["--out", str(tmp_path / "p.zip"), "--signing-key", str(private)], 2, "does not end in .mlpack"),  # noqa: E501
        (["--out", str(tmp_path / "no" / "p.mlpack"), "--signing-key", str(private)], 2, "does not exist"),  # noqa: E501
        (["--out", out, "--signing-key", str(public)], 10, "holds a public key"),
        (["--out", out, "--signing-key", str(tmp_path / "none.pem")], 2, "--signing-key"),
        (["--out", out, "--signing-key", str(private), "--expires", "2020-01-01"], 2, "--expires: 2020-01-01 is already past"),  # noqa: E501
        (["--out", out, "--signing-key", str(private), "--expires", "June"], 2, "--expires: 'June' is not a date"),  # noqa: E501
    ]  # fmt: skip
    for args, code, fragment in cases:
        refused(run_bundle("pack", str(spec), *args), code, fragment)
    assert not (tmp_path / "p.mlpack").exists()


def test_a_key_that_is_not_the_specs_release_key_is_refused(spec: Path, tmp_path: Path) -> None:
    other, _ = keypair(tmp_path, "other")
    proc = run_bundle(
        "pack", str(spec), "--out", str(tmp_path / "p.mlpack"), "--signing-key", str(other)
    )
    refused(proc, 13, "is not the release key in", "updates.public_key", "would refuse the pack")
    assert not (tmp_path / "p.mlpack").exists()


def test_a_spec_without_updates_packs_with_a_warning(tmp_path: Path) -> None:
    private, public = keypair(tmp_path)
    spec = tmp_path / "plain.toml"
    spec.write_text(spec_text(None), encoding="utf-8")
    out = tmp_path / "p.mlpack"
    proc = run_bundle("pack", str(spec), "--out", str(out), "--signing-key", str(private))
    assert proc.returncode == 0, proc.stderr
    assert "has no [updates] table" in " ".join(proc.stderr.split())
    assert read_pack(out.read_bytes(), str(out), raw_key(public)).model_version == "1.0.0"


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (('backend = "aot"', 'backend = "passthrough"'), "build.backend: 'passthrough'"),
        (
            ('version = "1.0.0"\nextractor_version', 'version = "1.0-beta"\nextractor_version'),
            "model.version: '1.0-beta'",
        ),
    ],
)
def test_models_no_app_could_install_are_refused(
    keys: tuple[Path, Path], tmp_path: Path, edit: tuple[str, str], fragment: str
) -> None:
    text = spec_text(keys[1])
    assert edit[0] in text
    spec = tmp_path / "x.toml"
    spec.write_text(text.replace(edit[0], edit[1], 1), encoding="utf-8")
    out = tmp_path / "p.mlpack"
    proc = run_bundle("pack", str(spec), "--out", str(out), "--signing-key", str(keys[0]))
    refused(proc, 13, str(spec), fragment)
    assert not out.exists()


# -- inspect and verify -----------------------------------------------------------------


def test_inspect_shows_the_manifest_and_record(packed: Path) -> None:
    proc = run_bundle("inspect", str(packed))
    assert proc.returncode == 0, proc.stderr
    for fragment in (
        "signature not checked",
        "model version: 1.0.0",
        "approval: UNAPPROVED",
        "expires: 2099-06-30T00:00:00Z",
        "task: classification; classes: Adelie, Chinstrap, Gentoo",
        "record: RandomForestClassifier 1.0.0",
        "gate: balanced_accuracy",
    ):
        assert fragment in proc.stdout, proc.stdout
    as_json = json.loads(run_bundle("inspect", str(packed), "--json").stdout)
    assert as_json["pack"]["model_version"] == "1.0.0"
    assert as_json["record"]["model"]["sha256"] == load_spec(SPEC).model.sha256


def test_verify_checks_the_pack_against_the_release_key(
    packed: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    ok = run_bundle("verify", str(packed), "--public-key", str(keys[1]))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "all 8 files' sha256 match" in ok.stdout
    _, other = keypair(tmp_path, "other")
    refused(run_bundle("verify", str(packed), "--public-key", str(other)), 11, "FAILED")
    flipped = tmp_path / "flipped.mlpack"
    data = bytearray(packed.read_bytes())
    data[-100] ^= 0x40
    flipped.write_bytes(bytes(data))
    refused(run_bundle("verify", str(flipped), "--public-key", str(keys[1])), 11, "FAILED")
    refused(run_bundle("verify", str(packed)), 2, "--public-key")
    not_pack = tmp_path / "x.mlpack"
    not_pack.write_bytes(b"species,island\n")
    refused(run_bundle("inspect", str(not_pack)), 10, "is not a model pack")


def test_a_packs_files_come_from_one_zip_with_fixed_metadata(packed: Path) -> None:
    body = packed.read_bytes().split(b"\n", 2)[2]
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos][:2] == ["pack.json", "pack.sig"]
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}


# -- what the build freezes -------------------------------------------------------------


def test_build_payload_carries_the_release_key_and_release_flag(
    spec: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    prepared = prepare(load_spec(spec), tmp_path, release=False)
    updates = json.loads((prepared.payload / "updates.json").read_text())
    raw = raw_key(keys[1])
    assert updates == {"public_key": raw.hex(), "key_id": key_id(raw), "source": None}
    info = json.loads((prepared.payload / "bundle.json").read_text())
    assert info["release"] is False
    digest = hashlib.sha256((prepared.payload / "updates.json").read_bytes()).hexdigest()
    assert info["files"]["updates.json"] == digest


def _rendered(payload: Path, updates: dict | None) -> tuple[str, str]:
    payload.mkdir(parents=True, exist_ok=True)
    if updates is not None:
        (payload / "updates.json").write_text(json.dumps(updates))
    kernels = payload.parent / "_mlbundle_kernels.cpython-311-x86_64-linux-gnu.so"
    kernels.write_bytes(b"")
    text = freeze.render_spec(
        name="app", backend="aot", modes=["onefile"], payload_dir=payload,
        payload_import_root=payload, aot_extension=kernels,
    )  # fmt: skip
    hidden, excludes = text.split("hiddenimports=")[1].split("excludes=")
    return hidden.split("hookspath=")[0], excludes.split("noarchive")[0]


def test_freeze_ships_the_pack_checker_only_with_updates(tmp_path: Path) -> None:
    hidden, excludes = _rendered(tmp_path / "none" / "payload", None)
    for module in ("nacl", "_cffi_backend", "platformdirs", "filelock"):
        assert f"'{module}'" in excludes and f"'{module}'" not in hidden
    assert "'ssl'" in excludes
    key = {"public_key": "00" * 32, "key_id": "x", "source": "/srv/models"}
    hidden, excludes = _rendered(tmp_path / "folder" / "payload", key)
    for module in ("nacl", "_cffi_backend", "platformdirs", "filelock"):
        assert f"'{module}'" in hidden and f"'{module}'" not in excludes
    assert "'ssl'" in excludes and "'sqlite3'" in excludes  # filelock's unused SQLite locks
    hidden, excludes = _rendered(
        tmp_path / "https" / "payload", {**key, "source": "https://example.org/p.mlpack"}
    )
    assert "'ssl'" in hidden and "'ssl'" not in excludes and "'_ssl'" not in excludes


def test_the_format_document_lists_every_manifest_field(packed: Path) -> None:
    """docs/model-packs.md's two tables name exactly the fields a pack's manifest has."""
    doc = (SPEC.parents[1] / "docs" / "model-packs.md").read_text(encoding="utf-8")
    top, requires = doc.split("### `pack.json`", 1)[1].split("`requires`:", 1)
    requires = requires.split("### Versions", 1)[0]

    def fields(text: str) -> set[str]:
        return {m for m in re.findall(r"(?m)^\| `([a-z_]+)` \|", text)}

    body = packed.read_bytes().split(b"\n", 2)[2]
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        meta = json.loads(archive.read("pack.json"))
    assert fields(top) == set(meta)
    # `targets` only in a multi-output model's pack (tests/test_pack_multi_output.py)
    assert fields(requires) == set(meta["requires"]) | {"targets"}
    assert f"# Model packs, format {meta['pack_format'].split('.')[0]}" in doc


def test_a_frozen_app_missing_the_pack_checker_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After PyInstaller: an app with [updates] must hold PyNaCl, cffi's backend and (https)
    _ssl; one without must hold none of the pack checker's modules."""
    ext = ".cpython-311-x86_64-linux-gnu.so"
    complete = [
        "nacl/__init__.pyc", "nacl/_sodium.abi3.so", f"_cffi_backend{ext}",
        "platformdirs", "filelock", f"python3.11/lib-dynload/_ssl{ext}", "ssl",
    ]  # fmt: skip
    https = freeze.updates_needs(_payload(tmp_path / "https", "https://example.org/p.mlpack"))
    exe = tmp_path / "app"
    monkeypatch.setattr(freeze, "bundled_names", lambda _exe: complete)
    freeze._check_updates(exe, https, None)
    for lost in (f"_cffi_backend{ext}", f"python3.11/lib-dynload/_ssl{ext}"):
        monkeypatch.setattr(freeze, "bundled_names", lambda _exe, lost=lost: [
            n for n in complete if n != lost
        ])  # fmt: skip
        with pytest.raises(freeze.FreezeError, match="lacks (_cffi_backend|_ssl), which an app"):
            freeze._check_updates(exe, https, None)
    folder = freeze.updates_needs(_payload(tmp_path / "folder", "/srv/models"))
    assert folder is not None and "ssl" not in folder and "_cffi_backend" in folder
    monkeypatch.setattr(freeze, "bundled_names", lambda _exe: ["numpy/__init__.pyc", "nacl"])
    with pytest.raises(freeze.FreezeError, match="ships nacl without \\[updates\\]"):
        freeze._check_updates(exe, None, None)


def _payload(folder: Path, source: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "updates.json").write_text(json.dumps({"source": source}))
    return folder
