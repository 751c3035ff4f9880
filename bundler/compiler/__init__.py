"""Compile fitted scikit-learn estimators into a pickle-free scoring plan.

Three steps, as in the anchors: name the inputs from the first estimator,
convert step by step through the registry (``converters/``, one module per
family), then write the plan (``plan.json`` + ``arrays.npz``) that
``mlbundle_runtime.plan`` reads.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bundler.compiler import converters  # noqa: F401  (registers every converter)
from bundler.compiler._builder import Cols, MultiPrediction, PlanBuilder, Prediction
from bundler.compiler._registry import convert, require_checked_sklearn, supported
from bundler.compiler.converters.search import require_refit
from bundler.errors import UnsupportedEstimatorError
from mlbundle_runtime.plan import ARRAYS_FILE, PLAN_FILE, Plan, parse_plan

__all__ = ["CompiledPlan", "compile_estimators", "input_names", "supported"]


@dataclass(frozen=True)
class CompiledPlan:
    """The compiler's output: the plan's JSON header and its arrays, ready to write."""

    header: dict[str, Any]
    arrays: dict[str, np.ndarray]

    def load(self) -> Plan:
        """The plan as the runtime will read it (validated the same way)."""
        return parse_plan(self.header, self.arrays, where="compiled plan")

    def write(self, out_dir: Path) -> None:
        """Write ``plan.json`` + ``arrays.npz`` into ``out_dir`` atomically (temp + rename)."""
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
        try:
            write_plan_files(self, tmp)
            if out_dir.exists():
                shutil.rmtree(out_dir)
            os.replace(tmp, out_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def write_plan_files(plan: CompiledPlan, folder: Path) -> None:
    """Write the two plan files deterministically (sorted keys, fixed zip timestamps)."""
    (folder / PLAN_FILE).write_text(
        json.dumps(plan.header, indent=1, sort_keys=True, allow_nan=False) + "\n",
        encoding="utf-8",
    )
    buf = io.BytesIO()
    np.savez(buf, **{k: plan.arrays[k] for k in sorted(plan.arrays)})
    (folder / ARRAYS_FILE).write_bytes(buf.getvalue())


def input_names(est: object) -> list[str]:
    """The input names a plan exposes: ``feature_names_in_``, else ``x0 .. x{n-1}``."""
    require_refit(est)  # a search without best_estimator_ knows no inputs: say why
    if _reads_documents(est):  # a 1-d input of documents: one text input
        return [TEXT_INPUT]
    names = getattr(est, "feature_names_in_", None)
    if names is not None:
        return [str(n) for n in names]
    n = getattr(est, "n_features_in_", None)
    if n is None:
        raise UnsupportedEstimatorError(
            f"{type(est).__name__} does not say how many inputs it takes (no n_features_in_); "
            "is it fitted?"
        )
    return [f"x{i}" for i in range(int(n))]


#: The input name of a model that takes documents directly (a vectorizer first, no
#: ColumnTransformer): scikit-learn's 1-d input has no column name.
TEXT_INPUT = "text"


def _reads_documents(est: object) -> bool:
    """Whether ``est`` (or the first step of its pipelines) is a text vectorizer."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.pipeline import Pipeline

    while isinstance(est, Pipeline):
        steps = [s for _, s in est.steps if s is not None and not (isinstance(s, str))]
        if not steps:
            return False
        est = steps[0]
    return isinstance(est, CountVectorizer)


def compile_estimators(
    model: object,
    extractor: object | None = None,
    meta: dict[str, Any] | None = None,
    target_names: Sequence[str] | None = None,
) -> CompiledPlan:
    """Compile ``extractor`` (optional) followed by ``model`` into one plan.

    ``target_names``: a multi-output model's targets, one per column of ``y`` (they
    name its output columns); ``y0, y1, ...`` when None. Ignored for one target."""
    import sklearn

    require_checked_sklearn(sklearn.__version__)
    first = extractor if extractor is not None else model
    builder = PlanBuilder(input_names(first))
    cols: Cols | Prediction = builder.input_cols()
    if extractor is not None:
        builder.push("extractor")
        cols = convert(extractor, builder, cols)
        builder.pop()
        if not isinstance(cols, Cols):
            raise UnsupportedEstimatorError(
                f"the feature extractor {type(extractor).__name__} ends in a predictor; "
                "give it as the model instead"
            )
        expected = getattr(model, "n_features_in_", len(cols))
        if expected != len(cols):
            raise UnsupportedEstimatorError(
                f"the feature extractor produces {len(cols)} features but the model "
                f"{type(model).__name__} was fitted on {expected}; were they trained together?"
            )
    builder.push("model")
    builder.final = True
    result = convert(model, builder, cols)
    builder.final = False
    builder.pop()
    if not isinstance(result, Prediction | MultiPrediction):
        raise UnsupportedEstimatorError(
            f"{type(model).__name__} is a transformer; the model must end in a predictor"
        )
    builder.output = result
    builder.target_names = target_names
    header, arrays = builder.finish(meta or {})
    plan = CompiledPlan(header, arrays)
    plan.load()  # the runtime's own validation, before anything is written
    return plan
