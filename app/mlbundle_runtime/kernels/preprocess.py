"""Preprocessing: scalers, clipping, normalisation, encoders, polynomials, bins, functions.

Plain, Numba-compatible Python; see ``app/mlbundle_runtime/kernels/__init__.py`` for the rules
every kernel follows.
"""

from __future__ import annotations

import numpy as np

from mlbundle_runtime.kernels._types import F1, F2, I1, sig
from mlbundle_runtime.kernels.sums import pairwise_sum


def mul_add(ws, src, dst, mul, add):
    """``x * mul + add`` per column, rounded after each step (MinMaxScaler's
    ``X *= scale_; X += min_``)."""
    n = ws.shape[0]
    for i in range(n):
        for j in range(src.shape[0]):
            ws[i, dst[j]] = ws[i, src[j]] * mul[j] + add[j]


def multiply(ws, src, dst, factor):
    """``x * factor`` per column (scalers on sparse input, ColumnTransformer weights)."""
    n = ws.shape[0]
    for i in range(n):
        for j in range(src.shape[0]):
            ws[i, dst[j]] = ws[i, src[j]] * factor[j]


def clip(ws, src, dst, lo, hi):
    """``numpy.clip`` per column: below ``lo`` gives ``lo``, above ``hi`` gives ``hi``.

    Anything else (NaN, and a zero equal to a bound) is kept as it is.
    """
    n = ws.shape[0]
    for i in range(n):
        for j in range(src.shape[0]):
            x = ws[i, src[j]]
            if x < lo[j]:
                x = lo[j]
            elif x > hi[j]:
                x = hi[j]
            ws[i, dst[j]] = x


def normalize_rows(ws, src, dst, norm, order, dense_rule):
    """Normalizer: divide each row by its l1 (``norm`` 0), l2 (1) or max (2) norm.

    ``order`` 0 adds as numpy does on a C-ordered array: ``np.sum`` (l1) is
    pairwise (eight accumulators per block of at most 128, halves above that)
    and ``np.einsum`` (l2) keeps two lanes fed by blocks of eight. ``order`` 1
    adds left to right (numpy on a Fortran-ordered array, scikit-learn's sparse
    routines). With ``dense_rule`` a norm below ``10 * eps`` leaves the row as
    it is (``_handle_zeros_in_scale``); without it only a zero norm does.
    """
    n = ws.shape[0]
    m = src.shape[0]
    buf = np.empty(m)
    for i in range(n):
        total = 0.0
        if norm == 2:
            for j in range(m):
                a = abs(ws[i, src[j]])
                if a > total:
                    total = a
        elif norm == 1:
            if order == 0:
                lane0 = 0.0
                lane1 = 0.0
                k = 0
                while m - k >= 8:
                    for q in range(3, -1, -1):
                        x0 = ws[i, src[k + 2 * q]]
                        x1 = ws[i, src[k + 2 * q + 1]]
                        lane0 = x0 * x0 + lane0
                        lane1 = x1 * x1 + lane1
                    k += 8
                while k < m:
                    x0 = ws[i, src[k]]
                    lane0 = x0 * x0 + lane0
                    if k + 1 < m:
                        x1 = ws[i, src[k + 1]]
                        lane1 = x1 * x1 + lane1
                    k += 2
                total = 0.0 + (lane0 + lane1)
            else:
                for j in range(m):
                    x = ws[i, src[j]]
                    total += x * x
            total = np.sqrt(total)
        elif order == 0:
            for j in range(m):
                buf[j] = abs(ws[i, src[j]])
            total = 0.0 + pairwise_sum(buf, 0, m)
        else:
            for j in range(m):
                total += abs(ws[i, src[j]])
        if dense_rule != 0:
            if total < 2.220446049250313e-15:
                total = 1.0
        elif total == 0.0:
            total = 1.0
        for j in range(m):
            ws[i, dst[j]] = ws[i, src[j]] / total


def onehot_fallback(ws, src, cat_start, cat_value, cat_dst, dst, unknown_dst):
    """One-hot encode like ``onehot``, but an unmatched value of input column ``k``
    sets column ``unknown_dst[k]`` (the infrequent category), or nothing when -1."""
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
                if unknown_dst[k] >= 0:
                    ws[i, unknown_dst[k]] = 1.0
            elif cat_dst[found] >= 0:
                ws[i, cat_dst[found]] = 1.0


