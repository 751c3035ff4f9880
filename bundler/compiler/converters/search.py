"""Hyperparameter searches: a search predicts with its ``best_estimator_``, so compile that.

``BaseSearchCV.predict`` / ``predict_proba`` / ``decision_function`` / ``score_samples``
check that the search is fitted and call the same method of ``best_estimator_`` on X
unchanged: the plan is the best estimator's plan. ``best_estimator_`` exists only when
the search refitted (``refit=True``, a scorer name, or a callable); without it there is
nothing to predict with, and the refusal says how to get one. The search's grid, best
parameters and best score go into the model record (``bundler.record``).
"""

from __future__ import annotations

from typing import Any

from sklearn.experimental import enable_halving_search_cv  # noqa: F401  (exposes the classes)
from sklearn.model_selection import (
    GridSearchCV,
    HalvingGridSearchCV,
    HalvingRandomSearchCV,
    RandomizedSearchCV,
)

from bundler.compiler._builder import Cols, PlanBuilder
from bundler.compiler._registry import convert, register_converter
from bundler.errors import UnsupportedEstimatorError

#: The search classes compiled here (exact classes, as the registry looks them up).
SEARCHES = (GridSearchCV, RandomizedSearchCV, HalvingGridSearchCV, HalvingRandomSearchCV)


def is_search(est: object) -> bool:
    """Whether ``est`` is one of the compiled search classes (exactly)."""
    return type(est) in SEARCHES


def require_refit(est: object, origin: str = "") -> None:
    """Refuse a search that has no ``best_estimator_`` (fitted with ``refit=False``)."""
    if not is_search(est) or hasattr(est, "best_estimator_"):
        return
    name = origin or type(est).__name__
    if not hasattr(est, "cv_results_"):
        raise UnsupportedEstimatorError(
            f"{name} is not fitted; fit the search (with refit=True, the default) before building"
        )
    raise UnsupportedEstimatorError(
        f"{name} was fitted with refit={getattr(est, 'refit', None)!r}, so it has no "
        "best_estimator_ to predict with; fit it again with refit=True (or a scorer name "
        "for multi-metric scoring), or save search.best_estimator_ refitted on all the data"
    )


_OPTIONS = (
    "compiles best_estimator_ (refit must have run) when that estimator compiles; the "
    "record keeps the {what}, best_params_ and best_score_"
)


@register_converter(GridSearchCV, _OPTIONS.format(what="param_grid"))
@register_converter(RandomizedSearchCV, _OPTIONS.format(what="param_distributions"))
@register_converter(HalvingGridSearchCV, _OPTIONS.format(what="param_grid"))
@register_converter(HalvingRandomSearchCV, _OPTIONS.format(what="param_distributions"))
def convert_search(est: Any, builder: PlanBuilder, cols: Cols) -> Any:
    require_refit(est, builder.origin(est))
    builder.push("best_estimator_")
    try:
        return convert(est.best_estimator_, builder, cols)
    finally:
        builder.pop()
