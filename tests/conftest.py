"""Shared fixtures: one real build of the example per test session.

A PyInstaller build takes 30-90 s, so every test that needs a frozen binary
shares this one, built through the real ``bundle`` command into a session
temporary folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests._display import Display, xvfb
from tests._packs import Retrained, retrain, spec_text

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "penguins.toml"
RESOURCES = ROOT / "resources"
BUNDLE = [sys.executable, "-m", "bundler"]


#: Builds in the test session use a fixed build time, so two of them can be compared.
EPOCH = "1764374400"


def run_bundle(
    *args: str, cwd: Path | None = None, timeout: float = 900, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the ``bundle`` CLI as a user would, capturing its output."""
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1", SOURCE_DATE_EPOCH=EPOCH, **(env or {}))
    return subprocess.run(
        [*BUNDLE, *args], capture_output=True, text=True, cwd=cwd or ROOT, timeout=timeout, env=env
    )


@dataclass(frozen=True)
class Keys:
    """The session's release key pair (``bundle keygen``): it signs the build's manifests
    and the model packs, and the build's ``[updates] public_key`` names its public half."""

    private: Path
    public: Path


@pytest.fixture(scope="session")
def release_keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    folder = tmp_path_factory.mktemp("keys")
    proc = run_bundle("keygen", str(folder / "private.pem"), str(folder / "public.pem"))
    assert proc.returncode == 0, proc.stderr
    return Keys(private=folder / "private.pem", public=folder / "public.pem")


@dataclass(frozen=True)
class Built:
    """The session's build: where the published outputs are, and copies out of the tree."""

    out: Path  # published folder (<output-dir>/penguins)
    public_key: Path  # the manifests are signed with the matching private key
    onedir: Path  # executable inside a copy of the onedir folder, outside the repo
    onefile: Path  # copy of the onefile executable, outside the repo
    stdout: str
    spec: Path  # the spec built: specs/penguins.toml with [updates] public_key = public_key


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory, release_keys: Keys) -> Built:
    """The example, built once for every frozen test: a copy of specs/penguins.toml that
    also accepts model packs signed with the session's key (``[updates]``)."""
    dist = tmp_path_factory.mktemp("dist")
    spec = tmp_path_factory.mktemp("spec") / "penguins.toml"
    spec.write_text(spec_text(release_keys.public), encoding="utf-8")
    proc = run_bundle(
        "build",
        str(spec),
        "--output-dir",
        str(dist),
        "--sign",
        env={"MLBUNDLE_SIGNING_KEY": release_keys.private.read_text()},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = dist / "penguins"
    # Copy the binaries away from the build tree: they must not need it.
    away = tmp_path_factory.mktemp("installed")
    shutil.copytree(out / "onedir" / "penguins", away / "penguins")
    shutil.copy2(out / "onefile" / "penguins", away / "penguins-onefile")
    return Built(
        out=out,
        public_key=release_keys.public,
        onedir=away / "penguins" / "penguins",
        onefile=away / "penguins-onefile",
        stdout=proc.stdout,
        spec=spec,
    )


@dataclass(frozen=True)
class RetrainedPack:
    """The example retrained with another seed (model version 1.1.0, newer than the
    build's 1.0.0) and packed with ``bundle pack``, signed with the session's key."""

    pack: Path
    retrained: Retrained
    stdout: str


#: The retrained example's seed and model version.
RETRAIN_SEED = 1
RETRAIN_VERSION = "1.1.0"


def pack_spec(spec: Path, out: Path, key: Path) -> subprocess.CompletedProcess[str]:
    """``bundle pack SPEC --out OUT --signing-key KEY``, as a release engineer runs it."""
    return run_bundle("pack", str(spec), "--out", str(out), "--signing-key", str(key))


@pytest.fixture(scope="session")
def retrained_pack(tmp_path_factory: pytest.TempPathFactory, release_keys: Keys) -> RetrainedPack:
    work = tmp_path_factory.mktemp("retrained")
    again = retrain(
        work / "model", seed=RETRAIN_SEED, version=RETRAIN_VERSION, public_key=release_keys.public
    )
    pack = work / f"penguins-{RETRAIN_VERSION}.mlpack"
    proc = pack_spec(again.spec, pack, release_keys.private)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert pack.is_file(), proc.stdout
    return RetrainedPack(pack=pack, retrained=again, stdout=proc.stdout)


@pytest.fixture(scope="session")
def built_jit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example built with the ``jit`` backend (onedir only); returns its executable."""
    work = tmp_path_factory.mktemp("jit")
    text = SPEC.read_text().replace('"../', f'"{ROOT}/')
    text = text.replace('backend = "aot"', 'backend = "jit"')
    text = text.replace('modes = ["onedir", "onefile"]', 'modes = ["onedir"]')
    assert 'backend = "jit"' in text and 'modes = ["onedir"]' in text
    spec = work / "penguins-jit.toml"
    spec.write_text(text)
    proc = run_bundle("build", str(spec), "--output-dir", str(work / "dist"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return work / "dist" / "penguins" / "onedir" / "penguins" / "penguins"


#: Fixtures that build a real PyInstaller binary (or hand one out). A test using any of
#: them, directly or through another fixture, must carry the ``frozen`` marker, so that
#: ``pytest -m "not frozen"`` stays a quick loop that builds nothing.
FROZEN_FIXTURES = frozenset(
    {
        "built",
        "built_jit",
        "frozen",
        "fieldreport",
        "contract_app",
        "reviews_app",
        "lightgbm_app",
        "energy_app",
    }
)


def unmarked_frozen_tests(items: list[pytest.Item]) -> list[str]:
    """The ids of ``items`` that use a frozen-build fixture without the ``frozen`` marker."""
    return [
        item.nodeid
        for item in items
        if FROZEN_FIXTURES & set(getattr(item, "fixturenames", ()))
        and item.get_closest_marker("frozen") is None
    ]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    missing = unmarked_frozen_tests(items)
    if missing:
        raise pytest.UsageError(
            "these tests build or run a frozen binary but are not marked "
            "@pytest.mark.frozen:\n  " + "\n  ".join(missing)
        )


@pytest.fixture(scope="session")
def display() -> Iterator[Display]:
    """A real X display (Xvfb) for the whole session; ``DISPLAY`` points at it while it
    runs, so Tk in this process and in the binaries the tests start both find it."""
    with xvfb() as screen:
        before = os.environ.get("DISPLAY")
        os.environ["DISPLAY"] = screen.name
        try:
            yield screen
        finally:
            if before is None:
                os.environ.pop("DISPLAY", None)
            else:
                os.environ["DISPLAY"] = before


@pytest.fixture()
def quiet_sklearn() -> Iterator[None]:
    """No warnings and no numpy floating-point warnings while the test runs.

    scikit-learn warns on unknown categories, convergence, float32 overflow in its input
    validation and deprecations; numpy on overflow in extreme rows. None of them changes
    a number compared. Modules opt in with ``pytestmark = pytest.mark.usefixtures(...)``.
    """
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield
