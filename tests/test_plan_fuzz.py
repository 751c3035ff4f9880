"""Fuzzing the plan reader: whatever plan.json and arrays.npz hold, PlanError or a plan
that scores.

The app trusts nothing it reads: a plan mangled on disk, by hand or by a bug in a
writer must be refused with PlanError (the CLI's one message and exit code for a bad
plan), never end in a KeyError or TypeError, and a plan the reader accepts must score
rows without any exception but a refusal of the input (InputError). The mutations
start from real compiled plans (a forest, a logistic pipeline with one-hot encoding,
histogram boosting with NaN, an MLP, a tf-idf text model, a forest on two targets): keys
dropped, values of other types or out of range, list items dropped or repeated, array
references swapped, arrays of other dtypes and shapes, and the archive's bytes cut or
flipped.
"""

from __future__ import annotations

import copy
import functools
import io
import json
import math
import os
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from bundler.compiler import compile_estimators, write_plan_files
from mlbundle_runtime.inputs import InputError
from mlbundle_runtime.plan import Plan, PlanError, plan_from_bytes
from mlbundle_runtime.scorer import Scorer
from tests._parity import kernels

KINDS = ("forest", "logistic_onehot", "hgb", "mlp", "text", "multi_output")
#: A longer, random soak: ``MLBUNDLE_FUZZ_EXAMPLES=2000 pytest tests/test_plan_fuzz.py``.
_SOAK = int(os.environ.get("MLBUNDLE_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=_SOAK or 150,
    deadline=None,
    derandomize=not _SOAK,  # by default the same examples every run: failures reproduce
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _model(kind: str) -> Any:
    X, y = load_breast_cancer(return_X_y=True)
    X, y = X[:200, :8], y[:200]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "forest":
            return RandomForestClassifier(n_estimators=3, max_depth=4, random_state=0).fit(X, y)
        if kind == "hgb":
            X = X.copy()
            X[np.random.RandomState(0).rand(*X.shape) < 0.1] = np.nan
            return HistGradientBoostingClassifier(max_iter=3, random_state=0).fit(X, y)
        if kind == "mlp":
            return MLPClassifier((6,), max_iter=20, random_state=0).fit(X, y)
        if kind == "multi_output":  # two targets: the plan's ``outputs`` (format 2.3)
            Y = np.column_stack([y, np.digitize(X[:, 1], [15, 20])])
            return RandomForestClassifier(n_estimators=3, max_depth=4, random_state=0).fit(X, Y)
        if kind == "text":  # a text input: the plan's ``text`` features (format 2.1)
            docs = ["good film", "bad film", "très bon", "not good at all", "x y", ""] * 5
            vec = TfidfVectorizer(ngram_range=(1, 2), stop_words=["at"], sublinear_tf=True)
            return make_pipeline(vec, LogisticRegression()).fit(docs, [1, 0, 1, 0, 1, 0] * 5)
        rng = np.random.RandomState(0)
        df = pd.DataFrame(
            {
                "a": rng.randn(120),
                "b": rng.rand(120),
                "color": pd.Series(rng.choice(["red", "green", "blue"], 120), dtype=object),
            }
        )
        pre = ColumnTransformer(
            [
                ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["a", "b"]),
                ("cat", OneHotEncoder(handle_unknown="ignore"), ["color"]),
            ]
        )
        return make_pipeline(pre, LogisticRegression()).fit(df, (df["a"] > 0).astype(int))


@functools.cache
def _files(kind: str) -> tuple[bytes, bytes]:
    """plan.json and arrays.npz of a real compiled plan, as they are written."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        write_plan_files(compile_estimators(_model(kind)), Path(tmp))
        return (Path(tmp) / "plan.json").read_bytes(), (Path(tmp) / "arrays.npz").read_bytes()


def _arrays(raw: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _record(plan: Plan) -> dict[str, object]:
    """One plausible record for whatever inputs the (mutated) plan declares."""
    return {
        i.name: "good film x"
        if i.kind == "text"
        else (i.categories[0] if i.categories else "x")
        if i.kind == "categorical"
        else 0.25
        for i in plan.inputs
    }


def read_and_score(header: bytes, raw: bytes) -> str:
    """``"refused"`` (PlanError), ``"scored"`` or ``"input refused"``; anything else raises."""
    try:
        plan = plan_from_bytes(header, raw, where="fuzzed")
    except PlanError:
        return "refused"
    scorer = Scorer(plan, kernels(), threads=1)
    try:
        with np.errstate(all="ignore"):
            scores = scorer.score_records([_record(plan)] * 3)
            scores.to_csv()
            scores.record(0)
            scorer.score_record(_record(plan))
    except InputError:
        return "input refused"
    return "scored"


# -- strategies -----------------------------------------------------------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.sampled_from([0, 1, -1, 2, 3, 2**31, 2**63, -(2**63) - 1, 1e308, math.inf, math.nan])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=6)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=8,
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a JSON document (the root excluded)."""
    out = [path] if path else []
    if isinstance(value, dict):
        for k, v in value.items():
            out.extend(_paths(v, (*path, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(_paths(v, (*path, i)))
    return out


#: Where mutations go, the likeliest first (hypothesis favours early choices).
SECTIONS = ("ops", "output", "outputs", "inputs", "text", "meta", "width", "columns")


def _mutate(doc: Any, data: st.DataObject, array_keys: list[str]) -> None:
    """One mutation of the JSON document at a random place, in place."""
    paths = _paths(doc)
    # a section first (ops, output, inputs, width...), so long lists do not crowd it out
    present = {str(p[0]) for p in paths}
    order = [s for s in SECTIONS if s in present]  # format and version: test_plan_reader's
    section = data.draw(st.sampled_from(order), label="section")
    path = data.draw(st.sampled_from([p for p in paths if str(p[0]) == section]), label="path")
    parent = functools.reduce(lambda node, key: node[key], path[:-1], doc)
    key = path[-1]
    value = parent[key]
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    # mutations a reader could accept come first, so that many mutated plans get scored
    how = data.draw(
        st.sampled_from(
            ["nudge"] * number
            + ["swap_array"] * (isinstance(value, dict) and "array" in value)
            + ["repeat"] * isinstance(parent, list)
            + ["drop", "replace", "retype"]
        ),
        label="how",
    )
    if how == "nudge":
        parent[key] = value + data.draw(st.sampled_from([-1, 1, -2, 2, -(2**40), 2**40, 0.5]))
    elif how == "swap_array":
        value["array"] = data.draw(st.sampled_from([*array_keys, "missing"]), label="array")
    elif how == "repeat":
        parent.insert(key, copy.deepcopy(value))
    elif how == "drop":
        del parent[key]
    elif how == "replace":
        parent[key] = data.draw(JSON_VALUES, label="value")
    else:  # retype: the same content in another JSON type
        parent[key] = (
            [value] if not isinstance(value, list) else {str(i): v for i, v in enumerate(value)}
        )


@st.composite
def _array_like(draw: st.DrawFn, like: np.ndarray) -> np.ndarray:
    """An array that a kernel might not take: other dtype, shape, values or emptiness."""
    how = draw(st.sampled_from(["dtype", "shape", "values", "empty", "scalar"]))
    if how == "dtype":
        dtype = draw(st.sampled_from(["f8", "f4", "i8", "i4", "u8", "u1", "b1", "c16", "U3"]))
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return like.astype(dtype)
    if how == "shape":
        return like.reshape(-1) if like.ndim > 1 else like.reshape(1, -1)
    if how == "empty":
        return like[:0]
    if how == "scalar":
        return np.asarray(like.flat[0] if like.size else 0)
    out = like.copy()
    if out.size:
        pos = draw(st.integers(0, out.size - 1))
        out.flat[pos] = draw(
            st.sampled_from([-1, 0, 1, 2**24, 2**31 - 1, -(2**31), 10**6]).map(
                lambda v: np.array(v).astype(out.dtype, casting="unsafe")
            )
        )
    return out


# -- tests ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_real_plans_load_and_score(kind: str) -> None:
    assert read_and_score(*_files(kind)) == "scored"


@FUZZ
@given(doc=JSON_VALUES)
def test_any_json_document_is_refused(doc: Any) -> None:
    assert read_and_score(json.dumps(doc).encode(), _files("forest")[1]) == "refused"


@FUZZ
@given(kind=st.sampled_from(KINDS), n=st.integers(1, 3), data=st.data())
def test_mutated_plan_json_is_refused_or_scores(kind: str, n: int, data: st.DataObject) -> None:
    header, raw = _files(kind)
    doc = json.loads(header)
    keys = sorted(_arrays(raw))
    for _ in range(n):
        if not any(str(p[0]) in SECTIONS for p in _paths(doc)):
            break
        _mutate(doc, data, keys)
    read_and_score(json.dumps(doc).encode(), raw)


@FUZZ
@given(kind=st.sampled_from(KINDS), n=st.integers(1, 2), data=st.data())
def test_mutated_op_arguments_are_refused_or_score(kind: str, n: int, data: st.DataObject) -> None:
    """Where a plan could index outside the workspace: its ops' scalars and array refs."""
    header, raw = _files(kind)
    doc = json.loads(header)
    keys = sorted(_arrays(raw))
    for _ in range(n):
        op = data.draw(st.sampled_from(doc["ops"]), label="op")
        pos = data.draw(st.integers(0, len(op["args"]) - 1), label="arg")
        value = op["args"][pos]
        if isinstance(value, dict):
            op["args"][pos] = {"array": data.draw(st.sampled_from(keys), label="array")}
        else:
            op["args"][pos] = data.draw(
                st.sampled_from([value - 1, value + 1, 0, -1, 2, 2**24, 2**40, 0.5]), label="to"
            )
    read_and_score(json.dumps(doc).encode(), raw)


@FUZZ
@given(kind=st.sampled_from(KINDS), data=st.data())
def test_mutated_arrays_are_refused_or_score(kind: str, data: st.DataObject) -> None:
    header, raw = _files(kind)
    arrays = _arrays(raw)
    key = data.draw(st.sampled_from(sorted(arrays)), label="key")
    if data.draw(st.booleans(), label="swap"):
        arrays[key] = arrays[data.draw(st.sampled_from(sorted(arrays)), label="other")]
    else:
        arrays[key] = data.draw(_array_like(arrays[key]), label="array")
    read_and_score(header, _npz(arrays))


@FUZZ
@given(kind=st.sampled_from(KINDS), data=st.data())
def test_damaged_archive_bytes_are_refused_or_score(kind: str, data: st.DataObject) -> None:
    header, raw = _files(kind)
    damaged = bytearray(raw)
    how = data.draw(st.sampled_from(["cut", "flip", "insert", "garbage"]), label="how")
    pos = data.draw(st.integers(0, len(raw) - 1), label="pos")
    if how == "cut":
        damaged = damaged[:pos]
    elif how == "flip":
        damaged[pos] ^= data.draw(st.integers(1, 255), label="bits")
    elif how == "insert":
        damaged[pos:pos] = data.draw(st.binary(min_size=1, max_size=8), label="bytes")
    else:
        damaged = bytearray(data.draw(st.binary(max_size=64), label="bytes"))
    read_and_score(header, bytes(damaged))


def test_object_and_npy_archives_are_refused() -> None:
    """Members that would need unpickling, and a bare .npy where an .npz is due."""
    header, raw = _files("forest")
    arrays = _arrays(raw)
    arrays["a0"] = np.array([{"x": 1}], dtype=object)
    buf = io.BytesIO()
    np.savez(buf, **arrays, allow_pickle=True)
    with pytest.raises(PlanError, match="never unpickled"):
        plan_from_bytes(header, buf.getvalue(), where="fuzzed")
    npy = io.BytesIO()
    np.save(npy, np.zeros(3))
    with pytest.raises(PlanError, match="not a readable array archive"):
        plan_from_bytes(header, npy.getvalue(), where="fuzzed")
