"""Stage 5: the model record, the bundle's answer to "which model is inside?".

It is written as JSON into the bundle (``record.json``) and follows the
versioned schema in ``docs/model-record.md``. Everything the build can know
is filled in automatically; what only people know (data versions, approval,
review) comes from the spec.
"""

from __future__ import annotations

import datetime as dt
import getpass
import math
import os
import platform
import sys
from dataclasses import replace
from importlib import metadata
from typing import Any

import numpy as np

from bundler.artifacts import Artifacts, LoadedArtifact
from bundler.data import DataCheck
from mlbundle_runtime import __version__
from mlbundle_runtime.backend import kernel_source_hash
from mlbundle_runtime.plan import Output, target_columns

SCHEMA = "mlbundle.record"
#: 1.2 adds app.maintainer, app.homepage and app.license; 1.0 and 1.1 records stay valid.
#: 1.3 adds outputs.uncertain_below; 1.4 adds model.search / extractor.search (optional:
#: present when the artifact is, or ends in, a hyperparameter search); 1.5 adds
#: outputs.targets (optional: present for a multi-output model).
SCHEMA_VERSION = "1.5"
APPROVED = "APPROVED"
UNAPPROVED = "UNAPPROVED"
#: The build environment's distributions, pinned, as a file inside the bundle.
REQUIREMENTS_FILE = "requirements.txt"

#: Build-environment distributions worth recording (when installed).
_BUILD_LIBRARIES = ("scikit-learn", "numpy", "joblib", "numba", "llvmlite", "pyinstaller", "scipy")


def json_safe(value: Any, depth: int = 0) -> Any:
    """Hyperparameters as JSON: nested estimators by class and params, the rest by value."""
    if depth > 8:
        return repr(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, np.generic):
        return json_safe(value.item(), depth + 1)
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist(), depth + 1)
    if isinstance(value, (list, tuple)):
        return [json_safe(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k): json_safe(v, depth + 1) for k, v in value.items()}
    if hasattr(value, "get_params"):
        return {
            "class": f"{type(value).__module__}.{type(value).__qualname__}",
            "params": json_safe(value.get_params(deep=False), depth + 1),
        }
    if callable(value):
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', repr(value))}"
    return repr(value)


