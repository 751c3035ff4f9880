"""Ensembles of compiled estimators: VotingClassifier / VotingRegressor, BaggingClassifier /
BaggingRegressor, StackingClassifier / StackingRegressor, CalibratedClassifierCV.

Every member is compiled by its own converter on the same input columns (a member that
does not compile makes the ensemble refuse, naming it), then combined as scikit-learn
combines them:

- VotingRegressor: ``np.average(predictions, axis=1, weights)``, members added in order
  (``member_average``).
- VotingClassifier(voting="soft"): ``np.average(probabilities, axis=0, weights)``, members
  added in order; ``predict`` is the first maximum of that average.
- VotingClassifier(voting="hard"): each member's label, then ``np.bincount(labels,
  weights)`` and its first maximum (``hard_vote``); scikit-learn gives no probabilities.

- BaggingClassifier / BaggingRegressor: each member on its feature subset
  (``estimators_features_``), ``sum(member outputs) / n_estimators`` added in member order
  (``member_average`` with weights 1; with ``n_jobs > 1`` scikit-learn adds per job first,
  a different association within rounding). A classifier member missing a class (a
  bootstrap sample without it) or without ``predict_proba`` is refused.

- StackingClassifier / StackingRegressor: the members' ``stack_method_`` outputs side by
  side (``predict_proba`` without its first column for two classes, ``decision_function``,
  a regressor's ``predict``), then the input columns with ``passthrough``, given to the
  final estimator's own converter. A classifier member stacked by ``predict`` (its label) is
  refused.

- CalibratedClassifierCV (sigmoid, isotonic): per calibrated classifier, its estimator's
  ``decision_function`` (else ``predict_proba``, the positive column for two classes) through
  each class's calibrator (``calibrate``), normalised as ``_CalibratedClassifier`` does; the
  calibrated classifiers' probabilities averaged in order. ``method="temperature"`` refused.

The members were fitted on the ensemble's encoded classes (``le_``), so their classes are
``0 .. k - 1``; the plan's classes are the ensemble's ``classes_``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import (
    AdaBoostClassifier,
    AdaBoostRegressor,
    BaggingClassifier,
    BaggingRegressor,
    StackingClassifier,
    StackingRegressor,
    VotingClassifier,
    VotingRegressor,
)

from bundler.compiler._builder import Cols, PlanBuilder, Prediction
from bundler.compiler._registry import convert, register_converter
from bundler.errors import UnsupportedEstimatorError

#: mlbundle_runtime.plan label rules -> hard_vote's codes
_RULES = {"argmax": 0, "positive": 1, "nonnegative": 2}


def _members(est: Any, builder: PlanBuilder, cols: Cols) -> list[Prediction]:
    """Each fitted member's prediction, compiled under its name."""
    names = [name for name, member in est.estimators if member != "drop"]
    out = []
    for name, member in zip(names, est.estimators_, strict=True):
        builder.push(name)
        result = convert(member, builder, cols)
        builder.pop()
        if not isinstance(result, Prediction):
            raise UnsupportedEstimatorError(
                f"{builder.origin(est)}: member {name!r} is a transformer, not a predictor"
            )
        out.append(result)
    return out


def _weights(est: Any, builder: PlanBuilder, n: int) -> tuple[np.ndarray, float]:
    """The members' weights (1 each without) and ``np.average``'s divisor."""
    given = est._weights_not_none
    if given is None:
        return np.ones(n), float(n)
    weights = np.asarray(given, dtype=np.float64)
    divisor = float(np.broadcast_to(weights, (1, n)).sum(axis=1)[0])
    if weights.shape != (n,) or not np.isfinite(weights).all() or divisor == 0:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: weights={est.weights!r} are not supported; valid: one "
            "finite weight per member, not summing to zero"
        )
    return weights, divisor


@register_converter(VotingRegressor, "weights; members any compiled regressor (not 'drop'ped)")
def convert_voting_regressor(est: VotingRegressor, builder: PlanBuilder, cols: Cols) -> Prediction:
    members = _members(est, builder, cols)
    if any(m.task != "regression" or len(m.decision) != 1 for m in members):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: every member must be a single-output regressor"
        )
    weights, divisor = _weights(est, builder, len(members))
    src = Cols(tuple(c for m in members for c in m.decision.idx))
    value = builder.new_cols(["prediction"])
    builder.emit(
        "member_average",
        est,
        builder.idx(src),
        builder.idx(value),
        builder.array(weights, np.float64),
        divisor,
    )
    return Prediction("regression", value, "value")


