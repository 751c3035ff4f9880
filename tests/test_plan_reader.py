"""mlbundle_runtime.plan: the only reader of plan.json + arrays.npz refuses what it cannot run.

The kernels do no bounds checks (they are compiled for speed), so every index
a plan carries must be validated here; a corrupted or hand-edited plan must
fail with PlanError, never read outside the workspace or loop in a tree. A
plan written with ``CompiledPlan.write`` and read back with ``load_plan``
must score exactly as the compiled plan does.
"""

from __future__ import annotations

import copy
import functools
import inspect
import io
import json
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from bundler.compiler import CompiledPlan, compile_estimators
from mlbundle_runtime import kernels as kernel_source
from mlbundle_runtime.plan import (
    ARRAYS_FILE,
    FORMAT,
    PLAN_FILE,
    Plan,
    PlanError,
    load_plan,
    parse_plan,
)
from mlbundle_runtime.scorer import Scorer
from tests._parity import assert_parity, kernels, to_records

COLUMN_ARGS = ("cols", "src", "dst")


# -- fixtures ----------------------------------------------------------------------


@functools.cache
def _frame() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.RandomState(0)
    n = 150
    df = pd.DataFrame(
        {
            "color": pd.Series(rng.choice(["red", "green", "blue"], n), dtype=object),
            "a": rng.randn(n),
            "b": rng.randn(n) * 5,
            "size": pd.Series(rng.choice(["S", "M", "L"], n), dtype=object),
        }
    )
    for c in df.columns:
        df.loc[rng.rand(n) < 0.1, c] = np.nan
    y3 = (df["a"].fillna(0) > 0).astype(int) + (df["color"] == "red").astype(int)
    y2 = (df["b"].fillna(0) > 1).astype(int)
    return df, y3.to_numpy(), y2.to_numpy()


def _pre() -> ColumnTransformer:
    return ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["a", "b"]),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                ),
                ["color", "size"],
            ),
        ]
    )


@functools.cache
def fitted(kind: str) -> Any:
    df, y3, y2 = _frame()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "forest":
            final, y = RandomForestClassifier(n_estimators=5, random_state=0), y3
        elif kind == "multiclass":
            final, y = LogisticRegression(max_iter=500), y3
        elif kind == "binary":
            final, y = LogisticRegression(), y2
        else:
            raise KeyError(kind)
        return Pipeline([("pre", _pre()), ("m", final)]).fit(df, y)


def compiled(kind: str) -> CompiledPlan:
    """A fresh compiled plan (header and arrays are safe to mutate)."""
    plan = compile_estimators(fitted(kind))
    return CompiledPlan(copy.deepcopy(plan.header), {k: v.copy() for k, v in plan.arrays.items()})


def arg_names(kernel: str) -> list[str]:
    return list(inspect.signature(getattr(kernel_source, kernel)).parameters)[1:]


def ops_of(plan: CompiledPlan, kernel: str) -> list[dict[str, Any]]:
    return [op for op in plan.header["ops"] if op["kernel"] == kernel]


def array_of(plan: CompiledPlan, op: dict[str, Any], name: str) -> tuple[str, np.ndarray]:
    value = op["args"][arg_names(op["kernel"]).index(name)]
    return value["array"], plan.arrays[value["array"]]


def set_array(plan: CompiledPlan, op: dict[str, Any], name: str, data: np.ndarray) -> None:
    key, _ = array_of(plan, op, name)
    plan.arrays[key] = data


def parse(plan: CompiledPlan) -> Plan:
    return parse_plan(plan.header, plan.arrays, where="test plan")


def refuses(plan: CompiledPlan, match: str | None = None) -> PlanError:
    with pytest.raises(PlanError, match=match) as info:
        parse(plan)
    return info.value


@pytest.mark.parametrize("kind", ["forest", "multiclass", "binary"])
def test_compiled_plans_are_valid_and_use_the_kernels_tested_here(kind: str) -> None:
    plan = compiled(kind)
    parsed = parse(plan)
    used = {op.kernel for op in parsed.ops}
    assert {"check_values", "impute", "scale", "onehot"} <= used
    expected = {"forest": "tree_sum", "multiclass": "softmax", "binary": "expit_pair"}[kind]
    assert expected in used


