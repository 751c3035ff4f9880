"""A multi-output model through the runtime API, the app's files, the gate, the record and
the window (in-process on Xvfb), from the payload ``bundle prepare specs/energy.toml``
writes: every answer is scikit-learn's, one per target, under the spec's target names.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier

from bundler.compiler import compile_estimators
from bundler.errors import SpecError, UnsupportedEstimatorError
from bundler.gate import gate_config
from bundler.spec import load_spec
from bundler.verify import validate_record
from mlbundle_runtime.gate import GateConfig, read_table, run_gate
from mlbundle_runtime.inputs import InputError
from mlbundle_runtime.scorer import Scorer
from tests._display import Display
from tests._parity import kernels

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "energy.toml"
EXAMPLE = ROOT / "resources" / "energy"
INPUTS = ["floor_area_m2", "wall_u_value", "glazing_ratio", "storeys"]
TARGETS = ("heating_kwh_m2", "cooling_kwh_m2")
BUILDING = {"floor_area_m2": 120, "wall_u_value": 0.35, "glazing_ratio": None, "storeys": 2}


@pytest.fixture(scope="module")
def payload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("energy") / "payload"
    proc = subprocess.run(
        [sys.executable, "-m", "bundler", "prepare", str(SPEC), "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        env=dict(os.environ, SOURCE_DATE_EPOCH="1764374400", NO_COLOR="1"),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "gate confidence: r2 of heating_kwh_m2 = 0.94" in proc.stdout, proc.stdout
    return out


@pytest.fixture(scope="module")
def model(payload: Path) -> Any:
    import mlbundle_runtime

    return mlbundle_runtime.load(payload)


def sklearn_predict(rows: pd.DataFrame) -> np.ndarray:
    return joblib.load(EXAMPLE / "artifacts" / "model.joblib").predict(rows[INPUTS])


def frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(records, columns=INPUTS).astype(float)


def test_predict_answers_one_prediction_per_target(model: Any) -> None:
    p = model.predict(BUILDING)
    want = sklearn_predict(frame([BUILDING]))[0].tolist()
    assert list(p.outputs) == list(TARGETS)
    assert [p.outputs[t].value for t in TARGETS] == want  # to the bit
    assert p.label == tuple(want) and p.value is None and p.probabilities is None
    assert p.to_dict() == {"prediction": dict(zip(TARGETS, want, strict=True)), "warnings": []}
    far = model.predict({**BUILDING, "floor_area_m2": 5000})
    assert any("floor_area_m2" in w for w in far.warnings)


def test_predict_many_and_outputs(model: Any) -> None:
    rows = pd.read_csv(EXAMPLE / "gate" / "confidence.csv")[INPUTS]
    many = model.predict_many(rows)
    want = sklearn_predict(rows)
    assert many.values is not None and np.array_equal(many.values, want)
    assert np.array_equal(many.outputs["cooling_kwh_m2"].values, want[:, 1])
    assert many.labels[3] == tuple(want[3].tolist())
    assert many[5].outputs["heating_kwh_m2"].value == want[5, 0]
    assert many.to_records()[0]["prediction"] == dict(zip(TARGETS, want[0].tolist(), strict=True))
    outputs = model.outputs
    assert outputs.columns == TARGETS and outputs.task == "regression"
    assert [(t.name, t.columns) for t in outputs.targets] == [(t, (t,)) for t in TARGETS]


def test_csv_and_json_lines_files(model: Any, tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    rows = pd.read_csv(EXAMPLE / "gate" / "e2e.csv")[INPUTS]
    text = rows.to_csv(index=False, na_rep="")
    src.write_text(text + "12,abc,0.3,1\n", encoding="utf-8")  # a bad last row
    result = model.predict_file(src, tmp_path / "out.csv", keep=["storeys"])
    assert result.scored == len(rows) and result.failed == 1
    out = list(csv.reader(io.StringIO((tmp_path / "out.csv").read_text())))
    assert out[0] == ["storeys", *TARGETS, "warnings", "error"]
    got = np.array([[float(c) for c in r[1:3]] for r in out[1:-1]])
    assert np.array_equal(got, sklearn_predict(rows))
    assert out[-1][:3] == ["1", "", ""] and "wall_u_value" in out[-1][-1]
    model.predict_file(src, tmp_path / "out.jsonl")
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [[ln["prediction"][t] for t in TARGETS] for ln in lines[:-1]] == got.tolist()
    assert "error" in lines[-1] and "prediction" not in lines[-1]


def test_selftest_and_the_record(model: Any) -> None:
    result = model.selftest()
    assert result.passed and result.e2e_columns == TARGETS and result.e2e_max_abs_diff == 0
    assert result.confidence_output == "heating_kwh_m2"
    assert "confidence: r2 of heating_kwh_m2 = " in result.summary()[1]
    record = model.record
    assert validate_record(record) == []
    assert record["outputs"]["columns"] == list(TARGETS)
    assert record["outputs"]["targets"] == [
        {"name": t, "task": "regression", "classes": [], "columns": [t]} for t in TARGETS
    ]
    assert record["gate"]["confidence"]["output"] == "heating_kwh_m2"


def _gate(model: Any, **config: Any) -> Any:
    bundle = model._bundle
    base = GateConfig.from_json(bundle.read_json("gate.json"))
    cfg = GateConfig(**{**base.__dict__, **config})
    names = bundle.plan.input_names
    tables = [
        read_table(bundle.read_bytes(f), f, names) for f in (cfg.e2e_file, cfg.confidence_file)
    ]
    return run_gate(model._scorer, cfg, *tables)


def test_the_gate_scores_the_chosen_target_or_says_which(model: Any) -> None:
    cooling = _gate(model, output="cooling_kwh_m2", target="cooling_kwh_m2")
    assert 0.6 < cooling.metric_value < 0.8 and not cooling.confidence_passed
    with pytest.raises(InputError, match=r"predicts 2 targets \(heating_kwh_m2, cooling_kwh_m2\)"):
        _gate(model, output=None)
    with pytest.raises(InputError, match="'rent' is not a target of the model; valid: heat"):
        _gate(model, output="rent")


def test_an_e2e_set_that_misses_a_target_is_refused(model: Any) -> None:
    bundle = model._bundle
    config = GateConfig.from_json(bundle.read_json("gate.json"))
    names = bundle.plan.input_names
    e2e = pd.read_csv(EXAMPLE / "gate" / "e2e.csv").drop(columns=["cooling_kwh_m2"])
    table = read_table(e2e.to_csv(index=False).encode(), "e2e.csv", names)
    conf = read_table(bundle.read_bytes(config.confidence_file), "c.csv", names)
    with pytest.raises(InputError, match="no column cooling_kwh_m2"):
        run_gate(model._scorer, config, table, conf)


def test_classification_targets_are_compared_as_labels() -> None:
    """prediction_<target> columns hold class labels: compared as text, not numbers."""
    rng = np.random.default_rng(0)
    X = np.round(rng.normal(size=(200, 3)), 6)
    Y = np.column_stack([np.where(X[:, 0] > 0, "up", "down"), np.where(X[:, 1] > 0, "a", "b")])
    est = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, Y)
    scorer = Scorer(compile_estimators(est, target_names=["trend", "kind"]).load(), kernels())
    scores = scorer.score_rows(X[:20])
    lines = [
        ",".join(map(str, row.tolist())) + "," + t
        for row, t in zip(X[:20], scores.csv_texts(), strict=True)
    ]
    header = ["x0", "x1", "x2", *scores.header()]
    text = "\n".join([",".join(header), *lines]) + "\n"
    wrong = text.replace(",up,", ",UP,", 1)
    truth = "x0,x1,x2,trend\n" + "".join(
        f"{a},{b},{c},{y}\n" for (a, b, c), y in zip(X[:20].tolist(), Y[:20, 0], strict=True)
    )
    names = ("x0", "x1", "x2")
    config = GateConfig("e", 0.0, "c", "trend", "accuracy", 0.5, 1.0, output="trend")
    passed = run_gate(
        scorer,
        config,
        read_table(text.encode(), "e", names),
        read_table(truth.encode(), "c", names),
    )
    assert passed.passed and passed.metric_value == 1.0, passed.summary()
    failed = run_gate(
        scorer,
        config,
        read_table(wrong.encode(), "e", names),
        read_table(truth.encode(), "c", names),
    )
    assert failed.e2e_failures and "prediction_trend 'up', expected 'UP'" in failed.e2e_failures[0]


# -- the window ----------------------------------------------------------------------


@pytest.fixture()
def window(display: Display, model: Any) -> Iterator[Any]:
    import tkinter as tk

    from mlbundle_runtime.window import ModelWindow

    root = tk.Tk()
    w = ModelWindow(root, model)
    root.update()
    yield w
    with contextlib.suppress(tk.TclError):
        root.destroy()


def test_the_window_shows_every_target(window: Any, model: Any) -> None:
    from mlbundle_runtime.window import about_lines

    for name, value in BUILDING.items():
        window.fields[name].var.set("" if value is None else str(value))
    window.root.update()
    window.predict()
    window.root.update()
    answer = model.predict(BUILDING)
    values = [answer.outputs[t].value for t in TARGETS]
    shown = window.result_label.cget("text")
    assert shown == "\n".join(f"{t}: {v:.6g}" for t, v in zip(TARGETS, values, strict=True))
    assert window.detail_label.cget("text") == "2 targets predicted"
    assert window.copy_result() == "; ".join(
        f"{t} {v:.6g}" for t, v in zip(TARGETS, values, strict=True)
    )
    assert window.bars == []
    about = "\n".join(text for _, text in about_lines(model))
    assert "heating_kwh_m2, cooling_kwh_m2" in about


# -- the spec ------------------------------------------------------------------------


def _spec(tmp_path: Path, edit: Callable[[str], str]) -> Path:
    text = SPEC.read_text(encoding="utf-8").replace('"../', f'"{ROOT}/')
    path = tmp_path / "energy.toml"
    path.write_text(edit(text), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ('["heating", "cooling,kwh"]', "found 'cooling,kwh'"),
        ('["heating", "heating"]', "found a name twice"),
        ('["heating"]', "expected a list of distinct names, one per target"),
        ('"heating"', "expected a list of distinct names"),
    ],
)
def test_spec_refuses_bad_target_names(tmp_path: Path, targets: str, message: str) -> None:
    path = _spec(
        tmp_path,
        lambda t: t.replace(
            'targets = ["heating_kwh_m2", "cooling_kwh_m2"]', f"targets = {targets}"
        ),
    )
    with pytest.raises(SpecError, match="outputs.targets") as info:
        load_spec(path)
    assert message in str(info.value)


def test_gate_config_needs_the_confidence_output(model: Any, tmp_path: Path) -> None:
    path = _spec(tmp_path, lambda t: t.replace('output = "heating_kwh_m2"\n', ""))
    with pytest.raises(SpecError, match=r"gate.confidence: the model predicts 2 targets"):
        gate_config(load_spec(path), model._scorer)
    path = _spec(tmp_path, lambda t: t.replace('output = "heating_kwh_m2"', 'output = "heat"'))
    with pytest.raises(SpecError, match="'heat' is not a target of the model"):
        gate_config(load_spec(path), model._scorer)


def test_target_names_for_one_target_are_refused() -> None:
    from sklearn.linear_model import Ridge

    X = np.arange(20.0).reshape(10, 2)
    with pytest.raises(UnsupportedEstimatorError, match="predicts one target"):
        compile_estimators(Ridge().fit(X, X[:, 0]), target_names=["a", "b"])


def test_window_text_of_classification_targets() -> None:
    """A classification target shows its class and top probability; the copied line
    names each target (the frozen energy app shows regression targets)."""
    from mlbundle_runtime.api import Prediction
    from mlbundle_runtime.window import headline, result_text

    colour = Prediction("red", {"red": 0.875, "blue": 0.125}, None)
    size = Prediction(2.5, None, 2.5)
    both = Prediction(("red", 2.5), None, None, warnings=("w = 9 is outside",), outputs={
        "colour": colour, "size": size})  # fmt: skip
    assert headline(both) == "colour: red (87.5%)\nsize: 2.5"
    assert result_text(both) == "colour red 87.5% (blue 12.5%); size 2.5; warning: w = 9 is outside"


def test_an_uncertainty_threshold_is_refused_for_several_targets(
    model: Any, tmp_path: Path
) -> None:
    path = _spec(tmp_path, lambda t: t.replace("[outputs]\n", "[outputs]\nuncertain_below = 0.6\n"))
    with pytest.raises(SpecError, match="uncertain_below: the model predicts 2 targets"):
        gate_config(load_spec(path), model._scorer)
