"""Converters, one module per estimator family; importing this package registers them all.

The LightGBM and XGBoost families (``OPTIONAL``) register only when their library is
installed (the ``boosting`` extra): without it, nothing is imported for them.
"""

import importlib
import importlib.util

from bundler.compiler.converters import (
    cluster,
    compose,
    decomposition,
    discretize,
    discriminant,
    discriminant_qda,
    ensembles,
    function,
    glm,
    gradient_boosting,
    hist_gradient_boosting,
    iforest,
    impute,
    linear,
    mlp,
    multioutput,
    naive_bayes,
    neighbors,
    onehot,
    ordinal,
    polynomial,
    scalers,
    search,
    sgd,
    svm,
    svm_linear,
    text,
    trees,
)

__all__ = ["compose", "impute", "linear", "onehot", "scalers", "trees"]
__all__ += ["gradient_boosting", "hist_gradient_boosting", "iforest"]
__all__ += ["naive_bayes", "sgd", "svm_linear"]
__all__ += ["discretize", "function", "ordinal", "polynomial"]
__all__ += ["mlp", "neighbors", "svm"]
__all__ += ["discriminant", "glm", "search"]
__all__ += ["decomposition"]
__all__ += ["discriminant_qda"]
__all__ += ["ensembles"]
__all__ += ["text"]
__all__ += ["cluster"]
__all__ += ["multioutput"]

#: Library -> the converter module that needs it: imported only where the library is.
OPTIONAL = {"lightgbm": "boosting_lightgbm", "xgboost": "boosting_xgboost"}
for _library, _module in OPTIONAL.items():
    if importlib.util.find_spec(_library) is not None:
        importlib.import_module(f"{__name__}.{_module}")
