"""Scoring benchmark: our compiled plan vs scikit-learn vs ONNX Runtime, side by side.

One process, one machine, the same data for every engine (issue #4):

- ``ours``: the plan compiled by ``bundler.compiler`` and run by ``mlbundle_runtime.scorer.Scorer``
  with the ahead-of-time kernels the frozen app ships (``aot`` backend), on every
  core (``ours``) and on one (``ours-1t``);
- ``sklearn``: ``predict_proba`` (classifiers) or ``predict`` (regressors) of the
  fitted estimator, with scikit-learn's defaults; for batches also ``sklearn-1t``, the
  same call held to one thread (``threadpoolctl``: OpenMP and BLAS);
- ``ort-1t`` / ``ort-all``: ONNX Runtime on skl2onnx's conversion of the same
  estimator (``zipmap=False``, float32 inputs), with one intra-op thread and with
  ONNX Runtime's default (every physical core).

Models, trained here with fixed seeds: RandomForestClassifier(100) on breast_cancer,
HistGradientBoostingClassifier on breast_cancer with 10 % of its values set to NaN,
Pipeline(ColumnTransformer(imputer + one-hot + scaler), LogisticRegression) on the
penguins example (``resources/``), GradientBoostingRegressor on diabetes and
MLPClassifier on digits.

Figures per model and engine:

- single-row latency, median over ``--calls`` calls cycling over every row of the
  data, from a numpy row (each engine's native 1-row input, built beforehand) and
  from a dict record (the conversion from the dict is timed too); the engines take
  turns in rounds so that a noisy machine slows them alike;
- batch throughput, rows/s on ``--batch-rows`` rows (the data tiled), median of
  ``--repeats`` runs taken in turns; and per core: ``ours-1t`` against ``sklearn-1t``
  and ``ort-1t``, which a machine with few cores cannot flatter or hide;
- peak memory of one batch in a fresh subprocess per engine: peak RSS
  (``VmHWM``) and its increase over the RSS once model and inputs are loaded.

It also checks, and fails (exit 1) otherwise, that our plan agrees with
scikit-learn within 1e-9 on the bench data (rows, records and the batch). Results
go to ``--out`` (JSON, default ``bench/results/scoring.json``) and a markdown table
beside it, with a description of the machine.

Usage::

    .venv/bin/python bench/scoring.py           # the full run (about 15 minutes on 2 cores)
    .venv/bin/python bench/scoring.py --smoke   # tiny counts, for CI
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as dt
import gc
import importlib.util
import json
import math
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "results" / "scoring.json"
SEED = 0
TOL = 1e-9  # the parity bar of the compiler (bundler.parity)
ENGINES = ("ours", "ours-1t", "sklearn", "ort-1t", "ort-all")
MODELS = ("rf", "hgb", "penguins_lr", "gbr", "mlp")

#: Issue #4's targets.
ROW_SPEEDUP_VS_ORT = 2.0
BATCH_SPEEDUP_VS_BEST = 1.5
RF_ROW_US = 5.0
RF_RECORD_US = 15.0


@dataclass(frozen=True)
class Settings:
    calls: int  # single-row calls per engine and path
    rounds: int  # the calls are taken in this many turns per engine
    batch_rows: int
    repeats: int  # timed batch runs per engine
    memory_rows: int
    memory_parallel: bool = False  # memory workers at once (smoke: only speed matters)


FULL = Settings(calls=10_000, rounds=50, batch_rows=100_000, repeats=9, memory_rows=100_000)
SMOKE = Settings(
    calls=50, rounds=1, batch_rows=1_000, repeats=1, memory_rows=1_000, memory_parallel=True
)


# -- models ------------------------------------------------------------------
@dataclass
class Case:
    """One model with its bench data in every engine's native form."""

    key: str
    title: str
    data: str
    model: Any  # the fitted scikit-learn estimator (a Pipeline for the penguins)
    task: str  # classification | regression
    X: np.ndarray  # rows in plan input order: float64, or object (strings, floats, None)
    names: tuple[str, ...]  # input names, in plan order
    categorical: frozenset[str] = frozenset()
    frame: Any = None  # a DataFrame for models fitted on one (the penguins pipeline)
    notes: list[str] = field(default_factory=list)
    onnx: bytes | None = None
    onnx_error: str | None = None
    ort_names: tuple[str, ...] = ()  # ONNX input names

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    def records(self) -> list[dict[str, Any]]:
        """The rows as JSON-like records: None for missing, str / float otherwise."""
        out = []
        for row in self.X.tolist():
            rec = {}
            for name, v in zip(self.names, row, strict=True):
                missing = v is None or (isinstance(v, float) and v != v)
                rec[name] = None if missing else (str(v) if name in self.categorical else v)
            out.append(rec)
        return out

    # native inputs of each engine, for the rows ``idx`` ---------------------
    def sklearn_input(self, idx: np.ndarray) -> Any:
        if self.frame is not None:
            return self.frame.iloc[idx].reset_index(drop=True)
        return self.X[idx]

    def ours_input(self, idx: np.ndarray) -> Any:
        """Rows as one float64 array; mixed-type inputs as columns (``score_columns``):
        float64 numbers (NaN for missing) and object arrays of category strings."""
        if not self.categorical:
            return self.X[idx]
        columns = {}
        for j, name in enumerate(self.names):
            col = self.X[idx, j]
            if name in self.categorical:
                columns[name] = col.astype(object)
            else:
                columns[name] = np.array([np.nan if v is None else v for v in col.tolist()])
        return columns

    def ort_input(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        if not self.categorical:
            return {self.ort_names[0]: self.X[idx].astype(np.float32)}
        feeds = {}
        for j, name in enumerate(self.names):
            col = self.X[idx, j]
            if name in self.categorical:
                cells = ["" if v is None or v != v else str(v) for v in col.tolist()]
                feeds[name] = np.array(cells, dtype=object).reshape(-1, 1)
            else:
                vals = [np.nan if v is None else v for v in col.tolist()]
                feeds[name] = np.array(vals, dtype=np.float32).reshape(-1, 1)
        return feeds


def _load_script(name: str, path: Path) -> ModuleType:
    """Import a script that is not in a package (``resources/train.py``, ``bench/startup.py``)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _load_penguins_trainer() -> ModuleType:
    """``resources/train.py``, the example's own training code (data loading, extractor)."""
    return _load_script("_penguins_train", ROOT / "resources" / "train.py")


def build_case(key: str) -> Case:
    """Train ``key``'s model deterministically and return it with its bench data."""
    from sklearn import datasets
    from sklearn.ensemble import (
        GradientBoostingRegressor,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline

    def names(d: int) -> tuple[str, ...]:  # the compiler's names for array columns
        return tuple(f"x{i}" for i in range(d))

    if key == "rf":
        X, y = datasets.load_breast_cancer(return_X_y=True)
        model = RandomForestClassifier(n_estimators=100, random_state=SEED).fit(X, y)
        return Case(
            key,
            "RandomForestClassifier(100)",
            "breast_cancer 569x30",
            model,
            "classification",
            X,
            names(X.shape[1]),
        )
    if key == "hgb":
        X, y = datasets.load_breast_cancer(return_X_y=True)
        rng = np.random.default_rng(SEED)
        X = X.copy()
        X[rng.random(X.shape) < 0.10] = np.nan
        model = HistGradientBoostingClassifier(random_state=SEED).fit(X, y)
        share = float(np.isnan(X).mean())
        return Case(
            key,
            "HistGradientBoostingClassifier",
            f"breast_cancer 569x30, {share:.1%} NaN",
            model,
            "classification",
            X,
            names(X.shape[1]),
        )
    if key == "gbr":
        X, y = datasets.load_diabetes(return_X_y=True)
        model = GradientBoostingRegressor(random_state=SEED).fit(X, y)
        return Case(
            key,
            "GradientBoostingRegressor",
            "diabetes 442x10",
            model,
            "regression",
            X,
            names(X.shape[1]),
        )
    if key == "mlp":
        X, y = datasets.load_digits(return_X_y=True)
        X = X.astype(np.float64)
        model = MLPClassifier(hidden_layer_sizes=(100,), max_iter=300, random_state=SEED)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning: irrelevant to speed
            model.fit(X, y)
        return Case(
            key,
            "MLPClassifier(100, relu)",
            "digits 1797x64, 10 classes",
            model,
            "classification",
            X,
            names(X.shape[1]),
        )
    if key == "penguins_lr":
        pt = _load_penguins_trainer()
        raw = pt.load_raw(pt.DATA_CSV)
        raw = raw[raw[pt.TARGET].notna()].reset_index(drop=True)
        train, _, _ = pt.split(raw)
        model = Pipeline(
            [("prep", pt.build_extractor()), ("clf", LogisticRegression(max_iter=1000))]
        ).fit(pt.to_features(train), train[pt.TARGET].to_numpy(dtype=object))
        frame = pt.to_features(raw)  # every row (with its missing values) is bench data
        cols = tuple(pt.INPUT_COLUMNS)
        X = frame[list(cols)].to_numpy(dtype=object)
        cat = frozenset(pt.CATEGORICAL_COLUMNS)
        for j, name in enumerate(cols):  # None for a missing category, as JSON gives it
            if name in cat:
                X[:, j] = [v if isinstance(v, str) else None for v in X[:, j]]
            else:
                X[:, j] = [float(v) for v in X[:, j]]
        return Case(
            key,
            "Pipeline(ColumnTransformer, LogisticRegression)",
            f"penguins {len(raw)}x6 (2 categorical, with missing values)",
            model,
            "classification",
            X,
            cols,
            cat,
            frame,
        )
    raise ValueError(key)


@contextlib.contextmanager
def _skl2onnx_bool_shim() -> Iterator[None]:
    """skl2onnx 1.20 gives leaf nodes of HistGradientBoosting trees a Python ``False`` for
    ``nodes_missing_value_tracks_true``, which onnx 1.23 (protobuf 7) refuses in an
    integer list; pass it as 0 / 1 instead, as skl2onnx does for every other tree."""
    import skl2onnx.common.tree_ensemble as tree_ensemble

    original = tree_ensemble.add_node

    def add_node(*args: Any, nodes_missing_value_tracks_true: Any = 0, **kwargs: Any) -> Any:
        return original(
            *args, nodes_missing_value_tracks_true=int(nodes_missing_value_tracks_true), **kwargs
        )

    tree_ensemble.add_node = add_node
    try:
        yield
    finally:
        tree_ensemble.add_node = original


def convert_onnx(case: Case) -> None:
    """skl2onnx's conversion of ``case.model`` (float32 inputs, zipmap off); on failure the
    error is kept and shown in the table."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    model = case.model
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    options = {id(final): {"zipmap": False}} if case.task == "classification" else None
    try:
        if case.categorical:
            # skl2onnx converts SimpleImputer on strings only with a string marker for
            # "missing": convert a copy whose categorical imputers read "" (same fitted
            # statistics); the ONNX inputs then give "" for a missing category.
            model = copy.deepcopy(model)
            final = model.steps[-1][1]
            options = {id(final): {"zipmap": False}}
            prep = model.steps[0][1]
            for _, pipe, _ in prep.transformers_:
                for step in getattr(pipe, "steps", []):
                    if (
                        type(step[1]).__name__ == "SimpleImputer"
                        and step[1].statistics_.dtype == object
                    ):
                        step[1].missing_values = ""
            case.notes.append(
                "ONNX: converted with the categorical SimpleImputer's missing_values set to "
                "'' (skl2onnx refuses NaN as a string marker); ONNX Runtime's Imputer has no "
                "double kernel, so numeric inputs are float32"
            )
            initial = [
                (
                    n,
                    StringTensorType([None, 1])
                    if n in case.categorical
                    else FloatTensorType([None, 1]),
                )
                for n in case.names
            ]
        else:
            initial = [("X", FloatTensorType([None, len(case.names)]))]
        shim = _skl2onnx_bool_shim() if case.key == "hgb" else contextlib.nullcontext()
        with shim, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            onx = to_onnx(model, initial_types=initial, options=options)
        if case.key == "hgb":
            case.notes.append(
                "ONNX: skl2onnx 1.20 fails on HistGradientBoosting with onnx 1.23 (a Python "
                "bool in nodes_missing_value_tracks_true); the bench converts it with a "
                "shim passing 0/1"
            )
        case.onnx = onx.SerializeToString()
        case.ort_names = tuple(i.name for i in onx.graph.input)
    except Exception as exc:  # noqa: BLE001 - reported in the results, not hidden
        case.onnx_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"


# -- engines -------------------------------------------------------------------
@dataclass
class Engine:
    """How one engine scores: a prepared row i, record i, the batch; outputs as floats."""

    name: str
    row: Callable[[int], Any]
    record: Callable[[int], Any]
    batch: Callable[[], Any]
    full: Callable[[], Any]  # every row of the data once (the agreement check)
    values: Callable[[Any], np.ndarray]  # probabilities or regression values
    labels: Callable[[Any], list[Any]] | None = None


def ort_session(onnx: bytes, threads: int | None) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    if threads is not None:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = threads
    return ort.InferenceSession(onnx, so, providers=["CPUExecutionProvider"])


def make_engines(case: Case, plan: Any, kernels: Any, batch_idx: np.ndarray) -> dict[str, Engine]:
    """Every engine for ``case``, with its inputs prepared in its own native form."""
    from mlbundle_runtime.scorer import Scorer

    n = case.n
    classification = case.task == "classification"
    records = case.records()
    engines: dict[str, Engine] = {}

    # ours: 1-row slices of the input array; records as dicts
    rows_ours = [case.X[i : i + 1] for i in range(n)]
    batch_ours = case.ours_input(batch_idx)
    full_ours = case.ours_input(np.arange(n))

    def ours_values(s: Any) -> np.ndarray:
        return s.proba if classification else s.values

    for name, threads in (("ours", None), ("ours-1t", 1)):
        sc = Scorer(plan, kernels, threads=threads)
        engines[name] = Engine(
            name,
            row=lambda i, sc=sc: sc.score_rows(rows_ours[i]),
            record=lambda i, sc=sc: sc.score_record(records[i]),
            batch=lambda sc=sc: _score_ours(sc, batch_ours),
            full=lambda sc=sc: _score_ours(sc, full_ours),
            values=ours_values,
            labels=lambda s: s.labels(),
        )

    # scikit-learn: 1-row arrays (1-row DataFrames for the pipeline); a record becomes
    # a DataFrame (pipeline) or a float64 row (models fitted on arrays)
    model = case.model
    predict = model.predict_proba if classification else model.predict
    rows_sk = [case.sklearn_input(np.array([i])) for i in range(n)]
    batch_sk = case.sklearn_input(batch_idx)
    full_sk = case.sklearn_input(np.arange(n))
    if case.frame is not None:
        import pandas as pd

        columns = list(case.names)

        def sk_record(i: int) -> Any:
            # scikit-learn's imputers take NaN, not None, as missing in string columns
            rec = {k: np.nan if v is None else v for k, v in records[i].items()}
            return predict(pd.DataFrame([rec], columns=columns))
    else:
        names = case.names

        def sk_record(i: int) -> Any:
            rec = records[i]
            return predict(np.array([[rec[k] for k in names]], dtype=np.float64))

    engines["sklearn"] = Engine(
        "sklearn",
        row=lambda i: predict(rows_sk[i]),
        record=sk_record,
        batch=lambda: predict(batch_sk),
        full=lambda: predict(full_sk),
        values=lambda out: np.asarray(out, dtype=np.float64),
    )
    engines["sklearn-1t"] = Engine(
        "sklearn-1t",
        row=lambda i: predict(rows_sk[i]),
        record=sk_record,
        batch=lambda: _one_thread(predict, batch_sk),
        full=lambda: predict(full_sk),
        values=lambda out: np.asarray(out, dtype=np.float64),
    )

    # ONNX Runtime: prepared float32 / per-column feeds; a record is converted per call
    if case.onnx is not None:
        rows_ort = [case.ort_input(np.array([i])) for i in range(n)]
        batch_ort = case.ort_input(batch_idx)
        full_ort = case.ort_input(np.arange(n))
        if case.categorical:
            cat = case.categorical
            nan = float("nan")

            def ort_feeds(rec: dict[str, Any]) -> dict[str, np.ndarray]:
                feeds = {}
                for k, v in rec.items():
                    if k in cat:
                        feeds[k] = np.array([["" if v is None else v]], dtype=object)
                    else:
                        feeds[k] = np.array([[nan if v is None else v]], dtype=np.float32)
                return feeds
        else:
            input_name = case.ort_names[0]
            names = case.names

            def ort_feeds(rec: dict[str, Any]) -> dict[str, np.ndarray]:
                return {input_name: np.array([[rec[k] for k in names]], dtype=np.float32)}

        def ort_values(out: Any) -> np.ndarray:
            if classification:
                return np.asarray(out[1], dtype=np.float64)
            return np.asarray(out[0], dtype=np.float64).ravel()

        for name, threads in (("ort-1t", 1), ("ort-all", None)):
            sess = ort_session(case.onnx, threads)
            engines[name] = Engine(
                name,
                row=lambda i, s=sess: s.run(None, rows_ort[i]),
                record=lambda i, s=sess: s.run(None, ort_feeds(records[i])),
                batch=lambda s=sess: s.run(None, batch_ort),
                full=lambda s=sess: s.run(None, full_ort),
                values=ort_values,
                labels=(lambda out: out[0].ravel().tolist()) if classification else None,
            )
    return engines


def _one_thread(predict: Callable[[Any], Any], X: Any) -> Any:
    """``predict(X)`` with OpenMP and BLAS held to one thread (HistGradientBoosting and the
    MLP use every core by default; the forest already predicts on one, n_jobs=None)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return predict(X)


#: Engines timed on batches only (their single rows would be ``sklearn``'s).
BATCH_ONLY = ("sklearn-1t",)
#: Per-core ratios: ours on one thread against each rival on one thread.
PER_CORE = (("sklearn-1t", "sklearn"), ("ort-1t", "ort"))


# -- measurements ------------------------------------------------------------------
def _settle() -> None:
    """Between two engines' turns: collect garbage, and let the previous engine's worker
    threads stop spinning (ONNX Runtime's and OpenMP's threads busy-wait after a call,
    which on a 2-core machine slows whatever runs next several times over)."""
    gc.collect()
    time.sleep(0.05)


def time_rows(
    engines: dict[str, Engine], path: str, n_rows: int, s: Settings
) -> dict[str, dict[str, Any]]:
    """Per-call latency (µs) of ``path`` ('row' or 'record'), engines taking turns."""
    per_round = max(1, s.calls // s.rounds)
    ns = {k: np.empty(per_round * s.rounds, dtype=np.int64) for k in engines}
    clock = time.perf_counter_ns
    for eng in engines.values():  # warm-up: first calls allocate and fill caches
        fn = getattr(eng, path)
        for i in range(min(n_rows, 200, max(10, s.calls // 20))):
            fn(i)
    for rnd in range(s.rounds):
        for k, eng in engines.items():
            fn = getattr(eng, path)
            out = ns[k]
            base = rnd * per_round
            _settle()
            for c in range(per_round):
                i = (base + c) % n_rows
                t0 = clock()
                fn(i)
                out[base + c] = clock() - t0
    result = {}
    for k, t in ns.items():
        us = t / 1000.0
        result[k] = {
            "median": round(float(np.median(us)), 3),
            "p10": round(float(np.percentile(us, 10)), 3),
            "p90": round(float(np.percentile(us, 90)), 3),
            "calls": int(us.size),
            "distinct_rows": int(min(n_rows, us.size)),
        }
    return result


def time_batches(
    engines: dict[str, Engine], rows: int, s: Settings
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Rows/s of each engine's batch call (median of ``repeats`` runs taken in turns)."""
    secs: dict[str, list[float]] = {k: [] for k in engines}
    last: dict[str, Any] = {}
    for k, eng in engines.items():
        last[k] = eng.batch()  # warm-up (and the outputs for the agreement check)
    for _ in range(s.repeats):
        for k, eng in engines.items():
            _settle()
            t0 = time.perf_counter()
            eng.batch()
            secs[k].append(time.perf_counter() - t0)
    result = {}
    for k, t in secs.items():
        med = statistics.median(t)
        result[k] = {
            "rows": rows,
            "rows_per_s": round(rows / med),
            "seconds_median": round(med, 5),
            "seconds": [round(x, 5) for x in t],
        }
    return result, last


def measure_memory(spec: dict[str, Any]) -> dict[str, Any]:
    """One engine's batch in a fresh interpreter: peak RSS and its rise over after-load."""
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"memory worker {spec['engine']} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _status_mb(field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (peak resident) of this process, in MiB.

    Not ``ru_maxrss``: Linux carries it over ``execve``, so a fresh interpreter would
    report the peak of the (large) parent process that spawned it.
    """
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _score_ours(scorer: Any, inputs: Any) -> Any:
    """Columns (a dict) go to ``score_columns``, an array to ``score_rows``."""
    if isinstance(inputs, dict):
        return scorer.score_columns(inputs)
    return scorer.score_rows(inputs)


def _tile(obj: Any, idx: np.ndarray) -> Any:
    if isinstance(obj, dict):
        return {k: v[idx] for k, v in obj.items()}
    if hasattr(obj, "iloc"):
        return obj.iloc[idx].reset_index(drop=True)
    return obj[idx]


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """The subprocess side of ``measure_memory``: imports only what the engine needs."""
    engine = spec["engine"]
    with open(spec["data"], "rb") as fh:
        base = pickle.load(fh)
    idx = np.arange(spec["rows"]) % spec["n"]
    run: Callable[[], Any]
    if engine.startswith("ours"):
        from mlbundle_runtime.backend import load_kernels
        from mlbundle_runtime.plan import load_plan
        from mlbundle_runtime.scorer import Scorer

        scorer = Scorer(
            load_plan(spec["plan"]), load_kernels("aot", Path(spec["aot"])), threads=spec["threads"]
        )
        X = _tile(base, idx)

        def run() -> Any:
            return _score_ours(scorer, X)
    elif engine == "sklearn":
        import joblib

        model = joblib.load(spec["model"])
        predict = model.predict_proba if spec["classification"] else model.predict
        X = _tile(base, idx)

        def run() -> Any:
            return predict(X)
    else:
        sess = ort_session(Path(spec["onnx"]).read_bytes(), spec["threads"])
        feeds = _tile(base, idx)

        def run() -> Any:
            return sess.run(None, feeds)

    after_load = _status_mb("VmRSS")
    t0 = time.perf_counter()
    run()
    seconds = time.perf_counter() - t0
    peak = _status_mb("VmHWM")
    return {
        "rows": int(spec["rows"]),
        "after_load_mb": round(after_load, 1),
        "peak_mb": round(peak, 1),
        "increase_mb": round(max(peak - after_load, 0.0), 1),
        "seconds": round(seconds, 4),
    }


# -- agreement -----------------------------------------------------------------------
def _max_diff(a: Any, b: Any) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    both_nan = np.isnan(a) & np.isnan(b)
    d = np.where(both_nan, 0.0, np.abs(a - b))
    return float(np.nanmax(d, initial=0.0)) if not np.isnan(d).any() else float("inf")


def check_agreement(
    case: Case, engines: dict[str, Engine], batch_out: dict[str, Any]
) -> dict[str, Any]:
    """Ours vs scikit-learn within TOL (rows, records, batch); ONNX Runtime's gap, for
    information; and each engine's record path against its own row path."""
    sk, ours = engines["sklearn"], engines["ours"]
    want = sk.values(sk.full())
    classification = case.task == "classification"
    want_labels = np.asarray(case.model.predict(case.sklearn_input(np.arange(case.n)))).tolist()
    scores = ours.full()
    res: dict[str, Any] = {"tolerance": TOL}
    res["ours_vs_sklearn_max_abs_diff"] = _max_diff(ours.values(scores), want)
    res["ours_labels_identical"] = scores.labels() == want_labels if classification else True
    rec = np.concatenate([np.atleast_1d(ours.values(ours.record(i))) for i in range(case.n)])
    res["ours_records_vs_sklearn_max_abs_diff"] = _max_diff(rec.reshape(want.shape), want)
    res["ours_batch_vs_sklearn_max_abs_diff"] = max(
        _max_diff(engines[k].values(batch_out[k]), sk.values(batch_out["sklearn"]))
        for k in ("ours", "ours-1t")
    )
    res["ok"] = bool(
        res["ours_labels_identical"]
        and res["ours_vs_sklearn_max_abs_diff"] <= TOL
        and res["ours_records_vs_sklearn_max_abs_diff"] <= TOL
        and res["ours_batch_vs_sklearn_max_abs_diff"] <= TOL
    )
    if "ort-1t" in engines:
        ort = engines["ort-1t"]
        out = ort.full()
        res["ort_vs_sklearn_max_abs_diff"] = _max_diff(ort.values(out), want)
        if ort.labels is not None:
            labels = ort.labels(out)
            agree = sum(str(a) == str(b) for a, b in zip(labels, want_labels, strict=True))
            res["ort_labels_agree_fraction"] = round(agree / case.n, 6)
    # each engine's dict path must score what its row path scores (checks the bench itself)
    same = {}
    for k, eng in engines.items():
        same[k] = max(
            _max_diff(eng.values(eng.record(i)), eng.values(eng.row(i)))
            for i in range(min(case.n, 50))
        )
    res["record_vs_row_max_abs_diff"] = same
    res["record_paths_ok"] = all(v <= TOL for v in same.values())
    return res


# -- one model -----------------------------------------------------------------
def _write_pickle(path: Path, obj: Any) -> str:
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return str(path)


def _min_us(fn: Callable[[], Any], calls: int, rounds: int) -> float:
    """Fastest per-call time (µs) over ``rounds`` loops of ``calls``: a profile compares
    parts of one path, and the minimum is what noise adds least to."""
    best = math.inf
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - t0) / calls)
    return round(best * 1e6, 3)


def profile_ours(case: Case, plan: Any, kernels: Any, s: Settings) -> dict[str, Any]:
    """Where ours spends a single prediction's time, and a 1,024-row block's.

    Each op is packed on its own and timed inside ``run_program`` less the call of an
    empty program (the fixed cost of one compiled call with its four arrays); what
    ``score_rows`` adds to the whole program's call is the Python around it (input
    checks, two allocations, the outputs' views). The block shows the same per op,
    plus filling the workspace from the engine's batch input.
    """
    from mlbundle_runtime.scorer import BLOCK_ROWS, Scorer

    scorer = Scorer(plan, kernels, threads=1)
    calls, rounds = max(10, s.calls // 10), max(3, min(9, s.rounds))
    return {
        "row": _profile_path(case, scorer, kernels, 1, calls, rounds),
        "block": _profile_path(case, scorer, kernels, BLOCK_ROWS, max(3, calls // 100), rounds),
    }


def _profile_path(
    case: Case, scorer: Any, kernels: Any, n: int, calls: int, rounds: int
) -> dict[str, Any]:
    from mlbundle_runtime.program import pack

    plan = scorer.plan
    idx = np.arange(n) % case.n
    given = case.X[idx] if n == 1 else case.ours_input(idx)
    ws = np.empty((n, plan.width))
    no_rows, label = np.empty((0, 0)), np.empty(n, dtype=np.int64)
    if isinstance(given, dict):
        columns = scorer.encoder.columns(given)

        def fill() -> None:
            scorer.encoder.fill_columns(ws, columns, 0, n)
    elif scorer.encoder.numeric_only:

        def fill() -> None:
            ws[:, : given.shape[1]] = given
    else:

        def fill() -> None:
            scorer.encoder.fill_array(ws, given)

    fill()
    # every intermediate column valid too (an op timed alone reads what earlier ops
    # wrote; an uninitialised column could hold denormals, slow to compute with)
    kernels.run_program(ws, no_rows, scorer._data, label)
    filled = ws.copy()

    def run(data: np.ndarray) -> Callable[[], Any]:
        def call() -> Any:
            ws[:] = filled  # ops write their columns: every call starts from the inputs
            return kernels.run_program(ws, no_rows, data, label)

        return call

    def reset() -> None:
        ws[:] = filled

    base = _min_us(reset, calls, rounds)
    fixed = _min_us(run(pack([]).data), calls, rounds) - base
    ops = {}
    for i, op in enumerate(plan.ops):
        took = _min_us(run(pack([(op.kernel, op.args)]).data), calls, rounds)
        ops[f"{i}:{op.kernel}"] = round(max(took - base - fixed, 0.0), 3)
    program = _min_us(run(scorer._data), calls, rounds) - base
    entry: dict[str, Any] = {
        "rows": n,
        "call_us": round(max(fixed, 0.0), 3),
        "ops_us": ops,
        "program_us": round(program, 3),
        "fill_us": _min_us(fill, calls, rounds),
    }
    if n == 1:
        row = given if given.dtype == object else np.ascontiguousarray(given, dtype=np.float64)
        total = _min_us(lambda: scorer.score_rows(row), calls, rounds)
        entry["score_rows_us"] = total
        entry["python_us"] = round(total - program, 3)
    return entry


def run_case(key: str, s: Settings, kernels: Any, aot: Path, work: Path, say: Callable) -> dict:
    """Train, compile and convert one model, then time and check every engine."""
    import joblib

    from bundler.compiler import compile_estimators

    t0 = time.perf_counter()
    case = build_case(key)
    compiled = compile_estimators(case.model)
    plan = compiled.load()
    if tuple(plan.input_names) != case.names:
        raise SystemExit(f"{key}: plan inputs {plan.input_names} != bench columns {case.names}")
    convert_onnx(case)
    say(f"{key}: trained, compiled and converted in {time.perf_counter() - t0:.1f} s")
    if case.onnx_error:
        say(f"{key}: ONNX conversion failed: {case.onnx_error}")

    batch_idx = np.arange(s.batch_rows) % case.n
    everything = make_engines(case, plan, kernels, batch_idx)
    engines = {k: v for k, v in everything.items() if k not in BATCH_ONLY}
    row = time_rows(engines, "row", case.n, s)
    say(f"{key}: single rows from arrays timed")
    rec = time_rows(engines, "record", case.n, s)
    say(f"{key}: single rows from records timed")
    batch, last = time_batches(everything, s.batch_rows, s)
    say(f"{key}: batches timed")
    agreement = check_agreement(case, engines, last)
    agreement["sklearn_1t_batch_vs_sklearn_max_abs_diff"] = _max_diff(
        last["sklearn-1t"], last["sklearn"]
    )
    del last, engines, everything
    gc.collect()
    profile = profile_ours(case, plan, kernels, s)
    say(f"{key}: ours profiled")

    # peak memory: each engine's batch in a fresh interpreter
    folder = work / key
    folder.mkdir(parents=True)
    compiled.write(folder / "plan")
    joblib.dump(case.model, folder / "model.joblib")
    common = {"rows": s.memory_rows, "n": case.n}
    specs = {
        "ours": {"plan": str(folder / "plan"), "aot": str(aot), "threads": None},
        "ours-1t": {"plan": str(folder / "plan"), "aot": str(aot), "threads": 1},
        "sklearn": {
            "model": str(folder / "model.joblib"),
            "classification": case.task == "classification",
        },
    }
    data_ours = _write_pickle(folder / "ours.pkl", case.ours_input(np.arange(case.n)))
    data_sk = _write_pickle(folder / "sklearn.pkl", case.sklearn_input(np.arange(case.n)))
    specs["ours"]["data"] = specs["ours-1t"]["data"] = data_ours
    specs["sklearn"]["data"] = data_sk
    if case.onnx is not None:
        (folder / "model.onnx").write_bytes(case.onnx)
        data_ort = _write_pickle(folder / "ort.pkl", case.ort_input(np.arange(case.n)))
        for name, threads in (("ort-1t", 1), ("ort-all", None)):
            specs[name] = {"onnx": str(folder / "model.onnx"), "threads": threads, "data": data_ort}
    with ThreadPoolExecutor(len(specs) if s.memory_parallel else 1) as pool:
        futures = {
            k: pool.submit(measure_memory, {"engine": k, **common, **v}) for k, v in specs.items()
        }
        memory = {k: f.result() for k, f in futures.items()}
    say(f"{key}: peak memory measured")

    res_engines: dict[str, Any] = {}
    for k in ENGINES:
        if k not in row:
            res_engines[k] = {"available": False, "error": case.onnx_error}
            continue
        res_engines[k] = {
            "available": True,
            "row_us": {"numpy": row[k], "record": rec[k]},
            "batch": batch[k],
            "memory": memory[k],
        }
    ratios, targets = judge(key, res_engines)
    one_thread = {k: batch[k] for k in BATCH_ONLY}
    ratios.update(per_core(res_engines, one_thread))
    return {
        "title": case.title,
        "data": case.data,
        "task": case.task,
        "inputs": len(case.names),
        "rows": case.n,
        "plan_ops": len(plan.ops),
        "engines": res_engines,
        "batch_one_thread": one_thread,
        "ratios": ratios,
        "targets": targets,
        "agreement": agreement,
        "profile": profile,
        "notes": case.notes,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def judge(key: str, e: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Speed-up factors (> 1: ours is faster) and issue #4's targets, met or not."""
    ours = e["ours"]
    has_ort = e["ort-1t"]["available"]
    ratios: dict[str, Any] = {}
    targets: list[dict[str, Any]] = []
    for path, label in (("numpy", "numpy row"), ("record", "dict record")):
        us = ours["row_us"][path]["median"]
        value = None
        if has_ort:
            best = min(e[k]["row_us"][path]["median"] for k in ("ort-1t", "ort-all"))
            value = round(best / us, 2)
            ratios[f"row_{path}_speedup_vs_ort"] = value
        ratios[f"row_{path}_speedup_vs_sklearn"] = round(
            e["sklearn"]["row_us"][path]["median"] / us, 2
        )
        targets.append(
            {
                "target": f"single row ({label}) >= {ROW_SPEEDUP_VS_ORT:g}x faster than ORT",
                "value": value,
                "met": None if value is None else value >= ROW_SPEEDUP_VS_ORT,
            }
        )
    rivals = {"sklearn": e["sklearn"]["batch"]["rows_per_s"]}
    if has_ort:
        rivals["ort-all"] = e["ort-all"]["batch"]["rows_per_s"]
    best_name = max(rivals, key=lambda k: rivals[k])
    value = round(ours["batch"]["rows_per_s"] / rivals[best_name], 2)
    ratios["batch_speedup_vs_best"] = value
    ratios["batch_best_rival"] = best_name
    if has_ort:
        ratios["batch_speedup_vs_ort_all"] = round(
            ours["batch"]["rows_per_s"] / rivals["ort-all"], 2
        )
    ratios["batch_ours_all_cores_vs_1t"] = round(
        ours["batch"]["rows_per_s"] / e["ours-1t"]["batch"]["rows_per_s"], 2
    )
    targets.append(
        {
            "target": f"batch >= {BATCH_SPEEDUP_VS_BEST:g}x rows/s of max(sklearn, ORT-all)",
            "value": value,
            "met": value >= BATCH_SPEEDUP_VS_BEST,
        }
    )
    if key == "rf":
        for path, limit in (("numpy", RF_ROW_US), ("record", RF_RECORD_US)):
            us = ours["row_us"][path]["median"]
            what = "numpy row" if path == "numpy" else "dict record"
            targets.append(
                {
                    "target": f"RF-100 single row from a {what} <= {limit:g} us",
                    "value": us,
                    "unit": "us",
                    "met": us <= limit,
                }
            )
    return ratios, targets


def per_core(e: dict[str, Any], one_thread: dict[str, Any]) -> dict[str, Any]:
    """Batch rows/s of ours on one thread over each rival's on one thread (> 1: ours is
    faster per core), as issue #15 asks: all-threads figures on a 2-core machine would
    hide a kernel slower than scikit-learn's own loop."""
    ours = e["ours-1t"]["batch"]["rows_per_s"]
    rivals = {**{k: v["batch"] for k, v in e.items() if v.get("available")}, **one_thread}
    return {
        f"batch_per_core_vs_{short}_1t": round(ours / rivals[name]["rows_per_s"], 2)
        if name in rivals
        else None
        for name, short in PER_CORE
    }


# -- report -------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    """bench/startup.py's machine description, plus what matters for scoring."""
    from importlib.metadata import PackageNotFoundError, version

    startup = _load_script("_bench_startup", ROOT / "bench" / "startup.py")
    info: dict[str, Any] = startup.machine()
    for key in [k for k in info if k.endswith("_version")]:
        if key.split("_")[0] in ("pyinstaller", "joblib"):
            del info[key]
    for dist in ("scikit-learn", "onnxruntime", "skl2onnx", "onnx", "numba", "pandas"):
        with contextlib.suppress(PackageNotFoundError):
            info[f"{dist}_version"] = version(dist)
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                info["cpu_simd"] = [
                    f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f") if f in flags
                ]
                break
    info["affinity_cores"] = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    )
    return info


def _fmt_us(x: float) -> str:
    return f"{x:,.1f}" if x < 100 else f"{x:,.0f}"


def _fmt_ratio(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}x"


def _verdict(t: dict[str, Any]) -> str:
    return "n/a" if t["met"] is None else ("met" if t["met"] else "NOT met")


def table_rows(results: dict[str, Any]) -> list[list[str]]:
    out = []
    for key, m in results["models"].items():
        for k in ENGINES:
            e = m["engines"][k]
            if not e["available"]:
                out.append([key, k, "conversion failed: " + str(e["error"])[:80], "", "", "", ""])
                continue
            out.append(
                [
                    key,
                    k,
                    _fmt_us(e["row_us"]["numpy"]["median"]),
                    _fmt_us(e["row_us"]["record"]["median"]),
                    f"{e['batch']['rows_per_s']:,}",
                    f"{e['memory']['peak_mb']:.0f}",
                    f"{e['memory']['increase_mb']:.1f}",
                ]
            )
    return out


HEADERS = [
    "model",
    "engine",
    "row µs (numpy)",
    "row µs (dict)",
    "batch rows/s",
    "peak MB",
    "+MB over load",
]
TARGET_HEADERS = [
    "model",
    "row vs best ORT (numpy)",
    "row vs best ORT (dict)",
    "batch vs max(sklearn, ORT-all)",
    "ours batch, all cores / 1",
    "absolute (RF-100 µs)",
    "agreement (max abs diff)",
]


def target_rows(results: dict[str, Any]) -> list[list[str]]:
    out = []
    for key, m in results["models"].items():
        t = m["targets"]
        cells = [f"{_fmt_ratio(x['value'])} {_verdict(x)}" for x in t[:3]]
        absolute = ", ".join(f"{x['value']:.1f} {_verdict(x)}" for x in t[3:]) or "-"
        a = m["agreement"]
        agree = f"ours {a['ours_vs_sklearn_max_abs_diff']:.0e} {'ok' if a['ok'] else 'FAILED'}"
        if "ort_vs_sklearn_max_abs_diff" in a:
            agree += f"; ORT {a['ort_vs_sklearn_max_abs_diff']:.0e}"
        out.append(
            [
                key,
                cells[0],
                cells[1],
                f"{cells[2]} (vs {m['ratios']['batch_best_rival']})",
                _fmt_ratio(m["ratios"]["batch_ours_all_cores_vs_1t"]),
                absolute,
                agree,
            ]
        )
    return out


PER_CORE_HEADERS = [
    "model",
    "ours-1t rows/s",
    "sklearn-1t rows/s",
    "ort-1t rows/s",
    "ours-1t / sklearn-1t",
    "ours-1t / ort-1t",
]


def per_core_rows(results: dict[str, Any]) -> list[list[str]]:
    out = []
    for key, m in results["models"].items():
        e, r = m["engines"], m["ratios"]
        ort = e["ort-1t"]["batch"]["rows_per_s"] if e["ort-1t"]["available"] else None
        out.append(
            [
                key,
                f"{e['ours-1t']['batch']['rows_per_s']:,}",
                f"{m['batch_one_thread']['sklearn-1t']['rows_per_s']:,}",
                "n/a" if ort is None else f"{ort:,}",
                _fmt_ratio(r["batch_per_core_vs_sklearn_1t"]),
                _fmt_ratio(r["batch_per_core_vs_ort_1t"]),
            ]
        )
    return out


def print_tables(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console() if sys.stdout.isatty() else Console(width=150)
    table = Table(title=f"Scoring benchmark ({results['mode']})")
    for h in HEADERS:
        table.add_column(h, justify="left" if h in ("model", "engine") else "right")
    last = None
    for r in table_rows(results):
        if last is not None and r[0] != last:
            table.add_section()
        last = r[0]
        table.add_row(*r)
    console.print(table)
    targets = Table(title="Targets (issue #4): speed-up of ours (> 1 = ours faster)")
    for h in TARGET_HEADERS:
        targets.add_column(h)
    for r in target_rows(results):
        targets.add_row(*r)
    console.print(targets)
    cores = Table(title="Batch per core: every engine on one thread (> 1 = ours faster)")
    for h in PER_CORE_HEADERS:
        cores.add_column(h, justify="left" if h == "model" else "right")
    for r in per_core_rows(results):
        cores.add_row(*r)
    console.print(cores)


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    s = results["settings"]
    lines = [
        f"# Scoring benchmark ({results['mode']})",
        "",
        f"Generated {results['generated_utc']} by `{results['command']}`.",
        "",
        f"Machine: {m.get('cpu_model')}, {m.get('logical_cores')} logical cores "
        f"({m.get('physical_cores', '?')} physical), Python {m.get('python')}, "
        f"numpy {m.get('numpy_version')}, scikit-learn {m.get('scikit-learn_version')}, "
        f"onnxruntime {m.get('onnxruntime_version')}, skl2onnx {m.get('skl2onnx_version')}, "
        f"load average at start {m.get('load_average_1m_at_start')}.",
        "",
        f"Single row: median of {s['calls']:,} calls per engine and path, cycling over every "
        f"row of the data; batch: {s['batch_rows']:,} rows, median of {s['repeats']} runs; "
        f"memory: one {s['memory_rows']:,}-row batch in a fresh process (peak RSS, and its "
        "rise over the RSS with model and inputs loaded). `ours` uses every core for large "
        "batches, `ours-1t` one; `ort-1t` is ONNX Runtime with one intra-op thread, "
        "`ort-all` with its default (all cores).",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join("---" if i < 2 else "---:" for i in range(len(HEADERS))) + "|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(results)]
    lines += [
        "",
        "## Targets",
        "",
        "Speed-up factors of ours (> 1 means ours is faster): single row against the faster "
        "of `ort-1t` and `ort-all` (target >= 2x), batch against the faster of scikit-learn "
        "and `ort-all` (target >= 1.5x); RF-100 also has absolute single-row targets (5 µs "
        "from a numpy row, 15 µs from a dict record).",
        "",
        "| " + " | ".join(TARGET_HEADERS) + " |",
        "|" + "|".join("---" for _ in TARGET_HEADERS) + "|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in target_rows(results)]
    missed = [
        f"{key}: {t['target']} (measured "
        + (f"{t['value']:.1f} µs)" if t.get("unit") == "us" else f"{_fmt_ratio(t['value'])})")
        for key, mm in results["models"].items()
        for t in mm["targets"]
        if t["met"] is False
    ]
    lines += ["", f"Targets not met: {len(missed)}" + (":" if missed else ".")]
    lines += [f"- {x}" for x in missed]
    lines += [
        "",
        "## Batch per core",
        "",
        "The batch on one thread each: ours (`ours-1t`) against scikit-learn held to one "
        "thread (`sklearn-1t`: `threadpoolctl` limits OpenMP and BLAS; the forest already "
        "predicts on one) and ONNX Runtime with one intra-op thread (`ort-1t`); > 1 means "
        "ours is faster. A machine with few cores cannot hide a slower kernel here.",
        "",
        "| " + " | ".join(PER_CORE_HEADERS) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(PER_CORE_HEADERS))) + "|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in per_core_rows(results)]
    lines += [
        "",
        "## Where ours spends its time",
        "",
        "Fastest of repeated loops, one thread (`profile` in the JSON). Row: one prediction "
        "from a numpy row (an object array for the penguins); `call`: one compiled call of an "
        "empty program; ops: each op inside `run_program`, less that call; `Python`: what "
        "`score_rows` adds to the whole program's call. Block: 1,024 rows; `fill`: the "
        "workspace from the batch input (columns for the penguins). Differences of minima: "
        "0 means below the timing noise.",
        "",
        "| model | path | total µs | Python µs | call µs | ops µs | fill µs |",
        "|---|---|---:|---:|---:|---|---:|",
    ]
    for key, mm in results["models"].items():
        for what, p in mm.get("profile", {}).items():
            ops = ", ".join(f"{k.split(':', 1)[1]} {v:.2f}" for k, v in p["ops_us"].items())
            total = p.get("score_rows_us", p["program_us"] + p["fill_us"])
            lines.append(
                f"| {key} | {what} | {total:.2f} | {p.get('python_us', '-')} | "
                f"{p['call_us']:.2f} | {ops} | {p['fill_us']:.2f} |"
            )
    notes = [n for mm in results["models"].values() for n in mm["notes"]] + results["notes"]
    lines += ["", "## Notes", ""] + [f"- {n}" for n in dict.fromkeys(notes)]
    return "\n".join(lines) + "\n"


GENERAL_NOTES = [
    "Inputs are prepared in each engine's native form before the timing (1-row float64 "
    "arrays for ours and scikit-learn, 1-row DataFrames for the penguins pipeline in "
    "scikit-learn, float32 arrays or per-column feeds for ONNX Runtime; the penguins' "
    "mixed-type batches go to ours as columns, `Scorer.score_columns`, and its single rows "
    "as 1-row object arrays); the dict-record "
    "path times the conversion from a dict too: ours `Scorer.score_record`, scikit-learn "
    "`pd.DataFrame([record])` for the pipeline and a float64 row for models fitted on "
    "arrays, ONNX Runtime a float32 row or one array per column.",
    "scikit-learn runs with its defaults: RandomForest predicts on one thread (n_jobs=None), "
    "HistGradientBoosting uses OpenMP on every core.",
    "ONNX Runtime runs skl2onnx's float32 graphs (zipmap=False): its probabilities differ "
    "from scikit-learn's by up to the 'ORT max' shown; ours must agree within 1e-9 and the "
    "bench fails otherwise.",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny counts (CI smoke check)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results JSON path")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated subset")
    parser.add_argument("--calls", type=int, help="single-row calls per engine and path")
    parser.add_argument("--batch-rows", type=int, help="rows per batch")
    parser.add_argument("--repeats", type=int, help="timed batch runs per engine")
    parser.add_argument("--memory-rows", type=int, help="rows of the memory batch")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0

    import dataclasses

    s = SMOKE if args.smoke else FULL
    overrides = {
        k: v
        for k, v in (
            ("calls", args.calls),
            ("batch_rows", args.batch_rows),
            ("repeats", args.repeats),
            ("memory_rows", args.memory_rows),
        )
        if v is not None
    }
    s = dataclasses.replace(s, **overrides)
    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    unknown = [k for k in keys if k not in MODELS]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; valid: {', '.join(MODELS)}")

    from bundler.backends.aot import compile_aot
    from mlbundle_runtime.backend import load_kernels

    started = time.perf_counter()
    info = machine()

    def say(msg: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {msg}", file=sys.stderr, flush=True)

    aot = compile_aot()
    kernels = load_kernels("aot", aot)
    say(f"aot kernels: {aot}")
    results: dict[str, Any] = {
        "generated_utc": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "command": " ".join(
            ["python", "bench/scoring.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "mode": "smoke" if args.smoke else "full",
        "settings": dataclasses.asdict(s),
        "machine": info,
        "engines": {
            "ours": "mlbundle plan, aot kernels, Scorer(threads=None): every core for batches",
            "ours-1t": "mlbundle plan, aot kernels, Scorer(threads=1)",
            "sklearn": "predict_proba (classifiers) / predict (regressors), library defaults",
            "sklearn-1t": "the same call held to one thread (threadpoolctl), batches only",
            "ort-1t": "ONNX Runtime on skl2onnx float32 graph, intra_op_num_threads=1",
            "ort-all": "ONNX Runtime on skl2onnx float32 graph, default threads (all cores)",
        },
        "models": {},
        "notes": GENERAL_NOTES,
    }
    with tempfile.TemporaryDirectory(prefix="mlbundle-bench-") as tmp:
        for key in keys:
            results["models"][key] = run_case(key, s, kernels, aot, Path(tmp), say)
    results["seconds"] = round(time.perf_counter() - started, 1)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    md = args.out.with_suffix(".md")
    md.write_text(markdown(results), encoding="utf-8")
    print_tables(results)
    print(f"wrote {args.out} and {md}")
    bad = [
        k
        for k, m in results["models"].items()
        if not (m["agreement"]["ok"] and m["agreement"]["record_paths_ok"])
    ]
    if bad:
        print(
            f"FAILED: results disagree for {', '.join(bad)} (see 'agreement' in {args.out})",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
