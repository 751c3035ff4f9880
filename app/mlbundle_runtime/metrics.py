"""The release gate's metrics, in numpy only.

This module ships inside the frozen app, which carries no scikit-learn or
scipy, yet the gate's verdict must be the one scikit-learn would give: the
build measures the confidence metric with these functions and a user may
re-check it with ``sklearn.metrics``. So every function reproduces the
scikit-learn definition it is named after, including the corner cases:

- zero divisions give 0.0 (scikit-learn's default ``zero_division="warn"``);
- ``balanced_accuracy`` averages recall over the classes present in ``y_true``;
- ``f1`` scores the ``labels`` given (absent ones score 0.0) and, for
  ``average="weighted"`` with no support at all, falls back to the plain mean;
- ``roc_auc`` is the trapezoidal area under the ROC curve, i.e. the
  Mann-Whitney statistic with tied scores counted as half; it is ``nan`` for
  a class with no positive or no negative row, as in scikit-learn;
- ``r2`` is ``nan`` for fewer than two rows, 1.0 for a perfect fit and 0.0
  for a constant ``y_true`` that is not matched exactly.

scikit-learn's warnings are not reproduced, and inputs it rejects (non-finite
values, labels mixing strings and numbers, labels outside ``classes`` for
``roc_auc``) raise ``ValueError`` here as well. Empty inputs raise too: a gate
measured on no rows has not measured anything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

#: Metric names accepted by ``compute`` (and by the spec's ``gate.confidence.metric``).
METRICS: tuple[str, ...] = (
    "accuracy",
    "balanced_accuracy",
    "f1",
    "roc_auc",
    "r2",
    "mae",
    "rmse",
)
#: Metrics that score predicted labels (the others score numbers or probabilities).
CLASSIFICATION_METRICS: tuple[str, ...] = ("accuracy", "balanced_accuracy", "f1", "roc_auc")
REGRESSION_METRICS: tuple[str, ...] = ("r2", "mae", "rmse")
#: Averages of ``f1`` and ``roc_auc`` over several classes.
AVERAGES: tuple[str, ...] = ("macro", "weighted")

ArrayLike = Sequence[Any] | np.ndarray


# --------------------------------------------------------------------------- inputs


def _labels(values: ArrayLike, name: str) -> np.ndarray:
    """Return ``values`` as a 1-D label array whose elements compare like Python values.

    Strings become a unicode array and numbers a numeric one, so that ``==``
    between two label arrays is elementwise whatever container they came in
    (lists, object arrays from pandas or ``classes_``).
    """
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind == "O":
        items = arr.tolist()
        if all(isinstance(v, str) for v in items):
            arr = np.asarray(items, dtype=str) if items else np.asarray([], dtype=str)
        elif all(_is_number(v) for v in items):
            arr = np.asarray(items) if items else np.asarray([], dtype=float)
        else:
            kinds = sorted({type(v).__name__ for v in items})
            raise ValueError(
                f"{name} mixes label types ({', '.join(kinds)}); "
                "labels must be all strings or all numbers"
            )
    elif arr.dtype.kind == "S":
        arr = arr.astype(str)
    elif arr.dtype.kind not in "biufU":
        raise ValueError(f"{name} has unsupported label type {arr.dtype}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinity; labels must be finite")
    return arr


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | np.number | np.bool_) and not isinstance(value, str)


def _is_text(arr: np.ndarray) -> bool:
    return arr.dtype.kind == "U"


def _same_kind(**arrays: np.ndarray) -> None:
    """Refuse to compare string labels with numeric ones (they would never be equal)."""
    kinds = {name: ("strings" if _is_text(a) else "numbers") for name, a in arrays.items()}
    if len(set(kinds.values())) > 1:
        described = ", ".join(f"{name} has {kind}" for name, kind in kinds.items())
        raise ValueError(
            f"labels mix strings and numbers ({described}); convert them to one type first"
        )


def _pair(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    t = _labels(y_true, "y_true")
    p = _labels(y_pred, "y_pred")
    _check_rows(t, p.shape[0], "y_pred")
    _same_kind(y_true=t, y_pred=p)
    return t, p


def _check_rows(y_true: np.ndarray, n: int, other: str) -> None:
    if y_true.shape[0] == 0:
        raise ValueError("no rows to score: y_true is empty")
    if n != y_true.shape[0]:
        raise ValueError(f"y_true has {y_true.shape[0]} rows but {other} has {n}")


def _numbers(values: ArrayLike, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must contain numbers: {exc}") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinity")
    return arr


def _regression(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    t = _numbers(y_true, "y_true")
    p = _numbers(y_pred, "y_pred")
    _check_rows(t, p.shape[0], "y_pred")
    return t, p


def _class_list(classes: ArrayLike, name: str = "classes") -> np.ndarray:
    arr = _labels(classes, name)
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if np.unique(arr).shape[0] != arr.shape[0]:
        raise ValueError(f"{name} contains duplicates: {_show(arr)}")
    return arr


def _resolve_pos_label(labels: np.ndarray, pos_label: object) -> Any:
    """Return the element of ``labels`` that ``pos_label`` names (default: ``labels[1]``).

    A spec stores ``pos_label`` as text, while a model's classes may be
    numbers, so ``"1"`` also names the class ``1`` when no label equals it
    exactly.
    """
    if pos_label is None:
        if labels.shape[0] < 2:
            raise ValueError(f"a positive class needs two labels, got {_show(labels)}")
        return labels[1]
    for label in labels.tolist():
        if _is_number(pos_label) == _is_number(label) and label == pos_label:
            return label
    for label in labels.tolist():
        if str(label) == str(pos_label):
            return label
    raise ValueError(f"pos_label {pos_label!r} is not one of the classes {_show(labels)}")


def _show(labels: np.ndarray) -> str:
    return "[" + ", ".join(repr(v) for v in labels.tolist()) + "]"


def _check_average(average: str, allowed: tuple[str, ...]) -> None:
    if average not in allowed:
        raise ValueError(f"average {average!r} is not valid; expected one of {', '.join(allowed)}")


# --------------------------------------------------------------------------- classification


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Fraction of rows whose predicted label equals the true one (``accuracy_score``)."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(t == p))


def balanced_accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean recall over the classes present in ``y_true`` (``balanced_accuracy_score``).

    Classes that occur only in ``y_pred`` have no recall and are left out, as
    scikit-learn does after warning.
    """
    t, p = _pair(y_true, y_pred)
    present = np.unique(t)
    recalls = np.empty(present.shape[0], dtype=np.float64)
    for k, label in enumerate(present):
        is_true = t == label
        recalls[k] = np.count_nonzero(is_true & (p == label)) / np.count_nonzero(is_true)
    return float(np.mean(recalls))


