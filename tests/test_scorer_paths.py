"""The Scorer's entry points agree with each other, on one thread or several.

``score_rows`` (arrays), ``score_record`` (one dict) and ``score_records`` must give
the same bytes, and a batch split across threads must give the same bytes as one
thread, with errors naming the row of the whole batch.
"""

from __future__ import annotations

import pickle
import threading
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import (
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from bundler.backends import compile_aot
from bundler.compiler import compile_estimators
from mlbundle_runtime.backend import load_kernels
from mlbundle_runtime.inputs import InputError
from mlbundle_runtime.scorer import BLOCK_ROWS, Scorer
from tests._parity import kernels


@pytest.fixture(scope="module")
def forest() -> tuple[Any, np.ndarray]:
    X, y = load_breast_cancer(return_X_y=True)
    return RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y), X


@pytest.fixture(scope="module")
def mixed() -> tuple[Any, pd.DataFrame]:
    rng = np.random.RandomState(0)
    df = pd.DataFrame(
        {
            "a": rng.randn(300),
            "color": pd.Series(rng.choice(["red", "green", "blue"], 300), dtype=object),
        }
    )
    df.loc[::7, "a"] = np.nan
    y = (df["a"].fillna(0) > 0).astype(int)
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["a"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["color"]),
        ]
    )
    return make_pipeline(pre, LogisticRegression()).fit(df, y), df


def _scorer(model: Any, threads: int = 1, kernel_set: Any = None) -> Scorer:
    return Scorer(compile_estimators(model).load(), kernel_set or kernels(), threads=threads)


def _same(a: Any, b: Any) -> None:
    assert a.labels() == b.labels()
    assert np.array_equal(a.proba, b.proba)


def test_rows_records_and_record_agree(forest: tuple[Any, np.ndarray]) -> None:
    model, X = forest
    scorer = _scorer(model)
    names = scorer.plan.input_names
    records = [dict(zip(names, row, strict=True)) for row in X[:50].tolist()]
    by_rows = scorer.score_rows(X[:50])
    _same(by_rows, scorer.score_records(records))
    assert np.array_equal(by_rows.proba, model.predict_proba(X[:50]))
    for r in (0, 17, 49):
        _same(scorer.score_record(records[r]), scorer.score_rows(X[r : r + 1]))


def test_threads_give_the_same_bytes(forest: tuple[Any, np.ndarray]) -> None:
    model, X = forest
    rows = np.tile(X, (8, 1))[: 3 * BLOCK_ROWS + 5]
    one = _scorer(model, threads=1).score_rows(rows)
    for threads in (2, 3):
        _same(_scorer(model, threads=threads).score_rows(rows), one)
    assert np.array_equal(one.proba, model.predict_proba(rows))


def test_error_in_a_later_block_names_the_row_of_the_batch(
    forest: tuple[Any, np.ndarray],
) -> None:
    model, X = forest
    rows = np.tile(X, (8, 1))[: 3 * BLOCK_ROWS]
    rows[2 * BLOCK_ROWS + 11, 4] = np.inf
    with pytest.raises(InputError, match=rf"row {2 * BLOCK_ROWS + 12}, field 'x4'"):
        _scorer(model, threads=3).score_rows(rows)


@pytest.mark.parametrize("n", [6, 300], ids=["few rows", "many rows"])
def test_mixed_inputs_as_an_object_array(mixed: tuple[Any, pd.DataFrame], n: int) -> None:
    model, df = mixed
    scorer = _scorer(model)
    df = df.head(n)
    rows = df.to_numpy(dtype=object)
    rows[3, 0] = None  # missing, as in a record
    rows[4, 1] = "purple"  # unknown category: ignored by the one-hot encoder
    expected = df.copy()
    expected.loc[3, "a"] = np.nan
    expected.loc[4, "color"] = "purple"
    got = scorer.score_rows(rows)
    assert got.labels() == model.predict(expected).tolist()
    assert np.abs(got.proba - model.predict_proba(expected)).max() <= 1e-9
    _same(scorer.score_record({"a": None, "color": rows[3, 1]}), scorer.score_rows(rows[[3]]))
    _same(scorer.score_record({"a": rows[4, 0], "color": "purple"}), scorer.score_rows(rows[[4]]))


