"""Train the building-energy example: one regressor, two targets (a multi-output model).

Run as ``python resources/energy/train.py``. The buildings are generated here from a
seeded formula plus noise (no download), so two runs write byte-identical files and
the sha256 values pinned in ``specs/energy.toml`` stay valid until the code or the
library versions change.

A ``RandomForestRegressor`` fitted on a 2-D ``y`` predicts both targets at once, a row
of ``predict``'s (n, 2) result per building; the app writes them as the columns
``heating_kwh_m2`` and ``cooling_kwh_m2`` (the spec's ``[outputs] targets``).

Outputs (paths relative to this folder):

* ``data/training.csv``: the training buildings and both targets;
* ``artifacts/model.joblib``: the forest (fitted on a DataFrame, so its inputs are named;
  some ``glazing_ratio`` values are missing, so its splits learned where NaN goes);
* ``gate/e2e.csv``: buildings plus scikit-learn's predicted ``heating_kwh_m2`` and
  ``cooling_kwh_m2`` (``repr()`` floats), with hand-made edge rows (a missing input,
  sizes far outside training, zeros);
* ``gate/confidence.csv``: held-out buildings with their true targets, for the r2 gate
  (on ``heating_kwh_m2``).
"""

from __future__ import annotations

import csv
import hashlib
import math
from collections.abc import Sequence
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestRegressor
from sklearn.metrics import r2_score

HERE = Path(__file__).resolve().parent
SEED = 0
N_TRAIN, N_CONFIDENCE, N_E2E = 500, 200, 50
INPUTS = ["floor_area_m2", "wall_u_value", "glazing_ratio", "storeys"]
TARGETS = ["heating_kwh_m2", "cooling_kwh_m2"]

#: Hand-made end-to-end rows (empty: missing): the paths a random sample misses.
EDGE_ROWS = [
    ["120", "0.35", "", "2"],
    ["15", "0.1", "0.05", "1"],
    ["5000", "3.5", "0.95", "40"],
    ["0", "0", "0", "0"],
    ["80.5", "1.25", "0.3", "1"],
]


def make_buildings(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """``n`` buildings: size, wall insulation (U value, W/m2K), share of glazing and
    storeys; heating grows with the U value and the surface per floor area, cooling with
    the glazing; both with noise."""
    area = np.round(rng.uniform(40, 400, n), 1)
    u_value = np.round(rng.uniform(0.15, 2.0, n), 2)
    glazing = np.round(rng.uniform(0.1, 0.6, n), 2)
    storeys = rng.integers(1, 5, n).astype(float)
    compact = np.sqrt(area / storeys) * 4 * 2.7 * storeys / area
    heating = 40 + 55 * u_value * compact + 30 * glazing + rng.normal(0, 4, n)
    cooling = 5 + 45 * glazing**1.5 + 2 * storeys - 3 * u_value + rng.normal(0, 2, n)
    frame = pd.DataFrame(
        {"floor_area_m2": area, "wall_u_value": u_value, "glazing_ratio": glazing,
         "storeys": storeys}
    )  # fmt: skip
    frame.loc[rng.random(n) < 0.05, "glazing_ratio"] = np.nan
    frame["heating_kwh_m2"] = np.round(heating, 2)
    frame["cooling_kwh_m2"] = np.round(cooling, 2)
    return frame


def cell(value: float) -> str:
    """A CSV cell as a person would write it (empty when missing)."""
    return "" if math.isnan(value) else repr(float(value))


def write_csv(target: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    """Generate the buildings, train, save the model and write the gate CSVs."""
    rng = np.random.default_rng(SEED)
    train = make_buildings(N_TRAIN, rng)
    confidence = make_buildings(N_CONFIDENCE, rng)
    sample = make_buildings(N_E2E, rng)[INPUTS]
    e2e_cells = [[cell(v) for v in row] for row in sample.to_numpy().tolist()] + EDGE_ROWS
    e2e = pd.DataFrame(
        [[float(c) if c else np.nan for c in row] for row in e2e_cells], columns=INPUTS
    )
    model = RandomForestRegressor(n_estimators=40, max_depth=9, random_state=0)
    model.fit(train[INPUTS], train[TARGETS].to_numpy())
    predicted = model.predict(e2e)
    write_csv(
        HERE / "gate" / "e2e.csv",
        [*INPUTS, *TARGETS],
        [
            [*row, *(repr(float(v)) for v in values)]
            for row, values in zip(e2e_cells, predicted, strict=True)
        ],
    )
    for name, frame in (("data/training.csv", train), ("gate/confidence.csv", confidence)):
        write_csv(
            HERE / name, list(frame.columns), [[cell(v) for v in r] for r in frame.to_numpy()]
        )
    model_path = HERE / "artifacts" / "model.joblib"
    model_path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, model_path, compress=0)
    truth, guess = confidence[TARGETS].to_numpy(), model.predict(confidence[INPUTS])
    print(f"rows: train={len(train)} confidence={len(confidence)} e2e={len(e2e)}")
    for k, target in enumerate(TARGETS):
        print(f"r2 {target} on the confidence set: {r2_score(truth[:, k], guess[:, k]):.4f}")
    print(f"model.joblib sha256 = {sha256_of(model_path)}")
    for name in ("data/training.csv", "gate/confidence.csv"):
        print(f"{name} sha256 = {sha256_of(HERE / name)}")


if __name__ == "__main__":
    main()
