"""The naive baseline: what a bundled scikit-learn model usually looks like.

A plain script that ``joblib.load``s the fitted extractor and model shipped
next to it and scores one record, frozen with PyInstaller together with
scikit-learn, scipy, pandas and joblib. ``bench/startup.py`` builds it and
times it against mlbundle's compiled app, so the closing comparison is
measured rather than quoted. It deliberately does nothing clever: no lazy
imports beyond the obvious, no trimming of the bundle.

Usage: ``naive predict --json '{"island": "Biscoe", "bill_length_mm": 45.2, ...}'``.
Prints the same JSON shape as the mlbundle app (prediction + probabilities).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
CATEGORICAL = ["island", "sex"]
INPUTS = ["island", *NUMERIC, "sex"]  # the order the extractor was fitted on


def bundle_dir() -> Path:
    """Where the joblib files are: PyInstaller's bundle folder when frozen, else beside me."""
    return Path(getattr(sys, "_MEIPASS", Path(__file__).resolve().parent))


def _frame(record: dict[str, object]):  # -> pandas.DataFrame
    """One-row frame typed like the training frame (float64 measurements, object categories)."""
    import numpy as np
    import pandas as pd

    columns: dict[str, object] = {}
    for name in INPUTS:
        value = record.get(name)
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        if name in NUMERIC:
            columns[name] = np.array([np.nan if missing else float(value)], dtype=np.float64)
        else:
            columns[name] = np.array([np.nan if missing else str(value)], dtype=object)
    return pd.DataFrame(columns)


def main(argv: list[str] | None = None) -> int:
    """Parse ``predict --json``, score the record, print prediction and probabilities."""
    parser = argparse.ArgumentParser(prog="naive", description="Naive joblib-based scorer.")
    sub = parser.add_subparsers(dest="command", required=True)
    predict = sub.add_parser("predict", help="score one JSON record")
    predict.add_argument("--json", required=True, metavar="RECORD")
    args = parser.parse_args(argv)

    import joblib

    root = bundle_dir()
    extractor = joblib.load(root / "extractor.joblib")
    model = joblib.load(root / "model.joblib")
    record = json.loads(args.json)
    features = extractor.transform(_frame(record))
    proba = model.predict_proba(features)[0]
    prediction = model.classes_[int(proba.argmax())]
    result = {
        "prediction": str(prediction),
        "probabilities": {str(c): float(p) for c, p in zip(model.classes_, proba, strict=True)},
    }
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
