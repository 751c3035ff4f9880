"""Build-time side of the scoring backends (see ``app.backend`` for the run-time side)."""

from bundler.backends.aot import compile_aot, require_toolchain

__all__ = ["compile_aot", "require_toolchain"]
