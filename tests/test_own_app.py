"""The release engineer's own application, frozen with its model: resources/fieldreport.

Its package is named ``mlbundle_runtime`` on purpose (the most common name for one's own code),
and it reaches the model through ``mlbundle_runtime`` only. The frozen binaries run
from a copy outside the source tree with a clean environment and must print what
scikit-learn predicts for the same rows.
"""

from __future__ import annotations

import csv
import math
import shutil
import subprocess
import sys
from pathlib import Path

import joblib
import pandas as pd
import pytest

from bundler.freeze import run_frozen
from tests.conftest import ROOT, run_bundle

SPEC = ROOT / "specs" / "fieldreport.toml"
EXAMPLE = ROOT / "resources" / "fieldreport"
DAY = EXAMPLE / "day.csv"


def sklearn_rows(path: Path) -> tuple[list[str], list[str], list[list[float]]]:
    """ids, scikit-learn's labels and probabilities for the rows of ``path``."""
    model = joblib.load(ROOT / "resources" / "artifacts" / "model.joblib")
    extractor = joblib.load(ROOT / "resources" / "artifacts" / "extractor.joblib")
    frame = pd.read_csv(path)
    ids = frame.pop("id").tolist()
    X = extractor.transform(frame)
    return ids, [str(v) for v in model.predict(X)], model.predict_proba(X).tolist()


def details(stdout: str) -> dict[str, tuple[str, list[float]]]:
    """The report's ``--details`` lines: id -> (species, probabilities)."""
    lines = stdout.split("Details (", 1)[1].splitlines()[1:]
    out = {}
    for line in lines:
        key, rest = line.strip().split(": ", 1)
        label, probs = rest.split("; ")
        out[key] = (label, [float(p) for p in probs.split()])
    return out


def assert_as_sklearn(stdout: str) -> None:
    ids, labels, probas = sklearn_rows(DAY)
    got = details(stdout)
    assert list(got) == ids
    for i, label, proba in zip(ids, labels, probas, strict=True):
        assert got[i][0] == label
        assert all(math.isclose(a, b, abs_tol=1e-9) for a, b in zip(got[i][1], proba, strict=True))


# -- without freezing ------------------------------------------------------------------
def test_bundle_run_runs_the_example_from_source() -> None:
    proc = run_bundle("run", str(SPEC), "--", str(DAY), "--details")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"Field report for {DAY}: 5 penguins\n"), proc.stdout
    assert "Model RandomForestClassifier 1.0.0 (UNAPPROVED)" in proc.stdout
    assert_as_sklearn(proc.stdout)


def test_bundle_run_passes_the_applications_exit_code() -> None:
    proc = run_bundle("run", str(SPEC), "--", "/nonexistent/day.csv")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "fieldreport: [Errno 2] No such file or directory" in proc.stderr


def _importing(tmp_path: Path, line: str) -> Path:
    """A copy of the example whose model module also runs ``line``."""
    src = tmp_path / "fieldreport"
    shutil.copytree(EXAMPLE, src)
    helper = src / "app" / "helpers.py"
    helper.write_text(f"{line}\n")
    report = src / "app" / "report.py"
    report.write_text(
        report.read_text().replace(
            "import mlbundle_runtime\n",
            "import mlbundle_runtime\n\nfrom app import helpers  # noqa: F401\n",
        )
    )
    spec = tmp_path / "spec.toml"
    spec.write_text(
        SPEC.read_text()
        .replace('"../resources/fieldreport', f'"{src}')
        .replace('"../', f'"{ROOT}/')
    )
    return spec


def test_an_application_that_imports_scikit_learn_is_refused_with_its_chain(
    tmp_path: Path,
) -> None:
    spec = _importing(tmp_path, "from sklearn.ensemble import RandomForestClassifier")
    proc = run_bundle("build", str(spec), "--output-dir", str(tmp_path / "dist"))
    assert proc.returncode == 12, proc.stdout + proc.stderr
    message = " ".join(proc.stderr.split())
    assert (
        "the application imports sklearn, which this bundle does not ship (the build side: the "
        "bundle would be several times larger and slower to start): fieldreport.py -> "
        "app.report -> app.helpers -> sklearn.ensemble. Remove the import, or list 'sklearn' "
        "in [build] allow_imports" in message
    ), message
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "dist" / "fieldreport").exists()


