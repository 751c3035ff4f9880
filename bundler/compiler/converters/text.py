"""CountVectorizer, TfidfVectorizer, and TfidfTransformer after a CountVectorizer.

A vectorizer's analysis (preprocessing, token pattern, stop words, n-grams) cannot
be a kernel: it becomes a *text feature* of the plan (format 2.1), which the app's
input encoding runs in pure Python (``mlbundle_runtime.text``) and which writes
one workspace column per vocabulary term. The weighting (``binary``,
``sublinear_tf``, ``idf_``, the l1/l2 norm) goes with it, computed as scikit-learn
computes it on its CSR matrix. The columns are marked sparse, so the estimators
after it add in scipy's order. What the app cannot repeat is refused: Python
callables (an analyzer, preprocessor, tokenizer or accent function), reading files
(``input="filename"``/``"file"``), and decoding bytes another way than UTF-8
(``encoding``/``decode_error``): the app's inputs are already text, decoded from UTF-8.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer, TfidfVectorizer

from bundler.compiler._builder import Cols, PlanBuilder
from bundler.compiler._registry import register_converter
from bundler.errors import UnsupportedEstimatorError
from mlbundle_runtime.text import ANALYZERS

_CALLABLES = ("analyzer", "preprocessor", "tokenizer", "strip_accents")


def _refuse(builder: PlanBuilder, est: object, what: str) -> None:
    raise UnsupportedEstimatorError(f"{builder.origin(est)}: {what}")


def _check(est: CountVectorizer, builder: PlanBuilder, cols: Cols) -> None:
    """Refuse what the app's tokeniser cannot repeat, naming the parameter and what is valid."""
    for name in _CALLABLES:
        if callable(getattr(est, name)):
            _refuse(
                builder,
                est,
                f"{name} is a Python function, which a plan cannot carry; valid: "
                + {
                    "analyzer": "'word', 'char' or 'char_wb'",
                    "preprocessor": "None (lowercase / strip_accents do the preprocessing)",
                    "tokenizer": "None (with a token_pattern regular expression)",
                    "strip_accents": "None, 'ascii' or 'unicode'",
                }[name],
            )
    if est.input != "content":
        _refuse(
            builder,
            est,
            f"input={est.input!r} reads documents from files; valid: 'content' (the app "
            "scores the text it is given)",
        )
    if str(est.encoding).lower().replace("_", "-") not in ("utf-8", "utf8") or (
        est.decode_error != "strict"
    ):
        _refuse(
            builder,
            est,
            f"encoding={est.encoding!r}, decode_error={est.decode_error!r}: the app's text "
            "is decoded from UTF-8 before the model sees it; valid: encoding='utf-8', "
            "decode_error='strict' (the defaults)",
        )
    if est.analyzer not in ANALYZERS:
        _refuse(builder, est, f"analyzer={est.analyzer!r}; valid: {', '.join(ANALYZERS)}")
    if est.strip_accents not in (None, False, "ascii", "unicode"):
        _refuse(
            builder, est, f"strip_accents={est.strip_accents!r}; valid: None, 'ascii', 'unicode'"
        )
    if est.analyzer == "word":
        if not isinstance(est.token_pattern, str):
            _refuse(builder, est, "token_pattern must be a regular expression (text)")
        if re.compile(est.token_pattern).groups > 1:
            _refuse(builder, est, "token_pattern captures more than one group")
    if len(cols) != 1:
        _refuse(
            builder,
            est,
            f"reads one text column, not {len(cols)}; in a ColumnTransformer select it by "
            'name as a string ("text"), not as a list',
        )


def _feature(
    est: CountVectorizer, builder: PlanBuilder, cols: Cols
) -> tuple[dict[str, Any], list[str]]:
    """The plan's text feature for ``est`` (counts, before any weighting) and its column names."""
    _check(est, builder, cols)
    j = builder.make_text(cols.idx[0], est)
    vocab = est.vocabulary_
    terms: list[Any] = [None] * len(vocab)
    for term, k in vocab.items():
        if not (0 <= int(k) < len(terms)) or terms[int(k)] is not None:
            _refuse(builder, est, "vocabulary_ indices are not 0..n-1; refit the vectorizer")
        terms[int(k)] = term
    if not all(isinstance(t, str) for t in terms):
        _refuse(builder, est, "vocabulary_ holds terms that are not text")
    stop = est.get_stop_words() if est.analyzer == "word" else None
    lo, hi = (int(v) for v in est.ngram_range)
    feature = {
        "input": j,
        "vocabulary": terms,
        "analyzer": est.analyzer,
        "lowercase": bool(est.lowercase),
        "strip_accents": est.strip_accents or None,
        "token_pattern": est.token_pattern if est.analyzer == "word" else r"(?u)\b\w\w+\b",
        "ngram_range": [lo, hi],
        "stop_words": sorted(str(w) for w in stop) if stop else [],
        "binary": bool(est.binary),
        "sublinear_tf": False,
        "idf": None,
        "norm": None,
    }
    name = builder.name(cols.idx[0])
    return feature, [f"{name}[{t}]" for t in terms]


