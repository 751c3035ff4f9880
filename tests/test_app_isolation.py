"""``app/`` (what gets frozen) must not depend on the build side or the training stack.

Two checks: a static one over every import statement in app/, and a run-time
one that scores the example in a fresh interpreter where importing any
forbidden module fails.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

FORBIDDEN = {"bundler", "sklearn", "scipy", "joblib", "pickle", "numba", "llvmlite", "pandas"}
# The jit backend imports numba lazily, only in bundles built for it; passthrough
# bundles (and only they) unpickle the model with joblib + scikit-learn (+ pandas).
ALLOWED = {("backend.py", "numba"), ("passthrough.py", "joblib"), ("passthrough.py", "pandas")}


def test_app_source_imports_nothing_forbidden() -> None:
    found = []
    for path in sorted((ROOT / "app").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in FORBIDDEN and (path.name, top) not in ALLOWED:
                    found.append(f"{path.name}:{node.lineno} imports {name}")
    assert found == []


SCRIPT = r"""
import sys
BLOCKED = {"bundler", "sklearn", "scipy", "joblib", "numba", "llvmlite", "pandas"}

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"blocked import of {name}")

sys.meta_path.insert(0, Block())
import importlib, pkgutil, mlbundle_runtime
for mod in [m for m in pkgutil.iter_modules(mlbundle_runtime.__path__) if m.name != "__main__"]:
    importlib.import_module(f"mlbundle_runtime.{mod.name}")
from mlbundle_runtime.backend import load_kernels
from mlbundle_runtime.plan import load_plan
from mlbundle_runtime.scorer import Scorer
scorer = Scorer(load_plan(sys.argv[1]), load_kernels("aot", sys.argv[2]))
scores = scorer.score_records([{"island": "Biscoe", "bill_length_mm": 50.0, "bill_depth_mm": 15.0,
    "flipper_length_mm": 220.0, "body_mass_g": 5000.0, "sex": "male"}])
print(scores.labels()[0])
print(sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED | {"pickle"}))
"""


def test_app_scores_with_build_stack_unimportable(tmp_path: Path) -> None:
    import joblib

    from bundler.backends import compile_aot
    from bundler.compiler import compile_estimators

    art = ROOT / "resources" / "artifacts"
    plan = compile_estimators(
        joblib.load(art / "model.joblib"), joblib.load(art / "extractor.joblib")
    )
    plan.write(tmp_path / "plan")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "plan"), str(compile_aot())],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    label, modules = proc.stdout.splitlines()
    assert label == "Gentoo"
    # numpy itself imports pickle; nothing of the build stack may be loaded
    assert modules in ("[]", "['pickle']")
