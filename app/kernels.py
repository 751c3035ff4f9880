"""Scoring kernels: written once, compiled by the backend the bundle chose.

Every function here is plain, Numba-compatible Python. Nothing in this module
imports numba: the ``aot`` backend compiles these functions at build time into
an extension module that links only libc/libm, and the ``jit`` backend compiles
them on the user's machine. Both read the signatures from ``EXPORTS``, so the
two backends run the very same code.

All kernels work on a *workspace*: one float64 matrix per batch whose columns
are the plan's inputs followed by every intermediate result. A kernel reads
columns ``src`` and writes columns ``dst`` of it. Kernels that can meet bad
input return the first offending position (``row * len(cols) + j``) or -1, so
the caller can name the row and column in its error message.
"""

from __future__ import annotations

import numpy as np

# Float32 limits used by trees: scikit-learn casts X to float32 and refuses
# values that overflow to infinity.
_F32_MAX = 3.4028234663852886e38


def check_values(ws, cols, allow_nan, float32):
    """Mirror scikit-learn's ``validate_data`` finiteness rules for ``cols``."""
    n = ws.shape[0]
    m = cols.shape[0]
    for i in range(n):
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
    for i in range(n):
        for j in range(src.shape[0]):
            x = ws[i, src[j]]
            ws[i, dst[j]] = fill[j] if np.isnan(x) else x


def scale(ws, src, dst, offset, divisor):
    """``(x - offset) / divisor`` per column, in scikit-learn's order of operations."""
    n = ws.shape[0]
    for i in range(n):
        for j in range(src.shape[0]):
            ws[i, dst[j]] = (ws[i, src[j]] - offset[j]) / divisor[j]


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


def forest(ws, src, dst, roots, feature, threshold, left, right, missing_left, value, divisor):
    """Sum the leaf values of every tree, in tree order, then divide.

    This is scikit-learn's tree traversal: ``float32(x) <= threshold`` goes
    left, NaN follows ``missing_go_to_left``; forests add each tree's output
    in estimator order and divide by the number of trees.
    """
    n = ws.shape[0]
    n_out = dst.shape[0]
    acc = np.zeros(n_out)
    for i in range(n):
        for j in range(n_out):
            acc[j] = 0.0
        for t in range(roots.shape[0]):
            node = roots[t]
            while left[node] >= 0:
                x = ws[i, src[feature[node]]]
                if np.isnan(x):
                    node = left[node] if missing_left[node] != 0 else right[node]
                elif np.float32(x) <= threshold[node]:
                    node = left[node]
                else:
                    node = right[node]
            for j in range(n_out):
                acc[j] += value[node, j]
        for j in range(n_out):
            ws[i, dst[j]] = acc[j] / divisor


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


def boost(ws, src, dst, init_cols, init, roots, tree_out, feature, threshold, left, right,
          value, scale):
    """GradientBoosting raw scores, as scikit-learn's ``predict_stages``.

    Output ``k`` starts at the init estimator's raw value: column
    ``init_cols[k]`` of the workspace (an init estimator compiled earlier) or,
    when ``init_cols`` is empty, the constant ``init[k]``. Then every tree ``t``
    (stage by stage, then by output) adds ``scale * value[leaf]`` to output
    ``tree_out[t]``. Splits compare ``float32(x) <= threshold``; gradient
    boosting refuses NaN before this kernel runs (a NaN would go right).
    """
    n = ws.shape[0]
    n_out = dst.shape[0]
    acc = np.zeros(n_out)
    for i in range(n):
        for j in range(n_out):
            acc[j] = ws[i, init_cols[j]] if init_cols.shape[0] > 0 else init[j]
        for t in range(roots.shape[0]):
            node = roots[t]
            while left[node] >= 0:
                if np.float32(ws[i, src[feature[node]]]) <= threshold[node]:
                    node = left[node]
                else:
                    node = right[node]
            acc[tree_out[t]] += scale * value[node, 0]
        for j in range(n_out):
            ws[i, dst[j]] = acc[j]


def hgb(ws, src, dst, init, roots, tree_out, feature, threshold, left, right, missing_left,
        cat_left, cat_known, left_bits, known_bits, value):
    """HistGradientBoosting raw scores, as ``_predict_from_raw_data`` (float64, no cast).

    Output ``k`` starts at the baseline ``init[k]``; every tree ``t`` (iteration
    by iteration, then by output) adds its leaf value to output ``tree_out[t]``.
    A numeric split sends ``x <= threshold`` left. A categorical split
    (``cat_left[node] >= 0``) sends a category left when its bit is set in the
    8-word bitset ``left_bits[8 * cat_left[node]:]``, right when it is a known
    category of the feature (``known_bits[8 * cat_known[node]:]``); NaN, negative
    and unknown categories follow ``missing_left``.
    """
    n = ws.shape[0]
    n_out = dst.shape[0]
    acc = np.zeros(n_out)
    for i in range(n):
        for j in range(n_out):
            acc[j] = 0.0
            acc[j] += init[j]
        for t in range(roots.shape[0]):
            node = roots[t]
            while left[node] >= 0:
                x = ws[i, src[feature[node]]]
                if np.isnan(x):
                    go_left = missing_left[node] != 0
                elif cat_left[node] >= 0:
                    if x < 0.0 or x >= 256.0:
                        # outside the 256-bit bitsets: not a category, so missing
                        go_left = missing_left[node] != 0
                    else:
                        v = np.int64(x)
                        word = v >> 5
                        bit = v & 31
                        if (left_bits[cat_left[node] * 8 + word] >> bit) & 1:
                            go_left = True
                        elif (known_bits[cat_known[node] * 8 + word] >> bit) & 1:
                            go_left = False
                        else:
                            go_left = missing_left[node] != 0
                else:
                    go_left = x <= threshold[node]
                node = left[node] if go_left else right[node]
            acc[tree_out[t]] += value[node, 0]
        for j in range(n_out):
            ws[i, dst[j]] = acc[j]


def exp_link(ws, src, dst):
    """``exp`` per column: the inverse of a log link (Poisson, gamma)."""
    n = ws.shape[0]
    for i in range(n):
        for j in range(src.shape[0]):
            ws[i, dst[j]] = np.exp(ws[i, src[j]])


