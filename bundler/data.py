"""Version sync and data checks: the model, its extractor and its data must belong together.

A model trained with one extractor version and shipped with another scores
garbage without any error, so the spec names the extractor version the model
was trained with and the build refuses a mismatch. Data files named in the
spec are hashed against their recorded sha256 when a local copy is present,
and the training copy gives each input's training range for the record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from bundler.artifacts import sha256_file
from bundler.errors import ArtifactError, InputError, SpecError
from bundler.gate import shown
from bundler.spec import DataRef, Spec
from mlbundle_runtime.gate import read_table
from mlbundle_runtime.inputs import MISSING_TEXT, Where


@dataclass(frozen=True)
class DataCheck:
    """What the data stage established, for the record."""

    training: dict[str, Any] | None
    validation: dict[str, Any] | None
    ranges: dict[str, dict[str, Any]]  # input name -> {"min", "max"} or {"categories"}


def check_release(spec: Spec) -> None:
    """A release build needs every audit field, both data references and the package's
    maintainer; list everything that is missing at once."""
    missing = [f"audit.{name}" for name in spec.audit.missing()]
    if spec.app.maintainer is None:
        missing.append('app.maintainer ("Name <email>": the .deb\'s Maintainer field)')
    for role in ("training", "validation"):
        if getattr(spec.data, role) is None:
            missing.append(f"data.{role} (version, location, sha256)")
    if spec.extractor is not None and spec.model.extractor_version is None:
        missing.append("model.extractor_version")
    if missing:
        raise SpecError(
            f"{spec.path}: a release build (--release) needs every audit field; missing:\n  "
            + "\n  ".join(missing)
            + "\nFill them in, or build without --release (the bundle is then marked UNAPPROVED)."
        )


def check_versions(spec: Spec) -> None:
    """Refuse a model whose spec says it was trained with another extractor version."""
    wanted = spec.model.extractor_version
    if wanted is None or spec.extractor is None:
        return
    if wanted != spec.extractor.version:
        raise SpecError(
            f"{spec.path}: model.extractor_version: the model was trained with extractor "
            f"version {wanted!r}, but [extractor] is version {spec.extractor.version!r}; "
            "ship the extractor the model was trained with, or retrain the model"
        )


def _ref(role: str, ref: DataRef | None) -> dict[str, Any] | None:
    if ref is None:
        return None
    entry: dict[str, Any] = {
        "version": ref.version,
        "location": ref.location,
        "sha256": ref.sha256,
        "verified": False,
    }
    if ref.path is not None:
        actual = sha256_file(ref.path)
        if actual != ref.sha256:
            raise ArtifactError(
                f"{role} data {ref.path}: sha256 mismatch.\n  expected {ref.sha256}\n"
                f"  actual   {actual}\nThe data changed since this model version was recorded."
            )
        entry["verified"] = True
    return entry


def training_ranges(spec: Spec, inputs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per input, the range (numeric) or categories (text) seen in the local training data.

    Read as strictly as the gate files: a training file that lacks an input or holds
    text in a numeric column would give the record (and the app's out-of-range
    warnings) wrong ranges without anyone noticing.
    """
    ref = spec.data.training
    if ref is None or ref.path is None:
        return {}
    source = f"{shown(ref.path)} ([data.training] path)"
    names = [i["name"] for i in inputs]
    kinds = {i["name"]: i["kind"] for i in inputs}
    try:
        table = read_table(ref.path.read_bytes(), source, names)
    except OSError as exc:
        raise InputError(f"{source}: cannot be read ({exc.strerror})") from None
    lows = {n: math.inf for n in names}
    highs = {n: -math.inf for n in names}
    seen: dict[str, set[str]] = {n: set() for n in names}
    for chunk in table.chunks:
        where = Where(source, chunk.first_row, chunk.lines)
        for n, cells in zip(names, chunk.columns, strict=True):
            for r, cell in enumerate(cells):
                if kinds[n] == "text":  # documents have no range
                    continue
                text = cell.strip()
                if text in MISSING_TEXT:
                    continue
                if kinds[n] == "categorical":
                    seen[n].add(text)
                    continue
                try:
                    x = float(text)
                except ValueError:
                    raise InputError(
                        f"{where(r)}, column {n!r}: {cell!r} is not a number (the input is "
                        "numeric; leave the cell empty or write NA for a missing value)"
                    ) from None
                lows[n], highs[n] = min(lows[n], x), max(highs[n], x)
    out: dict[str, dict[str, Any]] = {}
    for n in names:
        if kinds[n] == "categorical":
            out[n] = {"categories": sorted(seen[n])}
        elif math.isfinite(lows[n]):
            out[n] = {"min": lows[n], "max": highs[n]}
    return out


def check_data(spec: Spec, inputs: list[dict[str, Any]]) -> DataCheck:
    """Stage entry: verify data hashes and read training ranges."""
    return DataCheck(
        training=_ref("training", spec.data.training),
        validation=_ref("validation", spec.data.validation),
        ranges=training_ranges(spec, inputs),
    )
