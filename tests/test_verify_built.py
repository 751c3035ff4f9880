"""``bundle verify`` and ``bundle inspect`` on the real, signed build output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import Built, run_bundle

pytestmark = pytest.mark.frozen

TARGETS = [
    "onedir/penguins",
    "onefile/penguins",
    "installers/penguins-1.0.0-linux-x86_64.tar.gz",
    "installers/penguins_1.0.0_amd64.deb",
]


@pytest.mark.parametrize("target", TARGETS)
def test_built_outputs_verify_with_their_signature(built: Built, target: str) -> None:
    proc = run_bundle("verify", str(built.out / target), "--key", str(built.public_key))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "signature: valid" in proc.stdout and "verdict: OK" in proc.stdout


def test_wrong_key_is_rejected(built: Built, tmp_path: Path) -> None:
    run_bundle("keygen", str(tmp_path / "other.pem"), str(tmp_path / "other.pub"))
    proc = run_bundle(
        "verify", str(built.out / "onedir" / "penguins"), "--key", str(tmp_path / "other.pub")
    )
    assert proc.returncode == 11
    assert "signature: invalid" in proc.stdout


def test_flipped_byte_in_any_bundled_file_is_reported(built: Built, tmp_path: Path) -> None:
    copy = tmp_path / "penguins"
    shutil.copytree(built.out / "onedir" / "penguins", copy, symlinks=True)
    victims = [
        p
        for p in sorted(copy.rglob("*"))
        if p.is_file()
        and not p.is_symlink()
        and not p.name.startswith("mlbundle-")
        and p.stat().st_size > 0  # an empty file has no byte to flip
    ]
    assert len(victims) > 20
    for victim in victims[:: max(1, len(victims) // 12)]:
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0xFF
        victim.write_bytes(bytes(data))
        proc = run_bundle("verify", str(copy), "--json")
        report = json.loads(proc.stdout)
        rel = victim.relative_to(copy).as_posix()
        assert proc.returncode == 11
        assert {"path": rel, "status": "tampered"} in [
            {k: p[k] for k in ("path", "status")} for p in report["problems"]
        ]
        data[len(data) // 2] ^= 0xFF
        victim.write_bytes(bytes(data))
    assert run_bundle("verify", str(copy)).returncode == 0


def test_inspect_reads_the_record_without_running_anything(built: Built, tmp_path: Path) -> None:
    onefile = tmp_path / "penguins"
    shutil.copy2(built.out / "onefile" / "penguins", onefile)
    onefile.chmod(0o644)  # not even executable
    proc = run_bundle("inspect", str(onefile), "--json")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["model"]["algorithm"] == "RandomForestClassifier"
    table = run_bundle("inspect", str(built.out / "installers" / "penguins_1.0.0_amd64.deb"))
    assert table.returncode == 0
    assert "RandomForestClassifier" in table.stdout and "UNAPPROVED" in table.stdout
