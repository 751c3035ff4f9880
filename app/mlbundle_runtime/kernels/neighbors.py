"""k nearest neighbours: scikit-learn's tree queries replayed, votes and means.

Plain, Numba-compatible Python; see ``app/mlbundle_runtime/kernels/__init__.py`` for the rules
every kernel follows.
"""

from __future__ import annotations

import numpy as np

from mlbundle_runtime.kernels._types import F1, F2, I1, U1, sig
from mlbundle_runtime.kernels.sums import pairwise_sum


def knn_tree(
    ws,
    src,
    dst,
    data,
    idx_array,
    node_start,
    node_end,
    node_leaf,
    bound_a,
    bound_b,
    radius,
    tree_kind,
    metric,
    p,
):
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
    buf = np.empty(k)
    acc = np.empty(n_cls)
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
        total = 0.0 + pairwise_sum(acc, 0, n_cls)
        for c in range(n_cls):
            ws[i, dst[n_cls + c]] = acc[c] / total
        # predict: mode (uniform) or weighted_mode's pairwise sum per class
        for c in range(n_cls):
            if weighting == 0:
                ws[i, dst[c]] = acc[c]
                continue
            for j in range(k):
                buf[j] = w[j] if lab[j] == c else 0.0
            ws[i, dst[c]] = 0.0 + pairwise_sum(buf, 0, k)
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
            sums[part] = 0.0 + pairwise_sum(buf, 0, k)
        if weighting == 0:
            ws[i, dst[0]] = sums[0] / k
        elif sums[1] == 0.0:
            # 0 / 0 is NaN in numpy; Numba would raise on a division by zero
            ws[i, dst[0]] = sums[0] * np.inf
        else:
            ws[i, dst[0]] = sums[0] / sums[1]
    return -1


def knn_brute(ws, src, dst, data, metric):
    """k nearest neighbours by a full scan of the training points (``algorithm="brute"``).

    Distances are scikit-learn's exact ``DistanceMetric`` loops (the ones its trees use:
    euclidean ``sqrt(sum((x - y)^2))`` in feature order, manhattan, chebyshev), not its
    brute path's BLAS ``||x||^2 - 2x.y + ||y||^2``. Equally distant points are taken in
    training order (a stable sort of the distances): scikit-learn's brute path orders and
    picks them by batch size and thread count, so the parity check treats them as
    interchangeable and compares in this order (ranked by the distance itself, so two
    points whose squared euclidean distances differ but whose distances round equal are
    ties). ``dst`` holds k indices then k distances;
    ``metric``: 0 euclidean, 1 manhattan, 2 chebyshev.
    """
    n = ws.shape[0]
    d = src.shape[0]
    k = dst.shape[0] // 2
    m = data.shape[0]
    x = np.empty(d)
    best_v = np.empty(k)
    best_i = np.zeros(k, dtype=np.int64)
    for i in range(n):
        for f in range(d):
            x[f] = ws[i, src[f]]
        cnt = 0
        for j in range(m):
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
            if metric == 0:
                rd = np.sqrt(rd)  # ranked by the distance itself: equal distances are ties
            if cnt < k:
                pos = cnt
                cnt += 1
            elif rd < best_v[k - 1]:
                pos = k - 1
            else:
                continue
            # insert after every kept distance <= rd: ties stay in training order
            while pos > 0 and best_v[pos - 1] > rd:
                best_v[pos] = best_v[pos - 1]
                best_i[pos] = best_i[pos - 1]
                pos -= 1
            best_v[pos] = rd
            best_i[pos] = j
        for j in range(k):
            ws[i, dst[j]] = best_i[j]
            ws[i, dst[k + j]] = best_v[j]