def iforest(ws, src, dst, roots, feature, threshold, left, right, missing_left, value,
            denominator, offset):
    """IsolationForest ``score_samples`` (dst[0]) and ``decision_function`` (dst[1]).

    Each tree's leaf holds ``depth + average_path_length(n_samples) - 1``;
    these are summed in tree order, then ``-2 ** -(total / denominator)``
    (``2 ** -1`` when the denominator is 0), minus ``offset`` for the
    decision. Splits as in ``forest``: ``float32(x) <= threshold``, NaN
    follows ``missing_left``.
    """
    n = ws.shape[0]
    for i in range(n):
        depth = 0.0
        for t in range(roots.shape[0]):
            node = roots[t]
            while left[node] >= 0:
                x = ws[i, src[feature[node]]]
                if np.isnan(x):
                    node = left[node] if missing_left[node] != 0 else right[node]
                elif np.float32(x) <= threshold[node]:
                    node = left[node]
                else:
                    node = right[node]
            depth += value[node, 0]
        ratio = depth / denominator if denominator != 0.0 else 1.0
        score = -(2.0 ** (-ratio))
        ws[i, dst[0]] = score
        ws[i, dst[1]] = score - offset


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
    r = np.zeros(8)
    f_lo = np.zeros(128, dtype=np.int64)
    f_n = np.zeros(128, dtype=np.int64)
    f_state = np.zeros(128, dtype=np.int64)
    vals = np.zeros(128)
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
            # numpy's pairwise_sum, its recursion unrolled onto a stack of frames
            top = 0
            f_lo[0] = 0
            f_n[0] = m
            f_state[0] = 0
            vtop = 0
            while top >= 0:
                lo = f_lo[top]
                cnt = f_n[top]
                if cnt <= 128:
                    if cnt < 8:
                        s = 0.0
                        for j in range(lo, lo + cnt):
                            s += buf[j]
                    else:
                        for q in range(8):
                            r[q] = buf[lo + q]
                        j = 8
                        while j < cnt - (cnt % 8):
                            for q in range(8):
                                r[q] += buf[lo + j + q]
                            j += 8
                        s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
                        while j < cnt:
                            s += buf[lo + j]
                            j += 1
                    vals[vtop] = s
                    vtop += 1
                    top -= 1
                elif f_state[top] == 0:
                    half = cnt // 2
                    half -= half % 8
                    f_state[top] = 1
                    f_lo[top + 1] = lo + half
                    f_n[top + 1] = cnt - half
                    f_state[top + 1] = 0
                    f_lo[top + 2] = lo
                    f_n[top + 2] = half
                    f_state[top + 2] = 0
                    top += 2
                else:
                    vals[vtop - 2] = vals[vtop - 2] + vals[vtop - 1]
                    vtop -= 1
                    top -= 1
            total = 0.0 + vals[0]
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


# -- linear models and naive Bayes (converters/linear.py, sgd_svm.py, naive_bayes.py) -------
#
# numpy sums a row of a C-ordered array with pairwise summation
# (numpy/_core/src/umath/loops_utils.h.src ``pairwise_sum``): fewer than 8
# values are added in order; up to 128 with 8 interleaved accumulators; more are
# split in two at ``n // 2`` rounded down to a multiple of 8, recursively. The
# kernels below that reproduce ``arr.sum(axis=1)`` inline that algorithm (a
# kernel may not call a helper) with an explicit stack instead of recursion.


def linear_dot2(ws, src, dst, coef, intercept):
    """``X @ coef.T + intercept`` with a compensated dot product (Ogita-Rump-Oishi Dot2).

    scikit-learn's ``X @ coef.T`` goes through BLAS, whose summation order
    depends on the CPU and on the batch shape, so no fixed order reproduces it
    bit for bit. Dot2 computes the dot product as if in twice the precision and
    rounds once, so the only difference left is BLAS's own rounding error; the
    intercept is then added as scikit-learn does. If an intermediate overflows
    (inputs beyond ~1e300) the plain in-order sum is used, as it is then either
    exact enough or infinite/NaN as in BLAS.
    """
    n = ws.shape[0]
    m = src.shape[0]
    split = 134217729.0  # 2**27 + 1: Veltkamp's splitter for TwoProduct
    for i in range(n):
        for j in range(dst.shape[0]):
            plain = 0.0
            hi = 0.0
            lo = 0.0
            for k in range(m):
                a = ws[i, src[k]]
                b = coef[j, k]
                p = a * b
                plain += p
                # TwoProduct (Dekker): a * b == p + e exactly
                t = split * a
                a_hi = t - (t - a)
                a_lo = a - a_hi
                t = split * b
                b_hi = t - (t - b)
                b_lo = b - b_hi
                e = a_lo * b_lo - (((p - a_hi * b_hi) - a_lo * b_hi) - a_hi * b_lo)
                # TwoSum (Knuth): hi + p == s + q exactly
                s = hi + p
                z = s - hi
                q = (hi - (s - z)) + (p - z)
                hi = s
                lo += q + e
            acc = hi + lo
            if not np.isfinite(acc):
                acc = plain
            ws[i, dst[j]] = acc + intercept[j]


def binarize(ws, src, dst, threshold):
    """``sklearn.preprocessing.binarize``: 1 where ``x > threshold``, else 0."""
    n = ws.shape[0]
    for i in range(n):
        for j in range(src.shape[0]):
            ws[i, dst[j]] = 1.0 if ws[i, src[j]] > threshold else 0.0


def huber_pair(ws, src, dst):
    """SGD modified_huber binary probabilities: ``p = (clip(d, -1, 1) + 1) / 2``, ``[1 - p, p]``."""
    n = ws.shape[0]
    for i in range(n):
        d = ws[i, src[0]]
        if d < -1.0:
            d = -1.0
        elif d > 1.0:
            d = 1.0
        p = (d + 1.0) / 2.0
        ws[i, dst[0]] = 1.0 - p
        ws[i, dst[1]] = p


def ovr_proba(ws, src, dst, kind):
    """One-vs-rest probabilities, normalised per row (``_predict_proba_lr`` and SGD's
    modified_huber): ``p = expit(d)`` (kind 0) or ``(clip(d, -1, 1) + 1) / 2`` (kind 1),
    divided by the row sum (numpy's pairwise sum); a row of zeros becomes uniform."""
    n = ws.shape[0]
    m = src.shape[0]
    buf = np.empty(m)
    st_lo = np.empty(64, np.int64)
    st_n = np.empty(64, np.int64)
    st_phase = np.empty(64, np.int64)
    st_left = np.empty(64)
    for i in range(n):
        for j in range(m):
            d = ws[i, src[j]]
            if kind == 0:
                buf[j] = 1.0 / (1.0 + np.exp(-d))
            else:
                if d < -1.0:
                    d = -1.0
                elif d > 1.0:
                    d = 1.0
                buf[j] = (d + 1.0) / 2.0
        # -- numpy pairwise sum of buf[0:m] (see the note above) --
        sp = 0
        st_lo[0] = 0
        st_n[0] = m
        st_phase[0] = 0
        res = 0.0
        while True:
            lo = st_lo[sp]
            cnt = st_n[sp]
            if cnt <= 128:
                if cnt < 8:
                    res = -0.0
                    for t in range(cnt):
                        res += buf[lo + t]
                else:
                    r0 = buf[lo]
                    r1 = buf[lo + 1]
                    r2 = buf[lo + 2]
                    r3 = buf[lo + 3]
                    r4 = buf[lo + 4]
                    r5 = buf[lo + 5]
                    r6 = buf[lo + 6]
                    r7 = buf[lo + 7]
                    t = 8
                    stop = cnt - cnt % 8
                    while t < stop:
                        r0 += buf[lo + t]
                        r1 += buf[lo + t + 1]
                        r2 += buf[lo + t + 2]
                        r3 += buf[lo + t + 3]
                        r4 += buf[lo + t + 4]
                        r5 += buf[lo + t + 5]
                        r6 += buf[lo + t + 6]
                        r7 += buf[lo + t + 7]
                        t += 8
                    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
                    while t < cnt:
                        res += buf[lo + t]
                        t += 1
                sp -= 1
                while sp >= 0 and st_phase[sp] == 2:
                    res = st_left[sp] + res
                    sp -= 1
                if sp < 0:
                    break
                st_left[sp] = res
                st_phase[sp] = 2
                half = st_n[sp] // 2
                half -= half % 8
                st_lo[sp + 1] = st_lo[sp] + half
                st_n[sp + 1] = st_n[sp] - half
                st_phase[sp + 1] = 0
                sp += 1
            else:
                st_phase[sp] = 1
                half = cnt // 2
                half -= half % 8
                st_lo[sp + 1] = lo
                st_n[sp + 1] = half
                st_phase[sp + 1] = 0
                sp += 1
        total = 0.0 + res
        if total == 0.0:
            for j in range(m):
                buf[j] = 1.0
            total = float(m)
        for j in range(m):
            ws[i, dst[j]] = buf[j] / total


