"""Train the product-review example: a text classifier on made-up reviews.

Run as ``python resources/reviews/train.py``. The reviews are generated here, from
seeded random choices among hand-written phrases (no download, no real person's
words), so two runs write byte-identical files and the sha256 values pinned in
``specs/reviews.toml`` stay valid until the code or the library versions change.

Outputs (paths relative to this folder):

* ``data/training.csv``: the training reviews and their labels;
* ``artifacts/extractor.joblib``: a ColumnTransformer with a TfidfVectorizer on
  ``review`` (word 1-2 grams, accents stripped, sublinear tf);
* ``artifacts/model.joblib``: the LogisticRegression on its (sparse) output;
* ``gate/e2e.csv``: reviews plus what scikit-learn predicts for them (label, probabilities,
  decision function), with hand-made
  edge cases (empty text, unseen words, accents, punctuation, a very long review);
* ``gate/confidence.csv``: held-out reviews with their true label, for the accuracy gate.
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
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score

HERE = Path(__file__).resolve().parent
ARTIFACTS_DIR = HERE / "artifacts"
GATE_DIR = HERE / "gate"
DATA_DIR = HERE / "data"
SEED = 0
N_TRAIN, N_CONFIDENCE, N_E2E = 600, 200, 60

PRODUCTS = ["kettle", "blender", "toaster", "lamp", "backpack", "headphones", "café grinder"]
GOOD = [
    "works perfectly",
    "great value",
    "excellent build quality",
    "arrived quickly",
    "really love it",
    "très bien",
    "would buy again",
    "sturdy and reliable",
    "the best purchase this year",
    "quiet and fast",
]
BAD = [
    "stopped working",
    "broke after a week",
    "waste of money",
    "arrived damaged",
    "really disappointed",
    "terrible customer service",
    "would not recommend",
    "cheap flimsy plastic",
    "too loud and slow",
    "returned it immediately",
]
NEUTRAL = [
    "bought it for my kitchen",
    "the colour is grey",
    "delivered on tuesday",
    "it comes with a manual",
    "my second one",
    "size as described",
]

#: Hand-made end-to-end rows: the paths a random sample misses.
EDGE_ROWS = [
    "",
    "   ",
    "Zürich naïve façade: crème brûlée!!!",
    "GREAT VALUE!!! WORKS PERFECTLY!!!",
    "broke, broke, broke... 0/10",
    "unseen words only: quixotic zephyr",
    "line one\nline two: stopped working",
    'quotes "inside" and, commas',
    " ".join(GOOD + BAD + NEUTRAL) * 20,
]


def make_reviews(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """``n`` reviews: a product, two to four phrases (mostly of the label's mood, some of
    the other, some neutral), and sometimes a star note; the label is the mood."""
    rows = []
    for _ in range(n):
        positive = bool(rng.random() < 0.5)
        own, other = (GOOD, BAD) if positive else (BAD, GOOD)
        phrases = [str(p) for p in rng.choice(own, size=int(rng.integers(1, 3)))]
        if rng.random() < 0.3:
            phrases.append(str(rng.choice(other)))
        phrases += [str(p) for p in rng.choice(NEUTRAL, size=int(rng.integers(0, 2)))]
        rng.shuffle(phrases)
        text = f"The {rng.choice(PRODUCTS)}: " + ", ".join(phrases)
        if rng.random() < 0.2:
            text += f". {int(rng.integers(1, 6))} stars"
        if rng.random() < 0.15:
            text = text.upper()
        rows.append((text, "positive" if positive else "negative"))
    return pd.DataFrame(rows, columns=["review", "sentiment"])


def build_extractor() -> ColumnTransformer:
    """The review column to tf-idf weighted word 1-2 grams (a sparse matrix)."""
    vectorizer = TfidfVectorizer(
        ngram_range=(1, 2), strip_accents="unicode", sublinear_tf=True, min_df=2
    )
    return ColumnTransformer([("review", vectorizer, "review")])


def atomic_write(target: Path, write: Callable[[Path], None]) -> None:
    """Write via a temp file in the target directory, then rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, the value pinned in the bundle spec."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def dump_joblib(obj: Any, target: Path) -> str:
    """Dump ``obj`` uncompressed so the bytes, and the sha256 the spec pins, stay stable."""
    atomic_write(target, lambda tmp: joblib.dump(obj, tmp, compress=0))
    return sha256_of(target)


def write_csv(target: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A UTF-8 CSV with ``\\n`` line ends (a review with a comma or newline is quoted)."""

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)

    atomic_write(target, write)


def main() -> None:
    """Generate the reviews, train, save the artifacts and write the gate CSVs."""
    rng = np.random.default_rng(SEED)
    train = make_reviews(N_TRAIN, rng)
    confidence = make_reviews(N_CONFIDENCE, rng)
    e2e = pd.concat(
        [make_reviews(N_E2E, rng)[["review"]], pd.DataFrame({"review": EDGE_ROWS})],
        ignore_index=True,
    )
    extractor = build_extractor()
    features = extractor.fit_transform(train[["review"]])
    model = LogisticRegression(max_iter=1000)
    model.fit(features, train["sentiment"].to_numpy(dtype=object))

    classes = [str(c) for c in model.classes_]
    x = extractor.transform(e2e)
    labels, proba, decision = model.predict(x), model.predict_proba(x), model.decision_function(x)
    write_csv(
        GATE_DIR / "e2e.csv",
        ["review", "prediction", *(f"proba_{c}" for c in classes), "decision_function"],
        [
            [text, str(label), *(repr(float(p)) for p in row), repr(float(d))]
            for text, label, row, d in zip(e2e["review"], labels, proba, decision, strict=True)
        ],
    )
    write_csv(DATA_DIR / "training.csv", ["review", "sentiment"], train.to_numpy().tolist())
    write_csv(GATE_DIR / "confidence.csv", ["review", "sentiment"], confidence.to_numpy().tolist())
    # every transform caches id(stop_words), a memory address that differs at every run;
    # without it scikit-learn just checks the stop words again, and the bytes reproduce
    vars(extractor.named_transformers_["review"]).pop("_stop_words_id", None)
    extractor_sha = dump_joblib(extractor, ARTIFACTS_DIR / "extractor.joblib")
    model_sha = dump_joblib(model, ARTIFACTS_DIR / "model.joblib")
    score = balanced_accuracy_score(
        confidence["sentiment"], model.predict(extractor.transform(confidence[["review"]]))
    )
    vocabulary = len(extractor.named_transformers_["review"].vocabulary_)
    print(f"classes: {classes}; vocabulary: {vocabulary} terms")
    print(f"rows: train={len(train)} confidence={len(confidence)} e2e={len(e2e)}")
    print(f"extractor.joblib sha256 = {extractor_sha}")
    print(f"model.joblib     sha256 = {model_sha}")
    print(f"training.csv     sha256 = {sha256_of(DATA_DIR / 'training.csv')}")
    print(f"confidence.csv   sha256 = {sha256_of(GATE_DIR / 'confidence.csv')}")
    print(f"balanced accuracy on the confidence set = {score:.6f}")


if __name__ == "__main__":
    main()
