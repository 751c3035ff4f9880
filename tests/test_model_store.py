"""Model packs at run time: ``ModelStore`` and what ``load()`` serves, in development mode.

The app is the example's payload folder as ``bundle prepare`` writes it (jit kernels) from a
spec with ``[updates]``; its packs are the example retrained with other seeds (real models,
``tests/_packs.retrain``), prepared by the build's own stages and signed with the test key
through ``packs.write_pack``, as ``bundle pack`` does. Every refusal is shown to leave the
active model as it was; an install killed at each of its checkpoints leaves a working app.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import mlbundle_runtime
from mlbundle_runtime import packs
from mlbundle_runtime.api import Model
from mlbundle_runtime.packs import PackError
from mlbundle_runtime.store import FAULT_STEPS, ModelStore
from tests._packs import (
    RESOURCES,
    ROOT,
    Sklearn,
    pack_contents,
    resign,
    retrain,
    signer,
    spec_text,
)

E2E = RESOURCES / "gate" / "e2e.csv"
INPUTS = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"]


# -- making apps and packs ---------------------------------------------------------------
def pem_pair(folder: Path, name: str) -> tuple[Path, Path]:
    key = Ed25519PrivateKey.generate()
    private = folder / f"{name}.pem"
    public = folder / f"{name}.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def jit(text: str) -> str:
    out = text.replace('backend = "aot"', 'backend = "jit"')
    assert 'backend = "jit"' in out
    return out


def prepare_text(text: str, work: Path) -> Path:
    """The payload folder the build's stages write for the spec ``text`` (no freezing)."""
    from bundler.build import prepare
    from bundler.spec import load_spec

    work.mkdir(parents=True, exist_ok=True)
    (work / "spec.toml").write_text(text)
    return prepare(load_spec(work / "spec.toml"), work).payload


def pack_meta(payload: Path, raw_key: bytes) -> dict[str, Any]:
    """The manifest ``bundle pack`` writes (see the contract), read from the payload."""
    from mlbundle_runtime.bundle import open_bundle
    from mlbundle_runtime.plan import FORMAT_VERSION

    bundle = open_bundle(payload)
    plan = bundle.plan
    return {
        "app": bundle.name,
        "model_version": bundle.info["model_version"],
        "approval": bundle.info["approval"],
        "built_at": "2026-12-01T00:00:00+00:00",
        "expires": None,
        "key_id": packs.key_id(raw_key),
        "title": bundle.info.get("title", ""),
        "requires": {
            "plan_format": f"{FORMAT_VERSION[0]}.{FORMAT_VERSION[1]}",
            "kernels": sorted({op.kernel for op in plan.ops}),
            "kernel_source": "",
            "inputs": [{"name": i.name, "kind": i.kind} for i in plan.inputs],
            "task": plan.output.task,
            "classes": list(plan.output.classes),
        },
    }


def make_pack(payload: Path, private: Path) -> bytes:
    """A pack of the payload folder: every file but ``__init__.py`` and updates.json."""
    raw = serialization.load_pem_private_key(private.read_bytes(), None).public_key()
    raw_key = raw.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    files = {
        p.relative_to(payload).as_posix(): p.read_bytes()
        for p in sorted(payload.rglob("*"))
        if p.is_file() and p.name not in ("__init__.py", packs.UPDATES_FILE)
    }
    return packs.write_pack(pack_meta(payload, raw_key), files, signer(private.read_bytes()))


