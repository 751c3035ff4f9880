"""A LightGBM model frozen: one build per session, onedir only, with no LightGBM inside.

The fixture trains a three-class ``LGBMClassifier`` (string classes, NaN in training
so its splits have both missing types, values in LightGBM's zero band) on a
DataFrame, writes its joblib file, an e2e set of LightGBM's own answers (rows at
thresholds, NaN, the zero band, huge values) and a confidence set, and builds the
spec through the real ``bundle build``. Inside the binary the gate passes
(``selftest``) and ``predict`` answers what LightGBM answers in this process, to
the bit; the frozen app holds no file of LightGBM's (it never imports it: the
plan is data, the kernels are the runtime's own).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest

from bundler.freeze import run_frozen
from tests.conftest import run_bundle

lgb = pytest.importorskip("lightgbm")

FEATURES = ["length", "width", "depth", "weight"]
CLASSES = ["small", "medium", "large"]
SPEC = """
[app]
name = "boxes"
version = "1.0.0"
title = "Box size classifier"
description = "Says whether a box is small, medium or large (LightGBM)."
maintainer = "Example Release Manager <release@example.org>"
license = "Apache-2.0"

[model]
path = "{work}/model.joblib"
sha256 = "{sha256}"
version = "1.0.0"

[gate.e2e]
path = "{work}/e2e.csv"
tolerance = 0

[gate.confidence]
path = "{work}/confidence.csv"
target = "size"
metric = "accuracy"
range = [0.7, 1.0]

[build]
modes = ["onedir"]
backend = "aot"
"""


def _frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.RandomState(seed)
    X = rng.randn(n, len(FEATURES)) * [10.0, 3.0, 1.0, 100.0]
    X[rng.rand(n) < 0.15, 0] = 0.0  # exact zeros: splits at LightGBM's zero band
    score = np.nan_to_num(X[:, 0]) / 10 + X[:, 1] / 3 + 0.5 * X[:, 2]
    X[rng.rand(n, len(FEATURES)) < 0.08] = np.nan
    y = np.array(CLASSES, dtype=object)[np.digitize(score, [-0.6, 0.6])]
    return pd.DataFrame(X, columns=FEATURES), y


def _probe_rows(model: Any, base: pd.DataFrame) -> pd.DataFrame:
    """Rows with one feature at a split threshold or a float64 step either side, NaN, in
    the zero band, or huge (every 4th split, to keep the set small)."""
    splits = sorted(
        {
            (node["split_feature"], node["threshold"])
            for tree in model.booster_.dump_model()["tree_info"]
            for node in _nodes(tree["tree_structure"])
        }
    )[::4]
    values = [
        (f, v) for f, t in splits for v in (t, np.nextafter(t, -1e308), np.nextafter(t, 1e308))
    ]
    values += [(f, v) for f in range(len(FEATURES)) for v in (np.nan, 1e-36, -1e-35, 1e300, -1e300)]
    rows = []
    for k, (f, v) in enumerate(values):
        row = base.iloc[k % len(base)].to_numpy(dtype=np.float64).copy()
        row[f] = v
        rows.append(row)
    return pd.DataFrame(rows, columns=FEATURES)


def _nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    if "split_index" not in node:
        return []
    return [node, *_nodes(node["left_child"]), *_nodes(node["right_child"])]


def _cell(v: float) -> str:
    return "" if math.isnan(v) else repr(float(v))


def lightgbm_answers(model: Any, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return model.predict(X), model.predict_proba(X), model.decision_function(X)


@pytest.fixture(scope="session")
def lightgbm_app(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, pd.DataFrame]:
    """The boxes spec built once (onedir); the executable, the model and the e2e rows."""
    work = tmp_path_factory.mktemp("boxes")
    X, y = _frame(600, 0)
    model = lgb.LGBMClassifier(n_estimators=40, num_leaves=12, n_jobs=1, verbose=-1).fit(X, y)
    joblib.dump(model, work / "model.joblib", compress=0)
    e2e = pd.concat([X.iloc[:40], _probe_rows(model, X)], ignore_index=True)
    labels, proba, decision = lightgbm_answers(model, e2e)
    classes = [str(c) for c in model.classes_]
    with (work / "e2e.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [*FEATURES, "prediction", *(f"proba_{c}" for c in classes)]
            + [f"decision_function_{c}" for c in classes]
        )
        for row, label, p, d in zip(e2e.to_numpy(), labels, proba, decision, strict=True):
            writer.writerow([*map(_cell, row), label, *map(_cell, p), *map(_cell, d)])
    Xc, yc = _frame(300, 1)
    Xc.assign(size=yc).to_csv(work / "confidence.csv", index=False, na_rep="")
    spec = work / "boxes.toml"
    digest = hashlib.sha256((work / "model.joblib").read_bytes()).hexdigest()
    spec.write_text(SPEC.format(work=work, sha256=digest), encoding="utf-8")
    proc = run_bundle("build", str(spec), "--output-dir", str(work / "dist"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "largest difference 0" in proc.stdout, proc.stdout
    return work / "dist" / "boxes" / "onedir" / "boxes" / "boxes", model, e2e


@pytest.mark.frozen
def test_frozen_selftest_passes_the_gate(lightgbm_app: tuple[Path, Any, pd.DataFrame]) -> None:
    exe, _, e2e = lightgbm_app
    proc = run_frozen(exe, "selftest")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"end-to-end: {len(e2e)} rows match" in proc.stdout, proc.stdout
    assert "(largest difference 0)" in proc.stdout and "selftest: PASSED" in proc.stdout


@pytest.mark.frozen
def test_frozen_predict_is_lightgbms_to_the_bit(
    lightgbm_app: tuple[Path, Any, pd.DataFrame],
) -> None:
    exe, model, e2e = lightgbm_app
    rows = e2e.iloc[::7].reset_index(drop=True)
    labels, proba, decision = lightgbm_answers(model, rows)
    for k, record in enumerate(rows.to_dict("records")):
        text = json.dumps({n: None if math.isnan(v) else v for n, v in record.items()})
        proc = run_frozen(exe, "predict", "--json", text)
        assert proc.returncode == 0, proc.stderr
        answer = json.loads(proc.stdout)
        assert answer["prediction"] == labels[k]
        got = [answer["probabilities"][str(c)] for c in model.classes_]
        assert got == [float(p) for p in proba[k]], (record, got, proba[k])
        raw = answer["decision_function"]
        assert [raw[str(c)] for c in model.classes_] == [float(d) for d in decision[k]]


@pytest.mark.frozen
def test_frozen_app_holds_no_lightgbm(lightgbm_app: tuple[Path, Any, pd.DataFrame]) -> None:
    exe, _, _ = lightgbm_app
    files = [p.relative_to(exe.parent).as_posix().lower() for p in exe.parent.rglob("*")]
    assert len(files) > 20, files
    assert not [f for f in files if "lightgbm" in f or "lib_lightgbm" in f]
    assert not [f for f in files if f.split("/")[-1].startswith(("sklearn", "scipy"))]
