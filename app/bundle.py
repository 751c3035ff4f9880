"""The bundle's resources: plan, model record, gate sets, read via importlib.resources.

In a frozen app they live in the ``mlbundle_payload`` package collected by
PyInstaller; ``bundle score`` and the tests point at a folder instead. Both
are the same layout, so the same code reads them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from app.plan import Plan, PlanError, load_plan

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

    def read_json(self, name: str) -> dict[str, Any]:
        try:
            return json.loads(self.root.joinpath(name).read_bytes())
        except FileNotFoundError as exc:
            raise PlanError(f"the bundle has no {name}") from exc
        except ValueError as exc:
            raise PlanError(f"the bundle's {name} is damaged: {exc}") from exc

    def read_bytes(self, name: str) -> bytes:
        node = self.root
        for part in name.split("/"):
            node = node.joinpath(part)
        return node.read_bytes()

    def record(self) -> dict[str, Any]:
        return self.read_json(RECORD_FILE)

    def scorer(self) -> Any:
        """A Scorer bound to the kernels this bundle was built with."""
        from app.backend import load_kernels
        from app.scorer import Scorer

        return Scorer(self.plan, load_kernels(str(self.info.get("backend", "aot"))))


def payload_root(folder: str | os.PathLike[str] | None = None) -> Traversable:
    """The payload: a folder if given (or MLBUNDLE_PAYLOAD is set), else the frozen package."""
    folder = folder or os.environ.get("MLBUNDLE_PAYLOAD")
    if folder:
        return Path(folder)
    return resources.files(PAYLOAD_PACKAGE)


def open_bundle(folder: str | os.PathLike[str] | None = None) -> Bundle:
    """Load bundle info and plan (not the record: only ``about`` needs it)."""
    root = payload_root(folder)
    try:
        info = json.loads(root.joinpath(BUNDLE_FILE).read_bytes())
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        raise PlanError(f"no bundle found at {root} ({BUNDLE_FILE} is missing)") from exc
    return Bundle(root=root, info=info, plan=load_plan(root))
