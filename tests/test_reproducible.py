"""Two builds from the same inputs give the same bytes.

The session's build and one more, with the same SOURCE_DATE_EPOCH and the
same environment and signing key, are compared file by file: payload, record,
manifests, SBOMs, signatures (ed25519 signatures are deterministic), both
binaries and both installers. The one documented exception is the build
report (stage timings, output folder).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Built, run_bundle

pytestmark = pytest.mark.frozen

EXCEPTIONS = {"build-report.json"}


def tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in EXCEPTIONS
    }


def test_two_builds_are_byte_identical(built: Built, tmp_path: Path) -> None:
    key = (built.public_key.parent / "private.pem").read_text()
    proc = run_bundle(
        "build",
        str(built.spec),
        "--output-dir",
        str(tmp_path),
        "--sign",
        env={"MLBUNDLE_SIGNING_KEY": key},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    first, second = tree(built.out), tree(tmp_path / "penguins")
    assert sorted(first) == sorted(second)
    differ = sorted(name for name in first if first[name] != second[name])
    assert differ == []
    # the comparison covers what matters
    assert {
        "payload/plan.json",
        "payload/arrays.npz",
        "payload/record.json",
        "onedir/penguins/mlbundle-manifest.json",
        "onedir/penguins/mlbundle-manifest.sig",
        "onefile/penguins",
        "installers/penguins_1.0.0_amd64.deb",
    } <= set(first)
