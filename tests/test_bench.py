"""Smoke check of the scoring benchmark (``bench/scoring.py --smoke``).

The benchmark runs end to end with tiny counts and reports every model with every
engine, and our plan agrees with scikit-learn. Nothing here asserts anything about
time: figures from a shared CI machine mean nothing; the committed results do.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("rf", "hgb", "penguins_lr", "gbr", "mlp")
ENGINES = ("ours", "ours-1t", "sklearn", "ort-1t", "ort-all")


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
    assert res["mode"] == "smoke"
    machine = res["machine"]
    for key in ("cpu_model", "logical_cores", "python", "numpy_version", "onnxruntime_version"):
        assert machine.get(key), key
    assert tuple(res["models"]) == MODELS

    for key, model in res["models"].items():
        agreement = model["agreement"]
        assert agreement["ok"] and agreement["record_paths_ok"], (key, agreement)
        assert agreement["ours_labels_identical"], key
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
        assert all(t["met"] in (True, False) for t in model["targets"]), (key, model["targets"])
    assert len(res["models"]["rf"]["targets"]) == 5  # RF-100 also has absolute targets