def describe_parameters(value: Any, depth: int = 0) -> Any:
    """A search's grid or distributions as JSON; a distribution (anything with ``rvs``) as
    text naming it and its arguments, since it has no JSON form of its own."""
    if depth > 8:
        return repr(value)
    if isinstance(value, dict):
        return {str(k): describe_parameters(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [describe_parameters(v, depth + 1) for v in value]
    if hasattr(value, "rvs") and not hasattr(value, "get_params"):
        dist = getattr(value, "dist", None)  # a frozen scipy.stats distribution
        if dist is not None and hasattr(dist, "name"):
            args = [repr(json_safe(a)) for a in getattr(value, "args", ())]
            kwds = getattr(value, "kwds", {}) or {}
            args += [f"{k}={json_safe(v)!r}" for k, v in sorted(kwds.items())]
            return f"scipy.stats.{dist.name}({', '.join(args)})"
        return f"distribution {type(value).__module__}.{type(value).__qualname__}"
    return json_safe(value, depth + 1)


def _final_search(est: Any) -> Any | None:
    """The hyperparameter search ``est`` is, or ends in (a Pipeline's last step), if any."""
    from bundler.compiler.converters.search import is_search

    while not is_search(est):
        steps = getattr(est, "steps", None)
        if not steps:
            return None
        est = steps[-1][1]
    return est


def search_record(est: Any) -> dict[str, Any] | None:
    """What the search tried and what it chose: grid or distributions, best parameters and
    score (the plan compiles ``best_estimator_``; this says where it came from)."""
    search = _final_search(est)
    if search is None:
        return None
    grid = getattr(search, "param_grid", None)
    kind = "param_grid" if grid is not None else "param_distributions"
    space = grid if grid is not None else getattr(search, "param_distributions", None)
    score = getattr(search, "best_score_", None)  # absent when refit is a callable
    score = float(score) if score is not None else None
    results = getattr(search, "cv_results_", {}) or {}
    return {
        "class": f"{type(search).__module__}.{type(search).__qualname__}",
        "space_kind": kind,
        "space": describe_parameters(space),
        "best_params": describe_parameters(getattr(search, "best_params_", {})),
        "best_score": score if score is None or math.isfinite(score) else repr(score),
        "best_index": int(search.best_index_) if hasattr(search, "best_index_") else None,
        "candidates": len(results.get("params", [])),
        "scoring": json_safe(search.scoring),
        "refit": json_safe(search.refit),
    }


def _artifact(art: LoadedArtifact) -> dict[str, Any]:
    est = art.estimator
    search = search_record(est)
    extra = {"search": search} if search is not None else {}
    return {
        "algorithm": art.algorithm,
        "class": f"{type(est).__module__}.{type(est).__qualname__}",
        "version": art.version,
        "file": art.path.name,
        "sha256": art.sha256,
        "size": art.size,
        "pickled_by": {"scikit-learn": art.sklearn_version},
        "hyperparameters": json_safe(est.get_params(deep=False)),
        **extra,
    }


def build_time() -> str:
    """UTC build time; SOURCE_DATE_EPOCH wins so that rebuilds are reproducible."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = (
        dt.datetime.fromtimestamp(int(epoch), dt.UTC)
        if epoch
        else dt.datetime.now(dt.UTC).replace(microsecond=0)
    )
    return when.isoformat().replace("+00:00", "Z")


def requirements_text() -> str:
    """The build environment as ``name==version`` lines, sorted: what scored at build time."""
    lines = set()
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            lines.add(f"{name}=={dist.version}")
    return "".join(f"{line}\n" for line in sorted(lines, key=str.lower))


def _versions(names: tuple[str, ...]) -> dict[str, str]:
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _outputs(plan_header: dict[str, Any], columns: list[str]) -> dict[str, Any]:
    """The record's ``outputs``: task, classes and CSV columns; for a multi-output plan the
    targets' common task, no classes of its own, and ``targets``: each one's name, task,
    classes and the columns it is written as (the plan's ``outputs`` order)."""
    if "outputs" not in plan_header:
        out = plan_header["output"]
        return {"task": out["task"], "classes": out["classes"], "columns": columns}
    targets = []
    for out in plan_header["outputs"]:
        target = Output(out["task"], tuple(out["classes"]), tuple(out["proba"]), (), "")
        mine = target_columns(replace(target, name=out["name"]))
        targets.append(
            {"name": out["name"], "task": out["task"], "classes": out["classes"], "columns": mine}
        )
    return {
        "task": targets[0]["task"],
        "classes": [],
        "columns": columns,
        "targets": targets,
    }


def build_record(
    spec: Any,
    artifacts: Artifacts,
    plan_header: dict[str, Any],
    gate: dict[str, Any],
    parity: dict[str, Any],
    plan_sha256: str,
    data: DataCheck,
    release: bool,
    output_columns: list[str],
) -> dict[str, Any]:
    """Assemble the record from the spec and every earlier stage's output.

    Only a release build (every audit field present, checked before the build
    started) is APPROVED; any other build says UNAPPROVED, in the record and in
    the app, so a development bundle cannot pass for a release.
    """
    inputs = []
    for item in plan_header["inputs"]:
        doc = spec.inputs.get(item["name"])
        entry = dict(item)
        entry["description"] = doc.description if doc else ""
        entry["unit"] = doc.unit if doc else ""
        entry["training_range"] = data.ranges.get(item["name"])
        inputs.append(entry)
    out = _outputs(plan_header, output_columns)
    trained_with = {
        "scikit-learn": artifacts.model.sklearn_version
        or (artifacts.extractor.sklearn_version if artifacts.extractor else None)
    }
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "app": {
            "name": spec.app.name,
            "version": spec.app.version,
            "title": spec.app.title,
            "description": spec.app.description,
            "maintainer": spec.app.maintainer,
            "homepage": spec.app.homepage,
            "license": spec.app.license,
        },
        "model": _artifact(artifacts.model),
        "extractor": _artifact(artifacts.extractor) if artifacts.extractor else None,
        "training": {"libraries": {k: v for k, v in trained_with.items() if v}},
        "inputs": inputs,
        "features": list(plan_header["columns"][: len(inputs)]),
        "outputs": {
            **out,
            "description": spec.outputs.description,
            "consume": spec.outputs.consume,
            "uncertain_below": spec.outputs.uncertain_below,
        },
        "data": {"training": data.training, "validation": data.validation},
        "audit": {
            "status": APPROVED if release else UNAPPROVED,
            "release_build": release,
            "model_extractor_version": spec.model.extractor_version,
            **spec.audit.as_text(),
        },
        "requirements": {"file": REQUIREMENTS_FILE, "python": sys.version.split()[0]},
        "gate": gate,
        "parity": parity,
        "scoring_code": {
            "plan_format": plan_header["format_version"],
            "plan_sha256": plan_sha256,
            "kernels_sha256": kernel_source_hash(),
            "backend": spec.build.backend,
        },
        "build": {
            "time": build_time(),
            "tool": "mlbundle",
            "tool_version": __version__,
            "backend": spec.build.backend,
            "built_by": getpass.getuser(),
            "python": sys.version.split()[0],
            "platform": f"{platform.system()}-{platform.machine()}",
            "libraries": _versions(_BUILD_LIBRARIES),
        },
    }
