"""Decision trees, extra trees and random forests: one node table, traversed as scikit-learn does.

Thresholds stay float64 and the input is rounded to float32 before comparing
(``float32(x) <= threshold`` goes left), NaN follows ``missing_go_to_left``,
and forest outputs are summed in estimator order then divided by the number
of trees: the same arithmetic as scikit-learn, so results match to the bit.

``compact_trees`` lays trees out for the ``tree_sum`` kernel (forests here,
gradient boosting too); ``tree_table`` keeps scikit-learn's own node order for
the isolation forest kernel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.tree import (
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    ExtraTreeClassifier,
    ExtraTreeRegressor,
)

from bundler.compiler._builder import (
    Cols,
    MultiPrediction,
    PlanBuilder,
    Prediction,
    regression_outputs,
)
from bundler.compiler._registry import register_converter
from bundler.errors import UnsupportedEstimatorError


@dataclass(frozen=True)
class NodeTable:
    """Trees laid end to end: tree ``t`` starts at node ``roots[t]``; leaves have ``left = -1``."""

    roots: np.ndarray
    feature: np.ndarray  # position in the kernel's ``src`` (0 at leaves)
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    missing_left: np.ndarray
    value: np.ndarray  # (nodes, outputs)

    def arg(self, builder: PlanBuilder, name: str) -> dict[str, str]:
        """One of the table's arrays as a plan array, in the dtype the kernels take."""
        dtype = {"threshold": np.float64, "value": np.float64, "missing_left": np.uint8}
        return builder.array(getattr(self, name), dtype.get(name, np.int64))


def tree_table(
    trees: Sequence[Any],
    values: Sequence[np.ndarray],
    features: Sequence[np.ndarray] | None = None,
) -> NodeTable:
    """Concatenate scikit-learn ``Tree`` objects (``est.tree_``) into one node table.

    ``values[t]`` is the (node_count, outputs) array tree ``t`` contributes at its
    leaves; ``features[t]``, when given, maps tree ``t``'s feature indices to
    positions in the kernel's ``src`` (trees fitted on a subset of the columns).
    """
    roots, feature, threshold, left, right, missing = [], [], [], [], [], []
    offset = 0
    for k, t in enumerate(trees):
        is_leaf = t.children_left < 0
        feat = np.where(is_leaf, 0, t.feature)
        if features is not None:
            feat = np.where(is_leaf, 0, np.asarray(features[k], dtype=np.int64)[feat])
        roots.append(offset)
        feature.append(feat)
        threshold.append(t.threshold)
        left.append(np.where(is_leaf, -1, t.children_left + offset))
        right.append(np.where(is_leaf, -1, t.children_right + offset))
        missing.append(t.missing_go_to_left)
        offset += t.node_count
    return NodeTable(
        roots=np.asarray(roots, dtype=np.int64),
        feature=np.concatenate(feature).astype(np.int64),
        threshold=np.concatenate(threshold).astype(np.float64),
        left=np.concatenate(left).astype(np.int64),
        right=np.concatenate(right).astype(np.int64),
        missing_left=np.concatenate(missing).astype(np.uint8),
        value=np.ascontiguousarray(np.concatenate(values), dtype=np.float64),
    )


@dataclass(frozen=True)
class CompactTrees:
    """Trees in the ``tree_sum`` kernel's layout (see its docstring).

    ``trees[t] = (root, depth, first output)``; ``nodes[i] = (feature | nan_right << 24,
    child)`` with siblings side by side, so the right child is ``child + 1``; a
    leaf is its own child with threshold +inf, so a walk of ``depth`` steps from
    any root always ends on the leaf scikit-learn reaches.
    """

    trees: np.ndarray  # (n_trees, 3) int32
    nodes: np.ndarray  # (n_nodes, 2) int32
    threshold: np.ndarray  # (n_nodes,) float64, scikit-learn's own
    value: np.ndarray  # (n_nodes, values per leaf) float64

    def emit(
        self,
        builder: PlanBuilder,
        est: object,
        src: Cols,
        names: list[str],
        *,
        start: Any = 0.0,
        start_cols: Cols | None = None,
        scale: float = 1.0,
        divisor: float = 1.0,
        cast32: bool = True,
    ) -> Cols:
        """One ``tree_sum`` op over ``src`` into new columns ``names``; its outputs."""
        out = builder.new_cols(names)
        builder.emit(
            "tree_sum",
            est,
            builder.idx(src),
            builder.idx(out),
            builder.idx(start_cols or Cols(())),
            builder.array(np.broadcast_to(start, (len(names),)), np.float64),
            builder.array(self.trees, np.int32),
            builder.array(self.nodes, np.int32),
            builder.array(self.threshold, np.float64),
            builder.array(self.value, np.float64),
            float(scale),
            float(divisor),
            int(cast32),
        )
        return out


