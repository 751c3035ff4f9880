"""Input validation, imputation, affine maps, one-hot, linear maps and link functions.

Plain, Numba-compatible Python; see ``app/mlbundle_runtime/kernels/__init__.py`` for the rules
every kernel follows.
"""

from __future__ import annotations

import numpy as np

from mlbundle_runtime.kernels._types import F1, F2, I1, sig

# Float32 limits used by trees: scikit-learn casts X to float32 and refuses
# values that overflow to infinity.
_F32_MAX = 3.4028234663852886e38


def check_values(ws, cols, allow_nan, float32):
    """Mirror scikit-learn's ``validate_data`` finiteness rules for ``cols``.

    A first pass per row only asks whether every ``|x|`` is within the largest finite
    value (vectorised when ``cols`` are consecutive); a row that fails it (NaN, infinity,
    beyond float32) is examined value by value, so the verdict and the position returned
    are the ones of the plain scan.
    """
    n = ws.shape[0]
    m = cols.shape[0]
    limit = _F32_MAX if float32 != 0 else 1.7976931348623157e308
    c0 = cols[0] if m > 0 else 0
    consecutive = True
    for j in range(m):
        if cols[j] != c0 + j:
            consecutive = False
    for i in range(n):
        ok = True
        if consecutive:
            row = ws[i, c0 : c0 + m]
            for j in range(m):
                ok &= abs(row[j]) <= limit
        else:
            for j in range(m):
                ok &= abs(ws[i, cols[j]]) <= limit
        if ok:
            continue
        for j in range(m):
            x = ws[i, cols[j]]
            if np.isnan(x):
                if allow_nan == 0:
                    return i * m + j
            elif np.isinf(x):
                return i * m + j
            elif float32 != 0 and (x > _F32_MAX or x < -_F32_MAX) and np.isinf(np.float32(x)):
                # Beyond float32's range (past the rounding margin): scikit-learn's
                # cast would make it infinite and refuse it.
                return i * m + j
    return -1


def impute(ws, src, dst, fill):
    """SimpleImputer with ``missing_values=nan``: NaN becomes the column's fill."""
    n = ws.shape[0]
    m = src.shape[0]
    s0 = src[0] if m > 0 else 0
    d0 = dst[0] if m > 0 else 0
    consecutive = True
    for j in range(m):
        if src[j] != s0 + j or dst[j] != d0 + j:
            consecutive = False
    for i in range(n):
        if consecutive:
            a = ws[i, s0 : s0 + m]
            b = ws[i, d0 : d0 + m]
            for j in range(m):
                x = a[j]
                b[j] = fill[j] if np.isnan(x) else x
        else:
            for j in range(m):
                x = ws[i, src[j]]
                ws[i, dst[j]] = fill[j] if np.isnan(x) else x


def impute_value(ws, src, dst, marker, fill):
    """SimpleImputer with a missing marker other than NaN (``""``, ``"?"``, ``-1``).

    A cell equal to ``marker[j]`` (a category's code, or a number) becomes ``fill[j]``;
    a NaN marker matches nothing. NaN is then not missing but refused, as scikit-learn's
    ``validate_data`` refuses it ("Input contains NaN"): the first NaN's position is
    returned.
    """
    n = ws.shape[0]
    m = src.shape[0]
    for i in range(n):
        for j in range(m):
            x = ws[i, src[j]]
            if np.isnan(x):
                return i * m + j
            ws[i, dst[j]] = fill[j] if x == marker[j] else x
    return -1


def scale(ws, src, dst, offset, divisor):
    """``(x - offset) / divisor`` per column, in scikit-learn's order of operations.

    ``np.divide`` divides as numpy does (no ZeroDivisionError check), which lets the
    loop over consecutive columns be vectorised.
    """
    n = ws.shape[0]
    m = src.shape[0]
    s0 = src[0] if m > 0 else 0
    d0 = dst[0] if m > 0 else 0
    consecutive = True
    for j in range(m):
        if src[j] != s0 + j or dst[j] != d0 + j:
            consecutive = False
    for i in range(n):
        if consecutive:
            a = ws[i, s0 : s0 + m]
            b = ws[i, d0 : d0 + m]
            for j in range(m):
                b[j] = np.divide(a[j] - offset[j], divisor[j])
        else:
            for j in range(m):
                ws[i, dst[j]] = np.divide(ws[i, src[j]] - offset[j], divisor[j])


