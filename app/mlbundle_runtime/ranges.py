"""Out-of-range warnings: inputs unlike anything the model saw in training.

A value outside its training range, or a category the model never saw, still
scores (as scikit-learn scores it), but the person reading the answer should
know that the model is guessing outside its experience. The ranges come from
the model record (``inputs[].training_range``, read from the training data at
build time); the check runs on the workspace's input columns, so every way of
scoring (records, arrays, CSV and JSON Lines files) warns alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlbundle_runtime.inputs import UNKNOWN_CODE

#: Up to this many rows, rows are checked in Python (cheaper than numpy set-up).
_FEW_ROWS = 4

Warnings = tuple[str, ...]


@dataclass(frozen=True)
class _Numeric:
    column: int
    name: str
    low: float
    high: float
    unit: str

    def message(self, x: float) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return (
            f"{self.name} = {_number(x)}{unit} is outside the training range "
            f"{_number(self.low)} to {_number(self.high)}{unit}"
        )


@dataclass(frozen=True)
class _Category:
    column: int
    name: str
    known: str

    def message(self, x: float) -> str:
        return f"{self.name}: a category the model never saw in training (known: {self.known})"


class RangeCheck:
    """The training ranges of one model's inputs, ready to check many rows."""

    def __init__(self, checks: Sequence[_Numeric | _Category]) -> None:
        """Use ``from_record``."""
        self._numeric = tuple(c for c in checks if isinstance(c, _Numeric))
        self._categories = tuple(c for c in checks if isinstance(c, _Category))
        self._checks = tuple(sorted(checks, key=lambda c: c.column))
        self.empty = not checks

    @classmethod
    def from_record(
        cls,
        names: Sequence[str],
        kinds: Sequence[str],
        categories: Sequence[Sequence[str]],
        record_inputs: Sequence[Mapping[str, Any]],
    ) -> RangeCheck:
        """The checks for inputs ``names`` (in workspace column order) from the record's
        ``inputs``: a numeric input with a ``{"min", "max"}`` training range, and every
        categorical input (its known categories are the model's own)."""
        described = {str(i.get("name")): i for i in record_inputs if isinstance(i, Mapping)}
        checks: list[_Numeric | _Category] = []
        for j, (name, kind) in enumerate(zip(names, kinds, strict=True)):
            meta = described.get(name, {})
            if kind == "categorical":
                checks.append(_Category(j, name, ", ".join(map(str, categories[j]))))
                continue
            span = meta.get("training_range")
            if not isinstance(span, Mapping):
                continue
            low, high = span.get("min"), span.get("max")
            if _finite(low) and _finite(high):
                checks.append(
                    _Numeric(j, name, float(low), float(high), str(meta.get("unit") or ""))
                )
        return cls(checks)

    def rows(self, X: np.ndarray) -> list[Warnings] | None:
        """Per row of ``X`` (workspace input columns), the warnings; None when no row has
        any, the common case, so that callers can skip the per-row work."""
        n = X.shape[0]
        if self.empty or n == 0:
            return None
        if n <= _FEW_ROWS:
            out = [self._row(row) for row in X[:, : self._width()].tolist()]
            return out if any(out) else None
        flagged = np.zeros(n, dtype=bool)
        masks = []
        for c in self._checks:
            col = X[:, c.column]
            if isinstance(c, _Numeric):
                mask = (col < c.low) | (col > c.high)  # NaN (missing) compares False
            else:
                mask = col == UNKNOWN_CODE
            masks.append(mask)
            flagged |= mask
        if not flagged.any():
            return None
        out: list[Warnings] = [()] * n
        for r in np.flatnonzero(flagged).tolist():
            out[r] = tuple(
                c.message(float(X[r, c.column]))
                for c, mask in zip(self._checks, masks, strict=True)
                if mask[r]
            )
        return out

    def _width(self) -> int:
        return max(c.column for c in self._checks) + 1

    def _row(self, row: Sequence[float]) -> Warnings:
        found = []
        for c in self._checks:
            x = row[c.column]
            if isinstance(c, _Numeric):
                if x < c.low or x > c.high:
                    found.append(c.message(x))
            elif x == UNKNOWN_CODE:
                found.append(c.message(x))
        return tuple(found)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _number(x: float) -> str:
    """A value as a person writes it: 5200 not 5200.0, 45.2 not 45.200000000000003."""
    return f"{x:.6g}" if abs(x) < 1e15 else repr(x)