#: Features are packed into 24 bits of a node word; bit 24 is the NaN direction.
MAX_TREE_FEATURES = 1 << 24


def compact_trees(
    trees: Sequence[Any],
    values: Sequence[np.ndarray],
    first_output: Sequence[int] | None = None,
    features: Sequence[np.ndarray] | None = None,
) -> CompactTrees:
    """Lay scikit-learn ``Tree`` objects out breadth first, siblings adjacent.

    ``values[t]``: the (node_count, k) array tree ``t`` contributes at its leaves;
    ``first_output[t]``: the output its values start at (default 0);
    ``features[t]``: maps tree ``t``'s feature indices to positions in ``src``.
    """
    all_trees, all_nodes, all_thr, all_val = [], [], [], []
    offset = 0
    for k, t in enumerate(trees):
        left, right = t.children_left, t.children_right
        feat = np.asarray(t.feature, dtype=np.int64)
        if features is not None:
            feat = np.where(
                left < 0, 0, np.asarray(features[k], dtype=np.int64)[np.maximum(feat, 0)]
            )
        if feat.max(initial=0) >= MAX_TREE_FEATURES:
            raise UnsupportedEstimatorError(
                f"trees with more than {MAX_TREE_FEATURES} features are not supported"
            )
        nan_right = 1 - np.asarray(t.missing_go_to_left, dtype=np.int64)
        order = [0]  # old node ids in new (breadth first, siblings adjacent) order
        depth = [0]
        child = []
        i = 0
        while i < len(order):
            old = order[i]
            if left[old] >= 0:
                child.append(offset + len(order))
                order += [int(left[old]), int(right[old])]
                depth += [depth[i] + 1, depth[i] + 1]
            else:
                child.append(offset + i)
            i += 1
        ids = np.asarray(order)
        leaf = left[ids] < 0
        nodes = np.empty((len(ids), 2), dtype=np.int64)
        nodes[:, 0] = np.where(leaf, 0, feat[ids] | (nan_right[ids] << 24))
        nodes[:, 1] = child
        all_nodes.append(nodes)
        all_thr.append(np.where(leaf, np.inf, t.threshold[ids]))
        all_val.append(np.asarray(values[k])[ids])
        first = 0 if first_output is None else int(first_output[k])
        all_trees.append((offset, max(depth), first))
        offset += len(ids)
    return CompactTrees(
        trees=np.asarray(all_trees, dtype=np.int64).reshape(-1, 3),
        nodes=np.concatenate(all_nodes),
        threshold=np.concatenate(all_thr).astype(np.float64),
        value=np.ascontiguousarray(np.concatenate(all_val), dtype=np.float64),
    )


def single_output(builder: PlanBuilder, est: object) -> None:
    if getattr(est, "n_outputs_", 1) != 1:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: multi-output trees are not supported; valid: one target"
        )


def _tree_values(est: Any, trees: Sequence[Any], value_of: str) -> list[np.ndarray]:
    """Each tree's leaf values, one column per output column: a regressor's value per
    target (``value[:, k, 0]``), a classifier's class fractions per target in turn
    (``value[:, k, :n_classes_[k]]``, what ``predict_proba`` returns for target ``k``;
    since scikit-learn 1.4.1 they are fractions already, summed then divided as the
    forest does)."""
    n_outputs = int(getattr(est, "n_outputs_", 1))
    if value_of != "proba":
        return [tree.tree_.value[:, :, 0] for tree in trees]
    n_classes = np.atleast_1d(est.n_classes_)
    return [
        np.concatenate(
            [tree.tree_.value[:, k, : int(n_classes[k])] for k in range(n_outputs)], axis=1
        )
        for tree in trees
    ]


def _emit_forest(
    builder: PlanBuilder,
    est: object,
    cols: Cols,
    trees: Sequence[object],
    names: list[str],
    value_of: str,
) -> Cols:
    first = trees[0]
    # scikit-learn asks the first tree: NaN only in dense input, and ExtraTree* only
    # with splitter="random" (``_support_missing_values``).
    allow_nan = bool(first._support_missing_values(np.zeros((1, len(cols)))))
    allow_nan = allow_nan and not cols.sparse
    builder.check(cols, est, allow_nan=allow_nan, float32=True)
    table = compact_trees([tree.tree_ for tree in trees], _tree_values(est, trees, value_of))
    if table.value.shape[1] != len(names):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: trees have {table.value.shape[1]} outputs, "
            f"expected {len(names)}"
        )
    return table.emit(
        builder, est, cols, names, divisor=float(len(trees)) if len(trees) > 1 else 1.0
    )


