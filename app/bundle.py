"""The bundle's resources: plan, model record, gate sets, read via importlib.resources.

In a frozen app they live in the ``mlbundle_payload`` package collected by
PyInstaller; ``bundle score`` and the tests point at a folder instead. Both
are the same layout, so the same code reads them.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from app.plan import ARRAYS_FILE, PLAN_FILE, Plan, PlanError, plan_from_bytes

PAYLOAD_PACKAGE = "mlbundle_payload"
BUNDLE_FILE = "bundle.json"
RECORD_FILE = "record.json"
GATE_FILE = "gate.json"


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

    def scorer(self) -> Any:
        """A Scorer bound to the kernels this bundle was built with (or, for a passthrough
        bundle, to the model itself: see app.passthrough)."""
        if self.info.get("backend") == "passthrough":
            from app.passthrough import load_scorer

            return load_scorer(self)
        from app.backend import load_kernels
        from app.scorer import Scorer

        return Scorer(self.plan, load_kernels(str(self.info.get("backend", "aot"))))


def payload_root(folder: str | os.PathLike[str] | None = None) -> Traversable:
    """The payload: a folder if given (or MLBUNDLE_PAYLOAD is set), else the frozen package."""
    folder = folder or os.environ.get("MLBUNDLE_PAYLOAD")
    if folder:
        return Path(folder)
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
        from app.passthrough import SCHEMA_FILE, plan_from_schema

        plan, _ = plan_from_schema(_read_checked(root, info, SCHEMA_FILE))
        return Bundle(root=root, info=info, plan=plan)
    plan = plan_from_bytes(
        _read_checked(root, info, PLAN_FILE), _read_checked(root, info, ARRAYS_FILE), "bundle"
    )
    return Bundle(root=root, info=info, plan=plan)
