"""Build-time side of the scoring backends (see ``mlbundle_runtime.backend`` for the run-time side).

One registry: the spec's allowed values, the CLI's ``--backend`` choices, the build and the
freeze stage all ask it, and nothing else names a backend. A new backend (a successor to
numba.pycc) is a class following ``Backend`` added to ``_REGISTRY``.
"""

from __future__ import annotations

from typing import Any

from bundler.backends.base import Backend, FreezeFiles
from bundler.backends.builtin import AotBackend, JitBackend, PassthroughBackend

_REGISTRY: dict[str, Backend] = {
    b.name: b for b in (AotBackend(), JitBackend(), PassthroughBackend())
}
#: Every backend's name, the default first.
BACKEND_NAMES: tuple[str, ...] = tuple(_REGISTRY)
#: The backends that run a compiled plan with kernels (what ``bundle score`` can use).
PLAN_BACKEND_NAMES: tuple[str, ...] = tuple(n for n, b in _REGISTRY.items() if b.compiles_plan)


def get_backend(name: str) -> Backend:
    """The backend called ``name``; KeyError naming the valid ones otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown backend {name!r}; valid: {', '.join(BACKEND_NAMES)}") from None


def __getattr__(name: str) -> Any:
    """``compile_aot`` and ``require_toolchain`` stay importable from here, loaded on use so
    that importing the registry pulls in neither the compile driver nor numpy."""
    if name in {"compile_aot", "require_toolchain", "cached_aot"}:
        from bundler.backends import aot

        return getattr(aot, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BACKEND_NAMES",
    "PLAN_BACKEND_NAMES",
    "Backend",
    "FreezeFiles",
    "get_backend",
    "compile_aot",  # noqa: F822 (module __getattr__)
    "require_toolchain",  # noqa: F822
]
