"""IsolationForest: average path length over extra trees, scored as scikit-learn does.

scikit-learn validates X as float32 but accepts NaN and infinity
(``ensure_all_finite=False``), so nothing is refused. Each tree is an
``ExtraTreeRegressor`` fitted on the columns ``estimators_features_[t]``
(used only when ``max_features`` is below the number of features, as in
``_compute_chunked_score_samples``). A row's depth is the sum over trees, in
order, of ``node_depth + average_path_length(n_node_samples) - 1.0`` at its
leaf (``_parallel_compute_tree_depths``); then

    score_samples = -(2 ** -(depth / (n_trees * average_path_length(max_samples))))
    decision_function = score_samples - offset_
    predict = -1 where decision_function < 0, else 1.

The per-leaf term is computed here with scikit-learn's own arrays
(``_decision_path_lengths``, ``_average_path_length_per_tree``) in the same
float64 operations, so the ``iforest`` kernel only adds and exponentiates.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.ensemble._iforest import _average_path_length

from bundler.compiler._builder import Cols, PlanBuilder, Prediction
from bundler.compiler._registry import register_converter
from bundler.compiler.converters.trees import single_output, tree_table
from bundler.errors import UnsupportedEstimatorError


@register_converter(
    IsolationForest,
    "predict (-1 / 1), score_samples, decision_function; contamination 'auto' or a fraction; "
    "NaN via missing_go_to_left",
)
def convert_isolation_forest(est: IsolationForest, builder: PlanBuilder, cols: Cols) -> Prediction:
    if est.n_features_in_ != len(cols):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: fitted on {est.n_features_in_} features, given {len(cols)}"
        )
    # validate_data(dtype=float32, ensure_all_finite=False): NaN, inf and float32
    # overflow (which becomes inf) are all accepted, so there is nothing to refuse.
    builder.use_as_numbers(cols, est)
    trees = list(est.estimators_)
    for tree in trees:
        single_output(builder, tree)
    subsample = est._max_features != len(cols)
    features = [np.asarray(f, dtype=np.int64) for f in est.estimators_features_]
    # depths += decision_path_length[leaf] + average_path_length[leaf] - 1.0
    values = [
        ((np.asarray(depth) + np.asarray(avg)) - 1.0).reshape(-1, 1)
        for depth, avg in zip(
            est._decision_path_lengths, est._average_path_length_per_tree, strict=True
        )
    ]
    table = tree_table([t.tree_ for t in trees], values, features if subsample else None)
    if cols.sparse:
        # scikit-learn's sparse traversal has no missing-value branch: NaN goes right.
        table = replace(table, missing_left=np.zeros_like(table.missing_left))
    denominator = len(trees) * _average_path_length([est._max_samples])
    out = builder.new_cols(["score_samples", "decision_function"])
    builder.emit(
        "iforest",
        est,
        builder.idx(cols),
        builder.idx(out),
        *(
            table.arg(builder, n)
            for n in ("roots", "feature", "threshold", "left", "right", "missing_left", "value")
        ),
        float(np.asarray(denominator).reshape(-1)[0]),
        float(est.offset_),
    )
    score, decision = out.take([0]), out.take([1])
    return Prediction(
        "classification",
        decision,
        "nonnegative",
        (-1, 1),
        None,
        extras=(("score_samples", score, ()), ("decision_function", decision, ())),
    )
