"""Structural checks of each kernel call in a plan, one function per kernel.

The kernels are compiled without bounds checks, so everything they index must
be proven in range here, when the plan is read: column indices inside the
workspace, array lengths that agree, tree children that always move forward.
Each check returns a problem description, or None when the call is sound.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Args = dict[str, Any]
Check = Callable[[Args, int], str | None]

#: Arguments that hold workspace column indices, whatever the kernel.
COLUMN_ARGS = frozenset({"cols", "src", "dst"})


def _same_length(a: Args, *names: str) -> str | None:
    sizes = {n: a[n].shape for n in names}
    if len(set(sizes.values())) != 1:
        return "argument lengths differ: " + ", ".join(f"{n} {s}" for n, s in sizes.items())
    return None


def _check_values(a: Args, width: int) -> str | None:
    return None if a["cols"].size else "no columns to check"


def _impute(a: Args, width: int) -> str | None:
    return _same_length(a, "src", "dst", "fill")


def _impute_value(a: Args, width: int) -> str | None:
    return _same_length(a, "src", "dst", "marker", "fill")


def _kmeans_distances(a: Args, width: int) -> str | None:
    shape = (a["dst"].size, a["src"].size)
    if a["src"].size == 0 or a["centers"].shape != shape:
        return f"centers shape {a['centers'].shape} does not match {shape}"
    if int(a["mode"]) not in (0, 1):
        return "mode must be 0 (predict) or 1 (transform)"
    return _same_length(a, "dst", "c_sq")


def _power_transform(a: Args, width: int) -> str | None:
    if int(a["method"]) not in (0, 1):
        return "method must be 0 (yeo-johnson) or 1 (box-cox)"
    return _same_length(a, "src", "dst", "lmbdas")


def _quantile_uniform(a: Args, width: int) -> str | None:
    q, r = a["quantiles"], a["references"]
    if q.shape[0] < 2 or q.shape != (r.size, a["src"].size):
        return f"quantiles shape {q.shape} does not match {r.size}x{a['src'].size} (2 rows or more)"
    return _same_length(a, "src", "dst")


def _quantile_normal(a: Args, width: int) -> str | None:
    if a["src"].size != 2 * a["dst"].size:
        return "expects two source columns (input, uniform value) per target"
    return _same_length(a, "dst", "lower", "upper", "lo", "hi")


def _impute_predicted(a: Args, width: int) -> str | None:
    if a["src"].size != 3 or a["dst"].size != 1 or a["lo"].size != 1 or a["hi"].size != 1:
        return "expects 3 source columns (missing, predicted, current), 1 target and 1 bound each"
    return None


def _spline_basis(a: Args, width: int) -> str | None:
    k, n_out, t = int(a["degree"]), a["dst"].size, a["t"]
    if a["src"].size != 1 or k < 0 or t.size != n_out + k + 1 or n_out <= k:
        return f"expects one column, and {n_out} + degree + 1 knots for {n_out} outputs"
    if int(a["mode"]) not in (0, 1, 2) or int(a["nan_zeros"]) not in (0, 1):
        return "mode must be 0, 1 or 2 and nan_zeros 0 or 1"
    if np.any(np.diff(t) < 0) or not np.all(np.isfinite(t)):
        return "the knots must be finite and sorted"
    return _same_length(a, "dst", "f_min", "f_max")


def _scale(a: Args, width: int) -> str | None:
    return _same_length(a, "src", "dst", "offset", "divisor")


def _onehot(a: Args, width: int) -> str | None:
    start, cdst = a["cat_start"], a["cat_dst"]
    if (
        start.size != a["src"].size + 1
        or start[0] != 0
        or np.any(np.diff(start) < 0)
        or start[-1] != a["cat_value"].size
        or cdst.size != a["cat_value"].size
        or (cdst.size and (cdst.min() < -1 or cdst.max() >= width))
    ):
        return "inconsistent category tables"
    return None


def _linear(a: Args, width: int) -> str | None:
    if a["coef"].shape != (a["dst"].size, a["src"].size):
        return f"coef shape {a['coef'].shape} does not match {a['dst'].size}x{a['src'].size}"
    return _same_length(a, "dst", "intercept")


def check_tree_nodes(a: Args, n_out: int) -> str | None:
    """Node tables shared by tree kernels: forward-only children, features within src."""
    n_nodes = a["threshold"].size
    left, right, feature = a["left"], a["right"], a["feature"]
    if not (left.size == right.size == feature.size == n_nodes):
        return "node arrays differ in length"
    if a["value"].shape != (n_nodes, n_out):
        return "leaf values do not match nodes and outputs"
    roots = a["roots"]
    if roots.size == 0 or roots.min() < 0 or roots.max() >= n_nodes:
        return "tree roots out of range"
    internal = left >= 0
    ids = np.arange(n_nodes)
    # Children always come after their parent, so every walk ends at a leaf.
    if (
        np.any(left[internal] <= ids[internal])
        or np.any(right[internal] <= ids[internal])
        or np.any(left[internal] >= n_nodes)
        or np.any(right[internal] >= n_nodes)
    ):
        return "tree children out of order or out of range"
    if np.any(feature[internal] < 0) or np.any(feature[internal] >= a["src"].size):
        return "tree feature index out of range"
    return None


def _tree_sum(a: Args, width: int) -> str | None:
    """Compact trees: every walk stays inside the node table whatever the input.

    A step goes from node ``i`` to ``child`` or ``child + 1``; internal nodes point
    forward (``i < child < n - 1``), leaves at themselves with an infinite threshold
    and no NaN flag, so a walk that reaches a leaf stays there.
    """
    # int32 tables in int64: arithmetic on them below must not wrap around
    trees, nodes = a["trees"].astype(np.int64), a["nodes"].astype(np.int64)
    thr, value = a["thr"], a["value"]
    n_out = a["dst"].size
    if trees.ndim != 2 or trees.shape[1] != 3 or trees.shape[0] == 0:
        return "trees must be a non-empty (n_trees, 3) table"
    if nodes.ndim != 2 or nodes.shape[1] != 2 or thr.size != nodes.shape[0]:
        return "nodes must be an (n_nodes, 2) table with one threshold per node"
    n = nodes.shape[0]
    if value.ndim != 2 or value.shape[0] != n or value.shape[1] == 0:
        return "leaf values do not match nodes"
    root, depth, first = trees[:, 0], trees[:, 1], trees[:, 2]
    # children move forward, so no walk takes more than n steps: a deeper one only spins
    if root.min() < 0 or root.max() >= n or depth.min() < 0 or depth.max() > n:
        return "tree roots or depths out of range"
    if first.min() < 0 or first.max() + value.shape[1] > n_out:
        return "tree output index out of range"
    word, child = nodes[:, 0], nodes[:, 1]
    if word.min() < 0 or np.any(word >> 25) or a["src"].size == 0:
        return "node feature words out of range"
    if np.any((word & 0xFFFFFF) >= a["src"].size):
        return "tree feature index out of range"
    ids = np.arange(n)
    leaf = child == ids
    if np.any(~leaf & ((child <= ids) | (child + 1 >= n))):
        return "tree children out of order or out of range"
    if np.any(leaf & ((thr != np.inf) | (word >> 24 != 0))):
        return "a leaf must have an infinite threshold and no NaN flag"
    start_cols = a["start_cols"]
    if start_cols.size not in (0, n_out) or a["start"].size != n_out:
        return "start must have one value (or column) per output"
    if start_cols.size and (start_cols.min() < 0 or start_cols.max() >= width):
        return "start columns out of range"
    if not a["divisor"] > 0 or int(a["cast32"]) not in (0, 1):
        return "divisor must be positive and cast32 0 or 1"
    return None


def _expit_pair(a: Args, width: int) -> str | None:
    if a["src"].size != 1 or a["dst"].size != 2:
        return "expects one source and two destination columns"
    return None


def _softmax(a: Args, width: int) -> str | None:
    if a["src"].size == 0:
        return "no source columns"
    return _same_length(a, "src", "dst")


def _tree_outputs(a: Args) -> str | None:
    """Per-tree output columns of the boosting kernels: one per root, within dst."""
    out, n_out = a["tree_out"], a["dst"].size
    if out.size != a["roots"].size:
        return "tree_out and roots differ in length"
    if out.size and (out.min() < 0 or out.max() >= n_out):
        return "tree output index out of range"
    return None


def _hgb(a: Args, width: int) -> str | None:
    n_nodes = a["threshold"].size
    for name in ("missing_left", "cat_left", "cat_known"):
        if a[name].size != n_nodes:
            return "node arrays differ in length"
    left_bits, known_bits = a["left_bits"], a["known_bits"]
    if left_bits.size % 8 or known_bits.size % 8:
        return "bitsets must be 8 words each"
    cat = a["cat_left"] >= 0
    if np.any(a["cat_left"][cat] >= left_bits.size // 8) or np.any(
        (a["cat_known"][cat] < 0) | (a["cat_known"][cat] >= known_bits.size // 8)
    ):
        return "categorical split bitset index out of range"
    return _same_length(a, "dst", "init") or _tree_outputs(a) or check_tree_nodes(a, 1)


def _exp_link(a: Args, width: int) -> str | None:
    return _same_length(a, "src", "dst")


def _iforest(a: Args, width: int) -> str | None:
    if a["dst"].size != 2:
        return "expects two destination columns (score_samples, decision_function)"
    if a["missing_left"].size != a["threshold"].size:
        return "node arrays differ in length"
    return check_tree_nodes(a, 1)


def _mul_add(a: Args, width: int) -> str | None:
    return _same_length(a, "src", "dst", "mul", "add")


def _multiply(a: Args, width: int) -> str | None:
    return _same_length(a, "src", "dst", "factor")


def _clip(a: Args, width: int) -> str | None:
    return _same_length(a, "src", "dst", "lo", "hi")


def _normalize_rows(a: Args, width: int) -> str | None:
    if a["src"].size == 0:
        return "no source columns"
    if a["norm"] not in (0, 1, 2) or a["order"] not in (0, 1) or a["dense_rule"] not in (0, 1):
        return "unknown norm, order or zero rule"
    return _same_length(a, "src", "dst")


def _category_table(start: np.ndarray, n_src: int, n_values: int) -> str | None:
    """``start`` splits ``n_values`` categories into ``n_src`` consecutive runs."""
    if (
        start.size != n_src + 1
        or start[0] != 0
        or np.any(np.diff(start) < 0)
        or start[-1] != n_values
    ):
        return "inconsistent category tables"
    return None


def _within(values: np.ndarray, allowed: np.ndarray) -> bool:
    """Every entry is -1 or one of ``allowed`` (the op's own output columns)."""
    return bool(np.all((values == -1) | np.isin(values, allowed)))


def _onehot_fallback(a: Args, width: int) -> str | None:
    problem = _category_table(a["cat_start"], a["src"].size, a["cat_value"].size)
    if problem:
        return problem
    if a["cat_dst"].size != a["cat_value"].size or a["unknown_dst"].size != a["src"].size:
        return "inconsistent category tables"
    if not (_within(a["cat_dst"], a["dst"]) and _within(a["unknown_dst"], a["dst"])):
        return "category columns outside the op's output columns"
    return None


def _ordinal_encode(a: Args, width: int) -> str | None:
    problem = _category_table(a["cat_start"], a["src"].size, a["cat_value"].size)
    if problem:
        return problem
    if a["cat_out"].size != a["cat_value"].size:
        return "inconsistent category tables"
    return _same_length(a, "src", "dst", "unknown_out")


def _missing_indicator(a: Args, width: int) -> str | None:
    return _same_length(a, "src", "dst")


def _product(a: Args, width: int) -> str | None:
    problem = _same_length(a, "dst", "left", "right")
    if problem:
        return problem
    if a["sparse"] not in (0, 1):
        return "sparse flag must be 0 or 1"
    n = a["src"].size
    for name in ("left", "right"):
        v = a[name]
        if v.size and (v.min() < 0 or v.max() >= n):
            return f"{name} factor index out of range"
    return None


def _constant(a: Args, width: int) -> str | None:
    return _same_length(a, "dst", "value")


def _bin_index(a: Args, width: int) -> str | None:
    problem = _category_table(a["edge_start"], a["src"].size, a["edges"].size)
    if problem:
        return "inconsistent bin edge tables"
    return _same_length(a, "src", "dst")


def _unary_func(a: Args, width: int) -> str | None:
    if a["op"] not in (0, 1, 2, 3, 4, 5):
        return f"unknown function code {a['op']!r}"
    return _same_length(a, "src", "dst")


# -- kernel SVMs, MLPs, k nearest neighbours ---------------------------------------


def _mlp_dense(a: Args, width: int) -> str | None:
    if a["coef"].shape != (a["src"].size, a["dst"].size):
        return f"coef shape {a['coef'].shape} does not match {a['src'].size}x{a['dst'].size}"
    if not 0 <= a["activation"] <= 4:
        return "unknown activation"
    return _same_length(a, "dst", "intercept")


def _n_pairs(n_class: int) -> int:
    return n_class * (n_class - 1) // 2


def _svm_kernel_sum(a: Args, width: int) -> str | None:
    sv, start = a["sv"], a["start"]
    n_sv = sv.shape[0]
    if sv.shape[1] != a["src"].size:
        return "support vectors do not match the source columns"
    if start.size < 2 or start[0] != 0 or start[-1] != n_sv or np.any(np.diff(start) < 0):
        return "inconsistent support vector ranges"
    n_class = start.size - 1
    n_out = 1 if n_class == 1 else _n_pairs(n_class)
    if a["dst"].size != n_out or a["rho"].size != n_out:
        return f"expected {n_out} outputs and intercepts"
    if a["coef"].shape != (max(n_class - 1, 1), n_sv):
        return "dual coefficients do not match the support vectors"
    if not 0 <= a["kernel"] <= 3 or a["degree"] < 0:
        return "unknown kernel or negative degree"
    return None


def _svm_pairs(a: Args, width: int) -> str | None:
    if a["dst"].size < 2 or a["src"].size != _n_pairs(a["dst"].size):
        return "expects one source column per class pair"
    return None


def _svm_proba(a: Args, width: int) -> str | None:
    return _svm_pairs(a, width) or _same_length(a, "src", "prob_a", "prob_b")


def _knn_tree(a: Args, width: int) -> str | None:
    data, idx = a["data"], a["idx_array"]
    n_data = data.shape[0]
    n_nodes = a["node_start"].size
    k2 = a["dst"].size
    if data.shape[1] != a["src"].size or n_data == 0:
        return "training data does not match the source columns"
    if idx.size != n_data or (idx.size and (idx.min() < 0 or idx.max() >= n_data)):
        return "point index out of range"
    if k2 < 2 or k2 % 2 or k2 // 2 > n_data:
        return "expects k index and k distance columns, k within the training set"
    if n_nodes == 0 or not (
        a["node_end"].size == a["node_leaf"].size == a["radius"].size == n_nodes
    ):
        return "node arrays differ in length"
    start, end = a["node_start"], a["node_end"]
    if start.min() < 0 or end.max() > n_data or np.any(start > end):
        return "node point ranges out of range"
    internal = np.flatnonzero(a["node_leaf"] == 0)
    if internal.size and 2 * internal.max() + 2 >= n_nodes:
        return "tree children out of range"
    shape = (n_nodes, data.shape[1])
    if a["bound_a"].shape != shape or a["bound_b"].shape != shape:
        return "node bounds do not match the nodes and features"
    if a["tree_kind"] not in (0, 1) or a["metric"] not in (0, 1, 2):
        return "unknown tree kind or metric"
    return None


def _knn_vote(a: Args, width: int) -> str | None:
    src, dst, labels = a["src"], a["dst"], a["labels"]
    if src.size < 2 or src.size % 2 or dst.size < 2 or dst.size % 2:
        return "expects k index and k distance columns, votes and probabilities"
    if labels.size == 0 or labels.min() < 0 or labels.max() >= dst.size // 2:
        return "class label out of range"
    if a["weighting"] not in (0, 1):
        return "unknown weighting"
    return None


def _knn_mean(a: Args, width: int) -> str | None:
    if a["src"].size < 2 or a["src"].size % 2 or a["dst"].size != 1 or a["y"].size == 0:
        return "expects k index and k distance columns and one output"
    if a["weighting"] not in (0, 1):
        return "unknown weighting"
    return None


def _knn_brute(a: Args, width: int) -> str | None:
    data, k2 = a["data"], a["dst"].size
    if data.ndim != 2 or data.shape[1] != a["src"].size or data.shape[0] == 0:
        return "training data does not match the source columns"
    if k2 < 2 or k2 % 2 or k2 // 2 > data.shape[0]:
        return "expects k index and k distance columns, k within the training set"
    if a["metric"] not in (0, 1, 2):
        return "unknown metric"
    return None


def _radius_query(a: Args, width: int) -> str | None:
    data, idx, y = a["data"], a["idx_array"], a["y"]
    n_data, n_nodes, n_out = data.shape[0], a["node_start"].size, a["dst"].size
    if data.ndim != 2 or data.shape[1] != a["src"].size or n_data == 0:
        return "training data does not match the source columns"
    if idx.size != n_data or idx.min() < 0 or idx.max() >= n_data:
        return "point index out of range"
    if n_nodes == 0 or not (
        a["node_end"].size == a["node_leaf"].size == a["radius"].size == n_nodes
    ):
        return "node arrays differ in length"
    start, end = a["node_start"], a["node_end"]
    if start.min() < 0 or end.max() > n_data or np.any(start > end):
        return "node point ranges out of range"
    internal = np.flatnonzero(a["node_leaf"] == 0)
    if a["tree_kind"] != 2 and internal.size and 2 * internal.max() + 2 >= n_nodes:
        return "tree children out of range"
    shape = (n_nodes, data.shape[1])
    if a["bound_a"].shape != shape or a["bound_b"].shape != shape:
        return "node bounds do not match the nodes and features"
    if a["tree_kind"] not in (0, 1, 2) or a["metric"] not in (0, 1, 2):
        return "unknown tree kind or metric"
    if a["weighting"] not in (0, 1) or not a["r"] >= 0:
        return "unknown weighting, or a radius that is not a number >= 0"
    if y.size != n_data or n_out == 0 or a["empty"].size != 1:
        return "expects one target per training point, an output and one empty value"
    if n_out > 1 and (
        np.any(y != np.floor(y))
        or y.min() < 0
        or y.max() >= n_out
        or not -1 <= a["outlier"] < n_out
    ):
        return "class index out of range"
    return None


def _categorical_nb(a: Args, width: int) -> str | None:
    flp, offset, n_cat = a["flp"], a["offset"], a["n_cat"]
    d, k = a["src"].size, a["dst"].size
    if d == 0 or offset.size != d or n_cat.size != d or a["log_prior"].size != k:
        return "expects one offset and category count per source, one prior per class"
    if flp.ndim != 2 or flp.shape[0] != k or n_cat.min() < 1 or offset.min() < 0:
        return "log probabilities do not match the classes"
    if np.any(offset + n_cat > flp.shape[1]):
        return "category columns out of range"
    return None


def _qda(a: Args, width: int) -> str | None:
    d, k2 = a["src"].size, a["dst"].size
    means, weights, rank = a["means"], a["weights"], a["rank"]
    k = k2 // 2
    if d == 0 or k2 < 2 or k2 % 2 or means.shape != (k, d) or rank.size != k:
        return "expects k scores and k probabilities, one mean and rank per class"
    if weights.ndim != 2 or weights.shape[0] != k * d or a["offset"].size != 2 * k:
        return "weights or offsets do not match the classes and features"
    if rank.min() < 0 or rank.max() > weights.shape[1]:
        return "rank out of range"
    return None


def _member_average(a: Args, width: int) -> str | None:
    m, k = a["weights"].size, a["dst"].size
    if m == 0 or k == 0 or a["src"].size != m * k:
        return "expects one block of output columns per member"
    if a["divisor"] == 0:
        return "divisor must be a non-zero number"
    return None


def _hard_vote(a: Args, width: int) -> str | None:
    start, rule, m = a["start"], a["rule"], a["weights"].size
    k = a["dst"].size
    if m == 0 or start.size != m + 1 or rule.size != m or k < 2:
        return "expects one decision block, rule and weight per member, two classes or more"
    if start[0] != 0 or start[-1] != a["src"].size or np.any(np.diff(start) < 1):
        return "inconsistent decision blocks"
    size = np.diff(start)
    if np.any((rule < 0) | (rule > 2)) or np.any((rule > 0) & ((size != 1) | (k != 2))):
        return "unknown label rule, or a binary rule outside a two-class vote"
    if np.any((rule == 0) & (size != k)):
        return "an argmax member must have one decision column per class"
    return None


def _samme_decision(a: Args, width: int) -> str | None:
    start, rule, m, k = a["start"], a["rule"], a["weights"].size, a["total"].size
    if m == 0 or start.size != m + 1 or rule.size != m or a["wrong"].size != m or k < 2:
        return "expects one decision block, rule and weight per member, two classes or more"
    if a["dst"].size != (1 if k == 2 else k):
        return "expects one output column for two classes, else one per class"
    if start[0] != 0 or start[-1] != a["src"].size or np.any(np.diff(start) < 1):
        return "inconsistent decision blocks"
    size = np.diff(start)
    if np.any((rule < 0) | (rule > 2)) or np.any((rule > 0) & ((size != 1) | (k != 2))):
        return "unknown label rule, or a binary rule outside a two-class vote"
    if np.any((rule == 0) & (size != k)):
        return "an argmax member must have one decision column per class"
    return None


def _weighted_median(a: Args, width: int) -> str | None:
    if a["src"].size == 0 or a["src"].size != a["weights"].size or a["dst"].size != 1:
        return "expects one prediction column and weight per member, one output column"
    return None


def _calibrate(a: Args, width: int) -> str | None:
    m, k = a["src"].size, a["dst"].size
    start, xs = a["start"], a["xs"]
    for name in ("cls", "kind", "a", "b", "lo", "hi"):
        if a[name].size != m:
            return "expects one class, kind and parameter set per calibrator"
    if m == 0 or k < 2 or a["cls"].min() < 0 or a["cls"].max() >= k:
        return "calibrator class out of range"
    if np.any((a["kind"] < 0) | (a["kind"] > 1)):
        return "unknown calibrator kind"
    if start.size != m + 1 or start[0] != 0 or start[-1] != xs.size or a["ys"].size != xs.size:
        return "inconsistent threshold tables"
    if np.any(np.diff(start)[a["kind"] == 1] < 1):
        return "an isotonic calibrator needs a threshold"
    return None


#: Kernel name -> its check. Every kernel a plan may call must have one (a test enforces it).
def _binarize(a: Args, width: int) -> str | None:
    return _same_length(a, "src", "dst")


def _huber_pair(a: Args, width: int) -> str | None:
    return _expit_pair(a, width)


def _ovr_proba(a: Args, width: int) -> str | None:
    if int(a["kind"]) not in (0, 1):
        return "kind must be 0 (expit) or 1 (modified_huber)"
    return _softmax(a, width)


def _gaussian_nb(a: Args, width: int) -> str | None:
    shape = (a["dst"].size, a["src"].size)
    if a["src"].size == 0 or a["theta"].shape != shape or a["var"].shape != shape:
        return f"theta/var shapes {a['theta'].shape}/{a['var'].shape} do not match {shape}"
    return _same_length(a, "dst", "log_prior", "norm")


def _xgb_sum(a: Args, width: int) -> str | None:
    group, n_out = a["group"], a["dst"].size
    if group.size != a["src"].size or a["start"].size != n_out:
        return "group must have one output per tree column and start one value per output"
    if group.size and (group.min() < 0 or group.max() >= n_out):
        return "tree output index out of range"
    return None


def _xgb_sigmoid(a: Args, width: int) -> str | None:
    if a["src"].size != 1 or a["dst"].size not in (1, 2):
        return "expects one source and one or two destination columns"
    return None


def _nb_proba(a: Args, width: int) -> str | None:
    if int(a["pairwise"]) not in (0, 1):
        return "pairwise must be 0 or 1"
    return _softmax(a, width)


CHECKS: dict[str, Check] = {
    "check_values": _check_values,
    "impute": _impute,
    "impute_value": _impute_value,
    "kmeans_distances": _kmeans_distances,
    "power_transform": _power_transform,
    "quantile_uniform": _quantile_uniform,
    "spline_basis": _spline_basis,
    "impute_predicted": _impute_predicted,
    "quantile_normal": _quantile_normal,
    "scale": _scale,
    "onehot": _onehot,
    "linear": _linear,
    "tree_sum": _tree_sum,
    "expit_pair": _expit_pair,
    "softmax": _softmax,
    "hgb": _hgb,
    "exp_link": _exp_link,
    "iforest": _iforest,
    "mul_add": _mul_add,
    "multiply": _multiply,
    "clip": _clip,
    "normalize_rows": _normalize_rows,
    "onehot_fallback": _onehot_fallback,
    "ordinal_encode": _ordinal_encode,
    "missing_indicator": _missing_indicator,
    "product": _product,
    "constant": _constant,
    "bin_index": _bin_index,
    "unary_func": _unary_func,
    "linear_dot2": _linear,
    "binarize": _binarize,
    "huber_pair": _huber_pair,
    "ovr_proba": _ovr_proba,
    "gaussian_nb": _gaussian_nb,
    "nb_proba": _nb_proba,
    "mlp_dense": _mlp_dense,
    "svm_kernel_sum": _svm_kernel_sum,
    "svm_votes": _svm_pairs,
    "svm_ovr": _svm_pairs,
    "svm_proba": _svm_proba,
    "knn_tree": _knn_tree,
    "knn_vote": _knn_vote,
    "knn_mean": _knn_mean,
    "knn_brute": _knn_brute,
    "radius_query": _radius_query,
    "categorical_nb": _categorical_nb,
    "qda": _qda,
    "member_average": _member_average,
    "samme_decision": _samme_decision,
    "weighted_median": _weighted_median,
    "hard_vote": _hard_vote,
    "calibrate": _calibrate,
    "xgb_sum": _xgb_sum,
    "xgb_sigmoid": _xgb_sigmoid,
    "xgb_softmax": _softmax,
    "xgb_exp": _exp_link,
}


def check_op(kernel: str, args: Args, width: int) -> str | None:
    """Generic column-range checks, then the kernel's own."""
    for name, value in args.items():
        if name in COLUMN_ARGS and value.size and (value.min() < 0 or value.max() >= width):
            return f"column index out of range in {name}"
    check = CHECKS.get(kernel)
    if check is None:
        return f"kernel {kernel!r} has no structural check; refusing to run it"
    return check(args, width)


# -- text features (not kernel calls: the input encoding runs them) -------------------
_TEXT_FLAGS = ("lowercase", "binary", "sublinear_tf")


def _text_problem(entry: Any, kinds: list[str], width: int, arrays: dict[str, Any]) -> str | None:
    """What is wrong with one entry of a plan's ``text`` list, or None."""
    import re

    from mlbundle_runtime.text import ANALYZERS, NORMS, STRIP_ACCENTS

    if not isinstance(entry, dict):
        return f"must be an object, not {type(entry).__name__}"
    n_inputs = len(kinds)
    j = entry.get("input")
    if not isinstance(j, int) or isinstance(j, bool) or not 0 <= j < n_inputs:
        return f"'input' must be the index of an input (0 to {n_inputs - 1}), not {j!r}"
    if kinds[j] != "text":
        return f"input {j} is {kinds[j]}, not text"
    cols, vocab = entry.get("cols"), entry.get("vocabulary")
    if not isinstance(cols, list) or not all(
        isinstance(c, int) and not isinstance(c, bool) for c in cols
    ):
        return "'cols' must be a list of column indices"
    if any(not n_inputs <= c < width for c in cols) or len(set(cols)) != len(cols):
        return f"'cols' must be distinct columns after the inputs ({n_inputs} to {width - 1})"
    if not isinstance(vocab, list) or not all(isinstance(t, str) for t in vocab):
        return "'vocabulary' must be a list of terms (text)"
    if len(vocab) != len(cols) or len(set(vocab)) != len(vocab):
        return f"'vocabulary' must hold {len(cols)} distinct terms, one per column"
    if entry.get("analyzer") not in ANALYZERS:
        return f"'analyzer' must be one of {', '.join(ANALYZERS)}"
    for flag in _TEXT_FLAGS:
        if not isinstance(entry.get(flag), bool):
            return f"{flag!r} must be true or false"
    if entry.get("strip_accents") not in STRIP_ACCENTS:
        return "'strip_accents' must be null, 'ascii' or 'unicode'"
    if entry.get("norm") not in NORMS:
        return "'norm' must be null, 'l1' or 'l2'"
    pattern = entry.get("token_pattern")
    if not isinstance(pattern, str):
        return "'token_pattern' must be a regular expression (text)"
    try:
        if re.compile(pattern).groups > 1:
            return "'token_pattern' may capture at most one group"
    except (re.error, RecursionError, OverflowError) as exc:
        return f"'token_pattern' is not a regular expression ({exc})"
    ngrams = entry.get("ngram_range")
    if not (
        isinstance(ngrams, list)
        and len(ngrams) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in ngrams)
        and 1 <= ngrams[0] <= ngrams[1]
    ):
        return "'ngram_range' must be [min, max] with 1 <= min <= max"
    stop = entry.get("stop_words", [])
    if not isinstance(stop, list) or not all(isinstance(w, str) for w in stop):
        return "'stop_words' must be a list of words (text)"
    idf = entry.get("idf")
    if idf is not None:
        key = idf.get("array") if isinstance(idf, dict) else None
        data = arrays.get(key) if isinstance(key, str) else None
        if not isinstance(data, np.ndarray) or data.dtype.kind != "f" or data.shape != (len(cols),):
            return f"'idf' must name a float array of {len(cols)} values in the plan's arrays"
        if not np.all(np.isfinite(data)):
            return "'idf' holds a value that is not finite"
    if not isinstance(entry.get("origin", ""), str):
        return "'origin' must be text"
    return None


def check_text(entry: Any, kinds: list[str], width: int, arrays: dict[str, Any]) -> Any:
    """A plan's ``text`` entry as a ``TextFeature``, or the problem with it (a str)."""
    from mlbundle_runtime.text import TextFeature

    problem = _text_problem(entry, kinds, width, arrays)
    if problem:
        return problem
    idf = entry.get("idf")
    return TextFeature(
        input=entry["input"],
        cols=tuple(entry["cols"]),
        vocabulary=tuple(entry["vocabulary"]),
        analyzer=entry["analyzer"],
        lowercase=entry["lowercase"],
        strip_accents=entry.get("strip_accents"),  # null when absent, as checked
        token_pattern=entry["token_pattern"],
        ngram_range=(entry["ngram_range"][0], entry["ngram_range"][1]),
        stop_words=tuple(entry.get("stop_words", [])),
        binary=entry["binary"],
        sublinear_tf=entry["sublinear_tf"],
        idf=None if idf is None else np.array(arrays[idf["array"]], dtype=np.float64),
        norm=entry.get("norm"),
        origin=entry.get("origin", ""),
    )