@pytest.mark.parametrize(
    "cell, column, match",
    [
        ("1.5", 0, r"row 3, field 'a': expected a number or null, got str '1.5'"),
        (True, 0, r"row 3, field 'a': expected a number or null, got bool True"),
        (3, 1, r"row 3, field 'color': expected one of 'blue', 'green', 'red'"),
    ],
)
@pytest.mark.parametrize("n", [4, 50], ids=["few rows", "many rows"])
def test_wrong_cells_are_named(
    mixed: tuple[Any, pd.DataFrame], cell: Any, column: int, match: str, n: int
) -> None:
    """Cell by cell (a few rows) and column at a time (many): the same message."""
    model, df = mixed
    rows = df.head(n).to_numpy(dtype=object)
    rows[2, column] = cell
    with pytest.raises(InputError, match=match):
        _scorer(model).score_rows(rows)


@pytest.mark.parametrize("n", [6, 300, 2 * BLOCK_ROWS + 7], ids=["few", "many", "blocks"])
def test_mixed_inputs_as_columns(mixed: tuple[Any, pd.DataFrame], n: int) -> None:
    """A DataFrame, or a dict of (n, 1) feeds as ONNX Runtime takes: the object array's bytes."""
    model, df = mixed
    df = pd.concat([df] * 8, ignore_index=True).head(n)
    df.loc[3, "color"] = np.nan  # a missing category, as pandas holds it
    df.loc[4, "color"] = "purple"  # unknown: ignored by the one-hot encoder
    df["unused"] = "x"  # extra columns are ignored
    rows = df[["a", "color"]].to_numpy(dtype=object)
    rows[3, 1] = None
    scorer = _scorer(model, threads=2)
    expected = scorer.score_rows(rows)
    _same(scorer.score_columns(df), expected)
    feeds = {"color": df["color"].to_numpy(dtype=object)[:, None], "a": df["a"].to_numpy()[:, None]}
    _same(scorer.score_columns(feeds), expected)
    assert np.abs(expected.proba - model.predict_proba(df[["a", "color"]])).max() <= 1e-9


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda c: c.pop("color"), r"columns lack input\(s\) color; expected a, color"),
        (lambda c: c.update(a=c["a"][:-1]), r"column 'color' has 50 rows, column 'a' has 49"),
        (lambda c: c.update(a=np.zeros((50, 2))), r"column 'a': expected one value per row"),
        (lambda c: c["color"].__setitem__(7, 3), r"row 8, field 'color': expected one of"),
        (lambda c: c["a"].__setitem__(9, "x"), r"row 10, field 'a': expected a number or null"),
    ],
    ids=["missing", "length", "2-d", "category", "number"],
)
def test_wrong_columns_are_named(mixed: tuple[Any, pd.DataFrame], change: Any, match: str) -> None:
    model, df = mixed
    columns = {
        "a": df["a"].to_numpy(dtype=object)[:50],
        "color": df["color"].to_numpy(dtype=object)[:50].copy(),
    }
    columns["a"][:] = [float(v) for v in columns["a"]]
    change(columns)
    with pytest.raises(InputError, match=match):
        _scorer(model).score_columns(columns)
    with pytest.raises(InputError, match="expected columns by name"):
        _scorer(model).score_columns([[1.0, "red"]])


def test_wrong_shape_is_named(forest: tuple[Any, np.ndarray]) -> None:
    model, X = forest
    with pytest.raises(InputError, match="expected rows of 30 inputs .* shape \\(2, 29\\)"):
        _scorer(model).score_rows(X[:2, :29])
    with pytest.raises(InputError, match="shape \\(30,\\)"):
        _scorer(model).score_rows(X[0])
    with pytest.raises(InputError, match="shape \\(\\)"):
        _scorer(model).score_rows(np.float64(1.0) * np.ones(()))


def test_a_single_numeric_row_takes_the_short_path_and_its_errors_name_the_row(
    forest: tuple[Any, np.ndarray],
) -> None:
    model, X = forest
    scorer = _scorer(model)
    whole = scorer.score_rows(np.ascontiguousarray(X[:300]))
    for r in (0, 7, 299):
        one = scorer.score_rows(np.ascontiguousarray(X[r : r + 1]))
        assert np.array_equal(one.proba, whole.proba[r : r + 1])
        assert np.array_equal(one.label_index, whole.label_index[r : r + 1])
    bad = np.ascontiguousarray(X[:3]).copy()
    bad[2, 4] = np.inf
    with pytest.raises(InputError, match=r"row 3, field 'x4': an infinite value"):
        scorer.score_rows(bad)


