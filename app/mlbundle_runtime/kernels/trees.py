"""Tree traversal: forests, gradient boosting, histogram boosting, isolation forests.

Plain, Numba-compatible Python; see ``app/mlbundle_runtime/kernels/__init__.py`` for the rules
every kernel follows.
"""

from __future__ import annotations

import numpy as np

from mlbundle_runtime.kernels._types import F1, F2, I1, I4_2, U1, sig


def hgb(
    ws,
    src,
    dst,
    init,
    roots,
    tree_out,
    feature,
    threshold,
    left,
    right,
    missing_left,
    cat_left,
    cat_known,
    left_bits,
    known_bits,
    value,
):
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


#: A lone row's walks (eight trees at once) stop once all eight are on their leaves when
#: the deepest of the eight is deeper than this (a test after each step); shallower groups
#: take exactly their depth in steps, with no test. Measured (tree_sum alone, one row):
#: 1.55x on the forest (depths 7-11), 1.18x on histogram boosting (up to 17), 1.11x on
#: depth-3 gradient boosting (its tail trees). In a block, a tree deeper than this is
#: walked for every row only as deep as a balanced tree of its size; then only the rows
#: not yet on a leaf go on.
EXIT_DEPTH = 6

#: Rows per block. A block is gathered features-major (feature ``f`` of row ``r`` at
#: ``f * BLOCK + r``), so a split reads its feature for every row of the block from
#: consecutive memory.
BLOCK = 128

#: Trees of at most this many leaves are scored by leaf bitvectors (one 32-bit word per
#: row) in blocks.
LEAF_BITS = 32