@register_converter(
    VotingClassifier,
    "voting soft (predict_proba) and hard; weights; members any compiled classifier "
    "(soft: with predict_proba)",
)
def convert_voting_classifier(
    est: VotingClassifier, builder: PlanBuilder, cols: Cols
) -> Prediction:
    origin = builder.origin(est)
    classes = tuple(est.classes_)
    k = len(classes)
    members = _members(est, builder, cols)
    for m in members:
        if m.task != "classification" or tuple(int(c) for c in m.classes) != tuple(range(k)):
            raise UnsupportedEstimatorError(
                f"{origin}: every member must be a classifier of the ensemble's {k} classes"
            )
    weights, divisor = _weights(est, builder, len(members))
    if est.voting == "soft":
        if any(m.proba is None for m in members):
            raise UnsupportedEstimatorError(
                f"{origin}: voting='soft' needs predict_proba from every member"
            )
        src = Cols(tuple(c for m in members for c in m.proba.idx))  # type: ignore[union-attr]
        proba = builder.new_cols([f"proba[{c}]" for c in classes])
        builder.emit(
            "member_average",
            est,
            builder.idx(src),
            builder.idx(proba),
            builder.array(weights, np.float64),
            divisor,
        )
        return Prediction("classification", proba, "argmax", classes, proba)
    rules = [_RULES.get(m.label_rule, -1) for m in members]
    if min(rules) < 0:
        raise UnsupportedEstimatorError(f"{origin}: a member's label rule is not supported")
    start = np.concatenate([[0], np.cumsum([len(m.decision) for m in members])])
    src = Cols(tuple(c for m in members for c in m.decision.idx))
    votes = builder.new_cols([f"votes[{c}]" for c in classes])
    builder.emit(
        "hard_vote",
        est,
        builder.idx(src),
        builder.idx(votes),
        builder.array(start, np.int64),
        builder.array(rules, np.int64),
        builder.array(weights, np.float64),
    )
    return Prediction("classification", votes, "argmax", classes)


def _bagged(est: Any, builder: PlanBuilder, cols: Cols) -> list[Prediction]:
    """Each member compiled on its feature subset."""
    out = []
    for j, (member, features) in enumerate(
        zip(est.estimators_, est.estimators_features_, strict=True)
    ):
        builder.push(f"estimators_[{j}]")
        result = convert(member, builder, cols.take([int(f) for f in features]))
        builder.pop()
        if not isinstance(result, Prediction):
            raise UnsupportedEstimatorError(
                f"{builder.origin(est)}: member {j} is a transformer, not a predictor"
            )
        out.append(result)
    return out


def _average(est: Any, builder: PlanBuilder, src: Cols, names: list[str], n: int) -> Cols:
    out = builder.new_cols(names)
    builder.emit(
        "member_average",
        est,
        builder.idx(src),
        builder.idx(out),
        builder.array(np.ones(n), np.float64),
        float(est.n_estimators),
    )
    return out


@register_converter(
    BaggingClassifier,
    "any compiled member with predict_proba and every class; max_features, bootstrap_features "
    "(feature subsets); predict_proba",
)
def convert_bagging_classifier(
    est: BaggingClassifier, builder: PlanBuilder, cols: Cols
) -> Prediction:
    origin = builder.origin(est)
    classes = tuple(est.classes_)
    k = len(classes)
    members = _bagged(est, builder, cols)
    if len(members) != est.n_estimators:
        raise UnsupportedEstimatorError(f"{origin}: estimators_ does not hold n_estimators members")
    for j, m in enumerate(members):
        if m.proba is None:
            raise UnsupportedEstimatorError(
                f"{origin}: member {j} has no predict_proba (scikit-learn then counts votes); "
                "use members with predict_proba"
            )
        if tuple(int(c) for c in m.classes) != tuple(range(k)):
            raise UnsupportedEstimatorError(
                f"{origin}: member {j} was fitted without every class (its bootstrap sample "
                "missed one); refit with more samples per member or bootstrap=False"
            )
    src = Cols(tuple(c for m in members for c in m.proba.idx))  # type: ignore[union-attr]
    proba = _average(est, builder, src, [f"proba[{c}]" for c in classes], len(members))
    return Prediction("classification", proba, "argmax", classes, proba)