def f1(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    labels: ArrayLike | None = None,
    average: str = "macro",
    pos_label: object = None,
) -> float:
    """F1 score as ``f1_score(y_true, y_pred, labels=labels, average=average, pos_label=...)``.

    ``labels`` are the classes to score (normally the model's classes); None
    means the sorted labels found in ``y_true`` and ``y_pred``. With
    ``average="binary"`` only ``pos_label`` is scored (default: the second
    label). A label with neither true nor predicted rows scores 0.0.
    """
    _check_average(average, (*AVERAGES, "binary"))
    t, p = _pair(y_true, y_pred)
    present = np.unique(np.concatenate([t, p]))
    if labels is None:
        scored = present
    else:
        scored = _class_list(labels, "labels")
        _same_kind(y_true=t, labels=scored)
    if average == "binary":
        if present.shape[0] > 2:
            raise ValueError(
                f"average='binary' needs at most two labels, but y_true and y_pred hold "
                f"{present.shape[0]}: {_show(present)}; use average='macro' or 'weighted'"
            )
        if labels is None and pos_label is not None and present.shape[0] < 2:
            # scikit-learn accepts a positive class absent from the data here.
            positive = pos_label
        else:
            positive = _resolve_pos_label(scored, pos_label)
        return float(_f1_per_label(t, p, np.asarray([positive]))[0][0])
    scores, support = _f1_per_label(t, p, scored)
    if average == "weighted" and support.sum() > 0:
        return float(np.average(scores, weights=support))
    return float(np.mean(scores))


