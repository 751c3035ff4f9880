"""The three backends mlbundle ships: ``aot`` (numba.pycc), ``jit`` (numba at run time) and
``passthrough`` (the model itself, with scikit-learn).

Each import of numba, setuptools or the compile driver happens inside a method, so that
choosing a backend (spec validation, the CLI) costs nothing and scoring with cached aot
kernels imports neither numba nor setuptools.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bundler.backends.base import (
    AOT_FORBIDDEN,
    AOT_STDLIB_EXCLUDES,
    FORBIDDEN,
    PASSTHROUGH_FORBIDDEN,
    PASSTHROUGH_KEEP,
    PASSTHROUGH_MODULE,
    FreezeFiles,
)


@dataclass(frozen=True)
class AotBackend:
    """Kernels compiled at build time into one extension module (libc/libm only)."""

    name: str = "aot"
    runtime: str = "aot"
    compiles_plan: bool = True
    forbidden: tuple[str, ...] = AOT_FORBIDDEN

    def check_toolchain(self) -> None:
        """A C compiler, Python's headers and setuptools, checked before a long build."""
        from bundler.backends.aot import require_toolchain

        require_toolchain()

    def compile(self) -> Path | None:
        """The cached extension (no numba imported), compiled first on a cache miss."""
        from bundler.backends.aot import compile_aot

        return compile_aot()

    def kernels(self, compiled: Path | None) -> object | None:
        """The extension the bundle ships, loaded from the cache: the build scores with it."""
        from mlbundle_runtime.backend import load_kernels

        return load_kernels(self.runtime, compiled)

    def check_compiled(self, compiled: Path | None) -> None:
        """The app imports the extension by name: it must exist and carry that name."""
        from bundler.errors import FreezeError
        from mlbundle_runtime.backend import AOT_MODULE

        if compiled is None or not Path(compiled).is_file():
            raise FreezeError(
                f"the aot backend needs the compiled kernels extension; got {compiled!r}"
            )
        if not Path(compiled).name.startswith(AOT_MODULE + "."):
            raise FreezeError(
                f"{compiled} is not named {AOT_MODULE}.<abi>.so: the app imports it by name"
            )

    def freeze_files(
        self,
        *,
        compiled: Path | None,
        app_root: Path,
        model_imports: tuple[str, ...],
        third_party: tuple[str, ...],
    ) -> FreezeFiles:
        """The extension at the bundle's top level; numba, llvmlite and big stdlib trimmed."""
        return FreezeFiles(
            binaries=((str(compiled), "."),) if compiled is not None else (),
            trims=(*third_party, *AOT_STDLIB_EXCLUDES),
            forbidden=self.forbidden,
            never=(PASSTHROUGH_MODULE,),
        )


class _NothingCompiled:
    """For the backends that compile nothing at build time: no toolchain (numba and
    scikit-learn are the build tool's own dependencies), no file to check."""

    def check_toolchain(self) -> None:
        """Nothing to check."""

    def compile(self) -> Path | None:
        """Nothing is compiled at build time."""
        return None

    def check_compiled(self, compiled: Path | None) -> None:
        """Nothing compiled to check."""


@dataclass(frozen=True)
class JitBackend(_NothingCompiled):
    """numba compiles the kernels' source on the user's machine, cached after first use."""

    name: str = "jit"
    runtime: str = "jit"
    compiles_plan: bool = True
    forbidden: tuple[str, ...] = FORBIDDEN

    def kernels(self, compiled: Path | None) -> object | None:
        """numba's kernels, as the frozen app compiles them."""
        from mlbundle_runtime.backend import load_kernels

        return load_kernels(self.runtime)

    def freeze_files(
        self,
        *,
        compiled: Path | None,
        app_root: Path,
        model_imports: tuple[str, ...],
        third_party: tuple[str, ...],
    ) -> FreezeFiles:
        """numba and the kernels' source files.

        ``mlbundle_runtime.backend`` reads the kernels' source through the frozen loader's
        ``get_source()``, which looks for each file at
        ``<bundle>/mlbundle_runtime/kernels/<module>.py``.
        """
        kernel_files = sorted((app_root / "mlbundle_runtime" / "kernels").glob("*.py"))
        return FreezeFiles(
            datas=tuple((str(path), "mlbundle_runtime/kernels") for path in kernel_files),
            hiddenimports=(
                "numba",
                "llvmlite",
                "mlbundle_runtime.kernels",
                "mlbundle_runtime.backend",
            ),
            trims=third_party,
            forbidden=self.forbidden,
            never=(PASSTHROUGH_MODULE,),
        )


@dataclass(frozen=True)
class PassthroughBackend(_NothingCompiled):
    """No plan and no kernels: the model's joblib files ship, with scikit-learn."""

    name: str = "passthrough"
    runtime: str = "passthrough"
    compiles_plan: bool = False
    forbidden: tuple[str, ...] = PASSTHROUGH_FORBIDDEN

    def kernels(self, compiled: Path | None) -> object | None:
        """No kernels: the model scores itself."""
        return None

    def freeze_files(
        self,
        *,
        compiled: Path | None,
        app_root: Path,
        model_imports: tuple[str, ...],
        third_party: tuple[str, ...],
    ) -> FreezeFiles:
        """What the pickles name, the runtime that loads them and, when fitted on a
        DataFrame, pandas; each module the pickles name must end up in the bundle."""
        needed = {m.split(".")[0] for m in model_imports} | set(PASSTHROUGH_KEEP)
        return FreezeFiles(
            hiddenimports=(PASSTHROUGH_MODULE, *model_imports),
            trims=tuple(m for m in third_party if m not in needed),
            forbidden=self.forbidden,
            collected=model_imports,
        )
