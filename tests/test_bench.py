"""Smoke check of the scoring benchmark (``bench/scoring.py --smoke``).

The benchmark runs end to end with tiny counts and reports every model with every
engine, and our plan agrees with scikit-learn. Nothing here asserts anything about
time: figures from a shared CI machine mean nothing; the committed results do.
"""

from __future__ import annotations

import importlib.util
import json
import operator
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from bundler.parity import TOLERANCE

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("rf", "hgb", "penguins_lr", "gbr", "mlp")
ENGINES = ("ours", "ours-1t", "sklearn", "ort-1t", "ort-all")
COMPARISONS = {">=": operator.ge, "<=": operator.le}


def bench_module() -> ModuleType:
    """bench/scoring.py, imported for its targets (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("_bench_scoring", ROOT / "bench" / "scoring.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while defined
    spec.loader.exec_module(module)
    return module


def expected_targets(bench: ModuleType, key: str, model: dict) -> list[tuple[str, float, float]]:
    """(comparison, threshold, measured value) of every target the bench must report for
    ``key``, from its own constants and the figures it measured."""
    ours, ratios = model["engines"]["ours"], model["ratios"]
    out = [
        (">=", bench.ROW_SPEEDUP_VS_ORT, ratios["row_numpy_speedup_vs_ort"]),
        (">=", bench.ROW_SPEEDUP_VS_ORT, ratios["row_record_speedup_vs_ort"]),
        (">=", bench.BATCH_SPEEDUP_VS_BEST, ratios["batch_speedup_vs_best"]),
    ]
    if key == "rf":
        out += [
            ("<=", bench.RF_ROW_US, ours["row_us"]["numpy"]["median"]),
            ("<=", bench.RF_RECORD_US, ours["row_us"]["record"]["median"]),
        ]
    return out


def test_scoring_bench_smoke(tmp_path: Path) -> None:
    out = tmp_path / "scoring.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "scoring.py"), "--smoke", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "Scoring benchmark (smoke)" in proc.stdout  # the table is printed
    assert out.with_suffix(".md").read_text(encoding="utf-8").startswith("# Scoring benchmark")

    res = json.loads(out.read_text(encoding="utf-8"))
    bench = bench_module()
    missed: list[str] = []
    assert res["mode"] == "smoke"
    machine = res["machine"]
    for key in ("cpu_model", "logical_cores", "python", "numpy_version", "onnxruntime_version"):
        assert machine.get(key), key
    assert tuple(res["models"]) == MODELS

    for key, model in res["models"].items():
        agreement = model["agreement"]
        assert agreement["ok"] and agreement["record_paths_ok"], (key, agreement)
        assert agreement["ours_labels_identical"], key
        assert agreement["tolerance"] == TOLERANCE, agreement  # the build's own bar
        for diff in ("ours_vs_sklearn", "ours_records_vs_sklearn", "ours_batch_vs_sklearn"):
            assert agreement[f"{diff}_max_abs_diff"] <= 1e-9, (key, diff, agreement)
        for name in ENGINES:
            engine = model["engines"][name]
            assert engine["available"], (key, name, engine.get("error"))
            for path in ("numpy", "record"):
                row = engine["row_us"][path]
                assert row["median"] > 0 and row["calls"] > 0, (key, name, path, row)
            assert engine["batch"]["rows_per_s"] > 0, (key, name)
            memory = engine["memory"]
            assert memory["peak_mb"] > 0 and memory["after_load_mb"] > 0, (key, name, memory)
            assert memory["peak_mb"] >= memory["after_load_mb"] - 0.1, (key, name, memory)
            assert memory["increase_mb"] >= 0, (key, name, memory)
        assert model["ratios"]["batch_speedup_vs_best"] > 0, key
        # every target: its threshold (as the bench defines it), the figure it measured,
        # and a verdict that is that comparison
        expected = expected_targets(bench, key, model)
        assert len(model["targets"]) == len(expected), (key, model["targets"])
        for target, (op, threshold, measured) in zip(model["targets"], expected, strict=True):
            found = re.search(r"(>=|<=) ([0-9.]+)", target["target"])
            assert found, target
            assert found[1] == op and float(found[2]) == threshold, (key, target)
            assert isinstance(target["value"], float | int), (key, target)
            assert target["value"] == measured, (key, target, measured)
            assert target["met"] is COMPARISONS[op](measured, threshold), (key, target)
            if not target["met"]:
                missed.append(f"{key}: {target['target']}")
    assert len(res["models"]["rf"]["targets"]) == 5  # RF-100 also has absolute targets
    # the markdown report lists exactly the targets that were not met
    markdown = out.with_suffix(".md").read_text(encoding="utf-8")
    assert f"Targets not met: {len(missed)}" in markdown
    for line in missed:
        assert f"- {line} (measured" in markdown, line


# -- bench/startup.py's window figures: the parts that need no build and no display ----------


def startup_module() -> ModuleType:
    """bench/startup.py, imported for its helpers."""
    spec = importlib.util.spec_from_file_location("_bench_startup", ROOT / "bench" / "startup.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_startup_bench_counts_tk_files() -> None:
    bench = startup_module()
    for name in (
        "_tcl_data/init.tcl",
        "_tk_data/ttk/ttk.tcl",
        "python3.11/lib-dynload/_tkinter.cpython-311-x86_64-linux-gnu.so",
        "libtk8.6.so",
        "libtcl8.6.so",
    ):
        assert bench.is_tk_file(name), name
    for name in ("libpython3.11.so.1.0", "numpy/core/_multiarray_umath.so", "base_library.zip"):
        assert not bench.is_tk_file(name), name


def test_startup_bench_finds_the_libraries_only_tk_needs() -> None:
    bench = startup_module()
    libraries = {
        "_tkinter.cpython-311-x86_64-linux-gnu.so": ["libtk8.6.so", "libtcl8.6.so", "libc.so.6"],
        "libtk8.6.so": ["libX11.so.6", "libz.so.1", "libtcl8.6.so"],
        "libtcl8.6.so": ["libz.so.1"],
        "libX11.so.6": ["libxcb.so.1"],
        "libxcb.so.1": ["libXau.so.6"],  # the system's, not shipped: followed all the same
        "libXau.so.6": [],
        "libz.so.1": [],
        "zlib.cpython-311-x86_64-linux-gnu.so": ["libz.so.1"],
        "libpython3.11.so.1.0": ["libz.so.1"],
    }
    assert bench.tk_only_libraries(libraries) == {
        "libtk8.6.so",
        "libtcl8.6.so",
        "libX11.so.6",
        "libxcb.so.1",
        "libXau.so.6",
    }


def test_startup_bench_tells_a_drawn_window_from_a_blank_one() -> None:
    bench = startup_module()
    grey = bytes([0xD5, 0xDA, 0xDC, 0x00])
    assert bench.uniform(grey * 1000, 4)
    assert not bench.uniform(grey * 999 + bytes([0, 0, 0, 0]), 4)
