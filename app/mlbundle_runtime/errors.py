"""The runtime's bundle error, in a module with no imports of its own.

``BundleError`` lives here, not in ``mlbundle_runtime.plan``, so that the plan reader, the
bundle reader and the public API can all raise it without importing each other.
(``InputError``, the other public error, is ``mlbundle_runtime.inputs.InputError``.)
"""

from __future__ import annotations

__all__ = ["BundleError"]


class BundleError(ValueError):
    """The bundle is missing, damaged or modified after the build: reinstall, don't retry.

    ``mlbundle_runtime.plan.PlanError`` (a malformed plan, a file whose hash no longer matches) is a
    subclass, so one ``except`` covers every way a model can be unusable.
    """