def gaussian_nb(ws, src, dst, theta, var, log_prior, norm):
    """GaussianNB joint log likelihood per class (``_joint_log_likelihood``).

    ``log_prior[c] + (norm[c] - 0.5 * sum_f((x_f - theta[c, f]) ** 2 / var[c, f]))``
    where ``norm[c] = -0.5 * sum(log(2 pi var[c]))`` (computed by numpy at compile
    time) and the feature sum is numpy's pairwise sum.
    """
    n = ws.shape[0]
    m = src.shape[0]
    buf = np.empty(m)
    st_lo = np.empty(64, np.int64)
    st_n = np.empty(64, np.int64)
    st_phase = np.empty(64, np.int64)
    st_left = np.empty(64)
    for i in range(n):
        for c in range(dst.shape[0]):
            for j in range(m):
                diff = ws[i, src[j]] - theta[c, j]
                sq = diff * diff
                v = var[c, j]
                if v != 0.0:
                    buf[j] = sq / v
                elif sq > 0.0:
                    buf[j] = np.inf
                else:
                    buf[j] = np.nan
            # -- numpy pairwise sum of buf[0:m] (see the note above) --
            sp = 0
            st_lo[0] = 0
            st_n[0] = m
            st_phase[0] = 0
            res = 0.0
            while True:
                lo = st_lo[sp]
                cnt = st_n[sp]
                if cnt <= 128:
                    if cnt < 8:
                        res = -0.0
                        for t in range(cnt):
                            res += buf[lo + t]
                    else:
                        r0 = buf[lo]
                        r1 = buf[lo + 1]
                        r2 = buf[lo + 2]
                        r3 = buf[lo + 3]
                        r4 = buf[lo + 4]
                        r5 = buf[lo + 5]
                        r6 = buf[lo + 6]
                        r7 = buf[lo + 7]
                        t = 8
                        stop = cnt - cnt % 8
                        while t < stop:
                            r0 += buf[lo + t]
                            r1 += buf[lo + t + 1]
                            r2 += buf[lo + t + 2]
                            r3 += buf[lo + t + 3]
                            r4 += buf[lo + t + 4]
                            r5 += buf[lo + t + 5]
                            r6 += buf[lo + t + 6]
                            r7 += buf[lo + t + 7]
                            t += 8
                        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
                        while t < cnt:
                            res += buf[lo + t]
                            t += 1
                    sp -= 1
                    while sp >= 0 and st_phase[sp] == 2:
                        res = st_left[sp] + res
                        sp -= 1
                    if sp < 0:
                        break
                    st_left[sp] = res
                    st_phase[sp] = 2
                    half = st_n[sp] // 2
                    half -= half % 8
                    st_lo[sp + 1] = st_lo[sp] + half
                    st_n[sp + 1] = st_n[sp] - half
                    st_phase[sp + 1] = 0
                    sp += 1
                else:
                    st_phase[sp] = 1
                    half = cnt // 2
                    half -= half % 8
                    st_lo[sp + 1] = lo
                    st_n[sp + 1] = half
                    st_phase[sp + 1] = 0
                    sp += 1
            total = 0.0 + res
            ws[i, dst[c]] = log_prior[c] + (norm[c] - 0.5 * total)


def nb_proba(ws, src, dst, pairwise):
    """Naive Bayes ``predict_proba``: ``exp(jll - logsumexp(jll))`` per row.

    scikit-learn's ``_logsumexp`` (utils/_array_api.py): ``a = max(jll)`` (NaN if
    any is NaN), ``m`` = how many values equal it; the others are shifted by ``a``
    (0 if it is infinite), exponentiated and summed (``s``); ``s / m`` unless 0;
    ``log1p(s) + log(m) + a``. The sum is numpy's pairwise sum when ``pairwise``
    (jll in C order: MultinomialNB, BernoulliNB) or in order (GaussianNB's jll is a
    transposed stack, so numpy sums it column by column).
    """
    n = ws.shape[0]
    m = src.shape[0]
    buf = np.empty(m)
    st_lo = np.empty(64, np.int64)
    st_n = np.empty(64, np.int64)
    st_phase = np.empty(64, np.int64)
    st_left = np.empty(64)
    for i in range(n):
        top = ws[i, src[0]]
        for j in range(1, m):
            v = ws[i, src[j]]
            if np.isnan(v) or v > top:
                top = v
            if np.isnan(top):
                break
        count = 0.0
        for j in range(m):
            if ws[i, src[j]] == top:
                count += 1.0
        shift = top if np.isfinite(top) else 0.0
        for j in range(m):
            v = ws[i, src[j]]
            buf[j] = 0.0 if v == top else np.exp(v - shift)
        if pairwise == 0:
            total = 0.0
            for j in range(m):
                total += buf[j]
        else:
            # -- numpy pairwise sum of buf[0:m] (see the note above) --
            sp = 0
            st_lo[0] = 0
            st_n[0] = m
            st_phase[0] = 0
            res = 0.0
            while True:
                lo = st_lo[sp]
                cnt = st_n[sp]
                if cnt <= 128:
                    if cnt < 8:
                        res = -0.0
                        for t in range(cnt):
                            res += buf[lo + t]
                    else:
                        r0 = buf[lo]
                        r1 = buf[lo + 1]
                        r2 = buf[lo + 2]
                        r3 = buf[lo + 3]
                        r4 = buf[lo + 4]
                        r5 = buf[lo + 5]
                        r6 = buf[lo + 6]
                        r7 = buf[lo + 7]
                        t = 8
                        stop = cnt - cnt % 8
                        while t < stop:
                            r0 += buf[lo + t]
                            r1 += buf[lo + t + 1]
                            r2 += buf[lo + t + 2]
                            r3 += buf[lo + t + 3]
                            r4 += buf[lo + t + 4]
                            r5 += buf[lo + t + 5]
                            r6 += buf[lo + t + 6]
                            r7 += buf[lo + t + 7]
                            t += 8
                        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
                        while t < cnt:
                            res += buf[lo + t]
                            t += 1
                    sp -= 1
                    while sp >= 0 and st_phase[sp] == 2:
                        res = st_left[sp] + res
                        sp -= 1
                    if sp < 0:
                        break
                    st_left[sp] = res
                    st_phase[sp] = 2
                    half = st_n[sp] // 2
                    half -= half % 8
                    st_lo[sp + 1] = st_lo[sp] + half
                    st_n[sp + 1] = st_n[sp] - half
                    st_phase[sp + 1] = 0
                    sp += 1
                else:
                    st_phase[sp] = 1
                    half = cnt // 2
                    half -= half % 8
                    st_lo[sp + 1] = lo
                    st_n[sp + 1] = half
                    st_phase[sp + 1] = 0
                    sp += 1
            total = 0.0 + res
        if total != 0.0:
            total = total / count if count != 0.0 else np.nan
        log_px = (np.log1p(total) + np.log(count)) + top
        for j in range(m):
            ws[i, dst[j]] = np.exp(ws[i, src[j]] - log_px)