@dataclass(frozen=True)
class World:
    app: Path  # the app's payload folder (with updates.json)
    release_app: Path  # the same, as a release build (bundle.json release = true)
    plain_app: Path  # an app built without [updates]
    private: Path
    public: Path
    other_private: Path
    packs: dict[str, Path]  # model version -> pack file
    models: dict[str, Sklearn]  # model version -> scikit-learn oracle


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    work = tmp_path_factory.mktemp("store")
    private, public = pem_pair(work, "release")
    other_private, _ = pem_pair(work, "other")
    app = prepare_text(jit(spec_text(public)), work / "app")
    assert (app / packs.UPDATES_FILE).is_file()
    release_app = work / "release-app"
    shutil.copytree(app, release_app)
    info = json.loads((release_app / "bundle.json").read_text())
    (release_app / "bundle.json").write_text(json.dumps({**info, "release": True}))
    plain_app = prepare_text(jit(spec_text()), work / "plain")
    models = {
        "1.0.0": Sklearn(
            RESOURCES / "artifacts" / "extractor.joblib", RESOURCES / "artifacts" / "model.joblib"
        )
    }
    made = {}
    for seed, version in ((1, "1.1.0"), (3, "1.2.0")):
        r = retrain(work / f"seed{seed}", seed=seed, version=version, public_key=public)
        r.spec.write_text(jit(r.spec.read_text()))
        payload = prepare_text(r.spec.read_text(), work / f"prep{seed}")
        made[version] = work / f"penguins-{version}.mlpack"
        made[version].write_bytes(make_pack(payload, private))
        models[version] = Sklearn(r.extractor, r.model)
    return World(app, release_app, plain_app, private, public, other_private, made, models)


@pytest.fixture()
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "data"
    monkeypatch.setenv("MLBUNDLE_DATA_DIR", str(folder))
    return folder


