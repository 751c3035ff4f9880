"""mlbundle's runtime: what gets frozen into the application.

It reads a compiled scoring plan and its model record, validates input and
runs the compiled kernels. It imports numpy and the standard library only;
never the build tool, scikit-learn, scipy, joblib, pickle or numba (the
``jit`` backend imports numba lazily, and only in bundles built for it).

The public API (``load``, ``Model``, ``Prediction``, ...: see ``mlbundle_runtime.api`` and
docs/runtime-api.md) is imported on first use, so that the build side's
``import mlbundle_runtime.plan`` does not pay for it::

    import mlbundle_runtime

    model = mlbundle_runtime.load()        # the bundled model, hash-checked
    print([i.name for i in model.inputs])  # what a record must hold
    print(model.predict(record).label)     # record: {input name: value}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: The public names, each defined in ``mlbundle_runtime.api`` (the errors are re-exported there).
__all__ = [
    "BundleError",
    "Cancelled",
    "FileResult",
    "GateResult",
    "Input",
    "InputError",
    "Model",
    "Outputs",
    "Prediction",
    "Predictions",
    "load",
]

if TYPE_CHECKING:  # for type checkers and editors; at run time, __getattr__ below
    from mlbundle_runtime.api import (
        BundleError,
        Cancelled,
        FileResult,
        GateResult,
        Input,
        InputError,
        Model,
        Outputs,
        Prediction,
        Predictions,
        load,
    )


def __getattr__(name: str) -> Any:
    """Import the API when one of its names is first asked for (PEP 562)."""
    if name in __all__:
        from mlbundle_runtime import api

        value = getattr(api, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