def tree_sum(ws, src, dst, start_cols, start, trees, nodes, thr, value, scale, divisor, cast32):
    """Sum tree outputs per row: forests, gradient boosting, numeric histogram boosting.

    Output ``k`` starts at column ``start_cols[k]`` (when given) or ``start[k]``;
    tree ``t`` (``trees[t]`` = root, depth, first output) adds
    ``scale * value[leaf, j]`` to output ``first + j``, trees in order; then every
    output is divided by ``divisor``. With ``scale == divisor == 1`` and a zero
    start this is a plain sum (``1.0 * v`` and ``v / 1.0`` are exact), so the
    arithmetic is scikit-learn's, bit for bit.

    Splits: ``x <= thr`` goes left, ``x`` rounded to float32 first when ``cast32``
    (trees and gradient boosting; histogram boosting compares float64). NaN goes
    left unless bit 24 of the node's feature word sends it right.

    Layout: ``nodes[i] = (feature | nan_right << 24, child)``, right child at
    ``child + 1``; a leaf is its own child with ``thr = +inf``, so a walk of ``depth``
    steps always ends on its leaf, with no branch to mispredict. Tree ``t`` owns the
    nodes from its root to the next tree's root.

    Paths, for speed; all reach the same leaves, so the same sums. Rows go in blocks of
    ``BLOCK``. A tree of at most ``LEAF_BITS`` leaves is scored by leaf bitvectors
    (QuickScorer): leaves numbered left to right, a row starts with all of them possible,
    and each split the row goes right at clears the leaves of its left subtree; the exit
    leaf is the first one left. A split is one comparison over the block's rows, which the
    compiler vectorises: ``x > thr`` goes right, or ``not x <= thr`` where NaN goes right;
    with ``cast32`` in float32, ``float32(x) <= thr`` being ``float32(x) <= t32``, ``t32``
    the largest float32 not above ``thr``. Each leaf's ``scale * value`` is computed once
    per call (the same product). Other trees
    are walked for all the block's rows in turn (independent walks the CPU overlaps); one
    deeper than ``EXIT_DEPTH`` only as deep as a balanced tree of its size, then for the
    rows not yet on a leaf. A block with no NaN skips the missing-value rule. A call of
    fewer than eight rows walks each row through eight trees at once instead, stopping
    early once all eight are on their leaves when one is deeper than ``EXIT_DEPTH``.
    """
    n = ws.shape[0]
    n_out = dst.shape[0]
    n_feat = src.shape[0]
    n_val = value.shape[1]
    n_trees = trees.shape[0]
    if n < 8:
        # fewer than eight rows (a lone prediction): one at a time, eight trees at once
        # (still added in tree order), with the missing-value rule only when a row has NaN;
        # no block scratch to allocate
        xr = np.empty((n, n_feat))
        acc = np.empty((n, n_out))
        clean = True
        for r in range(n):
            for f in range(n_feat):
                x = ws[r, src[f]]
                xr[r, f] = np.float64(np.float32(x)) if cast32 != 0 else x
                if x != x:
                    clean = False
            for k in range(n_out):
                acc[r, k] = ws[r, start_cols[k]] if start_cols.shape[0] > 0 else start[k]
        for r in range(n):
            t = 0
            row = xr[r]
            while clean and t + 8 <= n_trees:
                a = trees[t, 0]
                b = trees[t + 1, 0]
                c = trees[t + 2, 0]
                d = trees[t + 3, 0]
                e = trees[t + 4, 0]
                f = trees[t + 5, 0]
                g = trees[t + 6, 0]
                h = trees[t + 7, 0]
                depth = max(
                    trees[t, 1],
                    trees[t + 1, 1],
                    trees[t + 2, 1],
                    trees[t + 3, 1],
                    trees[t + 4, 1],
                    trees[t + 5, 1],
                    trees[t + 6, 1],
                    trees[t + 7, 1],
                )
                deep = depth > EXIT_DEPTH
                for _ in range(depth):
                    xa = row[nodes[a, 0] & 0xFFFFFF]
                    xb = row[nodes[b, 0] & 0xFFFFFF]
                    xc = row[nodes[c, 0] & 0xFFFFFF]
                    xd = row[nodes[d, 0] & 0xFFFFFF]
                    xe = row[nodes[e, 0] & 0xFFFFFF]
                    xf = row[nodes[f, 0] & 0xFFFFFF]
                    xg = row[nodes[g, 0] & 0xFFFFFF]
                    xh = row[nodes[h, 0] & 0xFFFFFF]
                    a2 = nodes[a, 1] + np.int32(xa > thr[a])
                    b2 = nodes[b, 1] + np.int32(xb > thr[b])
                    c2 = nodes[c, 1] + np.int32(xc > thr[c])
                    d2 = nodes[d, 1] + np.int32(xd > thr[d])
                    e2 = nodes[e, 1] + np.int32(xe > thr[e])
                    f2 = nodes[f, 1] + np.int32(xf > thr[f])
                    g2 = nodes[g, 1] + np.int32(xg > thr[g])
                    h2 = nodes[h, 1] + np.int32(xh > thr[h])
                    if (
                        deep
                        and (
                            (a2 ^ a)
                            | (b2 ^ b)
                            | (c2 ^ c)
                            | (d2 ^ d)
                            | (e2 ^ e)
                            | (f2 ^ f)
                            | (g2 ^ g)
                            | (h2 ^ h)
                        )
                        == 0
                    ):
                        break  # every walk is on its leaf
                    a, b, c, d, e, f, g, h = a2, b2, c2, d2, e2, f2, g2, h2
                for j in range(n_val):
                    acc[r, trees[t, 2] + j] += scale * value[a, j]
                for j in range(n_val):
                    acc[r, trees[t + 1, 2] + j] += scale * value[b, j]
                for j in range(n_val):
                    acc[r, trees[t + 2, 2] + j] += scale * value[c, j]
                for j in range(n_val):
                    acc[r, trees[t + 3, 2] + j] += scale * value[d, j]
                for j in range(n_val):
                    acc[r, trees[t + 4, 2] + j] += scale * value[e, j]
                for j in range(n_val):
                    acc[r, trees[t + 5, 2] + j] += scale * value[f, j]
                for j in range(n_val):
                    acc[r, trees[t + 6, 2] + j] += scale * value[g, j]
                for j in range(n_val):
                    acc[r, trees[t + 7, 2] + j] += scale * value[h, j]
                t += 8
            while not clean and t + 8 <= n_trees:
                a = trees[t, 0]
                b = trees[t + 1, 0]
                c = trees[t + 2, 0]
                d = trees[t + 3, 0]
                e = trees[t + 4, 0]
                f = trees[t + 5, 0]
                g = trees[t + 6, 0]
                h = trees[t + 7, 0]
                depth = max(
                    trees[t, 1],
                    trees[t + 1, 1],
                    trees[t + 2, 1],
                    trees[t + 3, 1],
                    trees[t + 4, 1],
                    trees[t + 5, 1],
                    trees[t + 6, 1],
                    trees[t + 7, 1],
                )
                deep = depth > EXIT_DEPTH
                for _ in range(depth):
                    wa = nodes[a, 0]
                    wb = nodes[b, 0]
                    wc = nodes[c, 0]
                    wd = nodes[d, 0]
                    we = nodes[e, 0]
                    wf = nodes[f, 0]
                    wg = nodes[g, 0]
                    wh = nodes[h, 0]
                    xa = row[wa & 0xFFFFFF]
                    xb = row[wb & 0xFFFFFF]
                    xc = row[wc & 0xFFFFFF]
                    xd = row[wd & 0xFFFFFF]
                    xe = row[we & 0xFFFFFF]
                    xf = row[wf & 0xFFFFFF]
                    xg = row[wg & 0xFFFFFF]
                    xh = row[wh & 0xFFFFFF]
                    a2 = nodes[a, 1] + np.int32(xa > thr[a]) + ((wa >> 24) & np.int32(xa != xa))
                    b2 = nodes[b, 1] + np.int32(xb > thr[b]) + ((wb >> 24) & np.int32(xb != xb))
                    c2 = nodes[c, 1] + np.int32(xc > thr[c]) + ((wc >> 24) & np.int32(xc != xc))
                    d2 = nodes[d, 1] + np.int32(xd > thr[d]) + ((wd >> 24) & np.int32(xd != xd))
                    e2 = nodes[e, 1] + np.int32(xe > thr[e]) + ((we >> 24) & np.int32(xe != xe))
                    f2 = nodes[f, 1] + np.int32(xf > thr[f]) + ((wf >> 24) & np.int32(xf != xf))
                    g2 = nodes[g, 1] + np.int32(xg > thr[g]) + ((wg >> 24) & np.int32(xg != xg))
                    h2 = nodes[h, 1] + np.int32(xh > thr[h]) + ((wh >> 24) & np.int32(xh != xh))
                    if (
                        deep
                        and (
                            (a2 ^ a)
                            | (b2 ^ b)
                            | (c2 ^ c)
                            | (d2 ^ d)
                            | (e2 ^ e)
                            | (f2 ^ f)
                            | (g2 ^ g)
                            | (h2 ^ h)
                        )
                        == 0
                    ):
                        break  # every walk is on its leaf
                    a, b, c, d, e, f, g, h = a2, b2, c2, d2, e2, f2, g2, h2
                for j in range(n_val):
                    acc[r, trees[t, 2] + j] += scale * value[a, j]
                for j in range(n_val):
                    acc[r, trees[t + 1, 2] + j] += scale * value[b, j]
                for j in range(n_val):
                    acc[r, trees[t + 2, 2] + j] += scale * value[c, j]
                for j in range(n_val):
                    acc[r, trees[t + 3, 2] + j] += scale * value[d, j]
                for j in range(n_val):
                    acc[r, trees[t + 4, 2] + j] += scale * value[e, j]
                for j in range(n_val):
                    acc[r, trees[t + 5, 2] + j] += scale * value[f, j]
                for j in range(n_val):
                    acc[r, trees[t + 6, 2] + j] += scale * value[g, j]
                for j in range(n_val):
                    acc[r, trees[t + 7, 2] + j] += scale * value[h, j]
                t += 8
            while t < n_trees:
                a = trees[t, 0]
                for _ in range(trees[t, 1]):
                    wa = nodes[a, 0]
                    xa = row[wa & 0xFFFFFF]
                    a2 = nodes[a, 1] + np.int32(xa > thr[a]) + ((wa >> 24) & np.int32(xa != xa))
                    if a2 == a:
                        break  # on its leaf
                    a = a2
                for j in range(n_val):
                    acc[r, trees[t, 2] + j] += scale * value[a, j]
                t += 1
        for r in range(n):
            for k in range(n_out):
                ws[r, dst[k]] = acc[r, k] / divisor
        return
    n_nodes = nodes.shape[0]
    word = nodes.reshape(nodes.size)  # node i: word[2 * i] (feature, flag), word[2 * i + 1]
    xs = np.empty(n_feat * BLOCK)
    x32 = np.empty(n_feat * BLOCK, np.float32)
    acc = np.empty((BLOCK, n_out))
    at = np.empty(BLOCK, np.uint32)  # each row's node in the tree walked
    live = np.empty(BLOCK, np.uint32)  # rows not yet on a leaf
    bits = np.empty(BLOCK, np.uint32)  # each row's leaves still possible
    # leaf bitvectors, once per call: leaves numbered left to right; each split's
    # threshold (and float32 one), NaN direction, the leaves it keeps when the row goes
    # right (all but its left subtree's) and its feature's offset in the block
    under = np.empty(n_nodes, np.int64)  # leaves under each node, at most 64
    first_leaf = np.zeros(n_nodes, np.int64)  # number of the first leaf under each node
    split_at = np.zeros(n_trees + 1, np.int64)  # tree t's splits: split_at[t] to [t + 1]
    t32 = np.empty(n_nodes, np.float32)
    t64 = np.empty(n_nodes)
    nan_right = np.zeros(n_nodes, np.uint8)
    keep = np.empty(n_nodes, np.uint32)
    off = np.empty(n_nodes, np.int64)
    leaf_node = np.empty(n_trees * LEAF_BITS, np.int64)  # tree t's leaf j: node [32t + j]
    leaf_val = np.empty(n_trees * LEAF_BITS * n_val)  # scale * its values
    quick = np.zeros(n_trees, np.uint8)  # scored by bitvectors
    ctz = np.zeros(256, np.int64)  # trailing zeros of a byte
    for v in range(2, 256):
        ctz[v] = 0 if v & 1 else ctz[v >> 1] + 1
    debruijn = np.zeros(32, np.int64)  # trailing zeros of 32 bits, by de Bruijn's multiply
    for i in range(32):
        debruijn[(((1 << i) * 0x077CB531) & 0xFFFFFFFF) >> 27] = i
    for i in range(n_nodes - 1, -1, -1):
        c = word[2 * i + 1] & 0x7FFFFFFF  # children come after their parent
        under[i] = 1 if c == i else min(under[c] + under[c + 1], 64)
    k = 0
    done = 0  # trees' node ranges taken so far: a split is counted once
    for t in range(n_trees):
        split_at[t] = k
        root = trees[t, 0]
        end = trees[t + 1, 0] if t + 1 < n_trees else n_nodes
        if under[root] > LEAF_BITS or end <= root or root < done:
            continue
        done = end
        quick[t] = 1
        for j in range(LEAF_BITS):
            leaf_node[t * LEAF_BITS + j] = root
        first_leaf[root] = 0
        for i in range(root, end):
            c = word[2 * i + 1] & 0x7FFFFFFF
            lo = first_leaf[i] & 31
            if c == i:
                leaf_node[t * LEAF_BITS + lo] = i
                continue
            first_leaf[c] = lo
            first_leaf[c + 1] = lo + under[c]
            if thr[i] == np.inf and (word[2 * i] >> 24) & 1 == 0:
                continue  # no row goes right: nothing to clear
            keep[k] = ~np.uint32(((1 << min(under[c], 32)) - 1) << lo)
            v32 = np.float32(thr[i])
            if np.float64(v32) > thr[i]:
                v32 = np.nextafter(v32, np.float32(-np.inf))
            t32[k] = v32
            t64[k] = thr[i]
            nan_right[k] = (word[2 * i] >> 24) & 1
            off[k] = (word[2 * i] & 0xFFFFFF) * BLOCK
            k += 1
        for j in range(t * LEAF_BITS, (t + 1) * LEAF_BITS):
            for v in range(n_val):  # the product the walks take, once per call
                leaf_val[j * n_val + v] = scale * value[leaf_node[j], v]
    split_at[n_trees] = k
    wide = cast32 == 0  # the float64 copy of the block: walks and float64 bitvectors read it
    for t in range(n_trees):
        if quick[t] == 0:
            wide = True
    for b0 in range(0, n, BLOCK):
        nb = min(BLOCK, n - b0)
        clean = True  # no NaN in the block: walks can skip the missing-value rule
        for r in range(nb):
            for f in range(n_feat):
                x = ws[b0 + r, src[f]]
                x = np.float64(np.float32(x)) if cast32 != 0 else x
                if wide:
                    xs[f * BLOCK + r] = x
                if cast32 != 0:
                    x32[f * BLOCK + r] = np.float32(x)
                if x != x:
                    clean = False
            for k in range(n_out):
                acc[r, k] = ws[b0 + r, start_cols[k]] if start_cols.shape[0] > 0 else start[k]
        # every row of the block, tree by tree
        for t in range(n_trees):
            root = trees[t, 0]
            depth = trees[t, 1]
            first = trees[t, 2]
            if quick[t] != 0:
                for r in range(nb):
                    bits[r] = 0xFFFFFFFF
                for k in range(split_at[t], split_at[t + 1] if cast32 != 0 and clean else 0):
                    c = t32[k]  # the common case: float32, no NaN
                    m = keep[k]
                    xk = x32[off[k] : off[k] + BLOCK]  # a view: contiguous, vectorised loads
                    for r in range(nb):
                        bits[r] &= m if xk[r] > c else np.uint32(0xFFFFFFFF)
                for k in range(split_at[t], 0 if cast32 != 0 and clean else split_at[t + 1]):
                    m = keep[k]
                    right = nan_right[k] != 0 and not clean  # NaN goes right: not x <= thr
                    if cast32 != 0:
                        c = t32[k]
                        xk = x32[off[k] : off[k] + BLOCK]  # a view: contiguous loads
                        for r in range(nb if not right else 0):
                            bits[r] &= m if xk[r] > c else np.uint32(0xFFFFFFFF)
                        for r in range(nb if right else 0):
                            bits[r] &= np.uint32(0xFFFFFFFF) if xk[r] <= c else m
                    else:
                        c64 = t64[k]
                        xk64 = xs[off[k] : off[k] + BLOCK]
                        for r in range(nb if not right else 0):
                            bits[r] &= m if xk64[r] > c64 else np.uint32(0xFFFFFFFF)
                        for r in range(nb if right else 0):
                            bits[r] &= np.uint32(0xFFFFFFFF) if xk64[r] <= c64 else m
                base = t * LEAF_BITS
                if under[root] <= 8 and n_val == 1:  # the exit leaf in the low byte
                    for r in range(nb):
                        acc[r, first] += leaf_val[base + ctz[bits[r] & 255]]
                    continue
                if n_val <= 2:  # one value (regression, boosting) or two (binary proba)
                    for r in range(nb):
                        b = np.int64(bits[r])  # never 0: no split clears the last leaf
                        a = (base + debruijn[(((b & -b) * 0x077CB531) & 0xFFFFFFFF) >> 27]) * n_val
                        acc[r, first] += leaf_val[a]
                        if n_val == 2:
                            acc[r, first + 1] += leaf_val[a + 1]
                    continue
                for r in range(nb):
                    b = np.int64(bits[r])  # never 0: no split clears the last leaf
                    low = ((b & -b) * 0x077CB531) & 0xFFFFFFFF
                    a = (base + debruijn[low >> 27]) * n_val
                    for j in range(n_val):
                        acc[r, first + j] += leaf_val[a + j]
                continue
            steps = depth
            if depth > EXIT_DEPTH:  # as deep as a balanced tree of this size, then the rest
                size = (trees[t + 1, 0] if t + 1 < n_trees else n_nodes) - root
                steps = 0
                while (2 << steps) <= size and steps < depth:
                    steps += 1
            for r in range(nb):
                at[r] = root
            for _ in range(steps if clean else 0):
                for r in range(nb):
                    a = at[r]
                    x = xs[(word[2 * a] & 0xFFFFFF) * BLOCK + r]
                    at[r] = (word[2 * a + 1] & 0x7FFFFFFF) + np.int32(x > thr[a])
            for _ in range(0 if clean else steps):
                for r in range(nb):
                    a = at[r]
                    w = word[2 * a]
                    x = xs[(w & 0xFFFFFF) * BLOCK + r]
                    step = np.int32(x > thr[a]) + ((w >> 24) & np.int32(x != x))
                    at[r] = (word[2 * a + 1] & 0x7FFFFFFF) + step
            n_live = 0
            for r in range(nb if steps < depth else 0):
                live[n_live] = r
                a = at[r]
                n_live += (word[2 * a + 1] & 0x7FFFFFFF) != a
            for _ in range(depth - steps):
                if n_live == 0:
                    break
                k = 0
                for i in range(n_live):
                    r = live[i]
                    a = at[r]
                    w = word[2 * a]
                    x = xs[(w & 0xFFFFFF) * BLOCK + r]
                    step = np.int32(x > thr[a]) + ((w >> 24) & np.int32(x != x))
                    a = (word[2 * a + 1] & 0x7FFFFFFF) + step
                    at[r] = a
                    live[k] = r
                    k += (word[2 * a + 1] & 0x7FFFFFFF) != a
                n_live = k
            for r in range(nb):
                a = at[r]
                for j in range(n_val):
                    acc[r, first + j] += scale * value[a, j]
        for r in range(nb):
            for k in range(n_out):
                ws[b0 + r, dst[k]] = acc[r, k] / divisor


def exp_link(ws, src, dst):
    """``exp`` per column: the inverse of a log link (Poisson, gamma)."""
    n = ws.shape[0]
    for i in range(n):
        for j in range(src.shape[0]):
            ws[i, dst[j]] = np.exp(ws[i, src[j]])


def iforest(
    ws, src, dst, roots, feature, threshold, left, right, missing_left, value, denominator, offset
):
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


#: Kernel name -> Numba signature, for the kernels of this module.
EXPORTS: dict[str, str] = {
    "hgb": sig(F2, I1, I1, F1, I1, I1, I1, F1, I1, I1, U1, I1, I1, I1, I1, F2),
    "tree_sum": sig(F2, I1, I1, I1, F1, I4_2, I4_2, F1, F2, "f8", "f8", "i8"),
    "exp_link": sig(F2, I1, I1),
    "iforest": sig(F2, I1, I1, I1, I1, F1, I1, I1, U1, F2, "f8", "f8"),
}
