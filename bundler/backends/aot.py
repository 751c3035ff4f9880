"""Ahead-of-time compilation of ``mlbundle_runtime.kernels`` with numba.pycc.

The extension this produces links only libc/libm, so the frozen app carries
neither numba nor llvmlite. Results are cached per kernel source, numba and
Python version: a model-only rebuild does not recompile the kernels.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from platformdirs import user_cache_dir

from bundler.errors import ToolchainError
from mlbundle_runtime.backend import AOT_MODULE, kernel_source_hash


def require_toolchain() -> None:
    """pycc needs a C compiler and setuptools; say how to get them before a long build."""
    problems = []
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    if shutil.which(cc.split()[0]) is None:
        problems.append(
            f"no C compiler ({cc.split()[0]!r} not on PATH): install one, "
            "for example `apt-get install gcc` (Debian/Ubuntu) or Xcode's command line tools"
        )
    if not Path(sysconfig.get_paths()["include"], "Python.h").exists():
        problems.append("no Python headers (Python.h): install python3-dev or use a full CPython")
    if importlib.util.find_spec("setuptools") is None:  # found, not imported: it is slow
        problems.append("setuptools is missing: `pip install setuptools`")
    if problems:
        raise ToolchainError("the aot backend cannot compile kernels: " + "; ".join(problems))


def _numba_version() -> str:
    """numba's version from its distribution metadata: importing numba costs about 0.3 s,
    which a cache hit (``bundle score``) must not pay."""
    try:
        return importlib.metadata.version("numba")
    except importlib.metadata.PackageNotFoundError:
        raise ToolchainError("the aot backend needs numba: `pip install numba`") from None


def _cache_key() -> str:
    parts = [kernel_source_hash(), _numba_version(), sys.version, sysconfig.get_platform()]
    parts.append("stripped")
    parts.append(_DRIVER)  # how the kernels are compiled is part of what they are
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]


def cache_root() -> Path:
    """Where compiled kernels are kept between builds (override with MLBUNDLE_CACHE)."""
    return Path(os.environ.get("MLBUNDLE_CACHE") or user_cache_dir("mlbundle")) / "aot"


#: Runs in a fresh interpreter. The exported wrappers release the GIL around each
#: kernel call (numba's ``release_gil`` flag, which pycc leaves off), so the app can
#: score row blocks on several threads at once. ``run_program`` is compiled with the
#: kernels it calls built into it (as numba functions: pycc exports cannot call exports),
#: and every kernel with the shared helpers it calls (``mlbundle_runtime.kernels.HELPER_OWNER``).
_DRIVER = """
import sys
sys.path.insert(0, sys.argv[1])
import numba.pycc.compiler as pycc_compiler
from numba.pycc import CC
import mlbundle_runtime.kernels as kernels

class _NoGilFlags(pycc_compiler.Flags):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.release_gil = True

pycc_compiler.Flags = _NoGilFlags
cc = CC(sys.argv[2]); cc.output_dir = sys.argv[3]; cc.verbose = False
for name, sig in kernels.EXPORTS.items():
    cc.export(name, sig)(getattr(kernels, name))
# run_program calls the kernels and helpers: its module's names for them become numba functions
import numba
from mlbundle_runtime.kernels import program
for name in program.CALLEES:
    setattr(program, name, numba.njit(getattr(program, name)))
for name, owner in kernels.HELPER_OWNER.items():
    users = kernels.helper_users(name)
    helper = numba.njit(getattr(owner, name))
    for module in users:
        setattr(module, name, helper)
cc.compile()
"""


def _strip(path: Path) -> None:
    """Drop debug info and local symbols: smaller (about 730 KB -> 300 KB), and free of
    the build folder's random name, so two builds of the same kernels give the same bytes.

    The only place the extension is stripped: it is cached stripped and shipped as
    cached (PyInstaller's own ``strip`` would also strip numpy's patchelf-rewritten
    libraries, which then fail to load).
    """
    strip = shutil.which("strip")
    if strip is None:
        return
    proc = subprocess.run([strip, "--strip-unneeded", str(path)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ToolchainError(f"strip failed on the compiled kernels: {proc.stderr.strip()}")


def _cached(target_dir: Path) -> Path | None:
    found = sorted(target_dir.glob(f"{AOT_MODULE}*.so")) + sorted(
        target_dir.glob(f"{AOT_MODULE}*.pyd")
    )
    return found[0] if found else None


def cached_aot() -> Path | None:
    """The compiled kernels for this source, numba and Python, if already built; else None.

    Imports neither numba nor setuptools (the key reads numba's version from its metadata),
    so scoring with cached kernels starts about as fast as the frozen app.
    """
    return _cached(cache_root() / _cache_key())


def compile_aot() -> Path:
    """Return the path of the compiled kernels extension, compiling it if needed.

    A cache hit checks no toolchain and imports no numba: the published cache folder is
    complete (renamed into place), so it needs no lock either.
    """
    key = _cache_key()
    target_dir = cache_root() / key
    hit = _cached(target_dir)
    if hit is not None:
        return hit
    require_toolchain()
    from filelock import FileLock  # only a miss needs it (about 15 ms to import)

    target_dir.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target_dir) + ".lock"):
        hit = _cached(target_dir)  # another process may have compiled it meanwhile
        if hit is not None:
            return hit
        import mlbundle_runtime

        # the folder holding the ``mlbundle_runtime`` package these kernels come from
        app_root = str(Path(mlbundle_runtime.__file__).resolve().parents[1])

        with tempfile.TemporaryDirectory(prefix="mlbundle-aot-") as tmp:
            # A separate process: pycc's compiler state and warnings stay out of ours.
            # Reproducible output: no random temp path in the debug info, no build-id.
            env = dict(os.environ)
            env["CFLAGS"] = f"{env.get('CFLAGS', '')} -ffile-prefix-map={tmp}=.".strip()
            env["LDFLAGS"] = f"{env.get('LDFLAGS', '')} -Wl,--build-id=none".strip()
            proc = subprocess.run(
                [sys.executable, "-c", _DRIVER, app_root, AOT_MODULE, tmp],
                capture_output=True,
                text=True,
                cwd=tmp,
                env=env,
            )
            if proc.returncode != 0:
                raise ToolchainError(
                    "numba.pycc failed to compile the kernels:\n" + proc.stderr[-4000:]
                )
            built = [p for p in Path(tmp).iterdir() if p.name.startswith(AOT_MODULE)]
            if len(built) != 1:
                raise ToolchainError(f"numba.pycc produced {built!r}, expected one extension")
            staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=target_dir.parent))
            shutil.copy2(built[0], staging / built[0].name)
            _strip(staging / built[0].name)
            os.replace(staging, target_dir)
        return next(target_dir.iterdir())