def ordinal_encode(ws, src, cat_start, cat_value, cat_out, dst, unknown_out, unknown_error):
    """OrdinalEncoder: category ``c`` of input column ``k`` (``cat_start[k]:cat_start[k + 1]``
    of ``cat_value``; NaN matches NaN) becomes ``cat_out[c]``. An unmatched value is
    refused when ``unknown_error`` is set, else it becomes ``unknown_out[k]``."""
    n = ws.shape[0]
    m = src.shape[0]
    for i in range(n):
        for k in range(m):
            x = ws[i, src[k]]
            found = -1
            for c in range(cat_start[k], cat_start[k + 1]):
                v = cat_value[c]
                if x == v or (np.isnan(x) and np.isnan(v)):
                    found = c
                    break
            if found >= 0:
                ws[i, dst[k]] = cat_out[found]
            elif unknown_error != 0:
                return i * m + k
            else:
                ws[i, dst[k]] = unknown_out[k]
    return -1


def missing_indicator(ws, src, dst):
    """1.0 where the value is missing (NaN), else 0.0 (SimpleImputer's ``add_indicator``)."""
    n = ws.shape[0]
    for i in range(n):
        for j in range(src.shape[0]):
            ws[i, dst[j]] = 1.0 if np.isnan(ws[i, src[j]]) else 0.0


def product(ws, src, dst, left, right, sparse):
    """``dst[j] = src[left[j]] * src[right[j]]`` (PolynomialFeatures, one degree at a time).

    With ``sparse`` set, a zero right factor gives 0.0 whatever the left one is, as
    scikit-learn's sparse expansion never multiplies by an implicit zero.
    """
    n = ws.shape[0]
    for i in range(n):
        for j in range(dst.shape[0]):
            b = ws[i, src[right[j]]]
            if sparse != 0 and b == 0.0:
                ws[i, dst[j]] = 0.0
            else:
                ws[i, dst[j]] = ws[i, src[left[j]]] * b


def constant(ws, dst, value):
    """Columns holding a constant (PolynomialFeatures' bias column)."""
    n = ws.shape[0]
    for i in range(n):
        for j in range(dst.shape[0]):
            ws[i, dst[j]] = value[j]


def bin_index(ws, src, dst, edge_start, edges, float32):
    """KBinsDiscretizer: ``np.searchsorted(inner_edges, x, side="right")`` per column.

    Column ``k`` owns the sorted inner edges ``edges[edge_start[k]:edge_start[k + 1]]``;
    the result is how many of them are ``<= x`` (``x`` first rounded to float32
    when ``float32`` is set, as ``dtype=np.float32`` does).
    """
    n = ws.shape[0]
    for i in range(n):
        for k in range(src.shape[0]):
            x = ws[i, src[k]]
            if float32 != 0:
                x = np.float64(np.float32(x))
            lo = edge_start[k]
            a = lo
            b = edge_start[k + 1]
            while a < b:
                mid = a + ((b - a) >> 1)
                if edges[mid] <= x:
                    a = mid + 1
                else:
                    b = mid
            ws[i, dst[k]] = float(a - lo)


def unary_func(ws, src, dst, op):
    """FunctionTransformer with a numpy function: ``op`` 0 identity, 1 log1p, 2 log,
    3 sqrt, 4 exp, 5 abs (invalid inputs give NaN / -inf as numpy does)."""
    n = ws.shape[0]
    for i in range(n):
        for j in range(src.shape[0]):
            x = ws[i, src[j]]
            if op == 1:
                x = np.log1p(x)
            elif op == 2:
                x = np.log(x)
            elif op == 3:
                x = np.sqrt(x)
            elif op == 4:
                x = np.exp(x)
            elif op == 5:
                x = abs(x)
            ws[i, dst[j]] = x


def power_transform(ws, src, dst, lmbdas, method):
    """PowerTransformer's map per column, as scipy computes it (``standardize`` follows
    as a ``scale`` op).

    ``method`` 0 is Yeo-Johnson (``scipy.stats._yeojohnson_transform``): for
    ``x >= 0`` ``log1p(x)`` when ``|lmbda| < eps``, else ``expm1(lmbda * log1p(x)) /
    lmbda``; below zero ``-expm1((2 - lmbda) * log1p(-x)) / (2 - lmbda)``, or
    ``-log1p(-x)`` when ``|lmbda - 2| <= eps``; NaN stays NaN. ``method`` 1 is Box-Cox
    (``scipy.special.boxcox``): ``log(x)`` when ``|lmbda| < 1e-19``, ``expm1(lmbda *
    log(x)) / lmbda`` while ``lmbda * log(x) < 709.78``, else
    ``copysign(1, lmbda) * exp(lmbda * log(x) - log(|lmbda|)) - 1 / lmbda``; a value
    ``<= 0`` is refused (its position returned), as ``_check_input`` refuses it.
    """
    eps = 2.220446049250313e-16
    n = ws.shape[0]
    m = src.shape[0]
    for i in range(n):
        for j in range(m):
            x = ws[i, src[j]]
            lm = lmbdas[j]
            if method == 0:
                if x >= 0.0:
                    y = np.log1p(x) if abs(lm) < eps else np.expm1(lm * np.log1p(x)) / lm
                elif abs(lm - 2.0) > eps:
                    y = -np.expm1((2.0 - lm) * np.log1p(-x)) / (2.0 - lm)
                else:
                    y = -np.log1p(-x)
            else:
                if x <= 0.0:
                    return i * m + j
                lx = np.log(x)
                if abs(lm) < 1e-19:
                    y = lx
                elif lm * lx < 709.78:
                    y = np.expm1(lm * lx) / lm
                else:
                    y = np.copysign(1.0, lm) * np.exp(lm * lx - np.log(abs(lm))) - 1.0 / lm
            ws[i, dst[j]] = y
    return -1