@register_converter(
    BaggingRegressor,
    "any compiled single-output regressor member; max_features, bootstrap_features "
    "(feature subsets)",
)
def convert_bagging_regressor(
    est: BaggingRegressor, builder: PlanBuilder, cols: Cols
) -> Prediction:
    members = _bagged(est, builder, cols)
    if any(m.task != "regression" or len(m.decision) != 1 for m in members):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: every member must be a single-output regressor"
        )
    if len(members) != est.n_estimators:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: estimators_ does not hold n_estimators members"
        )
    src = Cols(tuple(c for m in members for c in m.decision.idx))
    value = _average(est, builder, src, ["prediction"], len(members))
    return Prediction("regression", value, "value")


def _stacked(est: Any, builder: PlanBuilder, cols: Cols, n_classes: int) -> Cols:
    """The final estimator's input: each member's stacked output, then ``cols`` with
    passthrough (``_concatenate_predictions``)."""
    origin = builder.origin(est)
    names = [name for name, member in est.estimators if member != "drop"]
    meta = Cols(())
    for name, member, method in zip(names, est.estimators_, est.stack_method_, strict=True):
        builder.push(name)
        pred = convert(member, builder, cols)
        builder.pop()
        if not isinstance(pred, Prediction):
            raise UnsupportedEstimatorError(f"{origin}: member {name!r} is not a predictor")
        if (
            pred.task == "classification"
            and n_classes
            and (tuple(int(c) for c in pred.classes) != tuple(range(n_classes)))
        ):
            raise UnsupportedEstimatorError(
                f"{origin}: member {name!r} must be a classifier of the ensemble's classes"
            )
        if method == "predict_proba" and pred.proba is not None:
            block = pred.proba.take(range(1, len(pred.proba))) if n_classes == 2 else pred.proba
        elif method == "decision_function":
            found = [c for n, c, _ in pred.extras if n == "decision_function"]
            if not found:
                raise UnsupportedEstimatorError(
                    f"{origin}: member {name!r}'s decision_function is not compiled"
                )
            block = found[0]
        elif method == "predict" and pred.task == "regression" and len(pred.decision) == 1:
            block = pred.decision
        else:
            raise UnsupportedEstimatorError(
                f"{origin}: member {name!r} stacked by {method!r} is not supported; valid: "
                "predict_proba, decision_function, or predict of a regressor"
            )
        meta = meta + Cols(block.idx)
    if est.passthrough:
        meta = meta + Cols(cols.idx, cols.sparse, cols.float32)
    return meta


def _final(est: Any, builder: PlanBuilder, meta: Cols) -> Prediction:
    builder.push("final_estimator_")
    result = convert(est.final_estimator_, builder, meta)
    builder.pop()
    if not isinstance(result, Prediction):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: the final estimator is not a predictor"
        )
    return result


@register_converter(
    StackingClassifier,
    "stack_method predict_proba / decision_function (auto); passthrough; members and final "
    "estimator any compiled classifier (regressor members by predict); predict_proba",
)
def convert_stacking_classifier(
    est: StackingClassifier, builder: PlanBuilder, cols: Cols
) -> Prediction:
    classes = tuple(est.classes_)
    if isinstance(est._label_encoder, list):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: multilabel stacking is not supported"
        )
    final = _final(est, builder, _stacked(est, builder, cols, len(classes)))
    if final.task != "classification" or len(final.classes) != len(classes):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: the final estimator must classify the ensemble's classes"
        )
    # the final estimator predicts encoded classes; the ensemble decodes them
    return Prediction("classification", final.decision, final.label_rule, classes, final.proba)


@register_converter(
    StackingRegressor,
    "passthrough; members and final estimator any compiled single-output regressor",
)
def convert_stacking_regressor(
    est: StackingRegressor, builder: PlanBuilder, cols: Cols
) -> Prediction:
    final = _final(est, builder, _stacked(est, builder, cols, 0))
    if final.task != "regression":
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: the final estimator must be a regressor"
        )
    return Prediction("regression", final.decision, "value")


