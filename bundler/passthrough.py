"""Stage 3 for ``backend = "passthrough"``: ship the model itself instead of a compiled plan.

A model the compiler cannot translate (``bundle compile`` names the estimator
that blocked it) can still be shipped: the bundle then carries the joblib
file(s) and scikit-learn, and ``mlbundle_runtime.passthrough`` scores with them. This stage
replaces compilation with a description of the model, written into the payload
as ``schema.json`` (see docs/passthrough.md):

- the inputs: names from the first estimator's ``feature_names_in_`` (else
  ``x0..``), each categorical when the gate CSVs hold non-numeric text in that
  column, else numeric;
- the output: classification with ``classes_`` (and probabilities when the
  model has ``predict_proba``), or regression;
- the payload files holding the model and the extractor, and whether the
  model was fitted on a pandas DataFrame (pandas is then frozen too);
- what unpickling needs: the modules the pickles reference, read from their
  opcodes (``bundler.pickle_globals``), as PyInstaller hidden imports, and the
  distributions that provide them.

Gate, parity, record and freezing then run as for compiled plans.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bundler.artifacts import Artifacts
from bundler.compiler import input_names
from bundler.errors import UnsupportedEstimatorError
from bundler.pickle_globals import check_importable, distributions, hidden_imports, pickle_globals
from mlbundle_runtime.inputs import MISSING_TEXT
from mlbundle_runtime.passthrough import (
    FORMAT,
    FORMAT_VERSION,
    SCHEMA_FILE,
    PassthroughScorer,
    plan_from_schema,
)
from mlbundle_runtime.plan import Plan

#: Payload names of the shipped joblib files.
MODEL_FILE = "model.joblib"
EXTRACTOR_FILE = "extractor.joblib"
#: Imported by ``mlbundle_runtime.passthrough`` itself (not named by the pickles).
RUNTIME_MODULES = ("joblib",)


@dataclass(frozen=True)
class PassthroughModel:
    """The stage's output: the schema (``header``), the files to ship and what to freeze."""

    header: dict[str, Any]
    files: dict[str, Path]  # payload name -> verified artifact
    hiddenimports: tuple[str, ...]
    distributions: dict[str, str] = field(default_factory=dict)

    def load(self) -> Plan:
        """The plan-like view the runtime reads from ``schema.json`` (inputs and output)."""
        return plan_from_schema(self._schema_bytes(), "passthrough schema")[0]

    def scorer(self) -> PassthroughScorer:
        """The runtime's scorer over the very bytes that will ship (unpickled again)."""
        plan, schema = plan_from_schema(self._schema_bytes(), "passthrough schema")
        extractor = self.files.get(EXTRACTOR_FILE)
        return PassthroughScorer.from_bytes(
            plan,
            schema,
            self.files[MODEL_FILE].read_bytes(),
            extractor.read_bytes() if extractor is not None else None,
        )

    def write_files(self, folder: Path) -> None:
        """``schema.json`` and the joblib files, as the payload carries them."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / SCHEMA_FILE).write_bytes(self._schema_bytes())
        for name, src in sorted(self.files.items()):
            shutil.copyfile(src, folder / name)

    def _schema_bytes(self) -> bytes:
        text = json.dumps(self.header, indent=1, sort_keys=True, allow_nan=False) + "\n"
        return text.encode("utf-8")


def describe_passthrough(spec: Any, artifacts: Artifacts) -> PassthroughModel:
    """Stage entry: describe the verified model for a passthrough bundle."""
    model = artifacts.model.estimator
    extractor = artifacts.extractor.estimator if artifacts.extractor else None
    if not hasattr(model, "predict"):
        raise UnsupportedEstimatorError(
            f"the model {type(model).__name__} has no predict(); a passthrough bundle needs "
            "a predictor"
        )
    if extractor is not None and not hasattr(extractor, "transform"):
        raise UnsupportedEstimatorError(
            f"the feature extractor {type(extractor).__name__} has no transform(), which a "
            "passthrough bundle calls before the model"
        )
    first = extractor if extractor is not None else model
    names = input_names(first)
    frame = getattr(first, "feature_names_in_", None) is not None
    kinds = input_kinds(names, [spec.gate.e2e.path, spec.gate.confidence.path])

    files = {MODEL_FILE: artifacts.model.path}
    if artifacts.extractor is not None:
        files[EXTRACTOR_FILE] = artifacts.extractor.path
    found: set[tuple[str, str]] = set()
    for path in files.values():
        found |= pickle_globals(path)
    modules = hidden_imports(found)
    runtime = [*RUNTIME_MODULES, *(["pandas"] if frame else [])]
    hidden = tuple(sorted(set(modules) | set(runtime)))
    check_importable(hidden)
    dists = distributions(hidden)

    header = {
        "format": FORMAT,
        "format_version": f"{FORMAT_VERSION[0]}.{FORMAT_VERSION[1]}",
        "inputs": [{"name": n, "kind": k} for n, k in zip(names, kinds, strict=True)],
        "columns": names,
        "output": output_description(model),
        "model": _file_entry(MODEL_FILE, model, artifacts.model.sha256),
        "extractor": (
            _file_entry(EXTRACTOR_FILE, extractor, artifacts.extractor.sha256)
            if artifacts.extractor is not None
            else None
        ),
        "frame": frame,
        "requires": {
            "pickle_globals": sorted(f"{m}.{n}" for m, n in found),
            "modules": list(hidden),
            "distributions": dists,
        },
    }
    return PassthroughModel(header=header, files=files, hiddenimports=hidden, distributions=dists)


def output_description(model: Any) -> dict[str, Any]:
    """Classification (``classes_``, probabilities if ``predict_proba``) or regression."""
    classes = getattr(model, "classes_", None)
    if classes is None:
        if int(getattr(model, "n_outputs_", 1) or 1) > 1:
            raise UnsupportedEstimatorError(
                f"{type(model).__name__} predicts several outputs per row; a passthrough "
                "app answers one"
            )
        return {"task": "regression", "classes": [], "proba": []}
    if isinstance(classes, list) or np.asarray(classes).ndim != 1:
        raise UnsupportedEstimatorError(
            f"{type(model).__name__} is a multi-output classifier; a passthrough app "
            "answers one output"
        )
    values = [_json_scalar(c) for c in np.asarray(classes).tolist()]
    proba = list(range(len(values))) if hasattr(model, "predict_proba") else []
    return {"task": "classification", "classes": values, "proba": proba}


def input_kinds(names: Sequence[str], csv_paths: Sequence[Path]) -> list[str]:
    """Per input: ``categorical`` when any CSV holds non-numeric text in its column."""
    text: set[str] = set()
    for path in csv_paths:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = [h.strip() for h in next(reader, [])]
            cols = {n: header.index(n) for n in names if n in header}
            for row in reader:
                for n, j in cols.items():
                    if n in text or j >= len(row):
                        continue
                    cell = row[j].strip()
                    if cell in MISSING_TEXT:
                        continue
                    try:
                        float(cell)
                    except ValueError:
                        text.add(n)
    return ["categorical" if n in text else "numeric" for n in names]


def _file_entry(name: str, est: Any, sha256: str) -> dict[str, Any]:
    cls = type(est)
    return {"file": name, "class": f"{cls.__module__}.{cls.__qualname__}", "sha256": sha256}


def _json_scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
