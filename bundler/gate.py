"""Stage 4: the release gate, run in the build before anything is frozen.

The checks themselves live in ``app.gate`` so that the frozen binary's
``selftest`` runs exactly the same code on exactly the same files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.gate import GateConfig, GateResult, run_gate
from app.scorer import Scorer
from bundler.errors import GateError, InputError

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


def gate_config(spec: Any) -> GateConfig:
    """The spec's gate, with file names as they will be inside the bundle."""
    conf = spec.gate.confidence
    return GateConfig(
        e2e_file=E2E_NAME,
        tolerance=spec.gate.e2e.tolerance,
        confidence_file=CONFIDENCE_NAME,
        target=conf.target,
        metric=conf.metric,
        low=float(conf.range[0]),
        high=float(conf.range[1]),
        average=conf.average,
        pos_label=conf.pos_label,
    )


def run_gate_stage(spec: Any, scorer: Scorer) -> GateReport:
    """Run both checks; stop the build with the failing rows or metric value."""
    config = gate_config(spec)
    e2e, confidence = spec.gate.e2e.path, spec.gate.confidence.path
    try:
        with (
            open(e2e, newline="", encoding="utf-8") as fe,
            open(confidence, newline="", encoding="utf-8") as fc,
        ):
            result = run_gate(scorer, config, fe, fc)
    except ValueError as exc:  # InputError is a ValueError: bad rows in the gate files
        raise InputError(f"gate data: {exc}") from None
    report = GateReport(config, result, Path(e2e), Path(confidence))
    if not result.passed:
        lines = "\n  ".join(result.summary())
        raise GateError(f"the release gate failed ({e2e}, {confidence}):\n  {lines}")
    return report
