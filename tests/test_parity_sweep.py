"""The parity sweep (bench/parity_sweep.py): its report's shape, the bar, and coverage.

A few classes are swept (one refused configuration among them); every configuration
is within the build's bar or refused by the compiler, and the "not covered" list is
the registry minus the classes the sweep has cases for.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from bundler.compiler import _registry, supported

ROOT = Path(__file__).resolve().parents[1]


def _load() -> ModuleType:
    """bench/parity_sweep.py, imported (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location(
        "_bench_parity_sweep", ROOT / "bench" / "parity_sweep.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


parity_sweep = _load()

CLASSES = {"RandomForestRegressor", "LogisticRegression", "OneHotEncoder", "SplineTransformer"}

pytestmark = pytest.mark.usefixtures("quiet_sklearn")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("sweep") / "sweep.json"
    code = parity_sweep.main(["--classes", ",".join(sorted(CLASSES)), "--out", str(out)])
    data = json.loads(out.read_text(encoding="utf-8"))
    data["exit_code"] = code
    data["markdown"] = out.with_suffix(".md").read_text(encoding="utf-8")
    return data


def test_every_configuration_is_within_the_bar_or_refused(report: dict[str, Any]) -> None:
    assert report["exit_code"] == 0, report["failures"]
    assert report["failures"] == []
    assert {r["class"] for r in report["rows"]} == CLASSES
    for row in report["rows"]:
        if row["expected_refusal"]:
            assert row["status"] == "refused", row
            assert "not supported" in row["message"], row
            continue
        assert row["status"] == "ok", row
        assert row["rows"] > 0 and row["problems"] == []
        assert row["max_abs_diff"] <= report["tolerance"] or row["max_rel_diff"] <= 1e-12, row
        assert row["probes"]["train"]["rows"] > 0
        assert row["max_abs_diff_without_extremes"] <= row["max_abs_diff"]


def test_report_shape(report: dict[str, Any]) -> None:
    rows = report["rows"]
    assert any(r["status"] == "refused" for r in rows)  # SplineTransformer periodic
    scored = [r for r in rows if r["status"] == "ok"]
    for row in scored:
        keys = {"class", "family", "config", "rows", "outputs", "max_abs_diff", "max_rel_diff"}
        assert keys <= set(row)
        assert row["outputs"] and set(row["outputs"]) <= set(parity_sweep.OUTPUT_ORDER)
        assert isinstance(row["bit_identical"], bool)
    forest = [r for r in scored if r["class"] == "RandomForestRegressor"]
    assert any("thresholds" in r["probes"] for r in forest)
    encoders = [r for r in scored if r["class"] == "OneHotEncoder"]
    assert all("unseen" in r["probes"] for r in encoders)
    assert any("transform" in r["outputs"] for r in scored)
    for row in rows:  # every row in the markdown table, refusals with their message
        assert f"| `{row['class']}` |" in report["markdown"]
        if row["status"] == "refused":
            assert row["message"] in report["markdown"].split("## Refused")[1]


def test_not_covered_is_the_registry_minus_the_cases(report: dict[str, Any]) -> None:
    names = {r.cls.__name__ for r in supported()}
    with_case = {c.cls for c in parity_sweep.cases()}
    assert report["registered"] == len(names)
    assert set(report["not_covered"]) == names - with_case
    assert set(report["covered"]) | set(report["not_covered"]) == names
    assert set(report["not_run"]) == with_case - CLASSES
    assert f"{len(report['covered'])} covered" in report["markdown"]


def test_a_registered_class_without_a_case_is_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    class Uncovered:
        pass

    reg = _registry.Registration(Uncovered, lambda est, builder, cols: None, "")
    monkeypatch.setitem(_registry._REGISTRY, Uncovered, reg)
    report = parity_sweep.sweep({"GaussianNB"})
    assert "Uncovered" in report["not_covered"]
    assert "Uncovered" in parity_sweep.markdown(report).split("## Not covered")[1]
    assert report["rows"] and all(r["class"] == "GaussianNB" for r in report["rows"])
