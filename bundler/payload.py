"""The bundle's payload: the files the frozen app reads with importlib.resources.

Every file is written deterministically (sorted JSON keys, fixed array
order), so two builds from the same inputs give identical payloads.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from bundler.compiler import CompiledPlan, write_plan_files
from bundler.gate import CONFIDENCE_NAME, E2E_NAME, GateReport
from bundler.passthrough import PassthroughModel
from bundler.record import REQUIREMENTS_FILE
from mlbundle_runtime.bundle import BUNDLE_FILE, GATE_FILE, PAYLOAD_PACKAGE, RECORD_FILE
from mlbundle_runtime.packs import UPDATES_FILE, key_id


def updates_info(raw_key: bytes, source: str | None) -> dict[str, Any]:
    """``updates.json``: the release key the app trusts packs from (raw, hex) and where
    ``models check`` looks for them."""
    return {"public_key": raw_key.hex(), "key_id": key_id(raw_key), "source": source}


def dump_json(path: Path, data: Any) -> None:
    """Stable JSON: sorted keys, no NaN, a final newline."""
    path.write_text(
        json.dumps(data, indent=1, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8"
    )


def write_scoring_files(plan: CompiledPlan | PassthroughModel, folder: Path) -> None:
    """The plan's two files; for a passthrough model, its schema and joblib files."""
    if isinstance(plan, PassthroughModel):
        plan.write_files(folder)
    else:
        write_plan_files(plan, folder)


def plan_digest(plan: CompiledPlan | PassthroughModel, scratch: Path) -> str:
    """sha256 over the plan's two files as written, recorded as the scoring code's identity
    (for a passthrough model: over its schema and joblib files)."""
    scratch.mkdir(parents=True, exist_ok=True)
    write_scoring_files(plan, scratch)
    digest = hashlib.sha256()
    for name in sorted(p.name for p in scratch.iterdir()):
        digest.update(name.encode() + b"\0" + (scratch / name).read_bytes())
    return digest.hexdigest()


def write_payload(
    root: Path,
    *,
    info: dict[str, Any],
    plan: CompiledPlan | PassthroughModel,
    record: dict[str, Any],
    gate: GateReport,
    requirements: str,
    updates: dict[str, Any] | None = None,
) -> Path:
    """Write the ``mlbundle_payload`` package under ``root``; return its folder.

    ``bundle.json`` is written last and lists the sha256 of every other payload
    file: the app checks each file against it as it reads it, so a damaged or
    edited plan is refused instead of scored. ``updates``: the release key and source of
    an app that accepts model packs (``updates_info``), written as ``updates.json`` and so
    hash-checked like the plan: a swapped key is a damaged bundle.
    """
    folder = root / PAYLOAD_PACKAGE
    (folder / "gate").mkdir(parents=True)
    (folder / "__init__.py").write_text('"""Data of one mlbundle application."""\n')
    write_scoring_files(plan, folder)
    dump_json(folder / RECORD_FILE, record)
    dump_json(folder / GATE_FILE, gate.config.to_json())
    (folder / REQUIREMENTS_FILE).write_text(requirements, encoding="utf-8")
    shutil.copyfile(gate.e2e_path, folder / E2E_NAME)
    shutil.copyfile(gate.confidence_path, folder / CONFIDENCE_NAME)
    if updates is not None:
        dump_json(folder / UPDATES_FILE, updates)
    hashes = {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "__init__.py"
    }
    dump_json(folder / BUNDLE_FILE, {**info, "files": hashes})
    return folder