# -- format and version ------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.0", "3.0", "0.9", "10.0", "-1.0"])
def test_unknown_major_version_is_refused(version: str) -> None:
    plan = compiled("forest")
    plan.header["format_version"] = version
    err = refuses(plan, "not supported")
    assert version.split(".")[0] in str(err)


def test_newer_minor_version_is_read() -> None:
    plan = compiled("forest")
    plan.header["format_version"] = "2.99"
    assert parse(plan).version == (2, 99)


@pytest.mark.parametrize("version", ["1", "1.0.0", "one.zero", "", None])
def test_malformed_version_is_refused(version: str | None) -> None:
    plan = compiled("forest")
    plan.header["format_version"] = version
    refuses(plan, "format_version")


def test_missing_version_is_refused() -> None:
    plan = compiled("forest")
    del plan.header["format_version"]
    refuses(plan, "format_version")


@pytest.mark.parametrize("name", ["mlbundle.plan2", "MLBUNDLE.PLAN", "onnx", "", None])
def test_wrong_format_name_is_refused(name: str | None) -> None:
    plan = compiled("forest")
    plan.header["format"] = name
    refuses(plan, "not a mlbundle.plan file")


def test_missing_format_name_is_refused() -> None:
    plan = compiled("forest")
    del plan.header["format"]
    refuses(plan, FORMAT)


# -- column indices ----------------------------------------------------------------


def _column_args() -> list[tuple[str, int, str]]:
    """(plan kind, op index, argument) for every column-index array of every op."""
    out = []
    for kind in ("forest", "multiclass", "binary"):
        for n, op in enumerate(compiled(kind).header["ops"]):
            for name in arg_names(op["kernel"]):
                if name in COLUMN_ARGS:
                    out.append((kind, n, name))
    return out


COLUMN_CASES = _column_args()


@pytest.mark.parametrize("bad", ["width", "negative", "huge"])
@pytest.mark.parametrize(
    "kind, n, name", COLUMN_CASES, ids=[f"{k}-op{n}-{a}" for k, n, a in COLUMN_CASES]
)
def test_out_of_range_column_index_is_refused(kind: str, n: int, name: str, bad: str) -> None:
    plan = compiled(kind)
    op = plan.header["ops"][n]
    key, data = array_of(plan, op, name)
    width = plan.header["width"]
    data = data.copy()
    data[-1] = {"width": width, "negative": -1, "huge": 2**62}[bad]
    plan.arrays[key] = data
    refuses(plan, "out of range")


@pytest.mark.parametrize("field", ["proba", "decision"])
@pytest.mark.parametrize("value", ["width", -1])
def test_out_of_range_output_column_is_refused(field: str, value: Any) -> None:
    plan = compiled("forest")
    cols = list(plan.header["output"][field])
    cols[0] = plan.header["width"] if value == "width" else value
    plan.header["output"][field] = cols
    refuses(plan, "outside the workspace")


def test_onehot_destination_out_of_range_is_refused() -> None:
    plan = compiled("forest")
    op = ops_of(plan, "onehot")[0]
    _, cat_dst = array_of(plan, op, "cat_dst")
    for bad in (plan.header["width"], -2):
        broken = cat_dst.copy()
        broken[0] = bad
        set_array(plan, op, "cat_dst", broken)
        refuses(plan)


def _tree_arrays(plan: CompiledPlan) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    op = ops_of(plan, "tree_sum")[0]
    _, nodes = array_of(plan, op, "nodes")
    _, trees = array_of(plan, op, "trees")
    return op, nodes, trees


def _internal(nodes: np.ndarray, start: int = 0) -> int:
    """An internal node at or after ``start`` whose parent is internal too."""
    ids = np.arange(len(nodes))
    internal = nodes[:, 1] != ids
    return int(next(c for i in ids[start:] if internal[i] for c in (nodes[i, 1],) if internal[c]))


