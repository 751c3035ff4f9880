"""The bundle's resources: plan, model record, gate sets, read via importlib.resources.

In a frozen app they live in the ``mlbundle_payload`` package collected by
PyInstaller; ``bundle score`` and the tests point at a folder instead. Both
are the same layout, so the same code reads them.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import json
import os
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from mlbundle_runtime.errors import BundleError
from mlbundle_runtime.plan import ARRAYS_FILE, PLAN_FILE, Plan, PlanError, plan_from_bytes

PAYLOAD_PACKAGE = "mlbundle_payload"
#: Import name of the ``aot`` backend's extension (``backend.AOT_MODULE``, repeated here
#: so that reading a bundle does not import the backend module).
AOT_MODULE = "_mlbundle_kernels"
BUNDLE_FILE = "bundle.json"
RECORD_FILE = "record.json"
GATE_FILE = "gate.json"
#: The payload file of an app that accepts model packs (``packs.UPDATES_FILE``).
UPDATES_FILE = "updates.json"


@dataclass(frozen=True)
class Bundle:
    """What one built application carries besides code."""

    root: Traversable
    info: dict[str, Any]  # name, version, title, backend, ...
    plan: Plan

    @property
    def name(self) -> str:
        return str(self.info["name"])

    @property
    def approved(self) -> bool:
        return self.info.get("approval") == "APPROVED"

    def read_json(self, name: str) -> dict[str, Any]:
        data = self.read_bytes(name)
        try:
            return json.loads(data)
        except ValueError as exc:
            raise PlanError(f"the bundle's {name} is damaged: {exc}") from exc

    def read_bytes(self, name: str) -> bytes:
        """A payload file's bytes, refused unless they match the hash recorded at build time."""
        return _read_checked(self.root, self.info, name)

    def record(self) -> dict[str, Any]:
        return self.read_json(RECORD_FILE)

    @property
    def backend(self) -> str:
        return str(self.info.get("backend", "aot"))

    def kernels_file(self) -> Path | None:
        """A compiled ``aot`` extension shipped beside the payload in a folder (what
        ``bundle prepare`` copies there), or None: a frozen app imports it by name."""
        if not isinstance(self.root, Path):
            return None
        for folder in (self.root, self.root / "kernels"):
            for suffix in importlib.machinery.EXTENSION_SUFFIXES:
                found = sorted(folder.glob(f"{AOT_MODULE}*{suffix}"))
                if found:
                    return found[0]
        return None

    def scorer(self) -> Any:
        """A Scorer bound to the kernels this bundle was built with (or, for a passthrough
        bundle, to the model itself: see mlbundle_runtime.passthrough).

        Kernels that cannot be loaded raise ``BundleError``: the bundle is unusable as
        it stands, whatever the caller does next."""
        if self.backend == "passthrough":
            from mlbundle_runtime.passthrough import load_scorer

            return load_scorer(self)
        from mlbundle_runtime.scorer import Scorer

        return Scorer(self.plan, self.kernels())

    def kernels(self) -> Any:
        """The compiled kernels this bundle was built with: what its own plan runs on, and
        what an installed model pack's plan is scored with (a pack carries no code)."""
        from mlbundle_runtime.backend import BackendError, load_kernels

        path = self.kernels_file() if self.backend == "aot" else None
        try:
            return load_kernels(self.backend, path)
        except (BackendError, ImportError, OSError) as exc:
            where = f" (from {path})" if path else ""
            raise BundleError(
                f"the {self.backend} scoring kernels of this bundle cannot be loaded{where}: {exc}"
            ) from exc

    def updates(self) -> dict[str, Any] | None:
        """The app's ``updates.json`` (its release key and where packs come from), hash-checked
        like every payload file; None for an app built without ``[updates]``."""
        if UPDATES_FILE not in self.info.get("files", {}):
            return None
        return self.read_json(UPDATES_FILE)


def payload_root(folder: str | os.PathLike[str] | None = None) -> Traversable:
    """The payload: a folder if given (or MLBUNDLE_PAYLOAD is set), else the frozen package."""
    folder = folder or os.environ.get("MLBUNDLE_PAYLOAD")
    if folder:
        path = Path(folder)
        # the folder a build stages, which holds the package rather than being it
        if not (path / BUNDLE_FILE).is_file() and (path / PAYLOAD_PACKAGE / BUNDLE_FILE).is_file():
            return path / PAYLOAD_PACKAGE
        return path
    return resources.files(PAYLOAD_PACKAGE)


def _read_checked(root: Traversable, info: dict[str, Any], name: str) -> bytes:
    expected = info.get("files", {}).get(name)
    if expected is None:
        raise PlanError(f"{name} is not a file of this bundle")
    node = root
    for part in name.split("/"):
        node = node.joinpath(part)
    try:
        data = node.read_bytes()
    except OSError as exc:
        raise PlanError(f"the bundle's {name} cannot be read ({exc})") from exc
    if hashlib.sha256(data).hexdigest() != expected:
        raise PlanError(
            f"the bundle's {name} was modified after the build (its sha256 no longer matches); "
            "refusing to use it. Reinstall the application."
        )
    return data


def open_bundle(folder: str | os.PathLike[str] | None = None) -> Bundle:
    """Load bundle info and the hash-checked plan (the record is read only when asked for)."""
    root = payload_root(folder)
    try:
        info = json.loads(root.joinpath(BUNDLE_FILE).read_bytes())
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        raise PlanError(f"no bundle found at {root} ({BUNDLE_FILE} is missing)") from exc
    except ValueError as exc:
        raise PlanError(f"the bundle's {BUNDLE_FILE} is damaged: {exc}") from exc
    if info.get("backend") == "passthrough":  # no compiled plan: the model's own schema
        from mlbundle_runtime.passthrough import SCHEMA_FILE, plan_from_schema

        plan, _ = plan_from_schema(_read_checked(root, info, SCHEMA_FILE))
        return Bundle(root=root, info=info, plan=plan)
    plan = plan_from_bytes(
        _read_checked(root, info, PLAN_FILE), _read_checked(root, info, ARRAYS_FILE), "bundle"
    )
    return Bundle(root=root, info=info, plan=plan)