def _classifier(
    est: Any, builder: PlanBuilder, cols: Cols, trees: Sequence[object]
) -> Prediction | MultiPrediction:
    """``predict_proba`` per target and ``predict`` as its first argmax; a 2-D ``y`` gives
    one classification per target (``classes_[k]``), from one pass over the trees."""
    if int(getattr(est, "n_outputs_", 1)) == 1:
        classes = tuple(est.classes_)
        proba = _emit_forest(builder, est, cols, trees, [f"proba[{c}]" for c in classes], "proba")
        return Prediction("classification", proba, "argmax", classes, proba)
    per_target = [tuple(c) for c in est.classes_]
    names = [f"proba[{k}][{c}]" for k, classes in enumerate(per_target) for c in classes]
    proba = _emit_forest(builder, est, cols, trees, names, "proba")
    outputs, start = [], 0
    for classes in per_target:
        p = proba.take(range(start, start + len(classes)))
        outputs.append(Prediction("classification", p, "argmax", classes, p))
        start += len(classes)
    return MultiPrediction(tuple(outputs))


def _regressor(
    est: Any, builder: PlanBuilder, cols: Cols, trees: Sequence[object]
) -> Prediction | MultiPrediction:
    """The mean of the trees' leaf values, per target for a 2-D ``y``."""
    n_outputs = int(getattr(est, "n_outputs_", 1))
    names = ["value"] if n_outputs == 1 else [f"value[{k}]" for k in range(n_outputs)]
    value = _emit_forest(builder, est, cols, trees, names, "value")
    return regression_outputs(value)


_NAN = "NaN via missing_go_to_left"
_EXTRA_NAN = (
    "NaN via missing_go_to_left with splitter='random' (splitter='best' refuses NaN, "
    "as scikit-learn does)"
)


@register_converter(DecisionTreeClassifier, f"predict, predict_proba; {_NAN}; multi-output")
def convert_tree_classifier(
    est: DecisionTreeClassifier, builder: PlanBuilder, cols: Cols
) -> Prediction | MultiPrediction:
    return _classifier(est, builder, cols, [est])


@register_converter(DecisionTreeRegressor, f"predict; {_NAN}; multi-output")
def convert_tree_regressor(
    est: DecisionTreeRegressor, builder: PlanBuilder, cols: Cols
) -> Prediction | MultiPrediction:
    return _regressor(est, builder, cols, [est])


@register_converter(RandomForestClassifier, f"predict, predict_proba; {_NAN}; multi-output")
def convert_forest_classifier(
    est: RandomForestClassifier, builder: PlanBuilder, cols: Cols
) -> Prediction | MultiPrediction:
    return _classifier(est, builder, cols, est.estimators_)


@register_converter(RandomForestRegressor, f"predict; {_NAN}; multi-output")
def convert_forest_regressor(
    est: RandomForestRegressor, builder: PlanBuilder, cols: Cols
) -> Prediction | MultiPrediction:
    return _regressor(est, builder, cols, est.estimators_)


@register_converter(ExtraTreeClassifier, f"predict, predict_proba; {_EXTRA_NAN}; multi-output")
def convert_extra_tree_classifier(
    est: ExtraTreeClassifier, builder: PlanBuilder, cols: Cols
) -> Prediction | MultiPrediction:
    return _classifier(est, builder, cols, [est])


@register_converter(ExtraTreeRegressor, f"predict; {_EXTRA_NAN}; multi-output")
def convert_extra_tree_regressor(
    est: ExtraTreeRegressor, builder: PlanBuilder, cols: Cols
) -> Prediction | MultiPrediction:
    return _regressor(est, builder, cols, [est])


@register_converter(ExtraTreesClassifier, f"predict, predict_proba; {_NAN}; multi-output")
def convert_extra_trees_classifier(
    est: ExtraTreesClassifier, builder: PlanBuilder, cols: Cols
) -> Prediction | MultiPrediction:
    return _classifier(est, builder, cols, est.estimators_)


@register_converter(ExtraTreesRegressor, f"predict; {_NAN}; multi-output")
def convert_extra_trees_regressor(
    est: ExtraTreesRegressor, builder: PlanBuilder, cols: Cols
) -> Prediction | MultiPrediction:
    return _regressor(est, builder, cols, est.estimators_)
