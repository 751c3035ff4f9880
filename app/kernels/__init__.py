"""Scoring kernels: written once, compiled by the backend the bundle chose.

Every kernel is plain, Numba-compatible Python, one module per estimator
family. Nothing here imports numba: the ``aot`` backend compiles these
functions at build time into an extension module that links only libc/libm,
and the ``jit`` backend compiles them on the user's machine. Both take the
signatures from ``EXPORTS``, so the two backends run the very same code.

The rules every kernel follows:

- It works on a *workspace*: one float64 matrix per batch whose columns are
  the plan's inputs followed by every intermediate result. It reads columns
  ``src`` and writes columns ``dst`` of it.
- It does scikit-learn's arithmetic in scikit-learn's order. It calls no
  other kernel, only the shared helpers a module lists in ``SHARED_HELPERS``
  (``sums.pairwise_sum``: numpy's summation order, needed by several families);
  the backends compile each helper into the kernels that call it. Only
  ``program.run_program`` calls kernels: it runs a whole packed plan in one call
  (``app/program.py``), and the backends compile the kernels it calls into it.
- It does no bounds checks; ``app/plan_checks.py`` proves every index in range
  when a plan is read, one check per kernel.
- A kernel that can meet bad input returns the first offending position
  (``row * len(cols) + j``) or -1, so the caller can name the row and column.
"""

from __future__ import annotations

from types import ModuleType

from app.kernels import (
    core,
    linear_models,
    neighbors,
    neural,
    preprocess,
    program,
    sums,
    svm,
    trees,
)

#: The family modules, in a fixed order (it defines the kernels' source hash).
MODULES: tuple[ModuleType, ...] = (
    sums,  # helpers only, no kernel
    core,
    trees,
    preprocess,
    linear_models,
    neural,
    svm,
    neighbors,
    program,  # last: it calls the kernels above (generated, see app/program.py)
)


def _collect() -> tuple[dict[str, str], dict[str, ModuleType], dict[str, ModuleType]]:
    exports: dict[str, str] = {}
    owner: dict[str, ModuleType] = {}
    helpers: dict[str, ModuleType] = {}
    for module in MODULES:
        for name, signature in module.EXPORTS.items():
            if name in exports:
                raise RuntimeError(f"kernel {name} is defined twice")
            exports[name] = signature
            owner[name] = module
        for name in getattr(module, "SHARED_HELPERS", ()):
            if name in helpers or name in exports:
                raise RuntimeError(f"helper {name} is defined twice")
            helpers[name] = module
    return exports, owner, helpers


#: Kernel name -> Numba signature. The backends compile exactly these.
#: ``HELPER_OWNER``: helper name -> the module defining it. A helper is not exported:
#: the backends turn it into a numba function in every module that names it, so the
#: kernels calling it are compiled with it (``helper_users`` says where).
EXPORTS, OWNER, HELPER_OWNER = _collect()


def helper_users(name: str) -> tuple[ModuleType, ...]:
    """The modules whose globals hold helper ``name`` (its own module, for recursion)."""
    fn = getattr(HELPER_OWNER[name], name)
    return tuple(m for m in MODULES if vars(m).get(name) is fn)


def __getattr__(name: str) -> object:
    """``app.kernels.<kernel>``: the kernel function, from its family module."""
    module = OWNER.get(name)
    if module is None:
        raise AttributeError(name)
    return getattr(module, name)


__all__ = ["EXPORTS", "HELPER_OWNER", "MODULES", "OWNER", "helper_users"]