def test_record_with_wrong_fields_is_named(forest: tuple[Any, np.ndarray]) -> None:
    model, X = forest
    scorer = _scorer(model)
    record = dict(zip(scorer.plan.input_names, X[0].tolist(), strict=True))
    del record["x3"]
    record["extra"] = 1.0
    with pytest.raises(InputError, match="record 1: missing field.*x3.*unknown field.*extra"):
        scorer.score_record(record)
    with pytest.raises(InputError, match="record 1: expected an object"):
        scorer.score_record([1.0, 2.0])  # type: ignore[arg-type]


def test_hgb_with_nan_runs_the_compact_kernel(forest: tuple[Any, np.ndarray]) -> None:
    _, X = forest
    rng = np.random.RandomState(1)
    Xn = X.copy()
    Xn[rng.rand(*X.shape) < 0.1] = np.nan
    y = (X[:, 0] > np.median(X[:, 0])).astype(int)
    model = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(Xn, y)
    scorer = _scorer(model, threads=2)
    assert "tree_sum" in {op.kernel for op in scorer.plan.ops}
    rows = np.tile(Xn, (8, 1))
    got = scorer.score_rows(rows)
    assert got.labels() == model.predict(rows).tolist()
    assert np.array_equal(got.proba, model.predict_proba(rows))


def test_compiled_kernels_release_the_gil(forest: tuple[Any, np.ndarray]) -> None:
    """While one thread scores a large batch, another keeps running Python: the
    aot extension's wrappers release the GIL (so row blocks run in parallel)."""
    model, X = forest
    scorer = _scorer(model, threads=1, kernel_set=load_kernels("aot", compile_aot()))
    rows = np.tile(X, (300, 1))  # ~170k rows: a kernel call of a good fraction of a second
    started = threading.Event()

    def score() -> None:
        started.set()
        scorer.score_rows(rows)

    worker = threading.Thread(target=score)
    worker.start()
    started.wait()
    spins = 0
    while worker.is_alive():
        spins += 1
    worker.join()
    # with the GIL held through the call this loop would get at most a few turns
    assert spins > 10_000


def test_large_batches_go_block_by_block_with_the_same_bytes(
    forest: tuple[Any, np.ndarray], mixed: tuple[Any, pd.DataFrame]
) -> None:
    """Past BLOCK_ROWS, rows and records are scored a block at a time (one thread or
    several): the same bytes as one workspace for the whole batch."""
    model, X = forest
    rows = np.tile(X, (8, 1))[: 3 * BLOCK_ROWS + 7]
    whole = _scorer(model).run(_filled(_scorer(model), rows), str)
    for threads in (1, 2):
        scorer = _scorer(model, threads=threads)
        _same(scorer.score_rows(rows), whole)
        names = scorer.plan.input_names
        records = [dict(zip(names, r, strict=True)) for r in rows.tolist()]
        _same(scorer.score_records(records), whole)
    pipe, df = mixed
    big = pd.concat([df] * 12, ignore_index=True)
    objects = big.to_numpy(dtype=object)
    got = _scorer(pipe, threads=2).score_rows(objects)
    assert got.labels() == pipe.predict(big).tolist()
    assert np.abs(got.proba - pipe.predict_proba(big)).max() <= 1e-9
    assert got.extras and got.extras[0][1].shape == (len(big), 1)


def _filled(scorer: Scorer, rows: np.ndarray) -> np.ndarray:
    ws = np.empty((len(rows), scorer.plan.width))
    ws[:, : rows.shape[1]] = rows
    return ws


def test_errors_in_a_later_block_name_the_row_of_the_batch(
    forest: tuple[Any, np.ndarray], mixed: tuple[Any, pd.DataFrame]
) -> None:
    model, X = forest
    bad = 2 * BLOCK_ROWS + 5
    scorer = _scorer(model, threads=2)
    names = scorer.plan.input_names
    records = [dict(zip(names, r, strict=True)) for r in np.tile(X, (8, 1)).tolist()]
    records[bad]["x2"] = "high"
    with pytest.raises(InputError, match=rf"record {bad + 1}, field 'x2': expected a number"):
        scorer.score_records(records)
    pipe, df = mixed
    objects = pd.concat([df] * 12, ignore_index=True).to_numpy(dtype=object)
    objects[bad, 1] = 7
    with pytest.raises(InputError, match=rf"row {bad + 1}, field 'color': expected one of"):
        _scorer(pipe, threads=2).score_rows(objects)


@pytest.fixture(scope="module")
def boosted(forest: tuple[Any, np.ndarray]) -> tuple[Scorer, np.ndarray]:
    """A regression's scorer (its single row's value is a view of the row's workspace)."""
    _, X = forest
    model = GradientBoostingRegressor(n_estimators=20, random_state=0).fit(X, X[:, 0] * 2 - X[:, 1])
    return _scorer(model), X


