"""One converter per estimator class, looked up by exact class.

Exact classes, not ``isinstance``: a subclass may override ``predict`` and
score differently, so it must be refused rather than silently compiled.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bundler.errors import UnsupportedEstimatorError

Converter = Callable[..., Any]

#: The scikit-learn versions every converter's parity tests ran against. A model
#: from outside this range is refused: scoring code changes between releases.
CHECKED_SKLEARN = (">=1.9", "<1.10")
_CHECKED_RANGE = ((1, 9), (1, 10))


def require_checked_sklearn(version: str) -> None:
    """Refuse a scikit-learn version the converters were not checked against."""
    try:
        major_minor = tuple(int(p) for p in version.split(".")[:2])
    except ValueError:
        major_minor = (0, 0)
    low, high = _CHECKED_RANGE
    if not low <= major_minor < high:
        raise UnsupportedEstimatorError(
            f"the compiler was checked against scikit-learn {','.join(CHECKED_SKLEARN)}, "
            f"but this model comes from scikit-learn {version}; retrain or re-export it with a "
            'checked version, or ship it with backend = "passthrough"'
        )


@dataclass(frozen=True)
class Registration:
    """A converter and what it covers, for refusals and the README's table."""

    cls: type
    fn: Converter
    options: str  # human-readable summary of supported options


_REGISTRY: dict[type, Registration] = {}


def register_converter(cls: type, options: str = "") -> Callable[[Converter], Converter]:
    """Register ``fn(est, builder, cols)`` as the converter of ``cls``; duplicates are refused."""

    def decorate(fn: Converter) -> Converter:
        if cls in _REGISTRY:
            raise ValueError(f"a converter for {cls.__name__} is already registered")
        params = list(inspect.signature(fn).parameters)
        if params[:3] != ["est", "builder", "cols"]:
            raise TypeError(f"converter {fn.__name__} must take (est, builder, cols)")
        _REGISTRY[cls] = Registration(cls, fn, options)
        return fn

    return decorate


def supported() -> list[Registration]:
    """Every registered converter, sorted by class name."""
    return sorted(_REGISTRY.values(), key=lambda r: r.cls.__name__)


def get_converter(est: object) -> Converter:
    """The converter for ``est``'s exact class, or a refusal naming what is supported."""
    reg = _REGISTRY.get(type(est))
    if reg is None:
        names = ", ".join(r.cls.__name__ for r in supported())
        raise UnsupportedEstimatorError(
            f"cannot compile {type(est).__module__}.{type(est).__name__}: no converter for it. "
            f"Supported: {names}"
        )
    return reg.fn


def convert(est: object, builder: Any, cols: Any) -> Any:
    """Convert one step: the entry point converters use for nested estimators."""
    return get_converter(est)(est, builder, cols)