# -- kernel SVMs, MLPs, k nearest neighbours (converters/svm.py, mlp.py, neighbors.py) --


def mlp_dense(ws, src, dst, coef, intercept, activation):
    """One MLP layer: ``act(src @ coef + intercept)``, ``coef`` is (inputs x outputs).

    ``activation``: 0 identity, 1 logistic (scipy's ``expit``: ``1 / (1 + exp(-z))``),
    2 tanh, 3 relu (``maximum(z, 0)``, NaN stays NaN), 4 exp.
    """
    n = ws.shape[0]
    n_in = src.shape[0]
    for i in range(n):
        for j in range(dst.shape[0]):
            acc = 0.0
            for k in range(n_in):
                acc += ws[i, src[k]] * coef[k, j]
            z = acc + intercept[j]
            if activation == 1:
                z = 1.0 / (1.0 + np.exp(-z))
            elif activation == 2:
                z = np.tanh(z)
            elif activation == 3:
                if z < 0.0:
                    z = 0.0
            elif activation == 4:
                z = np.exp(z)
            ws[i, dst[j]] = z


def svm_kernel_sum(ws, src, dst, sv, coef, start, rho, kernel, gamma, coef0, degree):
    """libsvm's ``svm_predict_values``: kernel values against every support vector, then sums.

    ``kernel``: 0 linear, 1 poly, 2 rbf, 3 sigmoid (libsvm's ``k_function``). With one
    ``dst`` column (SVR, one-class): ``sum(coef[0, s] * K(x, sv_s)) - rho[0]``. Otherwise
    one column per class pair (i, j), i < j, in libsvm's order: class i's support vectors
    (rows ``start[i]:start[i + 1]``) weighted by ``coef[j - 1]``, then class j's weighted
    by ``coef[i]``, minus ``rho[pair]``.
    """
    n = ws.shape[0]
    n_sv = sv.shape[0]
    d = src.shape[0]
    x = np.empty(d)
    kv = np.empty(n_sv)
    n_class = start.shape[0] - 1
    for i in range(n):
        for f in range(d):
            x[f] = ws[i, src[f]]
        for s in range(n_sv):
            acc = 0.0
            if kernel == 2:
                for f in range(d):
                    t = x[f] - sv[s, f]
                    acc += t * t
                kv[s] = np.exp(-gamma * acc)
            else:
                for f in range(d):
                    acc += x[f] * sv[s, f]
                if kernel == 1:
                    base = gamma * acc + coef0
                    ret = 1.0
                    t = degree
                    while t > 0:
                        if t % 2 == 1:
                            ret *= base
                        base = base * base
                        t //= 2
                    kv[s] = ret
                elif kernel == 3:
                    kv[s] = np.tanh(gamma * acc + coef0)
                else:
                    kv[s] = acc
        if n_class == 1:
            total = 0.0
            for s in range(n_sv):
                total += coef[0, s] * kv[s]
            ws[i, dst[0]] = total - rho[0]
            continue
        p = 0
        for a in range(n_class):
            for b in range(a + 1, n_class):
                total = 0.0
                for s in range(start[a], start[a + 1]):
                    total += coef[b - 1, s] * kv[s]
                for s in range(start[b], start[b + 1]):
                    total += coef[a, s] * kv[s]
                ws[i, dst[p]] = total - rho[p]
                p += 1


def svm_votes(ws, src, dst):
    """libsvm's one-vs-one vote count per class: pair (i, j) votes i if its value > 0, else j."""
    n = ws.shape[0]
    n_class = dst.shape[0]
    for i in range(n):
        for c in range(n_class):
            ws[i, dst[c]] = 0.0
        p = 0
        for a in range(n_class):
            for b in range(a + 1, n_class):
                if ws[i, src[p]] > 0.0:
                    ws[i, dst[a]] += 1.0
                else:
                    ws[i, dst[b]] += 1.0
                p += 1


def svm_ovr(ws, src, dst):
    """scikit-learn's ``_ovr_decision_function(dec < 0, -dec, n_classes)``."""
    n = ws.shape[0]
    n_class = dst.shape[0]
    votes = np.zeros(n_class)
    conf = np.zeros(n_class)
    for i in range(n):
        for c in range(n_class):
            votes[c] = 0.0
            conf[c] = 0.0
        p = 0
        for a in range(n_class):
            for b in range(a + 1, n_class):
                dec = ws[i, src[p]]
                c = -dec
                conf[a] -= c
                conf[b] += c
                if dec < 0.0:
                    votes[b] += 1.0
                else:
                    votes[a] += 1.0
                p += 1
        for c in range(n_class):
            ws[i, dst[c]] = votes[c] + conf[c] / (3.0 * (np.abs(conf[c]) + 1.0))