def test_forest_feature_out_of_range_is_refused() -> None:
    plan = compiled("forest")
    op, nodes, _ = _tree_arrays(plan)
    _, src = array_of(plan, op, "src")
    node = _internal(nodes)
    for bad in (src.size, -1, 0xFFFFFF, 1 << 25):
        broken = nodes.copy()
        broken[node, 0] = bad
        set_array(plan, op, "nodes", broken)
        refuses(plan, "feature")


# -- trees that would loop or jump outside their nodes ---------------------------------


@pytest.mark.parametrize("target", ["parent", "root", "first tree's node", "last node", "past end"])
def test_tree_child_pointing_backwards_or_outside_is_refused(target: str) -> None:
    plan = compiled("forest")
    op, nodes, trees = _tree_arrays(plan)
    second = int(trees[1, 0])
    node = _internal(nodes, second)
    parent = next(i for i in range(second, node) if nodes[i, 1] in (node, node - 1))
    value = {
        "parent": parent,
        "root": second,
        "first tree's node": int(trees[0, 0]) + 1,
        "last node": len(nodes) - 1,  # its right sibling would be past the end
        "past end": len(nodes),
    }[target]
    broken = nodes.copy()
    broken[node, 1] = value
    set_array(plan, op, "nodes", broken)
    refuses(plan, "children out of order or out of range")


def test_leaf_must_stay_put() -> None:
    """A self-pointing node is a leaf: a finite threshold or a NaN flag would step off it."""
    plan = compiled("forest")
    op, nodes, _ = _tree_arrays(plan)
    _, thr = array_of(plan, op, "thr")
    node = _internal(nodes)
    broken = nodes.copy()
    broken[node, 1] = node
    set_array(plan, op, "nodes", broken)
    refuses(plan, "leaf")
    leaf = int(np.flatnonzero(nodes[:, 1] == np.arange(len(nodes)))[0])
    flagged = nodes.copy()
    flagged[leaf, 0] |= 1 << 24
    set_array(plan, op, "nodes", flagged)
    refuses(plan, "leaf")


@pytest.mark.parametrize("bad", ["negative", "past end"])
def test_tree_root_out_of_range_is_refused(bad: str) -> None:
    plan = compiled("forest")
    op, nodes, trees = _tree_arrays(plan)
    broken = trees.copy()
    broken[-1, 0] = -1 if bad == "negative" else len(nodes)
    set_array(plan, op, "trees", broken)
    refuses(plan, "roots or depths out of range")


def test_forest_without_trees_is_refused() -> None:
    plan = compiled("forest")
    op, _, _ = _tree_arrays(plan)
    set_array(plan, op, "trees", np.zeros((0, 3), dtype=np.int32))
    refuses(plan)