def _f1_per_label(
    t: np.ndarray, p: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return each label's F1 = 2·tp / (true + predicted), 0.0 when both are 0, and its support."""
    scores = np.zeros(labels.shape[0], dtype=np.float64)
    support = np.zeros(labels.shape[0], dtype=np.int64)
    for k, label in enumerate(labels):
        is_true = t == label
        is_pred = p == label
        tp = np.count_nonzero(is_true & is_pred)
        n_true = np.count_nonzero(is_true)
        denominator = n_true + np.count_nonzero(is_pred)
        support[k] = n_true
        if denominator:
            scores[k] = 2.0 * tp / float(denominator)
    return scores, support


def roc_auc(
    y_true: ArrayLike,
    proba: ArrayLike,
    *,
    classes: ArrayLike,
    average: str = "macro",
    pos_label: object = None,
) -> float:
    """Area under the ROC curve from class probabilities (``roc_auc_score``).

    ``proba`` has one column per class, in the order of ``classes`` (the
    model's ``classes_``). Two classes: the AUC of the positive class's column,
    the positive class being ``pos_label`` or ``classes[1]``; equals
    ``roc_auc_score(y_true == positive, proba[:, column])``. More classes:
    one-vs-rest, averaged ``"macro"`` or ``"weighted"`` by support; equals
    ``roc_auc_score(y_true, proba, multi_class="ovr", labels=classes, average=average)``.
    """
    _check_average(average, AVERAGES)
    t = _labels(y_true, "y_true")
    labels = _class_list(classes)
    if labels.shape[0] < 2:
        raise ValueError(f"ROC AUC needs at least two classes, got {_show(labels)}")
    _same_kind(y_true=t, classes=labels)
    scores = np.asarray(proba, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] != labels.shape[0]:
        raise ValueError(
            f"proba must have one column per class ({labels.shape[0]}), got shape {scores.shape}"
        )
    _check_rows(t, scores.shape[0], "proba")
    if not np.all(np.isfinite(scores)):
        raise ValueError("proba contains NaN or infinity")
    unknown = np.setdiff1d(t, labels)
    if unknown.shape[0]:
        raise ValueError(f"y_true contains labels that are not classes: {_show(unknown)}")

    if labels.shape[0] == 2:
        positive = _resolve_pos_label(labels, pos_label)
        column = labels.tolist().index(positive)
        return _binary_auc(t == positive, scores[:, column])

    if not np.allclose(1, scores.sum(axis=1)):
        raise ValueError("proba rows must sum to 1 for a multiclass ROC AUC")
    aucs = np.empty(labels.shape[0], dtype=np.float64)
    support = np.empty(labels.shape[0], dtype=np.int64)
    for k, label in enumerate(labels):
        is_pos = t == label
        support[k] = np.count_nonzero(is_pos)
        aucs[k] = _binary_auc(is_pos, scores[:, k])
    if average == "macro":
        return float(np.mean(aucs))
    # Classes without support weigh nothing; scikit-learn zeroes their (nan) AUC first.
    aucs[support == 0] = 0.0
    return float(np.average(aucs, weights=support))


def _binary_auc(is_pos: np.ndarray, score: np.ndarray) -> float:
    """AUC = P(score of a positive > score of a negative) + ½·P(tie), via mid-ranks.

    This is exactly the trapezoidal area under scikit-learn's ROC curve, whose
    tied scores form one diagonal step. ``nan`` when a side is empty.
    """
    n_pos = int(np.count_nonzero(is_pos))
    n_neg = is_pos.shape[0] - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = _midranks(score)
    u = float(ranks[is_pos].sum()) - n_pos * (n_pos + 1) / 2.0
    return u / (float(n_pos) * float(n_neg))


def _midranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values``; tied values share the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    n = values.shape[0]
    starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
    ends = np.append(starts[1:], n)  # exclusive
    group_rank = (starts + 1 + ends) / 2.0  # mean of ranks start+1 .. end
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.repeat(group_rank, ends - starts)
    return ranks


# --------------------------------------------------------------------------- regression


def r2(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Coefficient of determination (``r2_score`` with its default ``force_finite=True``)."""
    t, p = _regression(y_true, y_pred)
    if t.shape[0] < 2:
        return math.nan
    numerator = float(np.sum((t - p) ** 2))
    denominator = float(np.sum((t - np.mean(t)) ** 2))
    if numerator == 0.0:
        return 1.0
    if denominator == 0.0:
        return 0.0
    return 1.0 - numerator / denominator


def mae(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean absolute error (``mean_absolute_error``)."""
    t, p = _regression(y_true, y_pred)
    return float(np.mean(np.abs(p - t)))


def rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Root mean squared error (``root_mean_squared_error``)."""
    t, p = _regression(y_true, y_pred)
    return float(np.sqrt(np.mean((t - p) ** 2)))


# --------------------------------------------------------------------------- dispatch


def compute(
    metric: str,
    *,
    y_true: ArrayLike,
    y_pred: ArrayLike,
    proba: ArrayLike | None = None,
    classes: ArrayLike | None = None,
    average: str = "macro",
    pos_label: object = None,
) -> float:
    """Measure ``metric`` the way the spec's ``[gate.confidence]`` asks for it.

    ``classes`` are the model's classes (the column order of ``proba``); None
    means the sorted labels of the data. ``f1`` on two classes is binary
    (positive class ``pos_label`` or the second class); on more it uses
    ``average``. ``roc_auc`` needs ``proba``. Regression metrics read
    ``y_true`` and ``y_pred`` as numbers and ignore the other arguments.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
    if metric == "accuracy":
        return accuracy(y_true, y_pred)
    if metric == "balanced_accuracy":
        return balanced_accuracy(y_true, y_pred)
    if metric == "f1":
        _check_average(average, AVERAGES)
        if classes is None:
            t, p = _pair(y_true, y_pred)
            labels = np.unique(np.concatenate([t, p]))
        else:
            labels = _class_list(classes)
        if labels.shape[0] == 2:
            return f1(y_true, y_pred, labels=labels, average="binary", pos_label=pos_label)
        return f1(y_true, y_pred, labels=labels, average=average)
    if metric == "roc_auc":
        if proba is None:
            raise ValueError(
                "metric 'roc_auc' needs the predicted class probabilities (proba), "
                "but none were given; the model must provide predict_proba"
            )
        if classes is None:
            classes = np.unique(_labels(y_true, "y_true"))
        return roc_auc(y_true, proba, classes=classes, average=average, pos_label=pos_label)
    if metric == "r2":
        return r2(y_true, y_pred)
    if metric == "mae":
        return mae(y_true, y_pred)
    return rmse(y_true, y_pred)