def svm_proba(ws, src, dst, prob_a, prob_b):
    """libsvm's ``svm_predict_probability``: Platt sigmoids, then pairwise coupling.

    Each pair's probability is ``sigmoid_predict`` clipped to [1e-7, 1 - 1e-7]; the class
    probabilities come from ``multiclass_probability`` (Wu, Lin and Weng's method 2):
    at most ``max(100, k)`` iterations, stopping when the error is below ``0.005 / k``.
    """
    n = ws.shape[0]
    k = dst.shape[0]
    r = np.zeros((k, k))
    q = np.zeros((k, k))
    qp = np.zeros(k)
    pr = np.zeros(k)
    max_iter = 100 if k < 100 else k
    eps = 0.005 / k
    min_prob = 1e-7
    for i in range(n):
        p = 0
        for a in range(k):
            for b in range(a + 1, k):
                f = ws[i, src[p]] * prob_a[p] + prob_b[p]
                # sigmoid_predict, avoiding cancellation on either side
                sp = np.exp(-f) / (1.0 + np.exp(-f)) if f >= 0 else 1.0 / (1 + np.exp(f))
                # std::min(std::max(sp, min_prob), 1 - min_prob)
                v = min_prob if sp < min_prob else sp
                hi = 1 - min_prob
                v = hi if hi < v else v
                r[a, b] = v
                r[b, a] = 1 - v
                p += 1
        for t in range(k):
            pr[t] = 1.0 / k
            q[t, t] = 0.0
            for j in range(t):
                q[t, t] += r[j, t] * r[j, t]
                q[t, j] = q[j, t]
            for j in range(t + 1, k):
                q[t, t] += r[j, t] * r[j, t]
                q[t, j] = -r[j, t] * r[t, j]
        for _ in range(max_iter):
            pqp = 0.0
            for t in range(k):
                qp[t] = 0.0
                for j in range(k):
                    qp[t] += q[t, j] * pr[j]
                pqp += pr[t] * qp[t]
            max_error = 0.0
            for t in range(k):
                error = np.abs(qp[t] - pqp)
                if error > max_error:
                    max_error = error
            if max_error < eps:
                break
            for t in range(k):
                # q[t, t] > 0: every pairwise probability is at least 1e-7.
                diff = (-qp[t] + pqp) / q[t, t]
                pr[t] += diff
                den = 1 + diff
                if den == 0.0:
                    # IEEE division by +0, as libsvm gets it (Numba would raise).
                    pqp = (pqp + diff * (diff * q[t, t] + 2 * qp[t])) * np.inf * np.inf
                    for j in range(k):
                        qp[j] = (qp[j] + diff * q[t, j]) * np.inf
                        pr[j] = pr[j] * np.inf
                    continue
                pqp = (pqp + diff * (diff * q[t, t] + 2 * qp[t])) / den / den
                for j in range(k):
                    qp[j] = (qp[j] + diff * q[t, j]) / den
                    pr[j] /= den
        for t in range(k):
            ws[i, dst[t]] = pr[t]


