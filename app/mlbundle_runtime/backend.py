"""Load the compiled scoring kernels for the backend a bundle was built with.

The backend is the one seam between the kernels' source (``mlbundle_runtime.kernels``) and
the machine code that runs them, so that replacing numba.pycc later touches
only this module and ``bundler.backends``:

- ``aot``: an extension module compiled at build time (``AOT_MODULE``). The
  frozen app imports it like any other module; no numba is shipped.
- ``jit``: numba compiles ``mlbundle_runtime.kernels`` on first use and caches the machine
  code in the user's cache folder, so later starts skip compilation.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from mlbundle_runtime import kernels as _kernel_source

#: Import name of the extension module the ``aot`` backend produces.
AOT_MODULE = "_mlbundle_kernels"
#: The run-time names a bundle records (``bundler.backends``' ``runtime``) that load kernels.
AOT, JIT = "aot", "jit"
BACKENDS = (AOT, JIT)


class BackendError(RuntimeError):
    """The compiled kernels could not be loaded."""


def kernel_source_hash() -> str:
    """sha256 of the kernels' source: identifies the scoring code in records and caches."""
    digest = hashlib.sha256()
    for name, text in kernel_sources().items():
        digest.update(name.encode() + b"\0" + text.encode("utf-8") + b"\0")
    return digest.hexdigest()


def kernel_sources() -> dict[str, str]:
    """Each family module's source text, in ``MODULES`` order (numba compiles from source)."""
    sources = {}
    for module in _kernel_source.MODULES:
        spec = importlib.util.find_spec(module.__name__)
        loader = spec.loader if spec else None
        text = loader.get_source(module.__name__) if loader is not None else None  # type: ignore[union-attr]
        if text is None:
            raise BackendError(f"the source of {module.__name__} is not available in this build")
        sources[module.__name__] = text
    return sources


def load_kernels(backend: str, aot_path: Path | None = None) -> object:
    """Return an object whose attributes are the compiled kernels named in ``EXPORTS``.

    ``aot_path`` points at a compiled extension file outside ``sys.path`` (the
    build tool's cache); without it the ``aot`` module is imported by name, as
    the frozen app does.
    """
    if backend not in BACKENDS:
        raise BackendError(f"unknown scoring backend {backend!r}; valid: {', '.join(BACKENDS)}")
    return _load_aot(aot_path) if backend == AOT else _load_jit()


def _load_aot(path: Path | None) -> ModuleType:
    if path is None:
        try:
            return importlib.import_module(AOT_MODULE)
        except ImportError as exc:
            raise BackendError(f"compiled kernels {AOT_MODULE} are missing: {exc}") from exc
    spec = importlib.util.spec_from_file_location(AOT_MODULE, path)
    if spec is None or spec.loader is None:
        raise BackendError(f"cannot load compiled kernels from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    missing = [name for name in _kernel_source.EXPORTS if not hasattr(module, name)]
    if missing:
        raise BackendError(f"{path} lacks kernels {missing}; rebuild it")
    return module


def jit_cache_dir() -> Path:
    """Per-user cache for JIT-compiled kernels (XDG on Linux, a dot folder elsewhere)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mlbundle" / "kernels"


def _load_jit() -> object:
    cache = jit_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("NUMBA_CACHE_DIR", str(cache))
    try:
        import numba  # only the jit backend ships numba
    except ImportError as exc:
        raise BackendError("the jit backend needs numba, which is not installed") from exc
    sources = kernel_sources()
    # numba keys a cached function on its own file only, yet a kernel's machine code
    # holds the helpers it calls: the helpers' source is part of every file's name.
    helpers = "".join(
        sources[m.__name__]
        for m in _kernel_source.MODULES
        if m in _kernel_source.HELPER_OWNER.values()
    )
    modules = {}
    for qualname, source in sources.items():
        modules[qualname] = _source_module(cache, qualname, source, helpers)
    _compile_helpers(modules, numba)
    return _LazyJit(modules, numba)


def _compile_helpers(modules: dict[str, ModuleType], numba: ModuleType) -> None:
    """Make each shared helper a numba function wherever the kernels' copies name it.

    numba compiles a kernel's call to a helper only if the helper is a numba function
    itself. The copies import helpers from ``mlbundle_runtime.kernels`` (whose functions are plain
    Python), so each name is rebound to one dispatcher compiled from the cached copy's
    source (which numba can cache on disk), shared by every caller.
    """
    for name, owner in _kernel_source.HELPER_OWNER.items():
        own = getattr(modules[owner.__name__], name)
        if hasattr(own, "py_func"):  # already compiled (the modules are imported once)
            continue
        plain = {id(own), id(getattr(owner, name))}
        helper = numba.njit(cache=True, nogil=True)(own)
        for module in modules.values():
            if id(vars(module).get(name)) in plain:
                setattr(module, name, helper)


def _source_module(cache: Path, qualname: str, source: str, helpers: str) -> ModuleType:
    """Import a kernel module from a file of its own in the cache.

    numba keys its on-disk cache on the source file, which a frozen app does
    not have: each family module gets a stable file named by the hash of its
    source and of the helpers' source.
    """
    digest = hashlib.sha256((helpers + "\0" + source).encode("utf-8")).hexdigest()[:16]
    short = qualname.rsplit(".", 1)[-1]
    src_file = cache / f"kernels_{short}_{digest}.py"
    if not src_file.exists():
        tmp = src_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(source, encoding="utf-8")
        os.replace(tmp, src_file)
    name = f"_mlbundle_jit_{short}_{digest}"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, src_file)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return module


class _LazyJit:
    """Compile each kernel on first use: a plan needs only a few of them.

    ``run_program`` runs as Python here (the same source the aot backend compiles),
    calling each kernel compiled; that costs microseconds per op, which the jit
    backend, a fallback, can spare, and keeps its first start to the plan's kernels.
    """

    def __init__(self, modules: dict[str, ModuleType], numba: ModuleType) -> None:
        self._modules = modules
        self._numba = numba

    def __getattr__(self, name: str) -> object:
        signature = _kernel_source.EXPORTS.get(name)
        if signature is None:
            raise AttributeError(name)
        module = self._modules[_kernel_source.OWNER[name].__name__]
        if hasattr(module, "KERNELS"):  # run_program: Python calling the compiled kernels
            for callee in module.KERNELS:
                setattr(module, callee, _OnFirstCall(self, callee))
            for helper in module.COMPILED_HELPERS:
                fn = getattr(module, helper)
                if not hasattr(fn, "py_func"):  # not yet a numba function
                    setattr(module, helper, self._numba.njit(cache=True, nogil=True)(fn))
            fn = getattr(module, name)
        else:
            fn = self._numba.njit(signature, cache=True, nogil=True)(getattr(module, name))
        setattr(self, name, fn)
        return fn


class _OnFirstCall:
    """A kernel for the jit ``run_program``: compiled when a plan first calls it."""

    def __init__(self, kernels: _LazyJit, name: str) -> None:
        self._kernels, self._name = kernels, name

    def __call__(self, *args: object) -> object:
        return getattr(self._kernels, self._name)(*args)
