"""Train the Palmer penguins example that mlbundle ships as its reference bundle.

Run as ``python resources/train.py``. Every path is relative to this file, nothing is
downloaded and every random choice is seeded, so two runs produce byte-identical
``artifacts/*.joblib`` files (and therefore the sha256 values pinned in
``specs/penguins.toml`` stay valid until the code or the library versions change).

Outputs:

* ``artifacts/extractor.joblib``: the fitted ColumnTransformer (raw columns -> features).
* ``artifacts/model.joblib``: the fitted RandomForestClassifier (features -> species).
* ``gate/e2e.csv``: raw inputs plus the outputs scikit-learn computes for them; the
  compiled plan must reproduce these within the spec's tolerance.
* ``gate/confidence.csv``: raw inputs plus the true species, held out from training,
  on which the release gate measures balanced accuracy.
"""

from __future__ import annotations

import csv
import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

HERE = Path(__file__).resolve().parent
DATA_CSV = HERE / "data" / "penguins.csv"
ARTIFACTS_DIR = HERE / "artifacts"
GATE_DIR = HERE / "gate"

NUMERIC_COLUMNS = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
CATEGORICAL_COLUMNS = ["island", "sex"]
# Same order as in the source CSV, which is also the order of the gate CSVs.
INPUT_COLUMNS = ["island", *NUMERIC_COLUMNS, "sex"]
TARGET = "species"

SEED = 0
TRAIN_FRACTION = 0.60
CONFIDENCE_FRACTION = 0.25  # the end-to-end set gets the remaining ~15 %

# Hand-made rows appended to the end-to-end set. They exercise the paths a random
# sample may miss: median imputation of every numeric input, most-frequent imputation
# of each categorical input, and an island unseen in training, which
# OneHotEncoder(handle_unknown="ignore") encodes as all zeros. Values are the raw
# text as it would appear in the source CSV, in INPUT_COLUMNS order; None means missing.
EDGE_ROWS: list[tuple[str | None, ...]] = [
    # island, bill_length_mm, bill_depth_mm, flipper_length_mm, body_mass_g, sex
    ("Biscoe", None, None, None, None, "female"),
    ("Dream", "49.5", "19", "200", "3800", None),
    (None, "45.2", "14.8", "212", "5200", "female"),
    ("Anvers", "39.6", "17.7", "186", "3500", "male"),
]


def load_raw(path: Path) -> pd.DataFrame:
    """Read the CSV keeping every cell as its original text (NaN where the file says NA).

    Keeping the text lets the gate CSVs repeat the numbers exactly as the source writes
    them (``181``, not ``181.0``). Only the literal ``NA`` marks a missing value, so no
    other string is silently turned into NaN by pandas' default NA list.
    """
    raw = pd.read_csv(path, dtype=object, keep_default_na=False, na_values=["NA"])
    missing = [c for c in [*INPUT_COLUMNS, TARGET] if c not in raw.columns]
    if missing:
        raise SystemExit(f"{path}: missing columns {missing}")
    return raw


def to_features(raw: pd.DataFrame) -> pd.DataFrame:
    """Turn raw text rows into the typed input frame the extractor is fitted on.

    Numeric columns become float64 (NaN for missing). Categorical columns stay plain
    ``object`` arrays of Python ``str`` with NaN for missing, rather than pandas' own
    string dtype, so the pickled extractor refers to no pandas class and loads without
    pandas.
    """
    frame = pd.DataFrame(index=raw.index)
    for column in INPUT_COLUMNS:
        values = raw[column].to_numpy(dtype=object)
        if column in NUMERIC_COLUMNS:
            frame[column] = np.array(
                [np.nan if _is_missing(v) else float(v) for v in values], dtype=np.float64
            )
        else:
            frame[column] = np.array(
                [np.nan if _is_missing(v) else str(v) for v in values], dtype=object
            )
    return frame


def _is_missing(value: object) -> bool:
    """Return True for the NaN/None markers pandas uses for a missing cell."""
    return value is None or (isinstance(value, float) and np.isnan(value))


def build_extractor() -> ColumnTransformer:
    """The feature extractor the bundle compiles; dense output so the model gets an ndarray."""
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
    return ColumnTransformer(
        [("num", numeric, NUMERIC_COLUMNS), ("cat", categorical, CATEGORICAL_COLUMNS)]
    )