# -- frozen ----------------------------------------------------------------------------
@pytest.fixture(scope="session")
def fieldreport(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The example application built (onedir and onefile), copied out of the build tree."""
    dist = tmp_path_factory.mktemp("fieldreport-dist")
    proc = run_bundle("build", str(SPEC), "--output-dir", str(dist))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    away = tmp_path_factory.mktemp("fieldreport-installed")
    shutil.copytree(dist / "fieldreport" / "onedir" / "fieldreport", away / "onedir")
    shutil.copy2(dist / "fieldreport" / "onefile" / "fieldreport", away / "fieldreport")
    shutil.copy2(DAY, away / "day.csv")
    return {
        "onedir": away / "onedir" / "fieldreport",
        "onefile": away / "fieldreport",
        "day": away / "day.csv",
        "dist": dist / "fieldreport",
    }


@pytest.mark.frozen
@pytest.mark.parametrize("mode", ["onedir", "onefile"])
def test_frozen_example_reports_what_scikit_learn_predicts(
    fieldreport: dict[str, Path], mode: str
) -> None:
    proc = run_frozen(fieldreport[mode], str(fieldreport["day"]), "--details")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Model RandomForestClassifier 1.0.0 (UNAPPROVED)" in proc.stdout
    assert "Uncertain (top probability under 0.6): " in proc.stdout
    assert_as_sklearn(proc.stdout)


@pytest.mark.frozen
def test_frozen_example_carries_no_build_side_and_self_tests(
    fieldreport: dict[str, Path],
) -> None:
    from bundler.freeze import bundled_names

    names = bundled_names(fieldreport["onefile"])
    assert not [n for n in names if n.split(".")[0] in ("sklearn", "scipy", "joblib", "numba")]
    assert any(n == "app.report" or n.endswith("app.report") for n in names)  # theirs, not ours
    proc = run_frozen(fieldreport["onedir"], env={"MLBUNDLE_SELFTEST": "1"})
    assert proc.returncode == 0 and proc.stdout.strip().endswith("selftest: PASSED"), proc.stdout


@pytest.mark.frozen
def test_frozen_example_fails_cleanly_on_a_bad_file(
    fieldreport: dict[str, Path], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    with open(fieldreport["day"], newline="") as f:
        rows = list(csv.reader(f))
    rows[2][2] = "long"
    with open(bad, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    proc = run_frozen(fieldreport["onefile"], str(bad))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


# -- the runtime API's contract, from source and frozen ----------------------------------
CONTRACT = ROOT / "tests" / "apps" / "contract" / "contract_app.py"


def _contract_spec(folder: Path) -> Path:
    """The example's model behind the contract script (onedir only, no installer)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = (
        SPEC.read_text()
        .replace('name = "fieldreport"', 'name = "contract"')
        .replace('entry = "../resources/fieldreport/fieldreport.py"', f'entry = "{CONTRACT}"')
        .replace('sources = ["../resources/fieldreport"]', "sources = []")
        .replace('modes = ["onedir", "onefile"]', 'modes = ["onedir"]')
        .replace('installers = ["tar.gz"]', "installers = []")
        .replace('"../', f'"{ROOT}/')
    )
    assert f'entry = "{CONTRACT}"' in text and "installers = []" in text
    spec = folder / "contract.toml"
    spec.write_text(text)
    return spec


def _contract_from_source(tmp_path: Path) -> dict[str, object]:
    import json
    import os

    spec = _contract_spec(tmp_path / "spec")
    proc = run_bundle("prepare", str(spec), "--out", str(tmp_path / "payload"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    env = dict(os.environ, MLBUNDLE_PAYLOAD=str(tmp_path / "payload"))
    run = subprocess.run(
        [sys.executable, str(CONTRACT)], capture_output=True, text=True, env=env, timeout=120
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_every_public_name_works_against_a_prepared_payload(tmp_path: Path) -> None:
    got = _contract_from_source(tmp_path)
    import mlbundle_runtime

    assert got["all"] == sorted(mlbundle_runtime.__all__)
    assert got["types"] == [True] * 6 and got["columns_agree"] is True
    assert got["predict"][0] == "Adelie" and got["selftest"][0] is True
    assert got["input_error"].startswith("record 1, field 'island': expected one of")
    assert got["bundle_error"] and got["predict_csv"][0] == 1


@pytest.mark.frozen
def test_every_public_name_works_the_same_frozen(contract_app: Path, tmp_path: Path) -> None:
    import json

    frozen = run_frozen(contract_app)
    assert frozen.returncode == 0, frozen.stdout + frozen.stderr
    assert json.loads(frozen.stdout) == _contract_from_source(tmp_path)


@pytest.fixture(scope="session")
def contract_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("contract")
    spec = _contract_spec(work / "spec")
    proc = run_bundle("build", str(spec), "--output-dir", str(work / "dist"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    away = tmp_path_factory.mktemp("contract-installed")
    shutil.copytree(work / "dist" / "contract" / "onedir" / "contract", away / "contract")
    return away / "contract" / "contract"