def quantile_uniform(ws, src, dst, quantiles, references):
    """QuantileTransformer with ``output_distribution="uniform"``, as ``_transform_col`` does.

    Column ``j`` is ``0.5 * (interp(x, q, r) - interp(-x, -q[::-1], -r[::-1]))`` with
    ``q = quantiles[:, j]`` and ``r = references`` (both interpolations averaged, for
    repeated quantiles), then ``x == q[-1]`` gives 1 and ``x == q[0]`` gives 0 (in that
    order); NaN stays NaN. ``interp`` is ``numpy.interp``'s: ``fp[0]`` left of ``xp``,
    ``fp[-1]`` right of it and at its last point, else ``slope * (x - xp[k]) + fp[k]``
    on the last ``k`` with ``xp[k] <= x``, recomputed from ``xp[k + 1]`` when NaN.
    """
    n = ws.shape[0]
    m = src.shape[0]
    K = quantiles.shape[0]
    for i in range(n):
        for j in range(m):
            x = ws[i, src[j]]
            if np.isnan(x):
                ws[i, dst[j]] = x
                continue
            res0 = 0.0
            res1 = 0.0
            for side in range(2):
                # side 0: xp = q, fp = r; side 1: xp = -q[::-1], fp = -r[::-1], at -x
                key = x if side == 0 else -x
                first = quantiles[0, j] if side == 0 else -quantiles[K - 1, j]
                last = quantiles[K - 1, j] if side == 0 else -quantiles[0, j]
                if key > last:
                    k = K
                elif key < first:
                    k = -1
                else:
                    a = 0
                    b = K  # the last k with xp[k] <= key
                    while a < b:
                        mid = a + ((b - a) >> 1)
                        xm = quantiles[mid, j] if side == 0 else -quantiles[K - 1 - mid, j]
                        if xm <= key:
                            a = mid + 1
                        else:
                            b = mid
                    k = a - 1
                if side == 0:
                    f0 = references[0]
                    f_last = references[K - 1]
                else:
                    f0 = -references[K - 1]
                    f_last = -references[0]
                if k == -1:
                    res = f0
                elif k >= K - 1:
                    res = f_last
                else:
                    if side == 0:
                        x0 = quantiles[k, j]
                        x1 = quantiles[k + 1, j]
                        y0 = references[k]
                        y1 = references[k + 1]
                    else:
                        x0 = -quantiles[K - 1 - k, j]
                        x1 = -quantiles[K - 2 - k, j]
                        y0 = -references[K - 1 - k]
                        y1 = -references[K - 2 - k]
                    if x1 == key:
                        res = y1
                    else:
                        slope = (y1 - y0) / (x1 - x0)
                        res = slope * (key - x0) + y0
                        if np.isnan(res):
                            res = slope * (key - x1) + y1
                            if np.isnan(res) and y0 == y1:
                                res = y0
                if side == 0:
                    res0 = res
                else:
                    res1 = res
            y = 0.5 * (res0 - res1)
            if x == quantiles[K - 1, j]:
                y = 1.0
            if x == quantiles[0, j]:
                y = 0.0
            ws[i, dst[j]] = y