def radius_query(
    ws,
    src,
    dst,
    data,
    idx_array,
    node_start,
    node_end,
    node_leaf,
    bound_a,
    bound_b,
    radius,
    tree_kind,
    metric,
    p,
    r,
    y,
    weighting,
    outlier,
    empty,
):
    """RadiusNeighborsClassifier / Regressor: scikit-learn's ``query_radius``, then its vote
    or mean.

    The walk is ``_query_radius_single``'s: depth first, left child first; a node whose
    lower bound exceeds ``r`` is skipped; one whose upper bound is ``<= r`` gives all its
    points; a leaf gives its points with ``rdist <= rdist(r)`` (``r * r`` for euclidean).
    Bounds are ``min_max_dist``'s: ``tree_kind`` 0 KD tree (``bound_a`` lower, ``bound_b``
    upper bounds; ``p`` the metric's p, ``metric`` 2 taking maxima), 1 ball tree
    (``bound_a`` centroids, ``radius``); 2 no tree (``algorithm="brute"``: the root, one
    leaf over the training points in order). ``metric``: 0 euclidean, 1 manhattan, 2
    chebyshev. Members keep the walk's order, as scikit-learn's unsorted result.

    With ``dst`` one column the kernel is the regressor: the members' ``np.mean`` of ``y``
    (pairwise), or for distance weights ``np.average``'s ``sum(y * w) / sum(w)``; ``empty[0]``
    without members (NaN, or NaN cast to the targets' integer type). Otherwise ``dst``
    holds the class probabilities ``predict`` takes the first maximum of: ``np.bincount``
    of the class indices ``y`` (weights added in member order) over their pairwise row
    sum; a row without members gets probability 1 for class ``outlier``, or with
    ``outlier`` -1 is refused (scikit-learn raises; returns the row's first source
    position). Distance weights are ``1 / d``; a row with a member at distance 0 weighs
    those 1 and the rest 0.
    """
    n = ws.shape[0]
    d = src.shape[0]
    m = data.shape[0]
    n_out = dst.shape[0]
    n_nodes = node_start.shape[0]
    reduced_r = r * r if metric == 0 else r
    x = np.empty(d)
    dist = np.empty(m)
    member = np.zeros(m, dtype=np.int64)
    buf = np.empty(m)
    wbuf = np.empty(m)
    acc = np.empty(n_out)
    stack = np.empty(n_nodes + 1, dtype=np.int64)
    for i in range(n):
        for f in range(d):
            x[f] = ws[i, src[f]]
        cnt = 0
        stack[0] = 0
        sp = 1
        while sp > 0:
            sp -= 1
            node = stack[sp]
            lo = 0.0
            hi = 0.0
            if tree_kind == 0:
                for f in range(d):
                    d_lo = bound_a[node, f] - x[f]
                    d_hi = x[f] - bound_b[node, f]
                    dd = (d_lo + np.abs(d_lo)) + (d_hi + np.abs(d_hi))
                    a_lo = np.abs(d_lo)
                    a_hi = np.abs(d_hi)
                    # fmax(a, b): a NaN argument is ignored
                    far = a_hi if a_lo != a_lo else (a_lo if a_hi != a_hi else max(a_lo, a_hi))
                    if metric == 2:
                        h = 0.5 * dd
                        if h == h and (lo != lo or h > lo):
                            lo = h
                        if far == far and (hi != hi or far > hi):
                            hi = far
                    else:
                        lo += (0.5 * dd) ** p
                        hi += far**p
                if metric != 2:
                    lo = lo ** (1.0 / p)
                    hi = hi ** (1.0 / p)
            elif tree_kind == 1:
                dc = 0.0
                for f in range(d):
                    t = x[f] - bound_a[node, f]
                    if metric == 0:
                        dc += t * t
                    elif metric == 1:
                        dc += np.abs(t)
                    else:
                        at = np.abs(t)
                        if at == at and (dc != dc or at > dc):
                            dc = at
                if metric == 0:
                    dc = np.sqrt(dc)
                md = dc - radius[node]
                lo = md if md > 0.0 else 0.0  # fmax(0, md)
                if md != md:
                    lo = 0.0
                hi = dc + radius[node]
            if tree_kind != 2 and lo > r:
                continue
            whole = tree_kind != 2 and hi <= r
            if whole or tree_kind == 2 or node_leaf[node] != 0:
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
                    if whole or rd <= reduced_r:
                        member[cnt] = j
                        dist[cnt] = np.sqrt(rd) if metric == 0 else rd
                        cnt += 1
            else:
                stack[sp] = 2 * node + 2
                stack[sp + 1] = 2 * node + 1
                sp += 2
        zero = False
        for t in range(cnt):
            if dist[t] == 0.0:
                zero = True
        for t in range(cnt):
            if weighting == 0:
                wbuf[t] = 1.0
            elif zero:
                wbuf[t] = 1.0 if dist[t] == 0.0 else 0.0
            else:
                wbuf[t] = 1.0 / dist[t]
        if n_out == 1:
            if cnt == 0:
                ws[i, dst[0]] = empty[0]
                continue
            for t in range(cnt):
                buf[t] = y[member[t]] if weighting == 0 else y[member[t]] * wbuf[t]
            total = 0.0 + pairwise_sum(buf, 0, cnt)
            if weighting == 0:
                ws[i, dst[0]] = total / cnt
            else:
                ws[i, dst[0]] = total / (0.0 + pairwise_sum(wbuf, 0, cnt))
            continue
        for c in range(n_out):
            acc[c] = 0.0
        if cnt == 0:
            if outlier < 0:
                return i * d
            acc[outlier] = 1.0
        for t in range(cnt):
            acc[int(y[member[t]])] += wbuf[t]
        norm = 0.0 + pairwise_sum(acc, 0, n_out)
        if norm == 0.0:
            norm = 1.0
        for c in range(n_out):
            ws[i, dst[c]] = acc[c] / norm
    return -1


