"""A plan as wide as a large vocabulary scores a large in-memory batch in bounded blocks.

A tf-idf plan with a 100,000-term vocabulary has a workspace row of 800 kB: 1024 rows
(``BLOCK_ROWS``) would be an 800 MB block, two of them on two threads. The scorer cuts
a wide plan's blocks to ``CHUNK_BYTES`` (64 MB) of workspace, as the file reader cuts its
chunks; the scores are those of scoring each text alone, and scikit-learn's, bit for bit.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from mlbundle_runtime.inputs import CHUNK_BYTES
from mlbundle_runtime.scorer import BLOCK_ROWS, Scorer
from tests._parity import compile_scorer

pytestmark = pytest.mark.usefixtures("quiet_sklearn")

VOCABULARY = 100_000


def _docs(n: int, seed: int) -> list[str]:
    """``n`` texts of 5 to 60 words drawn from ``VOCABULARY`` made-up words (w0, w1, ...)."""
    rng = np.random.default_rng(seed)
    return [
        " ".join(f"w{k}" for k in rng.integers(0, VOCABULARY, rng.integers(5, 60)))
        for _ in range(n)
    ]


@functools.cache
def _wide() -> tuple[Any, Scorer]:
    """tf-idf over every made-up word (each training text holds 50 of them, all covered)."""
    words = np.random.default_rng(1).permutation(VOCABULARY)
    train = [" ".join(f"w{k}" for k in chunk) for chunk in np.split(words, VOCABULARY // 50)]
    y = np.arange(len(train)) % 2
    model = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=200)).fit(train, y)
    assert len(model[0].vocabulary_) == VOCABULARY
    return model, compile_scorer(model)


def _watch_blocks(scorer: Scorer, monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The shape of every block's workspace the scorer runs from now on."""
    seen: list[tuple[int, int]] = []
    run_block = scorer._run_block

    def watch(ws: np.ndarray, *args: Any) -> None:
        seen.append(ws.shape)
        run_block(ws, *args)

    monkeypatch.setattr(scorer, "_run_block", watch)
    return seen


@pytest.mark.parametrize("n", [300, 2 * BLOCK_ROWS + 5], ids=["below BLOCK_ROWS", "above"])
def test_a_large_batch_of_a_wide_plan_runs_in_bounded_blocks(
    n: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, scorer = _wide()
    width = scorer.plan.width
    assert width > VOCABULARY
    docs = _docs(n, seed=n)
    records = [{"text": d} for d in docs]
    seen = _watch_blocks(scorer, monkeypatch)
    batch = scorer.score_records(records)
    assert seen and all(rows * cols * 8 <= CHUNK_BYTES for rows, cols in seen), seen[:3]
    assert sum(rows for rows, _ in seen) == n
    assert max(rows for rows, _ in seen) == CHUNK_BYTES // (8 * width)  # blocks as large as fit
    by_columns = scorer.score_columns({"text": np.array(docs, dtype=object)})
    assert all(rows * cols * 8 <= CHUNK_BYTES for rows, cols in seen)
    alone = np.vstack([scorer.score_record(r).proba for r in records[:: max(1, n // 150)]])
    assert np.array_equal(batch.proba[:: max(1, n // 150)], alone)
    assert np.array_equal(by_columns.proba, batch.proba)
    assert np.array_equal(batch.proba, model.predict_proba(docs))
    assert batch.labels() == list(model.predict(docs))


def test_a_narrow_plan_keeps_its_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Up to 8192 workspace columns a block is still ``BLOCK_ROWS`` rows."""
    docs = _docs(2 * BLOCK_ROWS + 5, seed=3)
    y = np.arange(len(docs)) % 2
    model = make_pipeline(TfidfVectorizer(max_features=2000), LogisticRegression()).fit(docs, y)
    scorer = compile_scorer(model)
    assert scorer.plan.width < 8192
    seen = _watch_blocks(scorer, monkeypatch)
    batch = scorer.score_records([{"text": d} for d in docs])
    # the scorer's threads finish blocks in any order
    assert sorted(rows for rows, _ in seen) == [5, BLOCK_ROWS, BLOCK_ROWS]
    assert np.array_equal(batch.proba, model.predict_proba(docs))