def spline_basis(ws, src, dst, t, degree, mode, f_min, f_max, nan_zeros):
    """SplineTransformer, one feature: its ``n`` B-spline basis values into ``dst``.

    scipy's ``BSpline.__call__`` with identity coefficients: the knot interval found as
    ``find_interval`` does (``extrapolate`` in ``mode`` 0), the Cox-de Boor recurrence of
    ``_deBoor_D``, then each output ``0.0 + sum(c * h)`` over the window. ``mode`` 0
    ``continue``; 1 ``error`` (outside ``[t[k], t[n]]`` is refused: its row is returned);
    2 ``constant`` (inside the knots' range as is; below it the first ``degree`` columns
    take ``f_min``, above it the last ``degree`` take ``f_max``, the others 0). NaN (only
    with ``handle_missing="zeros"``, ``nan_zeros``) gives zeros.
    """
    n_rows = ws.shape[0]
    k = degree
    n_out = dst.shape[0]
    n = t.shape[0] - k - 1
    h = np.empty(k + 1)
    hh = np.empty(k + 1)
    tb = t[k]
    te = t[n]
    for i in range(n_rows):
        x = ws[i, src[0]]
        for j in range(n_out):
            ws[i, dst[j]] = 0.0
        if np.isnan(x):
            if nan_zeros != 0:
                continue
            return i
        if mode == 2 and (x < tb or x > te):
            if x < tb:
                for j in range(k):
                    ws[i, dst[j]] = f_min[j]
            else:
                for j in range(n_out - k, n_out):
                    ws[i, dst[j]] = f_max[j]
            continue
        if mode != 0 and (x < tb or x > te):
            return i
        ell = k
        while x < t[ell] and ell != k:
            ell -= 1
        ell += 1
        while x >= t[ell] and ell != n:
            ell += 1
        ell -= 1
        h[0] = 1.0
        for j in range(1, k + 1):
            for q in range(j):
                hh[q] = h[q]
            h[0] = 0.0
            for q in range(1, j + 1):
                xb = t[ell + q]
                xa = t[ell + q - j]
                if xb == xa:
                    h[q] = 0.0
                    continue
                w = hh[q - 1] / (xb - xa)
                h[q - 1] += w * (xb - x)
                h[q] = w * (x - xa)
        for j in range(n_out):
            acc = 0.0
            for a in range(k + 1):
                c = 1.0 if ell + a - k == j else 0.0
                acc = acc + c * h[a]
            ws[i, dst[j]] = acc
    return -1


def impute_predicted(ws, src, dst, lo, hi):
    """IterativeImputer's write of one imputation step into ``dst[0]``: where the input
    ``src[0]`` is missing (NaN), the prediction ``src[1]`` clipped to ``[lo[0], hi[0]]`` as
    ``numpy.clip`` does (NaN, and a zero equal to a bound, kept as they are); elsewhere
    the current value ``src[2]``, untouched."""
    n = ws.shape[0]
    for i in range(n):
        if np.isnan(ws[i, src[0]]):
            x = ws[i, src[1]]
            if x < lo[0]:
                x = lo[0]
            elif x > hi[0]:
                x = hi[0]
        else:
            x = ws[i, src[2]]
        ws[i, dst[0]] = x


# Cephes' ndtri (scipy.special.ndtri, scipy/special/xsf/cephes/ndtri.h) coefficients, in
# polevl's order (highest power first); Q0, Q1 and Q2 omit their leading 1.0 (p1evl).
# P0 has degree 4 in Cephes; zeros in front make it the others' length.
_NDTRI_P0 = (
    0.0,  # four leading zeros (polevl degree 8 like P1 and P2): 0 * v + 0 stays 0, then
    0.0,  # 0 * v + c is c, so the sum is polevl(v, P0, 4)'s to the bit
    0.0,
    0.0,
    -5.99633501014107895267e1,
    9.80010754185999661536e1,
    -5.66762857469070293439e1,
    1.39312609387279679503e1,
    -1.23916583867381258016e0,
)
_NDTRI_Q0 = (
    1.95448858338141759834e0,
    4.67627912898881538453e0,
    8.63602421390890590575e1,
    -2.25462687854119370527e2,
    2.00260212380060660359e2,
    -8.20372256168333339912e1,
    1.59056225126211695515e1,
    -1.18331621121330003142e0,
)
_NDTRI_P1 = (
    4.05544892305962419923e0,
    3.15251094599893866154e1,
    5.71628192246421288162e1,
    4.40805073893200834700e1,
    1.46849561928858024014e1,
    2.18663306850790267539e0,
    -1.40256079171354495875e-1,
    -3.50424626827848203418e-2,
    -8.57456785154685413611e-4,
)
_NDTRI_Q1 = (
    1.57799883256466749731e1,
    4.53907635128879210584e1,
    4.13172038254672030440e1,
    1.50425385692907503408e1,
    2.50464946208309415979e0,
    -1.42182922854787788574e-1,
    -3.80806407691578277194e-2,
    -9.33259480895457427372e-4,
)
_NDTRI_P2 = (
    3.23774891776946035970e0,
    6.91522889068984211695e0,
    3.93881025292474443415e0,
    1.33303460815807542389e0,
    2.01485389549179081538e-1,
    1.23716634817820021358e-2,
    3.01581553508235416007e-4,
    2.65806974686737550832e-6,
    6.23974539184983293730e-9,
)
_NDTRI_Q2 = (
    6.02427039364742014255e0,
    3.67983563856160859403e0,
    1.37702099489081330271e0,
    2.16236993594496635890e-1,
    1.34204006088543189037e-2,
    3.28014464682127739104e-4,
    2.89247864745380683936e-6,
    6.79019408009981274425e-9,
)


