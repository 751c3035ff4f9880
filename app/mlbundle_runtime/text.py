"""Text inputs: scikit-learn's CountVectorizer / TfidfVectorizer analysis, in pure Python.

A plan's ``text`` features say how one text input becomes workspace columns: the
analyzer (``word``, ``char`` or ``char_wb``) with its preprocessing (lowercase, accent
stripping), token pattern, stop words and n-gram range; the fitted vocabulary (one
column per term); then ``binary``, ``sublinear_tf``, ``idf_`` and the row norm. Each
step repeats ``sklearn.feature_extraction.text`` operation by operation (the stop
words are removed *before* n-grams are formed, so the vocabulary alone would not do),
and the weighting follows scikit-learn's CSR arithmetic: a row's nonzeros in column
order, ``log(x) + 1``, ``x * idf``, then the norm summed left to right and divided,
so the columns hold what scikit-learn's sparse matrix holds, bit for bit. It runs
in the input encoding, before the compiled kernels, since regular expressions are
no kernel's business; ``unicodedata`` is imported only by plans that strip accents.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

ANALYZERS = ("word", "char", "char_wb")
STRIP_ACCENTS = (None, "ascii", "unicode")
NORMS = (None, "l1", "l2")

#: scikit-learn's ``_white_spaces``: runs of two or more whitespace characters.
_WHITE_SPACES = re.compile(r"\s\s+")


@dataclass(frozen=True)
class TextFeature:
    """One vectorizer applied to one text input, as the plan describes it."""

    input: int  # index of the text input
    cols: tuple[int, ...]  # workspace column of each vocabulary term
    vocabulary: tuple[str, ...]  # term of each column, in column order
    analyzer: str = "word"
    lowercase: bool = True
    strip_accents: str | None = None
    token_pattern: str = r"(?u)\b\w\w+\b"
    ngram_range: tuple[int, int] = (1, 1)
    stop_words: tuple[str, ...] = ()
    binary: bool = False
    sublinear_tf: bool = False
    idf: np.ndarray | None = None  # per column, or None (no idf weighting)
    norm: str | None = None
    origin: str = ""


def _strip_accents_unicode(s: str) -> str:
    """scikit-learn's ``strip_accents_unicode``: NFKD, then drop combining characters."""
    import unicodedata

    try:
        s.encode("ASCII", errors="strict")
        return s
    except UnicodeEncodeError:
        normalized = unicodedata.normalize("NFKD", s)
        return "".join([c for c in normalized if not unicodedata.combining(c)])


def _strip_accents_ascii(s: str) -> str:
    """scikit-learn's ``strip_accents_ascii``: NFKD, then keep what ASCII can hold."""
    import unicodedata

    return unicodedata.normalize("NFKD", s).encode("ASCII", "ignore").decode("ASCII")


def _word_ngrams(tokens: list[str], stop: frozenset[str] | None, lo: int, hi: int) -> list[str]:
    """``_VectorizerMixin._word_ngrams``: stop words out first, then n-grams joined by a space."""
    if stop is not None:
        tokens = [w for w in tokens if w not in stop]
    if hi != 1:
        original = tokens
        if lo == 1:
            tokens = list(original)
            lo += 1
        else:
            tokens = []
        n_orig = len(original)
        for n in range(lo, min(hi + 1, n_orig + 1)):
            for i in range(n_orig - n + 1):
                tokens.append(" ".join(original[i : i + n]))
    return tokens


def _char_ngrams(text: str, lo: int, hi: int) -> list[str]:
    """``_VectorizerMixin._char_ngrams``: whitespace runs made one space, then n-grams."""
    text = _WHITE_SPACES.sub(" ", text)
    size = len(text)
    if lo == 1:
        grams = list(text)
        lo += 1
    else:
        grams = []
    for n in range(lo, min(hi + 1, size + 1)):
        for i in range(size - n + 1):
            grams.append(text[i : i + n])
    return grams


