"""One backend registry, and ``bundle score`` with cached aot kernels imports no numba."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import joblib

from bundler import spec as spec_module
from bundler.backends import (
    BACKEND_NAMES,
    PLAN_BACKEND_NAMES,
    Backend,
    FreezeFiles,
    compile_aot,
    get_backend,
)
from bundler.compiler import compile_estimators
from tests.conftest import RESOURCES, ROOT

#: Top-level packages a one-row ``bundle score`` with cached kernels must not import.
HEAVY = ("numba", "llvmlite", "setuptools", "sklearn", "scipy", "pandas", "joblib")

_WRAPPER = """
import json, runpy, sys
sys.argv = ["bundle", *sys.argv[1:]]
try:
    runpy.run_module("bundler", run_name="__main__")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
imported = {m.split(".")[0] for m in sys.modules} & set(json.loads(HEAVY))
print(json.dumps({"code": code, "imported": sorted(imported)}))
"""


def test_registry_is_the_one_list_of_backends() -> None:
    assert BACKEND_NAMES == ("aot", "jit", "passthrough")
    assert spec_module.BACKENDS == BACKEND_NAMES
    assert PLAN_BACKEND_NAMES == ("aot", "jit")
    for name in BACKEND_NAMES:
        backend = get_backend(name)
        assert isinstance(backend, Backend)
        assert backend.name == name and backend.runtime == name


def test_unknown_backend_names_the_valid_ones() -> None:
    try:
        get_backend("fast")
    except KeyError as exc:
        assert "aot, jit, passthrough" in str(exc)
    else:
        raise AssertionError("no error for an unknown backend")


def test_freeze_answers_are_data(tmp_path: Path) -> None:
    ext = tmp_path / "_mlbundle_kernels.cpython-311-x86_64-linux-gnu.so"
    ext.write_bytes(b"")
    aot = get_backend("aot").freeze_files(
        compiled=ext, app_root=ROOT / "app", model_imports=(), third_party=("pandas",)
    )
    assert isinstance(aot, FreezeFiles)
    assert aot.binaries == ((str(ext), "."),)
    assert {"numba", "llvmlite", "sklearn"} <= set(aot.forbidden)
    jit = get_backend("jit").freeze_files(
        compiled=None, app_root=ROOT / "app", model_imports=(), third_party=("pandas",)
    )
    assert "numba" in jit.hiddenimports and not jit.binaries
    assert any(dest == "mlbundle_runtime/kernels" for _, dest in jit.datas)
    passthrough = get_backend("passthrough").freeze_files(
        compiled=None,
        app_root=ROOT / "app",
        model_imports=("pandas.core",),
        third_party=("pandas",),
    )
    assert passthrough.collected == ("pandas.core",) and "pandas" not in passthrough.trims


def test_score_with_cached_kernels_imports_neither_numba_nor_setuptools(tmp_path: Path) -> None:
    compile_aot()  # cached now, as after any build
    art = RESOURCES / "artifacts"
    plan = compile_estimators(
        joblib.load(art / "model.joblib"), joblib.load(art / "extractor.joblib")
    )
    plan.write(tmp_path / "plan")
    names = [i["name"] for i in plan.header["inputs"]]
    with open(RESOURCES / "gate" / "e2e.csv", newline="") as f:
        row = next(csv.DictReader(f))
    one = tmp_path / "one.csv"
    with open(one, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=names)
        writer.writeheader()
        writer.writerow({n: row[n] for n in names})
    wrapper = _WRAPPER.replace("HEAVY", repr(json.dumps(HEAVY)))
    args = ["score", str(tmp_path / "plan"), "--input", str(one), "--output", str(tmp_path / "o")]
    proc = subprocess.run(
        [sys.executable, "-c", wrapper, *args], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result == {"code": 0, "imported": []}, proc.stdout
    with open(tmp_path / "o", newline="") as f:
        assert len(list(csv.DictReader(f))) == 1