def split(raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split into training, confidence and end-to-end sets, stratified by species.

    Stratifying keeps the rarer Chinstrap class present in every set, so the
    confidence metric and the end-to-end rows both cover all three species.
    """
    n = len(raw)
    n_train = round(n * TRAIN_FRACTION)
    n_confidence = round(n * CONFIDENCE_FRACTION)
    train, rest = train_test_split(raw, train_size=n_train, random_state=SEED, stratify=raw[TARGET])
    confidence, e2e = train_test_split(
        rest, train_size=n_confidence, random_state=SEED, stratify=rest[TARGET]
    )
    return train, confidence, e2e


def atomic_write(target: Path, write: Callable[[Path], None]) -> None:
    """Write via a temp file in the target directory, then os.replace it into place.

    A crashed or interrupted run thus never leaves a truncated artifact that a later
    build could pick up (and whose sha256 would merely fail to match).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        # mkstemp creates the file 0600; give it the mode a plain open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def dump_joblib(obj: Any, target: Path) -> str:
    """Dump ``obj`` uncompressed so the bytes, and the sha256 the spec pins, stay stable."""
    atomic_write(target, lambda tmp: joblib.dump(obj, tmp, compress=0))
    return sha256_of(target)


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, the value pinned in the bundle spec."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_csv(target: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Write a UTF-8 CSV with ``\\n`` line endings; missing values must already be ``""``."""

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)

    atomic_write(target, write)


def raw_cells(raw: pd.DataFrame, columns: Sequence[str]) -> list[list[str]]:
    """The given columns as source text, with an empty cell for each missing value."""
    return [
        ["" if _is_missing(v) else str(v) for v in row]
        for row in raw[list(columns)].to_numpy(dtype=object)
    ]


def main() -> None:
    """Train, save the artifacts and write the release-gate CSVs."""
    raw = load_raw(DATA_CSV)
    n_rows = len(raw)
    raw = raw[raw[TARGET].notna()].reset_index(drop=True)
    print(f"read {n_rows} rows from {DATA_CSV.name}; dropped {n_rows - len(raw)} without {TARGET}")

    train, confidence, e2e = split(raw)
    edge = pd.DataFrame(EDGE_ROWS, columns=INPUT_COLUMNS, dtype=object)
    e2e_inputs = pd.concat([e2e[INPUT_COLUMNS], edge], ignore_index=True)

    extractor = build_extractor()
    features = extractor.fit_transform(to_features(train))
    if not isinstance(features, np.ndarray):
        raise SystemExit(f"extractor output is {type(features).__name__}, expected a dense ndarray")
    model = RandomForestClassifier(n_estimators=100, random_state=SEED)
    model.fit(features, train[TARGET].to_numpy(dtype=object))

    def predict(inputs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        x = extractor.transform(to_features(inputs))
        return model.predict(x), model.predict_proba(x)

    classes = [str(c) for c in model.classes_]
    labels, proba = predict(e2e_inputs)
    write_csv(
        GATE_DIR / "e2e.csv",
        [*INPUT_COLUMNS, "prediction", *(f"proba_{c}" for c in classes)],
        [
            [*cells, str(label), *(repr(float(p)) for p in row)]
            for cells, label, row in zip(
                raw_cells(e2e_inputs, INPUT_COLUMNS), labels, proba, strict=True
            )
        ],
    )
    # The training split itself: the spec's [data.training] points here, so the
    # build can check its hash and record each input's training range.
    write_csv(
        DATA_CSV.parent / "training.csv",
        [*INPUT_COLUMNS, TARGET],
        raw_cells(train, [*INPUT_COLUMNS, TARGET]),
    )
    write_csv(
        GATE_DIR / "confidence.csv",
        [*INPUT_COLUMNS, TARGET],
        raw_cells(confidence, [*INPUT_COLUMNS, TARGET]),
    )

    extractor_sha = dump_joblib(extractor, ARTIFACTS_DIR / "extractor.joblib")
    model_sha = dump_joblib(model, ARTIFACTS_DIR / "model.joblib")

    confidence_labels, _ = predict(confidence)
    score = balanced_accuracy_score(confidence[TARGET].to_numpy(dtype=object), confidence_labels)

    print(f"classes: {classes}")
    print(
        f"rows: train={len(train)} confidence={len(confidence)} "
        f"e2e={len(e2e_inputs)} ({len(e2e)} held out + {len(edge)} edge)"
    )
    print(f"extractor.joblib sha256 = {extractor_sha}")
    print(f"model.joblib     sha256 = {model_sha}")
    print(f"training.csv     sha256 = {sha256_of(DATA_CSV.parent / 'training.csv')}")
    print(f"confidence.csv   sha256 = {sha256_of(GATE_DIR / 'confidence.csv')}")
    print(f"balanced accuracy on the confidence set = {score:.6f}")


if __name__ == "__main__":
    main()