def _calibrated_scores(
    cal: Any, builder: PlanBuilder, cols: Cols, origin: str, j: int
) -> tuple[Cols, Any]:
    """A calibrated classifier's base scores (one column per calibrator) and its estimator."""
    base = cal.estimator
    builder.push(f"calibrated_classifiers_[{j}]")
    pred = convert(base, builder, cols)
    builder.pop()
    if not isinstance(pred, Prediction) or pred.task != "classification":
        raise UnsupportedEstimatorError(f"{origin}: the calibrated estimator is not a classifier")
    if hasattr(base, "decision_function"):
        found = [c for n, c, _ in pred.extras if n == "decision_function"]
        if not found:
            raise UnsupportedEstimatorError(
                f"{origin}: the calibrated {type(base).__name__}'s decision_function is not "
                "compiled"
            )
        scores = found[0]
    elif pred.proba is not None:
        scores = pred.proba.take([len(pred.proba) - 1]) if len(pred.proba) == 2 else pred.proba
    else:
        raise UnsupportedEstimatorError(
            f"{origin}: the calibrated estimator has neither decision_function nor predict_proba"
        )
    return Cols(scores.idx), base


@register_converter(
    CalibratedClassifierCV,
    "method sigmoid / isotonic; ensemble True / False; any compiled estimator with "
    "decision_function or predict_proba; predict_proba",
)
def convert_calibrated_classifier(
    est: CalibratedClassifierCV, builder: PlanBuilder, cols: Cols
) -> Prediction:
    origin = builder.origin(est)
    classes = tuple(est.classes_)
    k = len(classes)
    blocks = []
    for j, cal in enumerate(est.calibrated_classifiers_):
        if cal.method not in ("sigmoid", "isotonic"):
            raise UnsupportedEstimatorError(
                f"{origin}: method={cal.method!r} is not supported; valid: 'sigmoid', 'isotonic'"
            )
        scores, base = _calibrated_scores(cal, builder, cols, origin, j)
        if cal.method == "isotonic":
            # IsotonicRegression.predict validates its input: a NaN or infinite score (an
            # input far outside the training range) is refused there, so here too
            builder.emit(
                "check_values", est, builder.idx(scores), 0, 0,
                message="the calibrated estimator's score for this row is not a finite number",
            )  # fmt: skip
        positions = np.searchsorted(np.asarray(cal.classes), np.asarray(base.classes_))
        if len(scores) != len(cal.calibrators) or len(positions) < len(cal.calibrators):
            raise UnsupportedEstimatorError(f"{origin}: calibrators do not match the scores")
        cls, kind, a, b, lo, hi, xs, ys, start = [], [], [], [], [], [], [], [], [0]
        for idx, calibrator in zip(positions, cal.calibrators, strict=False):
            cls.append(int(idx) + (1 if k == 2 else 0))
            if cal.method == "sigmoid":
                kind.append(0)
                a.append(float(calibrator.a_))
                b.append(float(calibrator.b_))
                lo.append(0.0)
                hi.append(0.0)
            else:
                if calibrator.out_of_bounds != "clip" or not calibrator.increasing_:
                    raise UnsupportedEstimatorError(f"{origin}: an unexpected isotonic calibrator")
                kind.append(1)
                a.append(0.0)
                b.append(0.0)
                lo.append(float(calibrator.X_min_))
                hi.append(float(calibrator.X_max_))
                xs.extend(np.asarray(calibrator.X_thresholds_, dtype=np.float64).tolist())
                ys.extend(np.asarray(calibrator.y_thresholds_, dtype=np.float64).tolist())
            start.append(len(xs))
        proba = builder.new_cols([f"calibrated[{j}][{c}]" for c in classes])
        builder.emit(
            "calibrate",
            est,
            builder.idx(scores),
            builder.idx(proba),
            builder.array(cls, np.int64),
            builder.array(kind, np.int64),
            builder.array(a, np.float64),
            builder.array(b, np.float64),
            builder.array(lo, np.float64),
            builder.array(hi, np.float64),
            builder.array(xs, np.float64),
            builder.array(ys, np.float64),
            builder.array(start, np.int64),
        )
        blocks.append(proba)
    src = Cols(tuple(c for blk in blocks for c in blk.idx))
    out = builder.new_cols([f"proba[{c}]" for c in classes])
    builder.emit(
        "member_average",
        est,
        builder.idx(src),
        builder.idx(out),
        builder.array(np.ones(len(blocks)), np.float64),
        float(len(blocks)),
    )
    return Prediction("classification", out, "argmax", classes, out)


def _boosted(est: Any, builder: PlanBuilder, cols: Cols) -> list[Prediction]:
    """Each boosted member compiled on all the features; ``_check_X`` refuses NaN and inf."""
    builder.check(cols, est, allow_nan=False)
    out = []
    for j, member in enumerate(est.estimators_):
        builder.push(f"estimators_[{j}]")
        result = convert(member, builder, cols)
        builder.pop()
        if not isinstance(result, Prediction):
            raise UnsupportedEstimatorError(
                f"{builder.origin(est)}: member {j} is a transformer, not a predictor"
            )
        out.append(result)
    return out