def test_tree_tables_of_the_wrong_shape_are_refused() -> None:
    for name, shape in (("trees", (-1,)), ("nodes", (-1,)), ("trees", (-1, 1))):
        plan = compiled("forest")
        op, nodes, trees = _tree_arrays(plan)
        data = {"trees": trees, "nodes": nodes}[name]
        set_array(plan, op, name, data.reshape(-1)[: data.size // 3 * 3].reshape(shape).copy())
        refuses(plan)


@pytest.mark.parametrize("divisor", [0.0, -5.0])
def test_forest_divisor_must_be_positive(divisor: float) -> None:
    plan = compiled("forest")
    op, _, _ = _tree_arrays(plan)
    op["args"][arg_names("tree_sum").index("divisor")] = divisor
    refuses(plan, "divisor")


# -- array lengths -----------------------------------------------------------------


LENGTH_CASES: list[tuple[str, str, str, str]] = [
    ("forest", "tree_sum", "thr", "rows"),
    ("forest", "tree_sum", "nodes", "rows"),
    ("forest", "tree_sum", "value", "rows"),
    ("forest", "tree_sum", "start", "rows"),
    ("forest", "onehot", "cat_value", "rows"),
    ("forest", "onehot", "cat_start", "rows"),
    ("forest", "onehot", "cat_dst", "rows"),
    ("forest", "impute", "dst", "rows"),
    ("forest", "scale", "dst", "rows"),
    ("forest", "scale", "divisor", "rows"),
    # impute.fill and scale.offset: unchecked by the old plan.py (names[3:] skipped them)
    ("forest", "impute", "fill", "rows"),
    ("forest", "scale", "offset", "rows"),
    ("multiclass", "linear", "coef", "columns"),
    ("multiclass", "linear", "coef", "rows"),
    ("multiclass", "linear", "intercept", "rows"),
    ("multiclass", "softmax", "dst", "rows"),
    ("binary", "expit_pair", "dst", "rows"),
]


@pytest.mark.parametrize(
    "kind, kernel, name, how", LENGTH_CASES, ids=[f"{c[1]}.{c[2]}-{c[3]}" for c in LENGTH_CASES]
)
def test_mismatched_array_lengths_are_refused(kind: str, kernel: str, name: str, how: str) -> None:
    plan = compiled(kind)
    op = ops_of(plan, kernel)[0]
    _, data = array_of(plan, op, name)
    short = data[:-1] if how == "rows" else data[:, :-1]
    set_array(plan, op, name, short.copy())
    refuses(plan)


def test_onehot_category_table_out_of_order_is_refused() -> None:
    plan = compiled("forest")
    op = ops_of(plan, "onehot")[0]
    _, start = array_of(plan, op, "cat_start")
    broken = start.copy()
    broken[1], broken[2] = broken[2], broken[1]
    set_array(plan, op, "cat_start", broken)
    refuses(plan, "inconsistent category tables")


def test_column_names_must_match_width() -> None:
    plan = compiled("forest")
    plan.header["columns"] = plan.header["columns"][:-1]
    refuses(plan, "column names")


def test_probability_columns_must_match_classes() -> None:
    plan = compiled("forest")
    plan.header["output"]["classes"] = plan.header["output"]["classes"][:-1]
    refuses(plan, "probability columns")


def test_empty_decision_columns_are_refused() -> None:
    plan = compiled("forest")
    plan.header["output"]["decision"] = []
    refuses(plan)


# -- kernels, arguments, dtypes -----------------------------------------------------


def test_unknown_kernel_is_refused() -> None:
    plan = compiled("forest")
    plan.header["ops"][0]["kernel"] = "system"
    refuses(plan, "unknown to this runtime")


@pytest.mark.parametrize("kernel", ["argmax", "positive"])
def test_output_kernels_cannot_be_ops(kernel: str) -> None:
    plan = compiled("forest")
    op = ops_of(plan, "tree_sum")[0]
    op["kernel"] = kernel
    op["args"] = op["args"][:3]
    refuses(plan, "unknown to this runtime")


@pytest.mark.parametrize("change", ["one more", "one less"])
def test_wrong_argument_count_is_refused(change: str) -> None:
    plan = compiled("forest")
    op = ops_of(plan, "scale")[0]
    op["args"] = op["args"] + [op["args"][-1]] if change == "one more" else op["args"][:-1]
    refuses(plan, "arguments, expected")


def test_float_array_for_an_index_argument_is_refused() -> None:
    plan = compiled("forest")
    op = ops_of(plan, "tree_sum")[0]
    _, nodes = array_of(plan, op, "nodes")
    set_array(plan, op, "nodes", nodes.astype(np.float64))
    refuses(plan, "dtype float64")


def test_index_that_does_not_fit_int32_is_refused() -> None:
    """int64 arrays are read into the kernels' int32 tables only when no value changes."""
    plan = compiled("forest")
    op = ops_of(plan, "tree_sum")[0]
    _, nodes = array_of(plan, op, "nodes")
    wide = nodes.astype(np.int64)
    set_array(plan, op, "nodes", wide)
    parse(plan)  # same values, wider type: fine
    wide = wide.copy()
    wide[0, 1] += 1 << 32  # would wrap to a valid-looking index
    set_array(plan, op, "nodes", wide)
    refuses(plan, "do not fit")


def test_missing_array_is_refused() -> None:
    plan = compiled("forest")
    op = ops_of(plan, "scale")[0]
    key, _ = array_of(plan, op, "offset")
    del plan.arrays[key]
    refuses(plan)


# -- written plans -------------------------------------------------------------------


def _write(plan: CompiledPlan, tmp_path: Path, name: str = "plan") -> Path:
    out = tmp_path / name
    plan.write(out)
    return out


def _same_plan(a: Plan, b: Plan) -> None:
    assert (a.version, a.inputs, a.width, a.columns, a.output, a.meta) == (
        b.version,
        b.inputs,
        b.width,
        b.columns,
        b.output,
        b.meta,
    )
    assert len(a.ops) == len(b.ops)
    for x, y in zip(a.ops, b.ops, strict=True):
        assert (x.kernel, x.origin, x.message) == (y.kernel, y.origin, y.message)
        for p, q in zip(x.args, y.args, strict=True):
            if isinstance(p, np.ndarray):
                assert p.dtype == q.dtype and np.array_equal(p, q)
            else:
                assert p == q and type(p) is type(q)


@pytest.mark.parametrize("kind", ["forest", "multiclass", "binary"])
def test_written_plan_reads_back_identically(kind: str, tmp_path: Path) -> None:
    plan = compiled(kind)
    folder = _write(plan, tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == sorted([ARRAYS_FILE, PLAN_FILE])
    _same_plan(load_plan(folder), plan.load())


@pytest.mark.parametrize("kind", ["forest", "multiclass", "binary"])
def test_written_plan_scores_like_scikit_learn(kind: str, tmp_path: Path) -> None:
    model = fitted(kind)
    scorer = Scorer(load_plan(_write(compiled(kind), tmp_path)), kernels())
    df = _frame()[0]
    assert_parity(model, None, df, scorer=scorer)


@pytest.mark.parametrize(
    "kind",
    [
        "forest",
        "multiclass",
        "binary",
    ],
)
def test_compiled_plan_scores_identically_to_written_plan(kind: str, tmp_path: Path) -> None:
    """The build checks parity on ``CompiledPlan.load()``; the app runs the written plan."""
    plan = compile_estimators(fitted(kind))  # as the build gets it: no defensive copies
    df = _frame()[0]
    on_disk = Scorer(load_plan(_write(plan, tmp_path)), kernels())
    in_memory = Scorer(plan.load(), kernels())
    records = to_records(on_disk, df)
    a = on_disk.score_records(records)
    b = in_memory.score_records(records)
    assert a.labels() == b.labels()
    assert a.proba is not None and b.proba is not None
    assert np.array_equal(a.proba, b.proba)


def test_write_is_deterministic_and_replaces_an_existing_plan(tmp_path: Path) -> None:
    plan = compiled("forest")
    first = _write(plan, tmp_path, "one")
    second = _write(plan, tmp_path, "two")
    for name in (PLAN_FILE, ARRAYS_FILE):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    (first / "stale.txt").write_text("old")
    _write(compiled("binary"), tmp_path, "one")
    assert not (first / "stale.txt").exists()
    assert load_plan(first).output.label_rule == "positive"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_written_plan_json_is_plain_json(tmp_path: Path) -> None:
    folder = _write(compiled("multiclass"), tmp_path)
    header = json.loads((folder / PLAN_FILE).read_text(encoding="utf-8"))
    assert header["format"] == FORMAT
    assert header["output"]["classes"] == [0, 1, 2]
    assert {i["name"] for i in header["inputs"]} == {"color", "a", "b", "size"}


@pytest.mark.parametrize("missing", [PLAN_FILE, ARRAYS_FILE])
def test_missing_plan_file_is_refused(missing: str, tmp_path: Path) -> None:
    folder = _write(compiled("forest"), tmp_path)
    (folder / missing).unlink()
    with pytest.raises(PlanError, match="not a scoring plan"):
        load_plan(folder)


def test_corrupt_plan_json_is_refused(tmp_path: Path) -> None:
    folder = _write(compiled("forest"), tmp_path)
    (folder / PLAN_FILE).write_text('{"format": "mlbundle.plan", ', encoding="utf-8")
    with pytest.raises(PlanError, match="not valid JSON"):
        load_plan(folder)


def test_version_is_checked_when_loading_from_disk(tmp_path: Path) -> None:
    folder = _write(compiled("forest"), tmp_path)
    header = json.loads((folder / PLAN_FILE).read_text(encoding="utf-8"))
    header["format_version"] = "3.0"
    (folder / PLAN_FILE).write_text(json.dumps(header), encoding="utf-8")
    with pytest.raises(PlanError, match="3.0"):
        load_plan(folder)


# -- no unpickling -------------------------------------------------------------------

UNPICKLED: list[str] = []


def _record_unpickle(tag: str) -> str:
    UNPICKLED.append(tag)
    return tag


class Payload:
    """Unpickling this object calls _record_unpickle: proof that pickle ran."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (_record_unpickle, ("unpickled",))


def _with_object_array(tmp_path: Path) -> Path:
    plan = compiled("forest")
    folder = _write(plan, tmp_path)
    with np.load(folder / ARRAYS_FILE) as npz:
        arrays = {k: npz[k] for k in npz.files}
    op = ops_of(plan, "scale")[0]
    key, _ = array_of(plan, op, "offset")
    arrays[key] = np.array([Payload(), Payload()], dtype=object)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    (folder / ARRAYS_FILE).write_bytes(buf.getvalue())
    return folder


def test_payload_would_run_if_unpickled() -> None:
    """The payload is live: this is what allow_pickle=False must prevent."""
    UNPICKLED.clear()
    pickle.loads(pickle.dumps(Payload()))
    assert UNPICKLED == ["unpickled"]
    UNPICKLED.clear()


def test_object_array_is_refused_not_unpickled(tmp_path: Path) -> None:
    folder = _with_object_array(tmp_path)
    UNPICKLED.clear()
    with pytest.raises(ValueError, match="(?i)pickle"):
        load_plan(folder)
    assert UNPICKLED == []


def test_object_array_refusal_is_a_plan_error(tmp_path: Path) -> None:
    folder = _with_object_array(tmp_path)
    with pytest.raises(PlanError):
        load_plan(folder)


def test_pickle_file_as_arrays_is_refused_not_unpickled(tmp_path: Path) -> None:
    folder = _write(compiled("forest"), tmp_path)
    (folder / ARRAYS_FILE).write_bytes(pickle.dumps({"a0": Payload()}))
    UNPICKLED.clear()
    with pytest.raises(ValueError):
        load_plan(folder)
    assert UNPICKLED == []


@pytest.mark.parametrize("key", ["width", "ops", "output", "inputs"])
def test_a_header_without_a_required_key_is_a_plan_error(key: str) -> None:
    plan = compiled("forest")
    del plan.header[key]
    refuses(plan, f"'{key}' is missing")


@pytest.mark.parametrize(
    ("where", "value", "match"),
    [
        (("width",), "12", "'width' must be an integer"),
        (("width",), True, "'width' must be an integer"),
        (("ops", 0, "args"), {"a": 1}, "'args' must be a list"),
        (("output", "decision"), [0.5], "must hold column indices"),
        (("output", "classes"), [[1], {}], "must hold labels"),
        (("inputs", 0), "a", "must hold objects"),
    ],
)
def test_values_of_the_wrong_json_type_are_plan_errors(
    where: tuple[Any, ...], value: Any, match: str
) -> None:
    plan = compiled("forest")
    node = plan.header
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    refuses(plan, match)


def test_a_two_dimensional_array_where_a_vector_is_due_is_a_plan_error() -> None:
    plan = compiled("forest")
    op = ops_of(plan, "check_values")[0]
    _, cols = array_of(plan, op, "cols")
    set_array(plan, op, "cols", cols.reshape(1, -1))
    refuses(plan, "2-d array where the kernel takes 1-d")


def test_int32_tree_tables_cannot_wrap_past_the_checks() -> None:
    plan = compiled("forest")
    op = ops_of(plan, "tree_sum")[0]
    _, nodes = array_of(plan, op, "nodes")
    nodes = nodes.copy()
    nodes[0, 1] = np.iinfo(np.int32).max  # child + 1 would wrap to a negative index
    set_array(plan, op, "nodes", nodes)
    refuses(plan, "children out of order or out of range")