def _char_wb_ngrams(text: str, lo: int, hi: int) -> list[str]:
    """``_VectorizerMixin._char_wb_ngrams``: n-grams inside each space-padded word."""
    text = _WHITE_SPACES.sub(" ", text)
    grams: list[str] = []
    for w in text.split():
        w = " " + w + " "
        w_len = len(w)
        for n in range(lo, hi + 1):
            offset = 0
            grams.append(w[offset : offset + n])
            while offset + n < w_len:
                offset += 1
                grams.append(w[offset : offset + n])
            if offset == 0:  # a short word (w_len < n) counts once
                break
    return grams


def build_analyzer(feature: TextFeature) -> Callable[[str], list[str]]:
    """The function scikit-learn's ``build_analyzer()`` returns, for the plan's settings."""
    accent: Callable[[str], str] | None = {
        None: None,
        "ascii": _strip_accents_ascii,
        "unicode": _strip_accents_unicode,
    }[feature.strip_accents]
    lower = feature.lowercase

    def preprocess(doc: str) -> str:
        if lower:
            doc = doc.lower()
        if accent is not None:
            doc = accent(doc)
        return doc

    lo, hi = feature.ngram_range
    if feature.analyzer == "char":
        return lambda doc: _char_ngrams(preprocess(doc), lo, hi)
    if feature.analyzer == "char_wb":
        return lambda doc: _char_wb_ngrams(preprocess(doc), lo, hi)
    findall = re.compile(feature.token_pattern).findall
    stop = frozenset(feature.stop_words) if feature.stop_words else None
    return lambda doc: _word_ngrams(findall(preprocess(doc)), stop, lo, hi)


class TextEncoder:
    """Writes one text feature's columns for a block of documents (built once per plan)."""

    def __init__(self, feature: TextFeature) -> None:
        self.feature = feature
        self.analyze = build_analyzer(feature)
        self.index = {term: k for k, term in enumerate(feature.vocabulary)}
        self.cols = np.asarray(feature.cols, dtype=np.intp)
        self.idf = feature.idf

    def fill(self, ws: np.ndarray, docs: Sequence[str]) -> None:
        """Rows ``0:len(docs)`` of the feature's columns: zeros, then each row's nonzeros."""
        f = self.feature
        ws[: len(docs), self.cols] = 0.0
        index, analyze = self.index, self.analyze
        rows: list[int] = []
        where: list[int] = []
        counts: list[float] = []
        starts = [0]
        for r, doc in enumerate(docs):
            counter: dict[int, int] = {}
            for term in analyze(doc):
                k = index.get(term)
                if k is not None:
                    counter[k] = counter.get(k, 0) + 1
            keys = sorted(counter)  # CSR with sorted indices: column order
            rows.extend([r] * len(keys))
            where.extend(keys)
            counts.extend([1.0] * len(keys) if f.binary else [float(counter[k]) for k in keys])
            starts.append(len(where))
        if not where:
            return
        data = np.array(counts, dtype=np.float64)
        at = np.array(where, dtype=np.intp)
        if f.sublinear_tf:
            np.log(data, data)
            data += 1.0
        if self.idf is not None:
            data *= self.idf[at]
        if f.norm is not None:
            _normalize(data, starts, f.norm == "l2")
        ws[np.array(rows, dtype=np.intp), self.cols[at]] = data


def _normalize(data: np.ndarray, starts: list[int], l2: bool) -> None:
    """``inplace_csr_row_normalize_l1/l2``: each row's sum left to right, then a division
    (a zero row is left alone)."""
    values = data.tolist()
    for a, b in zip(starts[:-1], starts[1:], strict=True):
        total = 0.0
        if l2:
            for x in values[a:b]:
                total += x * x
        else:
            for x in values[a:b]:
                total += abs(x)
        if total == 0.0:
            continue
        if l2:
            total = math.sqrt(total)
        data[a:b] /= total