@register_converter(
    AdaBoostClassifier,
    "SAMME (the only algorithm in 1.9): decision_function, predict_proba (softmax of the "
    "decision / (K - 1), or of [-d, d] / 2); members any compiled classifier",
)
def convert_ada_boost_classifier(
    est: AdaBoostClassifier, builder: PlanBuilder, cols: Cols
) -> Prediction:
    """``decision_function`` as scikit-learn sums it (``samme_decision``), then its proba.

    Each member's label is its own decision read by its rule (the same reading as
    ``hard_vote``), compared with ``classes_`` as ``estimator.predict(X) == classes``.
    """
    origin = builder.origin(est)
    classes = tuple(est.classes_)
    k = len(classes)
    if k < 2:
        raise UnsupportedEstimatorError(f"{origin}: fitted on one class; nothing to predict")
    members = _boosted(est, builder, cols)
    for m in members:
        if m.task != "classification" or tuple(m.classes) != classes:
            raise UnsupportedEstimatorError(
                f"{origin}: every member must be a classifier of the ensemble's {k} classes"
            )
    rules = [_RULES.get(m.label_rule, -1) for m in members]
    if min(rules) < 0:
        raise UnsupportedEstimatorError(f"{origin}: a member's label rule is not supported")
    weights = np.asarray(est.estimator_weights_, dtype=np.float64)[: len(members)]
    wrong = np.array([-1 / (k - 1) * w for w in weights], dtype=np.float64)
    total = float(np.asarray(est.estimator_weights_).sum())
    start = np.concatenate([[0], np.cumsum([len(m.decision) for m in members])])
    src = Cols(tuple(c for m in members for c in m.decision.idx))
    decision = builder.new_cols(["decision"] if k == 2 else [f"decision[{c}]" for c in classes])
    builder.emit(
        "samme_decision",
        est,
        builder.idx(src),
        builder.idx(decision),
        builder.array(start, np.int64),
        builder.array(rules, np.int64),
        builder.array(weights, np.float64),
        builder.array(wrong, np.float64),
        builder.array(np.full(k, total), np.float64),
    )
    # _compute_proba_from_decision: [-d, d] / 2 (two classes) or d / (K - 1), then softmax
    if k == 2:
        scaled = builder.new_cols(["-d/2", "d/2"])
        src_cols = Cols(decision.idx * 2)
        divisor = [-2.0, 2.0]
    else:
        scaled = builder.new_cols([f"d[{c}]/(K-1)" for c in classes])
        src_cols = decision
        divisor = [float(k - 1)] * k
    builder.emit(
        "scale",
        est,
        builder.idx(src_cols),
        builder.idx(scaled),
        builder.array(np.zeros(k), np.float64),
        builder.array(divisor, np.float64),
    )
    proba = builder.new_cols([f"proba[{c}]" for c in classes])
    builder.emit("softmax", est, builder.idx(scaled), builder.idx(proba))
    labels = () if k == 2 else tuple(str(c) for c in classes)
    return Prediction(
        "classification",
        decision,
        "positive" if k == 2 else "argmax",
        classes,
        proba,
        extras=(("decision_function", decision, labels),),
    )


@register_converter(
    AdaBoostRegressor, "weighted median of the members (predict); members any compiled regressor"
)
def convert_ada_boost_regressor(
    est: AdaBoostRegressor, builder: PlanBuilder, cols: Cols
) -> Prediction:
    """``_get_median_predict``: the first sorted prediction whose weight sum reaches half.

    scikit-learn sorts with ``np.argsort`` (not stable): equal predictions may be taken
    in another order, which changes which one is picked only when their running sums
    round differently, and then only among equal values.
    """
    members = _boosted(est, builder, cols)
    for m in members:
        if m.task != "regression" or len(m.decision) != 1:
            raise UnsupportedEstimatorError(
                f"{builder.origin(est)}: every member must be a single-output regressor"
            )
    weights = np.asarray(est.estimator_weights_, dtype=np.float64)[: len(members)]
    src = Cols(tuple(m.decision.idx[0] for m in members))
    out = builder.new_cols(["prediction"])
    builder.emit(
        "weighted_median",
        est,
        builder.idx(src),
        builder.idx(out),
        builder.array(weights, np.float64),
    )
    return Prediction("regression", out, "value")