def onehot(ws, src, cat_start, cat_value, cat_dst, dst, unknown_error):
    """One-hot encode ``src`` columns.

    Input column ``k`` owns categories ``cat_start[k]:cat_start[k + 1]`` of
    ``cat_value``; category ``c`` sets column ``cat_dst[c]`` (or nothing when
    -1, a dropped category). NaN matches a NaN category. An unmatched value is
    an error when ``unknown_error`` is set, else it encodes as all zeros.
    """
    n = ws.shape[0]
    m = src.shape[0]
    for i in range(n):
        for j in range(dst.shape[0]):
            ws[i, dst[j]] = 0.0
        for k in range(m):
            x = ws[i, src[k]]
            found = -1
            for c in range(cat_start[k], cat_start[k + 1]):
                v = cat_value[c]
                if x == v or (np.isnan(x) and np.isnan(v)):
                    found = c
                    break
            if found < 0:
                if unknown_error != 0:
                    return i * m + k
            elif cat_dst[found] >= 0:
                ws[i, cat_dst[found]] = 1.0
    return -1


def linear(ws, src, dst, coef, intercept):
    """``X @ coef.T + intercept`` for the columns ``src``."""
    n = ws.shape[0]
    for i in range(n):
        for j in range(dst.shape[0]):
            acc = 0.0
            for k in range(src.shape[0]):
                acc += ws[i, src[k]] * coef[j, k]
            ws[i, dst[j]] = acc + intercept[j]


def expit_pair(ws, src, dst):
    """Binary probabilities from one decision value: ``[1 - expit(d), expit(d)]``."""
    n = ws.shape[0]
    for i in range(n):
        p = 1.0 / (1.0 + np.exp(-ws[i, src[0]]))
        ws[i, dst[0]] = 1.0 - p
        ws[i, dst[1]] = p


def softmax(ws, src, dst):
    """Row softmax after subtracting the row maximum, as scikit-learn does."""
    n = ws.shape[0]
    m = src.shape[0]
    for i in range(n):
        top = ws[i, src[0]]
        for j in range(1, m):
            if ws[i, src[j]] > top:
                top = ws[i, src[j]]
        total = 0.0
        for j in range(m):
            e = np.exp(ws[i, src[j]] - top)
            ws[i, dst[j]] = e
            total += e
        for j in range(m):
            ws[i, dst[j]] = ws[i, dst[j]] / total


def argmax(ws, src, out):
    """Index of the first largest value per row; a NaN wins, as in ``numpy.argmax``."""
    n = ws.shape[0]
    for i in range(n):
        best = 0
        top = ws[i, src[0]]
        if not np.isnan(top):
            for j in range(1, src.shape[0]):
                v = ws[i, src[j]]
                if np.isnan(v):
                    best = j
                    break
                if v > top:
                    top = v
                    best = j
        out[i] = best


def positive(ws, src, out):
    """Binary decision rule: class 1 where the decision value is > 0."""
    n = ws.shape[0]
    for i in range(n):
        out[i] = 1 if ws[i, src[0]] > 0.0 else 0


#: Kernel name -> Numba signature, for the kernels of this module.
EXPORTS: dict[str, str] = {
    "check_values": sig(F2, I1, "i8", "i8", ret="i8"),
    "impute": sig(F2, I1, I1, F1),
    "impute_value": sig(F2, I1, I1, F1, F1, ret="i8"),
    "scale": sig(F2, I1, I1, F1, F1),
    "onehot": sig(F2, I1, I1, F1, I1, I1, "i8", ret="i8"),
    "linear": sig(F2, I1, I1, F2, F1),
    "expit_pair": sig(F2, I1, I1),
    "softmax": sig(F2, I1, I1),
    "argmax": sig(F2, I1, I1),
    "positive": sig(F2, I1, I1),
}
