"""numpy's pairwise summation, the one helper the kernels share.

Kernels that reproduce ``arr.sum(axis=1)`` on a C-ordered array must add in
numpy's order to give its bits, and several families need it (linear models,
naive Bayes, neighbours, Normalizer). It lives here once: the backends compile
each helper in ``SHARED_HELPERS`` into every kernel that calls it (as numba functions
inlined into the extension, like ``run_program``'s callees), so a kernel calls
it like any function and the extension exports nothing more.
"""

from __future__ import annotations

import numpy as np


def pairwise_sum(buf, lo, n):
    """numpy's ``pairwise_sum`` of ``buf[lo:lo + n]`` (numpy/_core/src/umath/loops_utils.h.src).

    Up to 128 values are one ``block_sum``; more are split in two at ``n // 2``
    rounded down to a multiple of 8, left half first. numpy's reduction adds the
    result to its identity, so ``arr.sum(axis=1)`` of a row is
    ``0.0 + pairwise_sum(row, 0, m)``. numpy recurses; here a stack of frames does
    (numba cannot reload a cached function that calls a recursive one), allocated
    only for sums long enough to split, and 64 frames deep: halving, enough for any n.
    """
    if n <= 128:
        return block_sum(buf, lo, n)
    st_lo = np.empty(64, np.int64)
    st_n = np.empty(64, np.int64)
    st_phase = np.empty(64, np.int64)  # 1: in the left half, 2: in the right half
    st_left = np.empty(64)  # the left half's sum, while in the right half
    sp = 0
    st_lo[0] = lo
    st_n[0] = n
    while True:
        cnt = st_n[sp]
        if cnt > 128:
            half = cnt // 2
            half -= half % 8
            st_phase[sp] = 1
            st_lo[sp + 1] = st_lo[sp]
            st_n[sp + 1] = half
            sp += 1
            continue
        res = block_sum(buf, st_lo[sp], cnt)
        sp -= 1
        while sp >= 0 and st_phase[sp] == 2:
            res = st_left[sp] + res
            sp -= 1
        if sp < 0:
            return res
        st_left[sp] = res
        st_phase[sp] = 2
        half = st_n[sp] // 2
        half -= half % 8
        st_lo[sp + 1] = st_lo[sp] + half
        st_n[sp + 1] = st_n[sp] - half
        sp += 1


def block_sum(buf, lo, n):
    """numpy's sum of at most 128 values: fewer than 8 in order from -0.0 (so only
    -0.0s sum to -0.0), else 8 interleaved accumulators combined pairwise, then the
    remainder in order."""
    if n < 8:
        res = -0.0
        for t in range(n):
            res += buf[lo + t]
        return res
    r0 = buf[lo]
    r1 = buf[lo + 1]
    r2 = buf[lo + 2]
    r3 = buf[lo + 3]
    r4 = buf[lo + 4]
    r5 = buf[lo + 5]
    r6 = buf[lo + 6]
    r7 = buf[lo + 7]
    t = 8
    stop = n - n % 8
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
    while t < n:
        res += buf[lo + t]
        t += 1
    return res


#: Functions the kernels call: compiled into each kernel by the backends, never exported.
SHARED_HELPERS = ("pairwise_sum", "block_sum")

#: This module exports no kernel.
EXPORTS: dict[str, str] = {}
