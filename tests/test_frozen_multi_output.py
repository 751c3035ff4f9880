"""The building-energy example (one forest, two regression targets) frozen: one build per
session, onedir only.

``specs/energy.toml`` is built through the real ``bundle build``. Inside the binary: the
release gate passes in ``selftest`` (e2e compared on both targets, r2 on the heating
target), ``predict`` on a CSV writes one column per target, named as the spec names the
targets, holding scikit-learn's predictions to the bit, ``predict --json`` answers both
targets, ``about`` lists them, and the window shows and copies both.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from bundler.freeze import run_frozen
from tests._display import Display
from tests.conftest import ROOT, run_bundle
from tests.test_frozen_window import (
    WINDOW_TIMEOUT,
    copied_result,
    keys_for,
    started,
    wait_for_window,
    window_title,
    x,
)

SPEC = ROOT / "specs" / "energy.toml"
EXAMPLE = ROOT / "resources" / "energy"
OUTPUT = Path(os.environ.get("MLBUNDLE_TEST_OUTPUT", ROOT / "tests" / "output"))
INPUTS = ["floor_area_m2", "wall_u_value", "glazing_ratio", "storeys"]
TARGETS = ["heating_kwh_m2", "cooling_kwh_m2"]
BUILDING = {"floor_area_m2": 120, "wall_u_value": 0.35, "glazing_ratio": 0.4, "storeys": 2}


@pytest.fixture(scope="session")
def energy_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """specs/energy.toml built once (onedir); the executable."""
    work = tmp_path_factory.mktemp("energy")
    text = SPEC.read_text(encoding="utf-8").replace('"../', f'"{ROOT}/')
    spec = work / "energy.toml"
    spec.write_text(text, encoding="utf-8")
    proc = run_bundle("build", str(spec), "--output-dir", str(work / "dist"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "largest difference 0" in proc.stdout, proc.stdout
    return work / "dist" / "energy" / "onedir" / "energy" / "energy"


def sklearn_predict(rows: pd.DataFrame) -> np.ndarray:
    return joblib.load(EXAMPLE / "artifacts" / "model.joblib").predict(rows[INPUTS])


@pytest.mark.frozen
def test_frozen_selftest_passes_the_gate_on_both_targets(energy_app: Path) -> None:
    proc = run_frozen(energy_app, "selftest")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (
        "end-to-end: 55 rows match on heating_kwh_m2, cooling_kwh_m2 (largest difference 0)"
        in proc.stdout
    )
    assert "confidence: r2 of heating_kwh_m2 = 0.94" in proc.stdout
    assert "selftest: PASSED" in proc.stdout


@pytest.mark.frozen
def test_frozen_csv_has_a_column_per_target_equal_to_scikit_learn(
    energy_app: Path, tmp_path: Path
) -> None:
    src = tmp_path / "buildings.csv"
    rows = pd.read_csv(EXAMPLE / "gate" / "confidence.csv")
    rows[INPUTS].to_csv(src, index=False)
    proc = subprocess.run(
        [str(energy_app), "predict", "--input", str(src), "--keep", "storeys", "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"},
    )
    assert proc.returncode == 0, proc.stderr
    out = list(csv.reader(io.StringIO(proc.stdout)))
    assert out[0] == ["storeys", *TARGETS, "warnings", "error"]
    got = np.array([[float(c) for c in row[1:3]] for row in out[1:]])
    assert np.array_equal(got, sklearn_predict(rows))  # to the bit


@pytest.mark.frozen
def test_frozen_json_and_about_name_both_targets(energy_app: Path) -> None:
    proc = run_frozen(energy_app, "predict", "--json", json.dumps(BUILDING))
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    want = sklearn_predict(pd.DataFrame([BUILDING]))[0]
    assert answer["prediction"] == dict(zip(TARGETS, want.tolist(), strict=True))
    about = run_frozen(energy_app, "about")
    assert "outputs      regression, 2 targets" in about.stdout
    record = json.loads(run_frozen(energy_app, "about", "--json").stdout)
    assert [t["name"] for t in record["outputs"]["targets"]] == TARGETS
    assert record["gate"]["confidence"]["output"] == "heating_kwh_m2"


@pytest.mark.frozen
def test_frozen_window_shows_every_target(
    energy_app: Path, display: Display, tmp_path: Path
) -> None:
    cli = json.loads(run_frozen(energy_app, "predict", "--json", json.dumps(BUILDING)).stdout)
    about = json.loads(run_frozen(energy_app, "about", "--json").stdout)
    title = window_title(energy_app, tmp_path)
    with started(energy_app, display, tmp_path) as proc:
        wid = wait_for_window(display, title, proc, WINDOW_TIMEOUT)
        x(display, "windowfocus", "--sync", wid)
        for command in keys_for(about["inputs"], BUILDING):
            x(display, *command)
        x(display, "key", "Return")
        line = copied_result(display, wid)
        display.screenshot(OUTPUT / "frozen-window-energy.png")
        x(display, "key", "--clearmodifiers", "ctrl+q")
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, out[-2000:] + err[-2000:]
    values = cli["prediction"]
    assert line == "; ".join(f"{t} {values[t]:.6g}" for t in TARGETS), line
