"""Ensembles of compiled estimators: VotingClassifier / VotingRegressor, BaggingClassifier /
BaggingRegressor.

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

The members were fitted on the ensemble's encoded classes (``le_``), so their classes are
``0 .. k - 1``; the plan's classes are the ensemble's ``classes_``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble import (
    BaggingClassifier,
    BaggingRegressor,
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
