"""The protocol every scoring backend follows, and the data-only answers it gives.

A backend answers four questions, and nothing outside ``bundler.backends`` asks which
backend it is: can this machine build with it (``check_toolchain``), what does it compile
(``compile``), which kernels score the build's own checks (``kernels``), and what goes
into a frozen bundle (``freeze_files``). The answers are data, as PyInstaller's hooks
answer with lists, so the core stays free of special cases and a replacement for
numba.pycc touches only this folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

#: Never shipped, whatever the backend or the app's imports: the build side.
#: ``freeze`` re-reads the finished archives and refuses a bundle that has them.
FORBIDDEN = ("sklearn", "scipy", "joblib")
#: Also forbidden in aot bundles: the kernels are already machine code.
AOT_FORBIDDEN = (*FORBIDDEN, "numba", "llvmlite")
#: Passthrough bundles ship the model with scikit-learn, scipy and joblib, and no kernels.
PASSTHROUGH_FORBIDDEN = ("numba", "llvmlite")
#: Third-party trims a passthrough bundle keeps: scikit-learn and joblib import them
#: when they load (joblib's loky backend imports cloudpickle at module level).
PASSTHROUGH_KEEP = ("threadpoolctl", "cloudpickle")
#: The runtime of passthrough bundles; left out of aot and jit bundles with what it imports.
PASSTHROUGH_MODULE = "mlbundle_runtime.passthrough"
#: The built-in application's window, and the toolkit it needs (Tk: Tcl/Tk's libraries and
#: scripts, about 10 MB in a onedir, 4 MB in a onefile). Every bundle's self-test hook
#: imports the CLI, which opens the window, so a release engineer's own application would
#: carry Tk it never shows: the runtime's imports of ``WINDOW_TOOLKIT`` are cut from those
#: bundles (generated ``excludedimports`` hooks) unless their code imports one of
#: ``WINDOW_IMPORTERS``. Their own imports of tkinter are not touched.
WINDOW_MODULE = "mlbundle_runtime.window"
WINDOW_IMPORTERS = (WINDOW_MODULE, "mlbundle_runtime.cli")
WINDOW_TOOLKIT = ("tkinter", "_tkinter")

#: Standard-library modules trimmed from aot bundles. Each is reachable from
#: numpy's graph only through a lazy import on a path the runtime never takes,
#: and each drags in something large (see docs/freezing.md for the measurements).
AOT_STDLIB_EXCLUDES = (
    # typing_extensions imports asyncio.coroutines inside a function; asyncio
    # pulls ssl (+ libssl/libcrypto), concurrent.futures, multiprocessing, socket
    "asyncio",
    "ssl",
    "_ssl",
    "concurrent",
    "multiprocessing",
    # OpenSSL-backed hashes (libcrypto, ~4.7 MB); hashlib falls back to its
    # built-in sha256/sha512/blake2 modules, which are shipped
    "_hashlib",
    # numpy.testing / np.info helpers
    "unittest",
    "doctest",
    "pydoc",
    "pdb",
    "numpy.testing",
    "numpy.f2py",
    "numpy._pyinstaller",
)


@dataclass(frozen=True)
class FreezeFiles:
    """What a backend adds to a frozen bundle, as PyInstaller's spec takes it.

    ``trims`` are excluded unless the app itself imports them; ``forbidden`` are excluded
    and refused if found in the finished archive; ``never`` are excluded whatever the app
    imports; ``collected`` must be found in the finished archive.
    """

    binaries: tuple[tuple[str, str], ...] = ()
    datas: tuple[tuple[str, str], ...] = ()
    hiddenimports: tuple[str, ...] = ()
    trims: tuple[str, ...] = ()
    forbidden: tuple[str, ...] = ()
    never: tuple[str, ...] = ()
    collected: tuple[str, ...] = ()


@runtime_checkable
class Backend(Protocol):
    """One way to turn the runtime's kernels (or the model itself) into what a bundle runs."""

    #: The spec's ``[build] backend`` value and the CLI's ``--backend`` choice.
    name: str
    #: The name recorded in the bundle (``bundle.json``), which ``mlbundle_runtime.backend`` loads.
    runtime: str
    #: False when the model ships as itself (no plan, no kernels: passthrough).
    compiles_plan: bool
    #: Modules the finished bundle must not contain.
    forbidden: tuple[str, ...]

    def check_toolchain(self) -> None:
        """Raise ToolchainError, saying what to install, before a long build starts."""
        ...

    def compile(self) -> Path | None:
        """Compile the kernels (cached); the file the bundle ships, or None."""
        ...

    def kernels(self, compiled: Path | None) -> object | None:
        """The kernels the build scores its own checks with, or None without a plan."""
        ...

    def check_compiled(self, compiled: Path | None) -> None:
        """Raise FreezeError unless ``compiled`` is what this backend's bundle needs."""
        ...

    def freeze_files(
        self,
        *,
        compiled: Path | None,
        app_root: Path,
        model_imports: tuple[str, ...],
        third_party: tuple[str, ...],
    ) -> FreezeFiles:
        """The bundle's files and import rules; ``third_party``: the common trims."""
        ...