def test_single_rows_on_two_threads_get_their_own_results(
    forest: tuple[Any, np.ndarray], boosted: tuple[Scorer, np.ndarray]
) -> None:
    """The single-row path shares nothing between calls: two threads scoring rows at
    once each get their own row's result, as the batch gives it."""
    model, X = forest
    for scorer in (_scorer(model), boosted[0]):
        assert _wrong_on_two_threads(scorer, X) == []


def _wrong_on_two_threads(scorer: Scorer, X: np.ndarray) -> list[int]:
    whole = scorer.score_rows(X)
    names = scorer.plan.input_names
    records = [dict(zip(names, row, strict=True)) for row in X.tolist()]
    wrong: list[int] = []

    def score(rows: range) -> None:
        for _ in range(3):
            for r in rows:
                for one in (scorer.score_rows(X[r : r + 1]), scorer.score_record(records[r])):
                    if one.record(0) != whole.record(r):
                        wrong.append(r)

    threads = [threading.Thread(target=score, args=(range(k, len(X), 2),)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return wrong


def test_a_single_rows_result_is_not_changed_by_a_later_call(
    forest: tuple[Any, np.ndarray], boosted: tuple[Scorer, np.ndarray]
) -> None:
    model, X = forest
    for scorer in (_scorer(model), boosted[0]):
        names = scorer.plan.input_names
        first = scorer.score_rows(X[:1])
        first_record = scorer.score_record(dict(zip(names, X[0].tolist(), strict=True)))
        kept = [first.record(0), first_record.record(0), first.labels(), first_record.labels()]
        for r in range(1, 40):
            scorer.score_rows(X[r : r + 1])
            scorer.score_record(dict(zip(names, X[r].tolist(), strict=True)))
        assert kept == [
            first.record(0),
            first_record.record(0),
            first.labels(),
            first_record.labels(),
        ]
        assert kept[0] == scorer.score_rows(X).record(0)


@pytest.mark.parametrize(
    "change",
    [
        {"x3": None},
        {"x3": float("nan"), "x5": None},
        {"x3": 1},
        {"x3": 10**400},
        {"x3": "1.5"},
        {"x3": True},
        {"x3": np.float64(0.25)},
        {"x3": [1.0]},
    ],
)
def test_a_record_scores_as_the_batch_of_one_does(
    forest: tuple[Any, np.ndarray], boosted: tuple[Scorer, np.ndarray], change: dict[str, Any]
) -> None:
    """Missing, None, NaN, integer, too-large, string and other cells: the single record's
    result and error are the batch path's (``score_records``) to the message."""
    model, X = forest
    for scorer in (_scorer(model), boosted[0]):
        record = dict(zip(scorer.plan.input_names, X[3].tolist(), strict=True)) | change
        try:
            want = scorer.score_records([record])
        except InputError as exc:
            with pytest.raises(InputError) as got:
                scorer.score_record(record)
            assert str(got.value) == str(exc)
            continue
        one = scorer.score_record(record)
        assert one.record(0) == want.record(0)
        assert one.labels() == want.labels()


def test_a_record_of_one_field_and_a_short_record(forest: tuple[Any, np.ndarray]) -> None:
    _, X = forest
    model = LogisticRegression().fit(X[:, :1], (X[:, 0] > 14).astype(int))
    scorer = _scorer(model)
    (name,) = scorer.plan.input_names
    assert scorer.score_record({name: 15.0}).record(0) == scorer.score_rows(
        X[:1, :1] * 0 + 15
    ).record(0)
    with pytest.raises(InputError, match="record 1: missing field"):
        scorer.score_record({})


def test_an_unpickled_single_row_takes_the_one_row_path(
    forest: tuple[Any, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unpickled array's float64 dtype is a copy of numpy's, not numpy's own object:
    its single row still takes the one-row path, with the same result."""
    model, X = forest
    scorer = _scorer(model)
    want = scorer.score_rows(X[5:6]).record(0)
    row = pickle.loads(pickle.dumps(np.ascontiguousarray(X[5:6])))

    def refuse(*args: Any) -> Any:
        raise AssertionError("not the one-row path")

    monkeypatch.setattr(scorer, "_score_small", refuse)
    monkeypatch.setattr(scorer, "_run_small", refuse)
    assert scorer.score_rows(row).record(0) == want
    record = dict(zip(scorer.plan.input_names, X[5].tolist(), strict=True))
    assert scorer.score_record(record).record(0) == want
