"""Contract tests of the runtime API (``mlbundle_runtime``), in development mode.

One payload folder is prepared in-process with the jit backend (the build's stages
up to the payload, no freezing), loaded with ``load(folder)``, and every public
name is checked against scikit-learn and the model record. Each test declares the
names it covers with ``@covers``; ``test_every_public_name_is_covered`` fails when
a public name, or a public member of a public class, has no test.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import joblib
import numpy as np
import pandas as pd
import pytest

import mlbundle_runtime
from mlbundle_runtime.api import (
    BundleError,
    GateResult,
    Input,
    InputError,
    Model,
    Outputs,
    Prediction,
    Predictions,
    load,
)
from tests.conftest import RESOURCES, ROOT, SPEC

E2E = RESOURCES / "gate" / "e2e.csv"
#: The runtime's import name (``mlbundle_runtime`` until the rename, then ``mlbundle_runtime``).
RUNTIME = Model.__module__.rsplit(".", 1)[0]
#: The folder the runtime package is imported from, for subprocesses.
IMPORT_ROOT = Path(mlbundle_runtime.__file__).resolve().parents[1]
INPUTS = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"]

F = TypeVar("F", bound=Callable[..., Any])
COVERED: set[str] = set()


def covers(*names: str) -> Callable[[F], F]:
    """Mark the public names (``load``, ``Model.predict``, ...) a test checks."""
    COVERED.update(names)
    return lambda fn: fn


# -- fixtures ------------------------------------------------------------------
@pytest.fixture(scope="module")
def payload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example's payload folder, as ``bundle prepare`` writes it (jit kernels)."""
    from bundler.build import prepare
    from bundler.spec import load_spec

    work = tmp_path_factory.mktemp("api")
    text = (
        SPEC.read_text().replace('"../', f'"{ROOT}/').replace('backend = "aot"', 'backend = "jit"')
    )
    assert 'backend = "jit"' in text
    (work / "penguins-jit.toml").write_text(text)
    prepared = prepare(load_spec(work / "penguins-jit.toml"), work)
    assert (prepared.payload / "bundle.json").is_file()
    return prepared.payload


@pytest.fixture(scope="module")
def model(payload: Path) -> Model:
    return load(payload)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return pd.read_csv(E2E)


