"""The fast paths of the dense kernels compute exactly what the plain loops compute.

``mlp_dense`` reorders its loops (blocks of rows, outputs innermost, or eight rows side
by side) but must still sum each output in input order; ``check_values``, ``impute``
and ``scale`` take a vectorised path when their columns are consecutive and must give
the same values, and refuse the same first cell, as on scattered columns.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests._parity import kernels


def _dense_reference(x: np.ndarray, coef: np.ndarray, intercept: np.ndarray, relu: bool):
    """The in-order sum, one output at a time, in Python floats (IEEE doubles)."""
    n, n_in = x.shape
    out = np.empty((n, coef.shape[1]))
    for i in range(n):
        for j in range(coef.shape[1]):
            acc = 0.0
            for k in range(n_in):
                acc += float(x[i, k]) * float(coef[k, j])
            z = acc + float(intercept[j])
            out[i, j] = 0.0 if relu and z < 0.0 else z
    return out


@pytest.mark.parametrize("n_in", [1, 3, 4, 9])
@pytest.mark.parametrize("n_out", [1, 5, 8, 21])
def test_mlp_dense_sums_in_input_order(n_in: int, n_out: int) -> None:
    rng = np.random.default_rng(n_in * 100 + n_out)
    scale = np.exp(rng.uniform(-20, 20, size=(n_in, n_out)))  # wide magnitudes: order matters
    coef = rng.standard_normal((n_in, n_out)) * scale
    intercept = rng.standard_normal(n_out)
    for n in (1, 7, 8, 9, 16, 17, 40):
        x = rng.standard_normal((n, n_in)) * 1e3
        # inputs scattered over the workspace, outputs after a gap
        width = 2 * n_in + n_out + 3
        src = rng.permutation(2 * n_in)[:n_in].astype(np.int64)
        dst = (2 * n_in + 3 + rng.permutation(n_out)).astype(np.int64)
        for activation, relu in ((0, False), (3, True)):
            ws = np.full((n, width), np.nan)
            ws[:, src] = x
            kernels().mlp_dense(ws, src, dst, coef, intercept, activation)
            expected = _dense_reference(x, coef, intercept, relu)
            np.testing.assert_array_equal(ws[:, dst], expected, err_msg=f"{n} rows")
            np.testing.assert_array_equal(ws[:, src], x)  # inputs untouched


SPECIAL = [np.nan, np.inf, -np.inf, 3.5e38, -3.5e38, 3.4028235677973366e38, 3.4028235e38, -0.0]


@pytest.mark.parametrize("m", [1, 4, 30])
def test_consecutive_columns_match_scattered(m: int) -> None:
    rng = np.random.default_rng(m)
    n = 50
    data = rng.standard_normal((n, m)) * 10
    mask = rng.random((n, m)) < 0.05
    data[mask] = rng.choice(SPECIAL, mask.sum())
    offset = rng.standard_normal(m)
    divisor = rng.uniform(0.5, 2.0, m)
    fill = rng.standard_normal(m)
    width = 3 * m + 4
    layouts = {
        "consecutive": (np.arange(1, m + 1), np.arange(m + 2, 2 * m + 2)),
        "scattered": (rng.permutation(m + 1)[:m] * 2 + 1, np.arange(2 * m + 3, 3 * m + 3)[::-1]),
    }
    results = {}
    for name, (src, dst) in layouts.items():
        src = np.ascontiguousarray(src, dtype=np.int64)
        dst = np.ascontiguousarray(dst, dtype=np.int64)
        got = []
        for allow_nan in (0, 1):
            for float32 in (0, 1):
                # the first refused cell of every row, as a row of its own
                firsts = []
                for i in range(n):
                    ws = np.zeros((1, width))
                    ws[0, src] = data[i]
                    firsts.append(kernels().check_values(ws, src, allow_nan, float32))
                ws = np.zeros((n, width))
                ws[:, src] = data
                got.append((kernels().check_values(ws, src, allow_nan, float32), firsts))
        for kernel, args in (("impute", (fill,)), ("scale", (offset, divisor))):
            ws = np.zeros((n, width))
            ws[:, src] = data
            getattr(kernels(), kernel)(ws, src, dst, *args)
            got.append(ws[:, dst].copy())
        results[name] = got
    a, b = results["consecutive"], results["scattered"]
    for x, y in zip(a[:4], b[:4], strict=True):
        assert x == y
    for x, y in zip(a[4:], b[4:], strict=True):
        np.testing.assert_array_equal(x, y)
    # and the values are the plain formulas
    np.testing.assert_array_equal(a[4], np.where(np.isnan(data), fill, data))
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(a[5], (data - offset) / divisor)


# numpy's pairwise summation: one helper (mlbundle_runtime/kernels/sums.py) serves every kernel that
# reproduces ``arr.sum(axis=1)``; lengths around its 8-value blocks and 128-value splits.
SUM_LENGTHS = [1, 2, 7, 8, 9, 15, 16, 17, 127, 128, 129, 136, 255, 256, 257, 1031, 2053]


@pytest.mark.parametrize("m", SUM_LENGTHS)
def test_l1_normalizer_sums_as_numpy(m: int) -> None:
    rng = np.random.default_rng(m)
    n = 6
    x = rng.standard_normal((n, m)) * np.exp(rng.uniform(-30, 30, (n, m)))  # order matters
    src = np.arange(m, dtype=np.int64)
    dst = np.arange(m, 2 * m, dtype=np.int64)
    ws = np.zeros((n, 2 * m))
    ws[:, src] = x
    kernels().normalize_rows(ws, src, dst, 0, 0, 0)  # l1, C order, only a zero norm kept
    expected = x / np.abs(x).sum(axis=1, keepdims=True)
    assert ws[:, dst].tobytes() == expected.tobytes()


@pytest.mark.parametrize("k", [3, 8, 9, 129, 200])
def test_knn_mean_is_numpys_mean_to_the_sign_of_zero(k: int) -> None:
    rng = np.random.default_rng(k)
    n, n_train = 5, k + 4
    idx = np.stack([rng.permutation(n_train)[:k] for _ in range(n)])
    ws = np.zeros((n, 2 * k + 1))
    ws[:, :k] = idx
    ws[:, k : 2 * k] = 1.0  # distances (unused by uniform weights)
    src = np.arange(2 * k, dtype=np.int64)
    dst = np.array([2 * k], dtype=np.int64)
    for y in (rng.standard_normal(n_train) * 1e6, np.full(n_train, -0.0)):
        assert kernels().knn_mean(ws, src, dst, y, 0) == -1
        expected = np.mean(y[idx], axis=1)  # KNeighborsRegressor's uniform prediction
        assert ws[:, 2 * k].tobytes() == expected.tobytes()  # -0.0 targets average to +0.0