def knn_tree(ws, src, dst, data, idx_array, node_start, node_end, node_leaf, bound_a,
             bound_b, radius, tree_kind, metric, p):
    """k nearest neighbours by scikit-learn's KDTree / BallTree depth-first query.

    The walk, the pruning (``min_rdist > largest`` trims a node), the neighbour heap
    (``heap_push``: a tie with the largest kept distance is rejected) and the final
    ``simultaneous_sort`` (introsort, insertion sort under 16) are scikit-learn's, so
    equal distances resolve to the same neighbours in the same order. ``dst`` holds k
    neighbour indices then their k distances. ``tree_kind``: 0 KD tree (``bound_a`` lower,
    ``bound_b`` upper node bounds), 1 ball tree (``bound_a`` centroids, ``radius``).
    ``metric``: 0 euclidean, 1 manhattan, 2 chebyshev; ``p`` is the metric's p (2, 1, inf),
    used as scikit-learn does in ``pow(0.5 * d, p)`` for KD node bounds.
    """
    n = ws.shape[0]
    d = src.shape[0]
    k = dst.shape[0] // 2
    n_nodes = node_start.shape[0]
    x = np.empty(d)
    heap_v = np.empty(k)
    heap_i = np.zeros(k, dtype=np.int64)
    stack_node = np.empty(n_nodes + 1, dtype=np.int64)
    stack_lb = np.empty(n_nodes + 1)
    lbs = np.empty(2)
    sort_off = np.empty(k + 1, dtype=np.int64)
    sort_n = np.empty(k + 1, dtype=np.int64)
    sort_d = np.empty(k + 1, dtype=np.int64)
    for i in range(n):
        for f in range(d):
            x[f] = ws[i, src[f]]
        for j in range(k):
            heap_v[j] = np.inf
            heap_i[j] = 0
        # Depth-first walk with an explicit stack: the root's bound first, then for
        # each expanded node its children's bounds, the nearer child walked first.
        sp = 0
        todo0 = 0
        todo1 = -1
        parent_pending = True
        while True:
            # compute bounds for todo0 (and todo1 when >= 0)
            for w in range(2):
                node = todo0 if w == 0 else todo1
                if node < 0:
                    continue
                lb = 0.0
                if tree_kind == 0:
                    for f in range(d):
                        d_lo = bound_a[node, f] - x[f]
                        d_hi = x[f] - bound_b[node, f]
                        dd = (d_lo + np.abs(d_lo)) + (d_hi + np.abs(d_hi))
                        if metric == 2:
                            h = 0.5 * dd
                            # fmax(lb, h): NaN is ignored
                            if h == h and (lb != lb or h > lb):
                                lb = h
                        else:
                            lb += (0.5 * dd) ** p
                else:
                    dist = 0.0
                    for f in range(d):
                        t = x[f] - bound_a[node, f]
                        if metric == 0:
                            dist += t * t
                        elif metric == 1:
                            dist += np.abs(t)
                        else:
                            at = np.abs(t)
                            if at == at and (dist != dist or at > dist):
                                dist = at
                    if metric == 0:
                        dist = np.sqrt(dist)
                    md = dist - radius[node]
                    # fmax(0, md)
                    md = md if md > 0.0 else 0.0
                    lb = md * md if metric == 0 else md
                lbs[w] = lb
            if parent_pending:
                stack_node[0] = 0
                stack_lb[0] = lbs[0]
                sp = 1
                parent_pending = False
            else:
                # children of the node just expanded, nearer (by bound) processed first
                if lbs[0] <= lbs[1]:
                    stack_node[sp] = todo1
                    stack_lb[sp] = lbs[1]
                    stack_node[sp + 1] = todo0
                    stack_lb[sp + 1] = lbs[0]
                else:
                    stack_node[sp] = todo0
                    stack_lb[sp] = lbs[0]
                    stack_node[sp + 1] = todo1
                    stack_lb[sp + 1] = lbs[1]
                sp += 2
            # pop nodes until one needs its children's bounds
            expanded = False
            while sp > 0:
                sp -= 1
                node = stack_node[sp]
                lb = stack_lb[sp]
                if lb > heap_v[0]:
                    continue
                if node_leaf[node] != 0:
                    for t in range(node_start[node], node_end[node]):
                        j = idx_array[t]
                        rd = 0.0
                        for f in range(d):
                            diff = x[f] - data[j, f]
                            if metric == 0:
                                rd += diff * diff
                            elif metric == 1:
                                rd += np.abs(diff)
                            else:
                                ad = np.abs(diff)
                                if ad > rd:
                                    rd = ad
                        # heap_push
                        if rd >= heap_v[0]:
                            continue
                        cur = 0
                        while True:
                            left = 2 * cur + 1
                            right = left + 1
                            if left >= k:
                                break
                            elif right >= k:
                                if heap_v[left] > rd:
                                    swap = left
                                else:
                                    break
                            elif heap_v[left] >= heap_v[right]:
                                if rd < heap_v[left]:
                                    swap = left
                                else:
                                    break
                            else:
                                if rd < heap_v[right]:
                                    swap = right
                                else:
                                    break
                            heap_v[cur] = heap_v[swap]
                            heap_i[cur] = heap_i[swap]
                            cur = swap
                        heap_v[cur] = rd
                        heap_i[cur] = j
                else:
                    todo0 = 2 * node + 1
                    todo1 = todo0 + 1
                    expanded = True
                    break
            if not expanded:
                break
        # simultaneous_sort: introsort (2-way partition, median of 3), insertion sort <= 15
        depth = 0
        m = k
        while m > 1:
            depth += 1
            m //= 2
        sort_off[0] = 0
        sort_n[0] = k
        sort_d[0] = 2 * depth
        ssp = 1
        while ssp > 0:
            ssp -= 1
            off = sort_off[ssp]
            m = sort_n[ssp]
            maxd = sort_d[ssp]
            heap_done = False
            while m > 15:
                if maxd <= 0:
                    # heapsort of [off, off + m)
                    start = (m - 2) // 2
                    end = m
                    while True:
                        root = start
                        while True:
                            child = root * 2 + 1
                            mx = root
                            if child < end and heap_v[off + mx] < heap_v[off + child]:
                                mx = child
                            if child + 1 < end and heap_v[off + mx] < heap_v[off + child + 1]:
                                mx = child + 1
                            if mx == root:
                                break
                            tv = heap_v[off + root]
                            heap_v[off + root] = heap_v[off + mx]
                            heap_v[off + mx] = tv
                            ti = heap_i[off + root]
                            heap_i[off + root] = heap_i[off + mx]
                            heap_i[off + mx] = ti
                            root = mx
                        if start == 0:
                            break
                        start -= 1
                    end = m - 1
                    while end > 0:
                        tv = heap_v[off]
                        heap_v[off] = heap_v[off + end]
                        heap_v[off + end] = tv
                        ti = heap_i[off]
                        heap_i[off] = heap_i[off + end]
                        heap_i[off + end] = ti
                        root = 0
                        while True:
                            child = root * 2 + 1
                            mx = root
                            if child < end and heap_v[off + mx] < heap_v[off + child]:
                                mx = child
                            if child + 1 < end and heap_v[off + mx] < heap_v[off + child + 1]:
                                mx = child + 1
                            if mx == root:
                                break
                            tv = heap_v[off + root]
                            heap_v[off + root] = heap_v[off + mx]
                            heap_v[off + mx] = tv
                            ti = heap_i[off + root]
                            heap_i[off + root] = heap_i[off + mx]
                            heap_i[off + mx] = ti
                            root = mx
                        end = end - 1
                    heap_done = True
                    break
                maxd -= 1
                # inplace_median3
                piv = m // 2
                if heap_v[off] > heap_v[off + m - 1]:
                    tv = heap_v[off]
                    heap_v[off] = heap_v[off + m - 1]
                    heap_v[off + m - 1] = tv
                    ti = heap_i[off]
                    heap_i[off] = heap_i[off + m - 1]
                    heap_i[off + m - 1] = ti
                if heap_v[off + m - 1] > heap_v[off + piv]:
                    tv = heap_v[off + m - 1]
                    heap_v[off + m - 1] = heap_v[off + piv]
                    heap_v[off + piv] = tv
                    ti = heap_i[off + m - 1]
                    heap_i[off + m - 1] = heap_i[off + piv]
                    heap_i[off + piv] = ti
                    if heap_v[off] > heap_v[off + m - 1]:
                        tv = heap_v[off]
                        heap_v[off] = heap_v[off + m - 1]
                        heap_v[off + m - 1] = tv
                        ti = heap_i[off]
                        heap_i[off] = heap_i[off + m - 1]
                        heap_i[off + m - 1] = ti
                pivot = heap_v[off + m - 1]
                a = 1
                b = m - 2
                while True:
                    while a <= b and heap_v[off + a] < pivot:
                        a += 1
                    while a <= b and heap_v[off + b] > pivot:
                        b -= 1
                    if a >= b:
                        break
                    tv = heap_v[off + a]
                    heap_v[off + a] = heap_v[off + b]
                    heap_v[off + b] = tv
                    ti = heap_i[off + a]
                    heap_i[off + a] = heap_i[off + b]
                    heap_i[off + b] = ti
                    a += 1
                    b -= 1
                tv = heap_v[off + a]
                heap_v[off + a] = heap_v[off + m - 1]
                heap_v[off + m - 1] = tv
                ti = heap_i[off + a]
                heap_i[off + a] = heap_i[off + m - 1]
                heap_i[off + m - 1] = ti
                # the left part [off, off + a) is sorted on its own, later
                sort_off[ssp] = off
                sort_n[ssp] = a
                sort_d[ssp] = maxd
                ssp += 1
                off += a + 1
                m -= a + 1
            if not heap_done:
                for a in range(1, m):
                    tv = heap_v[off + a]
                    ti = heap_i[off + a]
                    b = a
                    while b > 0 and heap_v[off + b - 1] > tv:
                        heap_v[off + b] = heap_v[off + b - 1]
                        heap_i[off + b] = heap_i[off + b - 1]
                        b -= 1
                    heap_v[off + b] = tv
                    heap_i[off + b] = ti
        for j in range(k):
            ws[i, dst[j]] = heap_i[j]
            ws[i, dst[k + j]] = np.sqrt(heap_v[j]) if metric == 0 else heap_v[j]


