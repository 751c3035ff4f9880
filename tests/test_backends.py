"""The two scoring backends run the same kernel source and must agree to the bit."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pytest

from bundler.backends import compile_aot
from bundler.compiler import compile_estimators
from bundler.freeze import bundled_names, run_frozen
from mlbundle_runtime.backend import load_kernels
from mlbundle_runtime.scorer import Scorer
from tests.conftest import RESOURCES, Built

E2E = RESOURCES / "gate" / "e2e.csv"


def test_aot_and_jit_kernels_agree_in_process() -> None:
    art = RESOURCES / "artifacts"
    plan = compile_estimators(
        joblib.load(art / "model.joblib"), joblib.load(art / "extractor.joblib")
    ).load()
    results = []
    for kernels in (load_kernels("aot", compile_aot()), load_kernels("jit")):
        with open(E2E, newline="") as f:
            results.append(
                np.concatenate([s.proba for _, s in Scorer(plan, kernels).iter_csv(f, "e2e")])
            )
    assert results[0].shape == (56, 3)
    assert np.array_equal(results[0], results[1])


@pytest.mark.frozen
def test_jit_bundle_ships_numba_and_matches_aot(
    built: Built, built_jit: Path, tmp_path: Path
) -> None:
    names = bundled_names(built_jit)
    assert any(n.startswith("numba") for n in names)
    assert not any("_mlbundle_kernels" in n for n in names)
    proc = run_frozen(built_jit, "selftest")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    outs = []
    for exe in (built.onedir, built_jit):
        dst = tmp_path / f"{exe.parent.parent.name}.csv"
        proc = run_frozen(exe, "predict", "--input", str(E2E), "--output", str(dst))
        assert proc.returncode == 0, proc.stderr
        outs.append(dst.read_bytes())
    assert outs[0] == outs[1]