@pytest.fixture(scope="module")
def sklearn(frame: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """scikit-learn's labels and probabilities for the e2e rows."""
    est = joblib.load(RESOURCES / "artifacts" / "model.joblib")
    extractor = joblib.load(RESOURCES / "artifacts" / "extractor.joblib")
    X = extractor.transform(frame[INPUTS])
    return [str(v) for v in est.predict(X)], est.predict_proba(X)


def records_of(frame: pd.DataFrame) -> list[dict[str, object]]:
    """The frame's input rows as JSON-like records (NaN as None, numbers as floats)."""
    out = []
    for row in frame[INPUTS].to_dict("records"):
        out.append(
            {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        )
    return out


def copy_payload(payload: Path, dst: Path) -> Path:
    shutil.copytree(payload, dst)
    return dst


# -- loading -------------------------------------------------------------------
@covers("load", "Model.name", "Model.version", "Model.approved", "Model.info")
def test_load_a_folder_the_env_variable_and_the_staging_parent(
    payload: Path, model: Model, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(model, Model)
    assert (model.name, model.version, model.approved) == ("penguins", "1.0.0", False)
    assert model.info["backend"] == "jit" and model.info["model_version"] == "1.0.0"
    assert "files" not in model.info  # the hashes are the bundle's business
    assert "UNAPPROVED" in repr(model)
    monkeypatch.setenv("MLBUNDLE_PAYLOAD", str(payload))
    assert load().record == model.record  # no path: the folder the variable names
    monkeypatch.delenv("MLBUNDLE_PAYLOAD")
    # the build's staging folder holds the mlbundle_payload package: it loads too
    assert payload.name == "mlbundle_payload"
    assert load(payload.parent).name == "penguins"


@covers("Model.origin", "Model.trial", "Model.source", "Model.warnings")
def test_a_bundled_model_says_where_it_comes_from(model: Model) -> None:
    # the payload has no [updates]: the bundled model is served, nothing was skipped
    assert (model.origin, model.trial, model.warnings) == ("bundled", None, ())
    assert model.source == "model 1.0.0 bundled with penguins 1.0.0"


@covers("BundleError")
def test_missing_or_modified_bundle_raises_bundle_error(payload: Path, tmp_path: Path) -> None:
    from mlbundle_runtime.plan import PlanError

    assert issubclass(PlanError, BundleError)
    with pytest.raises(BundleError, match="no bundle found"):
        load(tmp_path / "nowhere")
    plan = copy_payload(payload, tmp_path / "plan")
    (plan / "plan.json").write_bytes((plan / "plan.json").read_bytes().replace(b"{", b"{ ", 1))
    with pytest.raises(BundleError, match="plan.json was modified after the build"):
        load(plan)
    # the record is read and checked at load: the out-of-range warnings come from it
    rec = copy_payload(payload, tmp_path / "record")
    (rec / "record.json").write_bytes((rec / "record.json").read_bytes() + b" ")
    with pytest.raises(BundleError, match="record.json was modified"):
        load(rec)
    gate = copy_payload(payload, tmp_path / "gate")
    (gate / "gate" / "e2e.csv").write_bytes(b"island\n")
    with pytest.raises(BundleError, match="gate/e2e.csv was modified"):
        load(gate).selftest()


def _as_aot(payload: Path, dst: Path) -> Path:
    folder = copy_payload(payload, dst)
    info = json.loads((folder / "bundle.json").read_text())
    (folder / "bundle.json").write_text(json.dumps({**info, "backend": "aot"}))
    return folder


def test_aot_bundle_without_kernels_is_a_clear_bundle_error(payload: Path, tmp_path: Path) -> None:
    """In a fresh interpreter, where no test has put an extension on ``sys.path``."""
    folder = _as_aot(payload, tmp_path / "aot")
    code = (
        "import sys\nfrom mlbundle_runtime import BundleError, load\n"
        "try:\n    load(sys.argv[1])\nexcept BundleError as exc:\n    print(exc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(folder)], capture_output=True, text=True, timeout=120
    )
    assert "aot scoring kernels of this bundle cannot be loaded" in proc.stdout, proc.stderr
    (folder / "kernels").mkdir()
    fake = folder / "kernels" / "_mlbundle_kernels.so"
    fake.write_bytes(b"not an extension")
    with pytest.raises(BundleError, match=r"cannot be loaded \(from .*kernels/_mlbundle_kernels"):
        load(folder)


def test_aot_kernels_beside_the_payload_are_used(
    payload: Path, model: Model, frame: pd.DataFrame, tmp_path: Path
) -> None:
    """What ``bundle prepare`` writes for an aot spec: the extension in the folder."""
    from bundler.backends.aot import cached_aot

    so = cached_aot()
    if so is None:
        pytest.skip("no cached aot extension (compiling one takes minutes)")
    folder = _as_aot(payload, tmp_path / "aot")
    shutil.copy2(so, folder / so.name)
    aot = load(folder)
    assert aot.info["backend"] == "aot"
    got = aot.predict_many(frame[INPUTS])
    want = model.predict_many(frame[INPUTS])
    assert got.labels == want.labels
    np.testing.assert_allclose(got.probabilities, want.probabilities, rtol=0, atol=1e-12)


# -- predictions ---------------------------------------------------------------
@covers(
    "Model.predict_many",
    "Predictions",
    "Predictions.labels",
    "Predictions.probabilities",
    "Predictions.classes",
    "Predictions.task",
    "Predictions.values",
    "Predictions.extras",
)
def test_predictions_equal_scikit_learns(
    model: Model, frame: pd.DataFrame, sklearn: tuple[list[str], np.ndarray]
) -> None:
    labels, proba = sklearn
    got = model.predict_many(records_of(frame))
    assert isinstance(got, Predictions)
    assert len(got) == len(frame) == 56
    assert got.task == "classification"
    assert got.classes == ("Adelie", "Chinstrap", "Gentoo")
    assert [str(v) for v in got.labels] == labels
    assert got.probabilities is not None and got.probabilities.shape == (56, 3)
    np.testing.assert_allclose(got.probabilities, proba, rtol=0, atol=1e-9)
    assert got.values is None
    assert got.extras == {}


def test_records_columns_arrays_and_dataframes_give_the_same_result(
    model: Model, frame: pd.DataFrame
) -> None:
    records = records_of(frame)
    want = model.predict_many(records)
    columns = {n: np.array([r[n] for r in records], dtype=object) for n in INPUTS}
    numeric_columns = {
        n: (frame[n].to_numpy() if frame[n].dtype.kind == "f" else columns[n]) for n in INPUTS
    }
    rows = np.array([[r[n] for n in INPUTS] for r in records], dtype=object)
    tuples = tuple(records)
    for given in (columns, numeric_columns, rows, frame[INPUTS], frame, tuples):
        got = model.predict_many(given)
        assert got.labels == want.labels, type(given)
        assert np.array_equal(got.probabilities, want.probabilities), type(given)


@covers(
    "Model.predict",
    "Prediction",
    "Prediction.label",
    "Prediction.probabilities",
    "Prediction.value",
    "Prediction.extras",
    "Prediction.to_dict",
    "Predictions.to_records",
)
def test_one_prediction_equals_its_row_and_prints_as_the_cli_does(
    model: Model, frame: pd.DataFrame, sklearn: tuple[list[str], np.ndarray]
) -> None:
    records = records_of(frame)
    many = model.predict_many(records)
    dicts = many.to_records()
    for i in (0, 17, 53, 55):  # 53: four numbers missing
        one = model.predict(records[i])
        assert isinstance(one, Prediction)
        assert one == many[i]
        assert one.label == sklearn[0][i]
        assert list(one.probabilities or {}) == ["Adelie", "Chinstrap", "Gentoo"]
        assert max(one.probabilities.values()) == pytest.approx(sklearn[1][i].max(), abs=1e-9)
        assert one.value is None and one.extras == {}
        assert one.to_dict() == dicts[i]
    # the JSON the built-in CLI prints for a record
    from mlbundle_runtime.bundle import open_bundle

    scores = open_bundle(model._bundle.root).scorer().score_records(records[:3])  # type: ignore[attr-defined]
    scored = [{k: v for k, v in d.items() if k != "warnings"} for d in dicts[:3]]
    assert scored == [scores.record(r) for r in range(3)]
    assert [d["warnings"] for d in dicts] == [list(w) for w in many.warnings]
    assert json.loads(json.dumps(dicts[0])) == dicts[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        one.label = "Gentoo"  # type: ignore[misc]


@covers("Predictions.__len__", "Predictions.__getitem__", "Predictions.__iter__")
def test_predictions_index_like_a_sequence(model: Model, frame: pd.DataFrame) -> None:
    many = model.predict_many(frame)
    assert len(many) == 56
    assert many[-1] == many[55] and many[0].label == many.labels[0]
    assert [p.label for p in many] == many.labels
    with pytest.raises(IndexError):
        _ = many[56]
    assert len(model.predict_many(frame.iloc[:0])) == 0


@covers("InputError")
def test_input_errors_name_the_record_or_row_from_one_and_the_field(
    model: Model, frame: pd.DataFrame
) -> None:
    records = records_of(frame)[:5]
    bad = [dict(r) for r in records]
    bad[2]["bill_depth_mm"] = "seventeen"
    with pytest.raises(InputError, match=r"record 3\b.*bill_depth_mm"):
        model.predict_many(bad)
    with pytest.raises(InputError, match=r"record 1\b.*bill_depth_mm"):
        model.predict(bad[2])
    missing = {k: v for k, v in records[0].items() if k != "sex"}
    with pytest.raises(InputError, match=r"record 1: missing field\(s\) sex"):
        model.predict(missing)
    rows = np.array([[r[n] for n in INPUTS] for r in bad], dtype=object)
    with pytest.raises(InputError, match=r"row 3\b.*bill_depth_mm"):
        model.predict_many(rows)
    with pytest.raises(InputError, match="expected rows of 6 inputs"):
        model.predict_many(np.zeros((2, 3)))
    with pytest.raises(InputError, match="columns lack input"):
        model.predict_many({"island": ["Dream"]})
    with pytest.raises(InputError, match="expected records"):
        model.predict_many(42)
    with pytest.raises(InputError, match="record 2: expected an object"):
        model.predict_many([records[0], 3])
    assert issubclass(InputError, ValueError)


@covers("Model.predict_csv")
def test_predict_csv_writes_what_the_cli_writes(
    model: Model, frame: pd.DataFrame, tmp_path: Path
) -> None:
    dst = tmp_path / "out.csv"
    seen: list[tuple[int, int]] = []
    assert model.predict_csv(E2E, dst, lambda rows, read: seen.append((rows, read))) == 56
    assert seen and seen[-1][0] == 56 and seen[-1][1] == E2E.stat().st_size
    out = pd.read_csv(dst)
    assert list(out.columns) == list(model.outputs.columns)
    assert out["prediction"].tolist() == model.predict_many(frame).labels
    stream = io.StringIO()
    assert model.predict_csv(str(E2E), stream) == 56
    assert stream.getvalue() == dst.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]  # no temporary left
    bad = tmp_path / "bad.csv"
    bad.write_text(",".join(INPUTS) + "\nDream,46.5,seventeen,192,3500,female\n")
    with pytest.raises(InputError, match=r"row 1 \(line 2\), column 'bill_depth_mm'"):
        model.predict_csv(bad, tmp_path / "bad.out.csv")
    assert not (tmp_path / "bad.out.csv").exists()


# -- what the model is ---------------------------------------------------------
@covers(
    "Prediction.warnings",
    "Prediction.uncertain",
    "Predictions.warnings",
    "Predictions.uncertain",
    "Outputs.uncertain_below",
)
def test_inputs_outside_the_training_range_still_score_with_warnings(
    model: Model, frame: pd.DataFrame
) -> None:
    record = records_of(frame)[0]
    ranges = {i.name: i.training_range for i in model.inputs}
    high = ranges["body_mass_g"]["max"]
    plain = model.predict(record)
    assert plain.warnings == () and "warnings" in plain.to_dict()
    heavy = model.predict(record | {"body_mass_g": high * 3})
    assert heavy.label in model.outputs.classes  # it still scores
    assert len(heavy.warnings) == 1 and heavy.warnings[0].startswith("body_mass_g = ")
    assert f"to {high:g} g" in heavy.warnings[0]
    assert heavy.to_dict()["warnings"] == list(heavy.warnings)
    unseen = model.predict(record | {"island": "Atlantis"})  # one-hot ignores it, as sklearn
    assert unseen.warnings == (
        "island: a category the model never saw in training (known: Biscoe, Dream, Torgersen)",
    )
    # a missing value is not out of range; the bulk path (> a block of rows) says the same
    rows = [record, record | {"body_mass_g": None}, record | {"body_mass_g": high * 3}] * 700
    many = model.predict_many(rows)
    assert many.warnings[:3] == [(), (), heavy.warnings]
    assert [many[i].warnings for i in range(3)] == many.warnings[:3]
    assert many.warnings == model.predict_many(pd.DataFrame(rows)).warnings
    # uncertain: the top probability under the spec's [outputs] uncertain_below
    assert model.outputs.uncertain_below == 0.6
    assert many.uncertain is not None
    top = many.probabilities.max(axis=1)
    assert (many.uncertain == (top < 0.6)).all()
    assert [p.uncertain for p in many] == many.uncertain.tolist()


@covers("Model.predict_file", "FileResult", "Cancelled")
def test_predict_file_scores_good_rows_and_names_bad_ones(
    model: Model, frame: pd.DataFrame, tmp_path: Path
) -> None:
    import csv as csv_module
    import threading

    src = tmp_path / "rows.csv"
    rows = E2E.read_text().splitlines()
    header = rows[0].split(",")
    at = header.index("bill_length_mm")
    cells = rows[3].split(",")
    cells[at] = "thirty"
    src.write_text("\n".join([rows[0], rows[1], ",".join(cells), rows[2]]) + "\n")
    out = tmp_path / "scores.jsonl"
    result = model.predict_file(src, out, keep=["island"])
    assert (result.rows, result.scored, result.failed) == (3, 2, 1)
    assert result.output == str(out) and "bill_length_mm" in (result.first_error or "")
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[1] == {
        "island": cells[header.index("island")],
        "error": "line 3, column 'bill_length_mm': 'thirty' is not a number "
        "(leave the cell empty or write NA for a missing value)",
    }
    expected = model.predict_many(records_of(frame)[:2]).to_records()
    assert [{k: v for k, v in d.items() if k != "island"} for d in (lines[0], lines[2])] == expected
    # CSV out, from the JSON Lines just written back in? no: its fields are outputs, not inputs
    with pytest.raises(InputError, match="line 3, column 'bill_length_mm'"):
        model.predict_file(src, tmp_path / "strict.csv", strict=True)
    assert not (tmp_path / "strict.csv").exists()
    csv_out = tmp_path / "scores.csv"
    model.predict_file(src, csv_out)
    table = list(csv_module.reader(csv_out.open()))
    assert table[0][-3:] == ["uncertain", "warnings", "error"]
    assert table[2][-1].startswith("line 3, column")
    # cancel: raised at the next chunk, and nothing is left behind
    stop = threading.Event()
    stop.set()
    with pytest.raises(mlbundle_runtime.Cancelled):
        model.predict_file(src, tmp_path / "never.csv", cancel=stop)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "rows.csv",
        "scores.csv",
        "scores.jsonl",
    ]


@covers("Model.inputs", "Input")
def test_inputs_are_the_records_inputs(model: Model) -> None:
    inputs = model.inputs
    assert all(isinstance(i, Input) for i in inputs)
    assert [i.name for i in inputs] == INPUTS
    described = {i["name"]: i for i in model.record["inputs"]}
    for i in inputs:
        meta = described[i.name]
        assert (i.kind, i.unit, i.description) == (meta["kind"], meta["unit"], meta["description"])
        assert i.training_range == meta["training_range"]
        assert i.categories == tuple(meta.get("categories", ()))
    island, bill = inputs[0], inputs[1]
    assert island.kind == "categorical" and island.categories == ("Biscoe", "Dream", "Torgersen")
    assert bill.kind == "numeric" and bill.unit == "mm" and bill.categories == ()
    assert bill.training_range == {"min": 33.1, "max": 58.0}


@covers("Model.outputs", "Outputs")
def test_outputs_are_the_records_outputs(model: Model) -> None:
    out = model.outputs
    assert isinstance(out, Outputs)
    meta = model.record["outputs"]
    assert out.task == meta["task"] == "classification"
    assert list(out.classes) == meta["classes"]
    assert list(out.columns) == meta["columns"]
    assert out.columns == ("prediction", "proba_Adelie", "proba_Chinstrap", "proba_Gentoo")
    assert out.description == meta["description"] and "0.6" in out.consume


@covers("Model.record", "Model")
def test_record_is_the_payloads_record_and_a_copy(model: Model, payload: Path) -> None:
    record = model.record
    assert record == json.loads((payload / "record.json").read_text())
    assert record["model"]["algorithm"] and record["audit"]["status"] == "UNAPPROVED"
    record["audit"]["status"] = "APPROVED"
    assert model.record["audit"]["status"] == "UNAPPROVED"


@covers("Model.selftest", "GateResult")
def test_selftest_runs_the_release_gate(model: Model) -> None:
    result = model.selftest()
    assert isinstance(result, GateResult)
    assert result.passed, result.summary()
    assert result.e2e_rows == 56 and not result.e2e_failures
    assert result.e2e_columns == ("prediction", "proba_Adelie", "proba_Chinstrap", "proba_Gentoo")
    assert 0.93 <= result.metric_value <= 1.0


# -- the package ---------------------------------------------------------------
@covers("__all__")
def test_api_is_exported_lazily_from_the_package() -> None:
    rt = RUNTIME
    code = (
        f"import sys, {rt}.plan\n"
        f"assert '{rt}.api' not in sys.modules, 'import {rt}.plan paid for the API'\n"
        f"import {rt} as rt\n"
        f"assert rt.load is sys.modules['{rt}.api'].load\n"
        "assert set(rt.__all__) <= set(dir(rt))\n"
        "try:\n    rt.nothing\nexcept AttributeError:\n    pass\nelse:\n    raise SystemExit(1)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(IMPORT_ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    for name in mlbundle_runtime.__all__:
        assert getattr(mlbundle_runtime, name) is getattr(sys.modules[f"{rt}.api"], name)
    assert mlbundle_runtime.InputError is sys.modules[f"{rt}.inputs"].InputError
    assert mlbundle_runtime.__version__


def test_type_hints_ship_with_the_package() -> None:
    import tomllib

    assert (Path(mlbundle_runtime.__file__).parent / "py.typed").is_file()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package_data = pyproject["tool"]["setuptools"]["package-data"]
    assert any("py.typed" in files for files in package_data.values()), package_data
    for cls in (Input, Outputs, Prediction, Predictions):
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert load.__annotations__["return"] == "Model"


@covers("Prediction.outputs", "Predictions.outputs", "Outputs.targets", "Outputs.name")
def test_one_output_has_no_targets_and_several_answer_one_prediction_each(model: Model) -> None:
    """A single-output model's answers are as before (no ``outputs``, no ``targets``); a
    multi-output plan's are one ``Prediction`` per target (tests/test_multi_output_app.py
    runs a whole multi-output payload through the same API)."""
    from sklearn.tree import DecisionTreeClassifier

    from bundler.compiler import compile_estimators
    from mlbundle_runtime.api import _prediction, _predictions
    from mlbundle_runtime.scorer import Scorer
    from tests._parity import kernels

    assert model.outputs.targets == () and model.outputs.name == ""
    record = records_of(pd.read_csv(E2E))[0]
    assert model.predict(record).outputs == {} and model.predict_many([record]).outputs == {}
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 2))
    Y = np.column_stack([np.where(X[:, 0] > 0, "hot", "cold"), np.where(X[:, 1] > 0, "y", "n")])
    est = DecisionTreeClassifier(random_state=0).fit(X, Y)
    scores = Scorer(compile_estimators(est).load(), kernels()).score_rows(X)
    one, many = _prediction(scores, 4), _predictions(scores)
    assert one.label == tuple(est.predict(X[4:5])[0]) and list(one.outputs) == ["y0", "y1"]
    assert one.outputs["y1"].probabilities == dict(
        zip(est.classes_[1], est.predict_proba(X)[1][4], strict=True)
    )
    assert many.labels == [tuple(r) for r in est.predict(X)] and many.probabilities is None
    assert np.array_equal(many.outputs["y0"].probabilities, est.predict_proba(X)[0])
    assert one.to_dict()["probabilities"]["y0"] == {
        str(c): p for c, p in zip(est.classes_[0], est.predict_proba(X)[0][4], strict=True)
    }


def test_every_public_name_is_covered() -> None:
    public = set(mlbundle_runtime.__all__) | {"__all__"}
    for cls in (Model, Prediction, Predictions):
        public |= {f"{cls.__name__}.{m}" for m in vars(cls) if not m.startswith("_")}
        public |= (
            {f"{cls.__name__}.{f.name}" for f in dataclasses.fields(cls)}
            if (dataclasses.is_dataclass(cls))
            else set()
        )
    public |= {"Predictions.__len__", "Predictions.__getitem__", "Predictions.__iter__"}
    public = {p for p in public if not p.split(".")[-1].startswith("_") or p.endswith("__")}
    assert sorted(public - COVERED) == []


def test_the_documented_application_runs_and_agrees_with_scikit_learn(
    payload: Path, tmp_path: Path, sklearn: tuple[list[str], np.ndarray]
) -> None:
    """docs/runtime-api.md's complete application, run from source on the e2e rows."""
    import re
    from collections import Counter

    doc = (ROOT / "docs" / "runtime-api.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", doc, re.S) if "def main(" in b]
    assert len(blocks) == 1
    script = tmp_path / "penguin_triage.py"
    script.write_text(blocks[0].replace("mlbundle_runtime", RUNTIME))
    env = dict(os.environ, MLBUNDLE_PAYLOAD=str(payload), PYTHONPATH=str(IMPORT_ROOT))
    proc = subprocess.run(
        [sys.executable, str(script), str(E2E)], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr
    labels, proba = sklearn
    lines = proc.stdout.splitlines()
    assert lines[0] == "56 penguins; model 1.0.0 (UNAPPROVED development build)"
    counts = [f"  {s}: {n}" for s, n in sorted(Counter(labels).items())]
    assert lines[1 : 1 + len(counts)] == counts
    uncertain = [r for r in range(len(labels)) if proba[r].max() < 0.6]
    assert lines[1 + len(counts)] == f"uncertain (top probability under 0.6): {len(uncertain)}"
    assert lines[2 + len(counts) :] == [
        f"  row {r + 1}: {labels[r]} ({proba[r].max():.2f})" for r in uncertain
    ]
    assert f"uncertain (top probability under 0.6): {len(uncertain)}" in doc  # the doc's output


class _RecordsOnly:
    """A scorer that takes records only, as the passthrough backend's does."""

    def __init__(self, scorer: Any) -> None:
        self.plan = scorer.plan
        self.score_records = scorer.score_records
        self.score_csv_file = scorer.score_csv_file


def test_a_records_only_scorer_takes_every_input_form(model: Model, frame: pd.DataFrame) -> None:
    """A passthrough bundle's scorer has no column or array path: ``predict_many`` turns
    columns, DataFrames and arrays into records for it, with the same answers."""
    bundle = model._bundle  # type: ignore[attr-defined]
    plain = Model(bundle, _RecordsOnly(model._scorer))  # type: ignore[attr-defined]
    records = records_of(frame)
    want = model.predict_many(records)
    rows = np.array([[r[n] for n in INPUTS] for r in records], dtype=object)
    columns = {n: [r[n] for r in records] for n in INPUTS}
    for given in (records, columns, frame[INPUTS], rows):
        got = plain.predict_many(given)
        assert got.labels == want.labels
        assert np.array_equal(got.probabilities, want.probabilities)
    assert plain.predict(records[0]) == want[0]
    with pytest.raises(InputError, match="expected rows of 6 inputs"):
        plain.predict_many(np.zeros((2, 3)))
    with pytest.raises(InputError, match="columns lack input"):
        plain.predict_many({"island": ["Dream"]})


def _plan_folder(estimator: Any, folder: Path) -> Path:
    """A payload of a plan only (no record or gate): enough to predict."""
    import hashlib

    from bundler.compiler import compile_estimators
    from bundler.payload import write_plan_files

    folder.mkdir()
    write_plan_files(compile_estimators(estimator, None), folder)
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    info = {"name": "small", "version": "0", "backend": "jit", "files": files}
    (folder / "bundle.json").write_text(json.dumps(info))
    return folder


def test_regressors_have_values_and_extras_come_through(tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.svm import LinearSVC

    X = pd.DataFrame({"a": [1.0, 2, 3, 4, 5, 6], "b": [0.5, 0.1, 0.3, 0.9, 0.2, 0.4]})
    rows = np.array([[2.0, 0.2], [3.0, 1.0], [7.5, -1.0]])
    Xr = pd.DataFrame(rows, columns=["a", "b"])
    reg = LinearRegression().fit(X, [1.0, 2.5, 2.9, 4.2, 5.1, 5.8])
    m = load(_plan_folder(reg, tmp_path / "reg"))
    p = m.predict({"a": 2.0, "b": 0.2})
    assert p.probabilities is None and p.label == p.value
    assert p.value == pytest.approx(reg.predict(Xr)[0], abs=1e-9)
    assert p.to_dict() == {"prediction": p.value, "warnings": []}
    many = m.predict_many(rows)
    assert many.probabilities is None and many.classes == ()
    np.testing.assert_allclose(many.values, reg.predict(Xr), rtol=0, atol=1e-9)
    assert many.labels == many.values.tolist()

    y = ["n", "n", "y", "n", "y", "y"]
    for est in (LogisticRegression().fit(X, y), LinearSVC().fit(X, y)):
        m = load(_plan_folder(est, tmp_path / type(est).__name__))
        many = m.predict_many(rows)
        assert many.labels == est.predict(Xr).tolist()
        np.testing.assert_allclose(
            many.extras["decision_function"], est.decision_function(Xr), rtol=0, atol=1e-9
        )
        one = m.predict({"a": 2.0, "b": 0.2})
        assert one.extras["decision_function"] == many.extras["decision_function"][0]
        assert one.to_dict()["decision_function"] == one.extras["decision_function"]
        if hasattr(est, "predict_proba"):
            np.testing.assert_allclose(many.probabilities, est.predict_proba(Xr), atol=1e-9)
        else:
            assert many.probabilities is None and one.probabilities is None
            assert "probabilities" not in one.to_dict()