def _dtype_float32(est: Any, builder: PlanBuilder, *, tfidf: bool) -> bool:
    """Whether scikit-learn's output is float32 (counts are exact in any of these dtypes)."""
    dtype = np.dtype(est.dtype)
    if dtype == np.float64 or (not tfidf and dtype.kind in "iu"):
        return False
    if dtype == np.float32 and not tfidf:
        return True
    _refuse(
        builder,
        est,
        f"dtype={dtype.name}"
        + (
            " computes the tf-idf weights in that precision; valid: float64 (the default)"
            if tfidf
            else "; valid: an integer dtype, float64 or float32"
        ),
    )
    return False


def _weighting(
    feature: dict[str, Any], tfidf: TfidfTransformer, builder: PlanBuilder, est: object
) -> dict[str, Any]:
    """``feature`` followed by ``tfidf.transform``: sublinear tf, idf_, norm."""
    if tfidf.norm not in (None, "l1", "l2"):
        _refuse(builder, est, f"norm={tfidf.norm!r}; valid: 'l1', 'l2', None")
    idf = None
    if tfidf.use_idf:
        values = np.asarray(tfidf.idf_, dtype=np.float64)
        if values.shape != (len(feature["vocabulary"]),):
            _refuse(
                builder,
                est,
                f"idf_ has {values.size} values for {len(feature['vocabulary'])} terms",
            )
        idf = builder.array(values, np.float64)
    return {
        **feature,
        "sublinear_tf": bool(tfidf.sublinear_tf),
        "idf": idf,
        "norm": tfidf.norm,
    }


@register_converter(
    CountVectorizer,
    "analyzer word / char / char_wb; lowercase; strip_accents None / ascii / unicode; "
    "token_pattern; ngram_range; stop_words ('english' or a list, removed before n-grams); "
    "vocabulary_ (min_df, max_df, max_features); binary; dtype; one text input",
)
def convert_count_vectorizer(est: CountVectorizer, builder: PlanBuilder, cols: Cols) -> Cols:
    float32 = _dtype_float32(est, builder, tfidf=False)
    feature, names = _feature(est, builder, cols)
    out = builder.add_text(feature, names, est)
    return Cols(out.idx, sparse=True, float32=float32)


@register_converter(
    TfidfVectorizer,
    "CountVectorizer's analysis, then sublinear_tf, use_idf / smooth_idf (idf_), norm l1 / "
    "l2 / None, as on scikit-learn's CSR matrix; dtype float64",
)
def convert_tfidf_vectorizer(est: TfidfVectorizer, builder: PlanBuilder, cols: Cols) -> Cols:
    _dtype_float32(est, builder, tfidf=True)
    feature, names = _feature(est, builder, cols)
    out = builder.add_text(_weighting(feature, est._tfidf, builder, est), names, est)
    return Cols(out.idx, sparse=True)


@register_converter(
    TfidfTransformer,
    "directly after a CountVectorizer (float64 or integer dtype): sublinear_tf, use_idf / "
    "smooth_idf (idf_), norm l1 / l2 / None",
)
def convert_tfidf_transformer(est: TfidfTransformer, builder: PlanBuilder, cols: Cols) -> Cols:
    feature = builder.text_feature(cols)
    if feature is None or feature["idf"] is not None or feature["norm"] or feature["sublinear_tf"]:
        _refuse(
            builder,
            est,
            "is compiled only directly after a CountVectorizer (its counts); valid: "
            "CountVectorizer then TfidfTransformer, or a TfidfVectorizer",
        )
    if cols.float32:
        _refuse(
            builder,
            est,
            "receives float32 counts (CountVectorizer dtype=np.float32) and weights them in "
            "float32; valid: an integer or float64 dtype upstream",
        )
    base = {k: v for k, v in feature.items() if k not in ("cols", "origin")}
    names = [builder.name(c) for c in cols.idx]
    out = builder.add_text(_weighting(base, est, builder, est), names, est)
    return Cols(out.idx, sparse=True)
