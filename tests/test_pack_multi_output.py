"""A model pack of a multi-output model (the energy example, two targets): ``bundle pack``
names each target in the pack's ``requires``, the app installs it after its own gate and
serves both targets, refuses a pack whose targets differ from its own, and refuses a silent
trial (which compares one output). Nothing here freezes an app."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from mlbundle_runtime.api import load
from mlbundle_runtime.bundle import open_bundle
from mlbundle_runtime.packs import PackError, read_pack, write_pack
from mlbundle_runtime.store import ModelStore
from tests._packs import set_model, signer
from tests.conftest import ROOT, run_bundle
from tests.test_model_store import pem_pair, prepare_text
from tests.test_pack_build import raw_key

SPEC = ROOT / "specs" / "energy.toml"
TARGETS = [
    {"name": "heating_kwh_m2", "task": "regression", "classes": []},
    {"name": "cooling_kwh_m2", "task": "regression", "classes": []},
]


def energy_text(public: Path, version: str) -> str:
    """specs/energy.toml with absolute paths, the JIT kernels, model ``version`` and a key."""
    text = SPEC.read_text(encoding="utf-8").replace('"../', f'"{ROOT}/')
    text = text.replace('backend = "aot"', 'backend = "jit"', 1)
    model = ROOT / "resources" / "energy" / "artifacts" / "model.joblib"
    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    text = set_model(text, path=model, sha256=sha, version=version)
    return text + f'\n[updates]\npublic_key = "{public}"\n'


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("energy-packs")
    private, public = pem_pair(work, "release")
    app = prepare_text(energy_text(public, "1.0.0"), work / "app")
    spec = work / "energy-1.1.0.toml"
    spec.write_text(energy_text(public, "1.1.0"), encoding="utf-8")
    pack = work / "energy-1.1.0.mlpack"
    proc = run_bundle("pack", str(spec), "--out", str(pack), "--signing-key", str(private))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {"app": app, "pack": pack, "private": private, "public": public}


@pytest.fixture()
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLBUNDLE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_the_pack_names_every_target(world: dict[str, Path]) -> None:
    pack = read_pack(world["pack"].read_bytes(), str(world["pack"]), raw_key(world["public"]))
    assert pack.requires["targets"] == TARGETS
    assert pack.requires["task"] == "regression" and pack.requires["classes"] == []


def test_the_app_installs_and_serves_both_targets(world: dict[str, Path], data: Path) -> None:
    store = ModelStore.for_bundle(open_bundle(world["app"]))
    entry = store.install(world["pack"])
    assert entry.active and entry.version == "1.1.0"
    bundled = load(world["app"])
    record = {"floor_area_m2": 120.0, "wall_u_value": 0.4, "glazing_ratio": 0.2, "storeys": 2}
    p = bundled.predict(record)
    assert set(p.outputs) == {"heating_kwh_m2", "cooling_kwh_m2"}
    assert bundled.version == "1.1.0"
    assert all(np.isfinite(o.value) for o in p.outputs.values())


def test_a_trial_of_a_multi_output_model_is_refused(world: dict[str, Path], data: Path) -> None:
    store = ModelStore.for_bundle(open_bundle(world["app"]))
    with pytest.raises(PackError, match=r"2 targets; install it without --trial"):
        store.install(world["pack"], trial=True)
    assert store.state()[0]["trial"] is None


def test_a_pack_with_other_targets_is_refused(
    world: dict[str, Path], data: Path, tmp_path: Path
) -> None:
    pack = read_pack(world["pack"].read_bytes(), str(world["pack"]), raw_key(world["public"]))
    meta = json.loads(json.dumps(pack.meta))
    meta["requires"]["targets"] = list(reversed(TARGETS))
    meta.pop("files", None)
    meta.pop("pack_format", None)
    bad = tmp_path / "swapped.mlpack"
    bad.write_bytes(write_pack(meta, dict(pack.files), signer(world["private"].read_bytes())))
    store = ModelStore.for_bundle(open_bundle(world["app"]))
    with pytest.raises(PackError, match=r"the pack's targets \(cooling_kwh_m2 \(regression\)"):
        store.install(bad)
    assert store.state()[0]["active"] is None