def kmeans_distances(ws, src, dst, centers, c_sq, mode):
    """KMeans: distances of each row to the cluster centers, as scikit-learn computes them.

    ``c_sq`` holds ``row_norms(centers, squared=True)``. ``mode`` 0 (``predict``) writes
    ``-(c_sq[j] - 2 x.c_j)``, the negated score ``lloyd_iter_chunked_dense`` ranks by
    (its gemm adds ``-2 x.c_j`` to ``c_sq``), so the first largest column is scikit-learn's
    first smallest. ``mode`` 1 (``transform``) writes ``euclidean_distances``:
    ``sqrt(max((-2 x.c_j + ||x||^2) + c_sq[j], 0))``, ``||x||^2`` added as ``np.einsum``
    does (two lanes fed by blocks of eight). The dot products go left to right, where
    BLAS may block and fuse: the last bits can differ.
    """
    n = ws.shape[0]
    d = src.shape[0]
    k = dst.shape[0]
    x = np.empty(d)
    for i in range(n):
        for f in range(d):
            x[f] = ws[i, src[f]]
        xx = 0.0
        if mode == 1:
            lane0 = 0.0
            lane1 = 0.0
            f = 0
            while d - f >= 8:
                for q in range(3, -1, -1):
                    x0 = x[f + 2 * q]
                    x1 = x[f + 2 * q + 1]
                    lane0 = x0 * x0 + lane0
                    lane1 = x1 * x1 + lane1
                f += 8
            while f < d:
                x0 = x[f]
                lane0 = x0 * x0 + lane0
                if f + 1 < d:
                    x1 = x[f + 1]
                    lane1 = x1 * x1 + lane1
                f += 2
            xx = 0.0 + (lane0 + lane1)
        for j in range(k):
            dot = 0.0
            for f in range(d):
                dot += x[f] * centers[j, f]
            if mode == 0:
                ws[i, dst[j]] = -(-2.0 * dot + c_sq[j])
            else:
                dist = (-2.0 * dot + xx) + c_sq[j]
                if dist < 0.0:
                    dist = 0.0
                ws[i, dst[j]] = np.sqrt(dist)


#: Kernel name -> Numba signature, for the kernels of this module.
EXPORTS: dict[str, str] = {
    "knn_tree": sig(F2, I1, I1, F2, I1, I1, I1, U1, F2, F2, F1, "i8", "i8", "f8"),
    "knn_vote": sig(F2, I1, I1, I1, "i8", ret="i8"),
    "knn_mean": sig(F2, I1, I1, F1, "i8", ret="i8"),
    "knn_brute": sig(F2, I1, I1, F2, "i8"),
    "kmeans_distances": sig(F2, I1, I1, F2, F1, "i8"),
    "radius_query": sig(
        *(F2, I1, I1, F2, I1, I1, I1, U1, F2, F2, F1),
        *("i8", "i8", "f8", "f8", F1, "i8", "i8", F1),
        ret="i8",
    ),
}