def knn_vote(ws, src, dst, labels, weighting):
    """KNeighborsClassifier from neighbour indices and distances (``src``: k then k).

    ``dst``: per class the vote ``predict`` takes the first maximum of (``mode``, or
    ``weighted_mode``'s row sums), then ``predict_proba``. Distance weights are
    ``1 / d``; a row with a zero distance weighs its zero-distance neighbours 1 and the
    others 0. Sums follow numpy: ``predict_proba`` adds weights in neighbour order and
    normalises by a pairwise row sum; ``weighted_mode`` takes a pairwise sum per class.
    Refuses (returns the position of the first distance) a row whose neighbours are all
    infinitely far under distance weights: scikit-learn raises there (all weights zero).
    """
    n = ws.shape[0]
    k = src.shape[0] // 2
    n_cls = dst.shape[0] // 2
    n_lab = labels.shape[0]
    w = np.empty(k)
    lab = np.empty(k, dtype=np.int64)
    buf = np.empty(max(k, n_cls))
    acc = np.empty(n_cls)
    st_lo = np.empty(130, dtype=np.int64)
    st_n = np.empty(130, dtype=np.int64)
    st_stage = np.empty(130, dtype=np.int64)
    vals = np.empty(130)
    for i in range(n):
        any_inf = False
        all_zero = True
        for j in range(k):
            v = ws[i, src[j]]
            if not (v >= 0 and v < n_lab and v == np.floor(v)):
                return i * src.shape[0] + j
            lab[j] = labels[int(v)]
            if weighting == 0:
                w[j] = 1.0
            else:
                dist = ws[i, src[k + j]]
                w[j] = np.inf if dist == 0.0 else 1.0 / dist
                if np.isinf(w[j]):
                    any_inf = True
        if weighting != 0:
            if any_inf:
                for j in range(k):
                    w[j] = 1.0 if np.isinf(w[j]) else 0.0
            for j in range(k):
                if w[j] != 0.0:
                    all_zero = False
            if all_zero:
                return i * src.shape[0] + k
        # predict_proba: weights added in neighbour order, then a pairwise row sum
        for c in range(n_cls):
            acc[c] = 0.0
        for j in range(k):
            acc[lab[j]] += w[j]
        for c in range(n_cls):
            buf[c] = acc[c]
        m_total = n_cls
        # ---- numpy pairwise sum of buf[0:m_total] ----
        st_lo[0] = 0
        st_n[0] = m_total
        st_stage[0] = 0
        sp = 1
        vs = 0
        while sp > 0:
            lo = st_lo[sp - 1]
            m = st_n[sp - 1]
            if m <= 128:
                sp -= 1
                if m < 8:
                    res = 0.0
                    for t in range(m):
                        res += buf[lo + t]
                else:
                    r0 = buf[lo]
                    r1 = buf[lo + 1]
                    r2 = buf[lo + 2]
                    r3 = buf[lo + 3]
                    r4 = buf[lo + 4]
                    r5 = buf[lo + 5]
                    r6 = buf[lo + 6]
                    r7 = buf[lo + 7]
                    t = 8
                    while t < m - (m % 8):
                        r0 += buf[lo + t]
                        r1 += buf[lo + t + 1]
                        r2 += buf[lo + t + 2]
                        r3 += buf[lo + t + 3]
                        r4 += buf[lo + t + 4]
                        r5 += buf[lo + t + 5]
                        r6 += buf[lo + t + 6]
                        r7 += buf[lo + t + 7]
                        t += 8
                    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
                    while t < m:
                        res += buf[lo + t]
                        t += 1
                vals[vs] = res
                vs += 1
            elif st_stage[sp - 1] == 0:
                st_stage[sp - 1] = 1
                h = m // 2
                h -= h % 8
                st_lo[sp] = lo + h
                st_n[sp] = m - h
                st_stage[sp] = 0
                st_lo[sp + 1] = lo
                st_n[sp + 1] = h
                st_stage[sp + 1] = 0
                sp += 2
            else:
                sp -= 1
                vals[vs - 2] = vals[vs - 2] + vals[vs - 1]
                vs -= 1
        total = vals[0]
        # ---- end pairwise sum ----
        for c in range(n_cls):
            ws[i, dst[n_cls + c]] = acc[c] / total
        # predict: mode (uniform) or weighted_mode's pairwise sum per class
        for c in range(n_cls):
            if weighting == 0:
                ws[i, dst[c]] = acc[c]
                continue
            for j in range(k):
                buf[j] = w[j] if lab[j] == c else 0.0
            m_total = k
            # ---- numpy pairwise sum of buf[0:m_total] ----
            st_lo[0] = 0
            st_n[0] = m_total
            st_stage[0] = 0
            sp = 1
            vs = 0
            while sp > 0:
                lo = st_lo[sp - 1]
                m = st_n[sp - 1]
                if m <= 128:
                    sp -= 1
                    if m < 8:
                        res = 0.0
                        for t in range(m):
                            res += buf[lo + t]
                    else:
                        r0 = buf[lo]
                        r1 = buf[lo + 1]
                        r2 = buf[lo + 2]
                        r3 = buf[lo + 3]
                        r4 = buf[lo + 4]
                        r5 = buf[lo + 5]
                        r6 = buf[lo + 6]
                        r7 = buf[lo + 7]
                        t = 8
                        while t < m - (m % 8):
                            r0 += buf[lo + t]
                            r1 += buf[lo + t + 1]
                            r2 += buf[lo + t + 2]
                            r3 += buf[lo + t + 3]
                            r4 += buf[lo + t + 4]
                            r5 += buf[lo + t + 5]
                            r6 += buf[lo + t + 6]
                            r7 += buf[lo + t + 7]
                            t += 8
                        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
                        while t < m:
                            res += buf[lo + t]
                            t += 1
                    vals[vs] = res
                    vs += 1
                elif st_stage[sp - 1] == 0:
                    st_stage[sp - 1] = 1
                    h = m // 2
                    h -= h % 8
                    st_lo[sp] = lo + h
                    st_n[sp] = m - h
                    st_stage[sp] = 0
                    st_lo[sp + 1] = lo
                    st_n[sp + 1] = h
                    st_stage[sp + 1] = 0
                    sp += 2
                else:
                    sp -= 1
                    vals[vs - 2] = vals[vs - 2] + vals[vs - 1]
                    vs -= 1
            ws[i, dst[c]] = vals[0]
            # ---- end pairwise sum ----
    return -1


def knn_mean(ws, src, dst, y, weighting):
    """KNeighborsRegressor from neighbour indices and distances (``src``: k then k).

    Uniform: numpy's pairwise mean of the neighbours' targets. Distance: pairwise
    ``sum(y * w) / sum(w)`` with scikit-learn's weights (``1 / d``; zero distances
    weigh 1 and the rest 0); all-zero weights give NaN (0 / 0), as scikit-learn does.
    Returns the position of an out-of-range neighbour index (a corrupt plan), else -1.
    """
    n = ws.shape[0]
    k = src.shape[0] // 2
    n_y = y.shape[0]
    w = np.empty(k)
    buf = np.empty(k)
    st_lo = np.empty(130, dtype=np.int64)
    st_n = np.empty(130, dtype=np.int64)
    st_stage = np.empty(130, dtype=np.int64)
    vals = np.empty(130)
    sums = np.empty(2)
    for i in range(n):
        any_inf = False
        for j in range(k):
            v = ws[i, src[j]]
            if not (v >= 0 and v < n_y and v == np.floor(v)):
                return i * src.shape[0] + j
            if weighting == 0:
                w[j] = 1.0
            else:
                dist = ws[i, src[k + j]]
                w[j] = np.inf if dist == 0.0 else 1.0 / dist
                if np.isinf(w[j]):
                    any_inf = True
        if any_inf:
            for j in range(k):
                w[j] = 1.0 if np.isinf(w[j]) else 0.0
        for part in range(2):
            if weighting == 0 and part == 1:
                break
            for j in range(k):
                yv = y[int(ws[i, src[j]])]
                if part == 0:
                    buf[j] = yv if weighting == 0 else yv * w[j]
                else:
                    buf[j] = w[j]
            # ---- numpy pairwise sum of buf[0:k] ----
            st_lo[0] = 0
            st_n[0] = k
            st_stage[0] = 0
            sp = 1
            vs = 0
            while sp > 0:
                lo = st_lo[sp - 1]
                m = st_n[sp - 1]
                if m <= 128:
                    sp -= 1
                    if m < 8:
                        res = 0.0
                        for t in range(m):
                            res += buf[lo + t]
                    else:
                        r0 = buf[lo]
                        r1 = buf[lo + 1]
                        r2 = buf[lo + 2]
                        r3 = buf[lo + 3]
                        r4 = buf[lo + 4]
                        r5 = buf[lo + 5]
                        r6 = buf[lo + 6]
                        r7 = buf[lo + 7]
                        t = 8
                        while t < m - (m % 8):
                            r0 += buf[lo + t]
                            r1 += buf[lo + t + 1]
                            r2 += buf[lo + t + 2]
                            r3 += buf[lo + t + 3]
                            r4 += buf[lo + t + 4]
                            r5 += buf[lo + t + 5]
                            r6 += buf[lo + t + 6]
                            r7 += buf[lo + t + 7]
                            t += 8
                        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
                        while t < m:
                            res += buf[lo + t]
                            t += 1
                    vals[vs] = res
                    vs += 1
                elif st_stage[sp - 1] == 0:
                    st_stage[sp - 1] = 1
                    h = m // 2
                    h -= h % 8
                    st_lo[sp] = lo + h
                    st_n[sp] = m - h
                    st_stage[sp] = 0
                    st_lo[sp + 1] = lo
                    st_n[sp + 1] = h
                    st_stage[sp + 1] = 0
                    sp += 2
                else:
                    sp -= 1
                    vals[vs - 2] = vals[vs - 2] + vals[vs - 1]
                    vs -= 1
            sums[part] = vals[0]
            # ---- end pairwise sum ----
        if weighting == 0:
            ws[i, dst[0]] = sums[0] / k
        elif sums[1] == 0.0:
            # 0 / 0 is NaN in numpy; Numba would raise on a division by zero
            ws[i, dst[0]] = sums[0] * np.inf
        else:
            ws[i, dst[0]] = sums[0] / sums[1]
    return -1


