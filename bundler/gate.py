"""Stage 4: the release gate, run in the build before anything is frozen.

The checks themselves live in ``mlbundle_runtime.gate`` so that the frozen binary's
``selftest`` runs exactly the same code on exactly the same files.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bundler.errors import GateError, InputError, SpecError
from mlbundle_runtime.gate import (
    GateConfig,
    GateResult,
    GateTable,
    confidence_target,
    read_table,
    run_gate,
)
from mlbundle_runtime.inputs import InputError as TargetError
from mlbundle_runtime.scorer import Scorer, output_columns

#: Where the gate files go inside the bundle's payload.
E2E_NAME = "gate/e2e.csv"
CONFIDENCE_NAME = "gate/confidence.csv"


@dataclass(frozen=True)
class GateReport:
    """The gate's verdict plus the configuration that produced it (shipped as gate.json)."""

    config: GateConfig
    result: GateResult
    e2e_path: Path
    confidence_path: Path

    def to_json(self) -> dict[str, Any]:
        return self.result.to_json() | {"tolerance": self.config.tolerance}


@dataclass(frozen=True)
class GateSets:
    """Both gate files, read and checked once: parity and the gate score these tables."""

    e2e: GateTable
    confidence: GateTable


def shown(path: Path) -> str:
    """A path as the user can find it: relative to the working folder when inside it."""
    try:
        return os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)
    except ValueError:  # another drive
        return str(path)


def read_gate_sets(spec: Any, scorer: Scorer) -> GateSets:
    """Read the spec's gate files strictly, naming the user's file and spec key in errors
    (not the bundle's copy of it, which is not a file the user can open). A malformed
    file raises the runtime's InputError; ``bundler.build.check_model`` maps it."""
    inputs = scorer.plan.input_names
    tables = []
    for key, path in (
        ("gate.e2e", spec.gate.e2e.path),
        ("gate.confidence", spec.gate.confidence.path),
    ):
        source = f"{shown(path)} ([{key}] path)"
        try:
            tables.append(read_table(path.read_bytes(), source, inputs))
        except OSError as exc:
            raise InputError(f"{source}: cannot be read ({exc.strerror})") from None
    return GateSets(*tables)


def gate_config(spec: Any, scorer: Scorer) -> GateConfig:
    """The spec's gate, with file names as they will be inside the bundle, after checking
    that ``[gate.e2e] compare`` names outputs this model has."""
    e2e, confidence = spec.gate.e2e, spec.gate.confidence
    outputs = output_columns(scorer.plan.output)
    for name in e2e.compare or ():
        if name not in outputs:
            close = difflib.get_close_matches(name, outputs, 1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise SpecError(
                f"{spec.path}: gate.e2e.compare: {name!r} is not an output of this model; "
                f"{hint}valid: {', '.join(outputs)}"
            )
    targets = scorer.plan.output.outputs
    if targets and spec.outputs.uncertain_below is not None:
        raise SpecError(
            f"{spec.path}: outputs.uncertain_below: the model predicts {len(targets)} targets; "
            "an uncertainty threshold applies to a single output's probabilities (remove it)"
        )
    try:
        confidence_target(scorer.plan.output, confidence.output)
    except TargetError as exc:
        raise SpecError(f"{spec.path}: gate.confidence: {exc}") from None
    return GateConfig(
        e2e_file=E2E_NAME,
        tolerance=e2e.tolerance,
        confidence_file=CONFIDENCE_NAME,
        target=confidence.target,
        metric=confidence.metric,
        low=float(confidence.range[0]),
        high=float(confidence.range[1]),
        average=confidence.average,
        pos_label=confidence.pos_label,
        compare=None if e2e.compare is None else tuple(e2e.compare),
        output=confidence.output,
    )


def run_gate_stage(spec: Any, scorer: Scorer, sets: GateSets | None = None) -> GateReport:
    """Run both checks; stop the build with the failing rows or metric value."""
    config = gate_config(spec, scorer)
    sets = sets if sets is not None else read_gate_sets(spec, scorer)
    result = run_gate(scorer, config, sets.e2e, sets.confidence)
    report = GateReport(config, result, spec.gate.e2e.path, spec.gate.confidence.path)
    if not result.passed:
        lines = "\n  ".join(result.summary())
        raise GateError(
            f"the release gate failed ({shown(spec.gate.e2e.path)}, "
            f"{shown(spec.gate.confidence.path)}):\n  {lines}"
        )
    return report