def records() -> list[dict[str, object]]:
    frame = pd.read_csv(E2E)[INPUTS]
    return [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def assert_serves(model: Model, oracle: Sklearn) -> None:
    """``model``'s labels and probabilities on the e2e rows are scikit-learn's."""
    rows = records()
    got = model.predict_many(rows)
    assert got.labels == oracle.predict(rows)
    assert got.probabilities is not None
    np.testing.assert_allclose(got.probabilities, oracle.predict_proba(rows), atol=1e-9)


def store_of(app: Path) -> ModelStore:
    from mlbundle_runtime.bundle import open_bundle

    return ModelStore.for_bundle(open_bundle(app))


# -- install, load, rollback ---------------------------------------------------------------
def test_install_serves_the_retrained_model_and_rollback_restores_the_bundled_one(
    world: World, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = mlbundle_runtime.load(world.app)
    assert (before.origin, before.version, before.trial) == ("bundled", "1.0.0", None)
    assert_serves(before, world.models["1.0.0"])
    store = store_of(world.app)
    steps: list[str] = []
    entry = store.install(world.packs["1.1.0"], progress=steps.append)
    assert (entry.version, entry.origin, entry.active, entry.problem) == (
        "1.1.0",
        "pack",
        True,
        None,
    )
    assert any("gate" in s for s in steps)
    model = mlbundle_runtime.load(world.app)
    assert (model.origin, model.version) == ("pack", "1.1.0")
    assert model.info["model_version"] == "1.1.0" and model.info["version"] == "1.0.0"
    assert "1.1.0" in model.source and str(data) in model.source
    assert model.warnings == ()
    assert_serves(model, world.models["1.1.0"])
    assert [(e.version, e.origin, e.active) for e in store.entries()] == [
        ("1.0.0", "bundled", False),
        ("1.1.0", "pack", True),
    ]
    back = store.rollback()
    assert (back.version, back.origin, back.active) == ("1.0.0", "bundled", True)
    assert not (data / "models" / "1.1.0").exists()
    again = mlbundle_runtime.load(world.app)
    assert (again.origin, again.version) == ("bundled", "1.0.0")
    assert_serves(again, world.models["1.0.0"])
    with pytest.raises(PackError, match="bundled model 1.0.0 is active"):
        store.rollback()
    assert capsys.readouterr().err == ""  # nothing was skipped, nothing warned


def test_rollback_goes_back_one_pack_at_a_time(world: World, data: Path) -> None:
    store = store_of(world.app)
    store.install(world.packs["1.1.0"])
    store.install(world.packs["1.2.0"])
    assert mlbundle_runtime.load(world.app).version == "1.2.0"
    assert store.rollback().version == "1.1.0"
    model = mlbundle_runtime.load(world.app)
    assert (model.version, model.origin) == ("1.1.0", "pack")
    assert_serves(model, world.models["1.1.0"])
    assert store.rollback().origin == "bundled"


# -- refusals ------------------------------------------------------------------------------
def edited(
    world: World,
    version: str,
    *,
    meta: dict[str, Any] | None = None,
    files: Callable[[dict[str, bytes]], dict[str, bytes]] | None = None,
    key: Path | None = None,
) -> bytes:
    """The real pack ``version`` with its manifest or files changed, signed again."""
    data = world.packs[version].read_bytes()
    _, old = pack_contents(data)
    return resign(
        data, (key or world.private).read_bytes(), meta=meta, files=files(old) if files else None
    )


def failing_e2e(files: dict[str, bytes]) -> dict[str, bytes]:
    """gate/e2e.csv with the first row's expected label swapped for another species."""
    lines = files["gate/e2e.csv"].decode().splitlines(keepends=True)
    header = lines[0].strip().split(",")
    cells = lines[1].rstrip("\n").split(",")
    at = header.index("prediction")
    cells[at] = "Gentoo" if cells[at] != "Gentoo" else "Adelie"
    lines[1] = ",".join(cells) + "\n"
    return {"gate/e2e.csv": "".join(lines).encode()}


def narrow_range(files: dict[str, bytes]) -> dict[str, bytes]:
    """gate.json whose accepted metric range excludes the model's actual metric (0.98-0.99)."""
    gate = json.loads(files["gate.json"])
    gate["confidence"]["range"] = [0.999, 1.0]
    return {"gate.json": (json.dumps(gate, indent=1, sort_keys=True) + "\n").encode()}


REFUSALS: dict[str, tuple[Callable[[World], bytes], str]] = {
    "flipped byte": (
        lambda w: (lambda b: b[:500] + bytes([b[500] ^ 1]) + b[501:])(
            w.packs["1.2.0"].read_bytes()
        ),
        "signature does not match",
    ),
    "another key": (lambda w: edited(w, "1.2.0", key=w.other_private), "signature does not match"),
    "another app": (lambda w: edited(w, "1.2.0", meta={"app": "otters"}), "for the app 'otters'"),
    "other inputs": (
        lambda w: edited(
            w,
            "1.2.0",
            meta={"requires": {**pack_meta_of(w), "inputs": [{"name": "x", "kind": "numeric"}]}},
        ),
        "inputs",
    ),
    "other classes": (
        lambda w: edited(w, "1.2.0", meta={"requires": {**pack_meta_of(w), "classes": ["a"]}}),
        "classes",
    ),
    "unknown kernel": (
        lambda w: edited(w, "1.2.0", meta={"requires": {**pack_meta_of(w), "kernels": ["warp"]}}),
        "kernels this app does not have",
    ),
    "plan format 9": (
        lambda w: edited(w, "1.2.0", meta={"requires": {**pack_meta_of(w), "plan_format": "9.0"}}),
        "plan format 9.0",
    ),
    "expired": (lambda w: edited(w, "1.2.0", meta={"expires": "2020-01-01"}), "expired"),
    "older version": (lambda w: w.packs["1.0.9"].read_bytes(), "not newer than the active"),
    "e2e fails": (lambda w: edited(w, "1.2.0", files=failing_e2e), "e2e set does not score"),
    "metric out of range": (
        lambda w: edited(w, "1.2.0", files=narrow_range),
        "outside its accepted range",
    ),
}


def pack_meta_of(world: World) -> dict[str, Any]:
    return pack_contents(world.packs["1.2.0"].read_bytes())[0]["requires"]


@pytest.fixture(scope="module")
def with_older(world: World) -> World:
    """The world with a pack older than 1.1.0 (1.0.9: the 1.1.0 pack relabelled)."""
    world.packs["1.0.9"] = world.packs["1.1.0"].with_name("penguins-1.0.9.mlpack")
    world.packs["1.0.9"].write_bytes(edited(world, "1.1.0", meta={"model_version": "1.0.9"}))
    return world


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_every_refusal_names_the_file_and_leaves_the_active_model(
    with_older: World, data: Path, tmp_path: Path, case: str
) -> None:
    world = with_older
    store = store_of(world.app)
    store.install(world.packs["1.1.0"])
    state = (data / "models" / "state.json").read_bytes()
    make, message = REFUSALS[case]
    bad = tmp_path / f"{case.replace(' ', '-')}.mlpack"
    bad.write_bytes(make(world))
    with pytest.raises(PackError, match=message) as caught:
        store.install(bad)
    assert str(bad) in str(caught.value) and "\n" not in str(caught.value)
    assert (data / "models" / "state.json").read_bytes() == state
    assert sorted(p.name for p in (data / "models").iterdir()) == [".lock", "1.1.0", "state.json"]
    model = mlbundle_runtime.load(world.app)
    assert (model.origin, model.version, model.warnings) == ("pack", "1.1.0", ())
    assert_serves(model, world.models["1.1.0"])


def test_a_downgrade_is_installed_when_asked_for(with_older: World, data: Path) -> None:
    store = store_of(with_older.app)
    store.install(with_older.packs["1.1.0"])
    entry = store.install(with_older.packs["1.0.9"], allow_downgrade=True)
    assert (entry.version, entry.active) == ("1.0.9", True)
    assert mlbundle_runtime.load(with_older.app).version == "1.0.9"


def test_an_unapproved_pack_is_refused_by_a_release_build_only(world: World, data: Path) -> None:
    with pytest.raises(PackError, match="UNAPPROVED") as caught:
        store_of(world.release_app).install(world.packs["1.1.0"])
    assert str(world.packs["1.1.0"]) in str(caught.value)
    assert not (data / "models" / "state.json").exists()
    assert mlbundle_runtime.load(world.release_app).origin == "bundled"
    assert store_of(world.app).install(world.packs["1.1.0"]).active  # a development build


def test_an_app_without_updates_refuses_packs_and_loads_nothing_for_them(
    world: World, data: Path
) -> None:
    with pytest.raises(PackError, match=r"without \[updates\]"):
        store_of(world.plain_app)
    code = (
        "import sys, mlbundle_runtime; m = mlbundle_runtime.load(sys.argv[1]); "
        "m.predict(dict(island='Dream', bill_length_mm=46.5, bill_depth_mm=17.9, "
        "flipper_length_mm=192, body_mass_g=3500, sex='female')); "
        "print(sorted(n for n in ('nacl', 'platformdirs', 'filelock', 'mlbundle_runtime.store', "
        "'mlbundle_runtime.trial', 'mlbundle_runtime.packs') if n in sys.modules))"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "app"))
    plain = subprocess.run(
        [sys.executable, "-c", code, str(world.plain_app)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert plain.stdout.strip() == "[]"
    # an app that takes packs, with none installed: the verifier is not loaded either
    taking = subprocess.run(
        [sys.executable, "-c", code, str(world.app)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert "nacl" not in taking.stdout and "mlbundle_runtime.trial" not in taking.stdout


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(at=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
@example(at=28, bit=5)  # a hex letter's case: the signature would still decode to the same bytes
def test_any_flipped_bit_in_a_pack_is_refused(world: World, at: int, bit: int) -> None:
    data = world.packs["1.1.0"].read_bytes()
    at %= len(data)
    bad = data[:at] + bytes([data[at] ^ (1 << bit)]) + data[at + 1 :]
    with pytest.raises(PackError):
        packs.read_pack(bad, "bad.mlpack", packs_key(world))


def test_a_signature_in_upper_case_is_refused(world: World) -> None:
    data = world.packs["1.1.0"].read_bytes()
    head, body = data.split(b"\n", 1)
    sig, rest = body.split(b"\n", 1)
    assert sig.upper() != sig
    with pytest.raises(PackError, match="signature line is malformed"):
        packs.read_pack(head + b"\n" + sig.upper() + b"\n" + rest, "bad.mlpack", packs_key(world))


def packs_key(world: World) -> bytes:
    return bytes.fromhex(json.loads((world.app / packs.UPDATES_FILE).read_text())["public_key"])


# -- killed installs, damaged packs, damaged state -------------------------------------------
INSTALL = """
import sys
from mlbundle_runtime.bundle import open_bundle
from mlbundle_runtime.store import ModelStore
ModelStore.for_bundle(open_bundle(sys.argv[1])).install(sys.argv[2])
"""


@pytest.mark.parametrize("step", FAULT_STEPS)
def test_an_install_killed_at_each_step_leaves_a_working_app(
    world: World, data: Path, step: str
) -> None:
    store = store_of(world.app)
    store.install(world.packs["1.1.0"])
    env = dict(os.environ, PYTHONPATH=str(ROOT / "app"), MLBUNDLE_FAULT_AT=step)
    proc = subprocess.run(
        [sys.executable, "-c", INSTALL, str(world.app), str(world.packs["1.2.0"])],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == -9, proc.stderr  # SIGKILL at the checkpoint
    model = mlbundle_runtime.load(world.app)
    expected = "1.2.0" if step == "state" else "1.1.0"  # state.json written: the install is done
    assert (model.version, model.origin, model.warnings) == (expected, "pack", ())
    assert_serves(model, world.models[expected])
    if step != "state":
        entry = store.install(world.packs["1.2.0"])  # the next install cleans up and succeeds
        assert entry.active and entry.version == "1.2.0"
    leftovers = [p.name for p in (data / "models").iterdir() if p.name.startswith(".incoming")]
    assert leftovers == [] or step == "state"
    assert mlbundle_runtime.load(world.app).version == "1.2.0"


def test_a_damaged_installed_pack_at_start_falls_back_with_one_warning(
    world: World, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = store_of(world.app)
    store.install(world.packs["1.1.0"])
    store.install(world.packs["1.2.0"])
    plan = data / "models" / "1.2.0" / "payload" / "arrays.npz"
    blob = bytearray(plan.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    plan.write_bytes(bytes(blob))
    capsys.readouterr()
    model = mlbundle_runtime.load(world.app)
    assert (model.version, model.origin) == ("1.1.0", "pack")
    assert_serves(model, world.models["1.1.0"])
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("warning: installed model 1.2.0 skipped")
    assert "arrays.npz" in err[0] and model.warnings == (err[0].removeprefix("warning: "),)
    listed = {e.version: e for e in store.entries()}
    assert listed["1.2.0"].problem is not None and listed["1.1.0"].problem is None
    # the older pack damaged too (a file added): the bundled model
    (data / "models" / "1.1.0" / "payload" / "extra.txt").write_text("x")
    model = mlbundle_runtime.load(world.app)
    assert (model.origin, model.version, len(model.warnings)) == ("bundled", "1.0.0", 2)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.one_of(
        st.binary(max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=8),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(
                    st.sampled_from(["format", "active", "previous", "trial", "log_inputs", "x"]),
                    inner,
                    max_size=6,
                )
            ),
            max_leaves=12,
        ).map(lambda v: json.dumps(v).encode()),
    )
)
def test_a_damaged_state_file_never_stops_the_app(
    world: World, tmp_path: Path, blob: bytes
) -> None:
    folder = tmp_path / "state-fuzz"
    (folder / "models").mkdir(parents=True, exist_ok=True)
    (folder / "models" / "state.json").write_bytes(blob)
    os.environ["MLBUNDLE_DATA_DIR"] = str(folder)
    try:
        model = mlbundle_runtime.load(world.app)
        assert model.origin == "bundled"  # nothing is installed, whatever the state says
        assert model.predict(records()[0]).label in ("Adelie", "Chinstrap", "Gentoo")
        assert [e.origin for e in store_of(world.app).entries()] == ["bundled"]
    finally:
        del os.environ["MLBUNDLE_DATA_DIR"]


# -- trials ----------------------------------------------------------------------------------
def test_a_trial_logs_both_models_and_shows_only_the_active_one(world: World, data: Path) -> None:
    store = store_of(world.app)
    store.install(world.packs["1.1.0"])
    entry = store.install(world.packs["1.2.0"], trial=True)
    assert (entry.version, entry.trial, entry.active) == ("1.2.0", True, False)
    model = mlbundle_runtime.load(world.app)
    assert (model.version, model.trial) == ("1.1.0", "1.2.0") and "trial" in model.source
    rows = records()
    active, candidate = world.models["1.1.0"], world.models["1.2.0"]
    want_active, want_candidate = active.predict(rows), candidate.predict(rows)
    differ = [r for r in range(len(rows)) if want_active[r] != want_candidate[r]]
    assert differ, "the two seeds should disagree on some e2e row"
    # one row at a time (predict), all at once (predict_many), and a file (predict_file)
    singles = [model.predict(r).label for r in rows]
    assert singles == want_active  # only the active model's output
    assert model.predict_many(rows).labels == want_active
    src = data / "rows.csv"
    pd.read_csv(E2E)[INPUTS].to_csv(src, index=False)
    model.predict_file(src, data / "out.csv")
    assert pd.read_csv(data / "out.csv")["prediction"].tolist() == want_active
    model._trial.log.flush()
    report = store.trial_report()
    n = len(rows)
    assert (report.candidate, report.active) == ("1.2.0", "1.1.0")
    assert (report.rows, report.calls) == (3 * n, n + 2)
    assert report.agreed == 3 * (n - len(differ))
    assert report.agreement == pytest.approx((n - len(differ)) / n)
    diff = np.abs(active.predict_proba(rows) - candidate.predict_proba(rows)).max()
    assert report.max_proba_diff == pytest.approx(diff, abs=1e-9)
    assert report.active_us and report.candidate_us and report.candidate_errors == 0
    assert report.to_json()["agreement"] == report.agreement
    assert any("agreement" in line for line in report.lines())
    lines = (data / "logs" / "trial.jsonl").read_text().splitlines()
    # a line per single prediction, one per batch (predict_many, the file's chunk)
    assert len(lines) == n + 2 and all("inputs" not in json.loads(x) for x in lines)
    batch = json.loads(lines[-1])
    assert batch["rows"] == n and batch["candidate"]["labels"] == want_candidate
    assert batch["active"]["labels"] == want_active
    first = json.loads(lines[differ[0]])
    assert (first["active"]["label"], first["candidate"]["label"]) == (
        want_active[differ[0]],
        want_candidate[differ[0]],
    )
    promoted = store.promote()
    assert (promoted.version, promoted.active) == ("1.2.0", True)
    after = mlbundle_runtime.load(world.app)
    assert (after.version, after.trial) == ("1.2.0", None)
    assert_serves(after, candidate)
    assert store.rollback().version == "1.1.0"  # the old active one was kept


def test_a_trial_dropped_and_inputs_logged_only_when_asked(world: World, data: Path) -> None:
    store = store_of(world.app)
    store.install(world.packs["1.2.0"], trial=True, log_inputs=True)
    model = mlbundle_runtime.load(world.app)
    assert (model.version, model.trial) == ("1.0.0", "1.2.0")
    row = records()[0]
    model.predict(row)
    model._trial.log.flush()
    line = json.loads((data / "logs" / "trial.jsonl").read_text().splitlines()[0])
    assert line["inputs"] == {k: v for k, v in row.items()}
    kept = store.drop()
    assert (kept.version, kept.origin) == ("1.0.0", "bundled")
    assert not (data / "models" / "1.2.0").exists()
    assert mlbundle_runtime.load(world.app).trial is None
    with pytest.raises(PackError, match="no model is in trial"):
        store.drop()
    with pytest.raises(PackError, match="no model is in trial"):
        store.promote()


def test_the_trial_report_counts_rows_whose_log_was_rotated_away(world: World, data: Path) -> None:
    store = store_of(world.app)
    store.install(world.packs["1.2.0"], trial=True)
    model = mlbundle_runtime.load(world.app)
    model._trial.log.max_bytes = 3000  # a few lines per file: most of the log rotates away
    rows = records()
    for _ in range(3):
        for r in rows:
            model.predict(r)
        model.predict_many(rows)
    model._trial.log.flush()
    kept = sum(len(p.read_text().splitlines()) for p in (data / "logs").glob("trial.jsonl*"))
    assert kept < 3 * len(rows)  # the log itself no longer holds every comparison
    report = store.trial_report()
    want = world.models["1.0.0"].predict(rows), world.models["1.2.0"].predict(rows)
    agreed = sum(a == b for a, b in zip(*want, strict=True))
    assert (report.rows, report.calls) == (6 * len(rows), 3 * (len(rows) + 1))
    assert report.agreed == 6 * agreed
    # a new trial counts from zero
    store.drop()
    store.install(world.packs["1.2.0"], trial=True)
    assert store.trial_report().rows == 0


def test_the_trial_log_rotates_at_its_size_limit(tmp_path: Path) -> None:
    from mlbundle_runtime.trial import TrialLog

    log = TrialLog(tmp_path / "trial.jsonl", max_bytes=1000)
    for i in range(200):
        log.put(lambda i=i: [{"row": i, "pad": "x" * 40}])
    log.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["trial.jsonl", "trial.jsonl.1", "trial.jsonl.2"]
    assert all(p.stat().st_size <= 1000 for p in tmp_path.iterdir())
    newest = [json.loads(x)["row"] for x in (tmp_path / "trial.jsonl").read_text().splitlines()]
    assert newest[-1] == 199


def test_check_installs_the_newest_pack_of_a_source_folder(
    world: World, data: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "source"
    folder.mkdir()
    for version in ("1.1.0", "1.2.0"):
        shutil.copy(world.packs[version], folder)
    (folder / "junk.mlpack").write_bytes(b"not a pack")
    store = store_of(world.app)
    store.source = str(folder)
    result = store.check()
    assert result.installed is not None and result.installed.version == "1.2.0"
    assert store.check().installed is None  # nothing newer now
    state = json.loads((data / "models" / "state.json").read_text())
    assert state["last_check"]["ok"] is True and state["last_check"]["source"] == str(folder)
    store.source = "https://127.0.0.1:9/none.mlpack"  # nothing listens there: offline
    with pytest.raises(PackError, match="cannot be downloaded.*last successful check: 20"):
        store.check()
    assert mlbundle_runtime.load(world.app).version == "1.2.0"


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as a test CA the client is told to trust."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_check_downloads_a_newer_pack_over_https_and_keeps_working_offline(
    world: World, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real TLS server on localhost serves latest.mlpack; the client verifies its
    certificate (trusted through SSL_CERT_FILE, as a company CA would be)."""
    import functools
    import http.server
    import ssl
    import threading

    served = tmp_path / "www"
    served.mkdir()
    shutil.copy(world.packs["1.1.0"], served / "latest.mlpack")
    cert, key = _self_signed(tmp_path)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}/latest.mlpack"
        store = store_of(world.app)
        store.source = url
        # not trusted yet: the certificate is refused, nothing changes
        with pytest.raises(PackError, match="cannot be downloaded.*CERTIFICATE_VERIFY_FAILED"):
            store.check()
        assert mlbundle_runtime.load(world.app).version == "1.0.0"
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        result = store.check()
        assert result.installed is not None and result.installed.version == "1.1.0"
        assert mlbundle_runtime.load(world.app).version == "1.1.0"
        again = store.check()  # the same pack again: nothing newer
        assert again.installed is None and "not newer" in again.message
        # a newer pack damaged on the way is refused like any pack file
        damaged = bytearray(world.packs["1.2.0"].read_bytes())
        damaged[len(damaged) // 2] ^= 1
        (served / "latest.mlpack").write_bytes(bytes(damaged))
        with pytest.raises(PackError, match="signature does not match"):
            store.check()
        assert mlbundle_runtime.load(world.app).version == "1.1.0"
    finally:
        server.shutdown()
        server.server_close()