_WS = "f8[:, ::1]"
_IDX = "i8[::1]"
_F = "f8[::1]"

#: Kernel name -> Numba signature. The backends compile exactly these.
EXPORTS: dict[str, str] = {
    "check_values": f"i8({_WS}, {_IDX}, i8, i8)",
    "impute": f"void({_WS}, {_IDX}, {_IDX}, {_F})",
    "scale": f"void({_WS}, {_IDX}, {_IDX}, {_F}, {_F})",
    "onehot": f"i8({_WS}, {_IDX}, {_IDX}, {_F}, {_IDX}, {_IDX}, i8)",
    "linear": f"void({_WS}, {_IDX}, {_IDX}, f8[:, ::1], {_F})",
    "forest": (
        f"void({_WS}, {_IDX}, {_IDX}, {_IDX}, {_IDX}, {_F}, {_IDX}, {_IDX}, u1[::1], "
        "f8[:, ::1], f8)"
    ),
    "expit_pair": f"void({_WS}, {_IDX}, {_IDX})",
    "softmax": f"void({_WS}, {_IDX}, {_IDX})",
    "argmax": f"void({_WS}, {_IDX}, {_IDX})",
    "positive": f"void({_WS}, {_IDX}, {_IDX})",
    "boost": (
        f"void({_WS}, {_IDX}, {_IDX}, {_IDX}, {_F}, {_IDX}, {_IDX}, {_IDX}, {_F}, {_IDX}, "
        f"{_IDX}, f8[:, ::1], f8)"
    ),
    "hgb": (
        f"void({_WS}, {_IDX}, {_IDX}, {_F}, {_IDX}, {_IDX}, {_IDX}, {_F}, {_IDX}, {_IDX}, "
        f"u1[::1], {_IDX}, {_IDX}, {_IDX}, {_IDX}, f8[:, ::1])"
    ),
    "exp_link": f"void({_WS}, {_IDX}, {_IDX})",
    "iforest": (
        f"void({_WS}, {_IDX}, {_IDX}, {_IDX}, {_IDX}, {_F}, {_IDX}, {_IDX}, u1[::1], "
        "f8[:, ::1], f8, f8)"
    ),
    "mul_add": f"void({_WS}, {_IDX}, {_IDX}, {_F}, {_F})",
    "multiply": f"void({_WS}, {_IDX}, {_IDX}, {_F})",
    "clip": f"void({_WS}, {_IDX}, {_IDX}, {_F}, {_F})",
    "normalize_rows": f"void({_WS}, {_IDX}, {_IDX}, i8, i8, i8)",
    "onehot_fallback": f"void({_WS}, {_IDX}, {_IDX}, {_F}, {_IDX}, {_IDX}, {_IDX})",
    "ordinal_encode": f"i8({_WS}, {_IDX}, {_IDX}, {_F}, {_F}, {_IDX}, {_F}, i8)",
    "missing_indicator": f"void({_WS}, {_IDX}, {_IDX})",
    "product": f"void({_WS}, {_IDX}, {_IDX}, {_IDX}, {_IDX}, i8)",
    "constant": f"void({_WS}, {_IDX}, {_F})",
    "bin_index": f"void({_WS}, {_IDX}, {_IDX}, {_IDX}, {_F}, i8)",
    "unary_func": f"void({_WS}, {_IDX}, {_IDX}, i8)",
    "linear_dot2": f"void({_WS}, {_IDX}, {_IDX}, f8[:, ::1], {_F})",
    "binarize": f"void({_WS}, {_IDX}, {_IDX}, f8)",
    "huber_pair": f"void({_WS}, {_IDX}, {_IDX})",
    "ovr_proba": f"void({_WS}, {_IDX}, {_IDX}, i8)",
    "gaussian_nb": f"void({_WS}, {_IDX}, {_IDX}, f8[:, ::1], f8[:, ::1], {_F}, {_F})",
    "nb_proba": f"void({_WS}, {_IDX}, {_IDX}, i8)",
    "mlp_dense": f"void({_WS}, {_IDX}, {_IDX}, f8[:, ::1], {_F}, i8)",
    "svm_kernel_sum": (
        f"void({_WS}, {_IDX}, {_IDX}, f8[:, ::1], f8[:, ::1], {_IDX}, {_F}, i8, f8, f8, i8)"
    ),
    "svm_votes": f"void({_WS}, {_IDX}, {_IDX})",
    "svm_ovr": f"void({_WS}, {_IDX}, {_IDX})",
    "svm_proba": f"void({_WS}, {_IDX}, {_IDX}, {_F}, {_F})",
    "knn_tree": (
        f"void({_WS}, {_IDX}, {_IDX}, f8[:, ::1], {_IDX}, {_IDX}, {_IDX}, u1[::1], "
        f"f8[:, ::1], f8[:, ::1], {_F}, i8, i8, f8)"
    ),
    "knn_vote": f"i8({_WS}, {_IDX}, {_IDX}, {_IDX}, i8)",
    "knn_mean": f"i8({_WS}, {_IDX}, {_IDX}, {_F}, i8)",
}