def quantile_normal(ws, src, dst, lower, upper, lo, hi):
    """QuantileTransformer with ``output_distribution="normal"``, after ``quantile_uniform``.

    ``src`` holds the inputs ``x`` then their ``quantile_uniform`` values ``u`` (one per
    ``dst`` column). As ``_transform_col``: ``u`` becomes 1 where ``x + 1e-7 > upper``,
    then 0 where ``x - 1e-7 < lower``; then ``norm.ppf(u)``: -inf at 0, inf at 1, else
    Cephes' ``ndtri`` (scipy's, step for step: ``w + w * (w^2 P0(w^2) / Q0(w^2))`` times
    sqrt(2 pi) on ``w = u - 0.5`` between exp(-2) and 1 - exp(-2), else from
    ``z = sqrt(-2 log(y))`` with P1/Q1 below 8 and P2/Q2 above, ``polevl``'s Horner order),
    ``* 1 + 0``; clipped to ``[lo, hi]`` (NaN stays NaN).
    """
    n = ws.shape[0]
    m = dst.shape[0]
    for i in range(n):
        for j in range(m):
            x = ws[i, src[j]]
            u = ws[i, src[m + j]]
            if x - 1e-7 < lower[j]:
                u = 0.0
            elif x + 1e-7 > upper[j]:
                u = 1.0
            if u == 0.0:
                z = -np.inf
            elif u == 1.0:
                z = np.inf
            elif not (u > 0.0 and u < 1.0):
                z = np.nan
            else:
                y = u
                flip = True
                if y > 1.0 - 0.13533528323661269189:
                    y = 1.0 - y
                    flip = False
                central = y > 0.13533528323661269189
                if central:
                    y = y - 0.5
                    v = y * y
                    num, den = _NDTRI_P0, _NDTRI_Q0
                else:
                    t = np.sqrt(-2.0 * np.log(y))
                    v = 1.0 / t
                    num, den = (_NDTRI_P1, _NDTRI_Q1) if t < 8.0 else (_NDTRI_P2, _NDTRI_Q2)
                p = num[0]  # polevl(v, num, 8)
                for k in range(1, 9):
                    p = p * v + num[k]
                q = v + den[0]  # p1evl(v, den, 8)
                for k in range(1, 8):
                    q = q * v + den[k]
                if central:
                    z = y + y * (v * p / q)
                    z = z * 2.50662827463100050242e0
                else:
                    z = (t - np.log(t) / t) - v * p / q
                    if flip:
                        z = -z
                z = z * 1.0 + 0.0
            if z < lo[j]:
                z = lo[j]
            elif z > hi[j]:
                z = hi[j]
            ws[i, dst[j]] = z


#: Kernel name -> Numba signature, for the kernels of this module.
EXPORTS: dict[str, str] = {
    "mul_add": sig(F2, I1, I1, F1, F1),
    "multiply": sig(F2, I1, I1, F1),
    "clip": sig(F2, I1, I1, F1, F1),
    "normalize_rows": sig(F2, I1, I1, "i8", "i8", "i8"),
    "onehot_fallback": sig(F2, I1, I1, F1, I1, I1, I1),
    "ordinal_encode": sig(F2, I1, I1, F1, F1, I1, F1, "i8", ret="i8"),
    "missing_indicator": sig(F2, I1, I1),
    "product": sig(F2, I1, I1, I1, I1, "i8"),
    "constant": sig(F2, I1, F1),
    "bin_index": sig(F2, I1, I1, I1, F1, "i8"),
    "unary_func": sig(F2, I1, I1, "i8"),
    "power_transform": sig(F2, I1, I1, F1, "i8", ret="i8"),
    "quantile_uniform": sig(F2, I1, I1, F2, F1),
    "spline_basis": sig(F2, I1, I1, F1, "i8", "i8", F1, F1, "i8", ret="i8"),
    "impute_predicted": sig(F2, I1, I1, F1, F1),
    "quantile_normal": sig(F2, I1, I1, F1, F1, F1, F1),
}
