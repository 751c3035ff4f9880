"""Summarise a day's penguin measurements: how many of each species, and which rows the
model is unsure about, with the model's version and approval status."""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from collections.abc import Sequence

import mlbundle_runtime

#: A prediction whose top probability is under this is listed as uncertain.
UNCERTAIN_BELOW = 0.6


def read_columns(path: str, names: Sequence[str]) -> tuple[dict[str, list[object]], list[str]]:
    """The model's inputs as columns (numbers as floats, empty cells missing), and each
    row's ``id`` (or its row number) for the report."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    kinds = {i.name: i.kind for i in MODEL.inputs}
    columns: dict[str, list[object]] = {n: [] for n in names}
    for row in rows:
        for n in names:
            cell = (row.get(n) or "").strip()
            columns[n].append(
                None if cell in ("", "NA") else cell if kinds[n] == "categorical" else float(cell)
            )
    ids = [row.get("id") or str(k) for k, row in enumerate(rows, start=1)]
    return columns, ids


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fieldreport", description=__doc__)
    parser.add_argument("csv", help="a day's measurements (one row per penguin)")
    parser.add_argument("--uncertain-below", type=float, default=UNCERTAIN_BELOW)
    parser.add_argument(
        "--details", action="store_true", help="also list every row's species and probabilities"
    )
    args = parser.parse_args(argv)
    names = [i.name for i in MODEL.inputs]
    try:
        columns, ids = read_columns(args.csv, names)
        predictions = MODEL.predict_many(columns)
    except (OSError, ValueError, mlbundle_runtime.InputError) as exc:
        print(f"fieldreport: {exc}", file=sys.stderr)
        return 2
    model = MODEL.record["model"]
    status = MODEL.record["audit"]["status"]
    print(f"Field report for {args.csv}: {len(ids)} penguins")
    print(f"Model {model['algorithm']} {model['version']} ({status})")
    for species, n in sorted(Counter(map(str, predictions.labels)).items()):
        print(f"  {species}: {n}")
    unsure = [
        (i, str(label), float(max(p)))
        for i, label, p in zip(ids, predictions.labels, predictions.probabilities, strict=True)
        if max(p) < args.uncertain_below
    ]
    print(f"Uncertain (top probability under {args.uncertain_below:g}): {len(unsure)}")
    for i, label, p in unsure:
        print(f"  row {i}: {label} ({p:.2f})")
    if args.details:
        classes = ", ".join(map(str, predictions.classes))
        print(f"Details (species; probabilities of {classes}):")
        for i, label, p in zip(ids, predictions.labels, predictions.probabilities, strict=True):
            print(f"  {i}: {label}; {' '.join(repr(float(x)) for x in p)}")
    return 0


MODEL = mlbundle_runtime.load()
