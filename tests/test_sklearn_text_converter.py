"""Text vectorizers compile to plans whose scores equal scikit-learn 1.9's, bit for bit.

CountVectorizer, TfidfVectorizer and CountVectorizer + TfidfTransformer, on a 1-d
document input and in a ColumnTransformer on a text column, before
LogisticRegression, LinearSVC, MultinomialNB, ComplementNB and SGDClassifier: the
app's pure-Python tokeniser (``mlbundle_runtime.text``) and the sparse order of the
linear kernels give ``np.array_equal`` probabilities and decisions (the bar is
exactness here, not 1e-9), on unicode, accents, punctuation, numbers, empty and
very long texts, unseen words, word and char n-grams, stop words, and on texts
hypothesis makes up. What the app cannot repeat is refused with one line naming
the step and what is valid.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.naive_bayes import ComplementNB, MultinomialNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from bundler.compiler import compile_estimators, supported
from bundler.errors import UnsupportedEstimatorError
from mlbundle_runtime.inputs import InputError
from mlbundle_runtime.plan import PlanError, parse_plan
from mlbundle_runtime.scorer import Scorer
from tests._parity import TOL, compile_scorer, kernels

pytestmark = pytest.mark.usefixtures("quiet_sklearn")

HYPOTHESIS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_TEXT = (
    "the cat sat on the mat while dogs bark loudly at night and birds sing songs "
    "café naïve résumé Zürich Ærøskøbing façade coöperate über straße İstanbul "
    "numbers 42 3.14 1e9 x2 C++ e-mail don't rock'n'roll emoji 🙂 日本語 テキスト"
)
_WORDS = _TEXT.split()


def _corpus(n: int = 60, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Made-up documents with accents, punctuation, numbers, repeats and empties."""
    rng = np.random.default_rng(seed)
    docs = []
    for i in range(n):
        k = int(rng.integers(0, 14))
        words = [str(w) for w in rng.choice(_WORDS, size=k)]
        sep = ", " if i % 3 == 0 else "  \t " if i % 5 == 0 else " "
        doc = sep.join(words)
        if i % 7 == 0:
            doc = doc.upper() + "!!"
        docs.append(doc)
    docs[1] = ""
    docs[2] = "   "
    y = np.array([i % 3 for i in range(n)])
    return docs, y


DOCS, Y = _corpus()
Y2 = (Y == 0).astype(int)

#: Documents the models never saw: unseen words, empty, whitespace, very long.
PROBES = [
    "",
    " ",
    "completely unseen vocabulary here",
    "the the the the cat",
    "CAFÉ Cafe cafe café",
    "naïve,résumé;Zürich...über!?",
    "line one\nline two\r\nline three",
    "tabs\tand\u00a0non-breaking\u2003spaces",
    "ﬁ ligature ① ², Ⅻ",
    "a b c d e f g",
    " ".join(_WORDS) * 40,  # a long text (several thousand tokens)
    "x" * 5000,
]

#: name -> (vectorizer factory, classifier factory, binary target)
VECTORIZERS: dict[str, Any] = {
    "count": lambda: CountVectorizer(),
    "count-binary": lambda: CountVectorizer(binary=True),
    "count-ngram12": lambda: CountVectorizer(ngram_range=(1, 2)),
    "count-ngram23": lambda: CountVectorizer(ngram_range=(2, 3)),
    "count-stop-english": lambda: CountVectorizer(stop_words="english", ngram_range=(1, 2)),
    "count-stop-list": lambda: CountVectorizer(stop_words=["the", "on", "and"], ngram_range=(1, 3)),
    "count-case": lambda: CountVectorizer(lowercase=False),
    "count-char": lambda: CountVectorizer(analyzer="char", ngram_range=(1, 3)),
    "count-char-wb": lambda: CountVectorizer(analyzer="char_wb", ngram_range=(2, 4)),
    "count-ascii": lambda: CountVectorizer(strip_accents="ascii"),
    "count-unicode": lambda: CountVectorizer(strip_accents="unicode", lowercase=False),
    "count-pattern": lambda: CountVectorizer(token_pattern=r"(?u)\b\w+\b"),
    "count-min-df": lambda: CountVectorizer(min_df=2, max_df=0.5, max_features=30),
    "tfidf": lambda: TfidfVectorizer(),
    "tfidf-l1": lambda: TfidfVectorizer(norm="l1"),
    "tfidf-none": lambda: TfidfVectorizer(norm=None),
    "tfidf-sublinear": lambda: TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2)),
    "tfidf-no-idf": lambda: TfidfVectorizer(use_idf=False),
    "tfidf-no-smooth": lambda: TfidfVectorizer(smooth_idf=False, binary=True),
    "tfidf-char": lambda: TfidfVectorizer(analyzer="char", ngram_range=(2, 3)),
    "tfidf-char-wb-unicode": lambda: TfidfVectorizer(
        analyzer="char_wb", ngram_range=(1, 3), strip_accents="unicode"
    ),
    "tfidf-stop": lambda: TfidfVectorizer(stop_words="english", ngram_range=(2, 3)),
    "count+tfidf": lambda: make_pipeline(CountVectorizer(), TfidfTransformer()),
    "count+tfidf-sublinear-l1": lambda: make_pipeline(
        CountVectorizer(ngram_range=(1, 2)), TfidfTransformer(sublinear_tf=True, norm="l1")
    ),
}

CLASSIFIERS: dict[str, Any] = {
    "logreg": lambda: LogisticRegression(max_iter=500),
    "linearsvc": lambda: LinearSVC(),
    "mnb": lambda: MultinomialNB(),
    "cnb": lambda: ComplementNB(),
    "sgd-log": lambda: SGDClassifier(loss="log_loss", random_state=0),
    "sgd-hinge": lambda: SGDClassifier(random_state=0),
}


def _methods(model: Any) -> list[str]:
    return [m for m in ("predict_proba", "decision_function") if hasattr(model, m)]


def _assert_exact(model: Any, scorer: Scorer, docs: list[str], X: Any, context: str) -> float:
    """Labels and decision values identical to scikit-learn's; probabilities within the
    parity bar (they go through ``exp``, where numpy's SIMD and libm's may differ by an
    ulp). Returns the largest probability difference."""
    ours = scorer.score_records([{"text": d} for d in docs])
    assert ours.labels() == list(model.predict(X)), context
    worst = 0.0
    if hasattr(model, "predict_proba"):
        theirs = model.predict_proba(X)
        worst = float(np.abs(ours.proba - theirs).max())
        assert worst <= TOL, f"{context}: proba differs by {worst}"
    if hasattr(model, "decision_function"):
        theirs = np.asarray(model.decision_function(X), dtype=np.float64)
        extra = dict((e.name, v) for e, v in ours.extras)["decision_function"]
        mine = extra.reshape(theirs.shape)
        assert np.array_equal(mine, theirs), (
            f"{context}: decision differs by {np.abs(mine - theirs).max()}"
        )
    return worst


@functools.cache
def _fitted(vec: str, clf: str, binary: bool) -> tuple[Any, Scorer]:
    model = make_pipeline(VECTORIZERS[vec](), CLASSIFIERS[clf]())
    model.fit(DOCS, Y2 if binary else Y)
    return model, compile_scorer(model)


@pytest.mark.parametrize("vec", sorted(VECTORIZERS))
@pytest.mark.parametrize("binary", [False, True], ids=["multi3", "binary"])
def test_vectorizers_with_logistic_regression(vec: str, binary: bool) -> None:
    model, scorer = _fitted(vec, "logreg", binary)
    docs = DOCS + PROBES
    _assert_exact(model, scorer, docs, docs, f"{vec} + logreg")


@pytest.mark.parametrize("clf", sorted(CLASSIFIERS))
@pytest.mark.parametrize("vec", ["count", "tfidf", "count-ngram12", "tfidf-char-wb-unicode"])
def test_classifiers(vec: str, clf: str) -> None:
    model, scorer = _fitted(vec, clf, False)
    docs = DOCS + PROBES
    _assert_exact(model, scorer, docs, docs, f"{vec} + {clf}")


def test_column_transformer_with_numbers() -> None:
    """A text column beside a numeric one, the vectorizer selected by a column name."""
    frame = pd.DataFrame({"review": DOCS, "stars": np.arange(len(DOCS)) % 5 + 0.5})
    model = make_pipeline(
        ColumnTransformer(
            [
                ("t", TfidfVectorizer(ngram_range=(1, 2)), "review"),
                ("n", StandardScaler(), ["stars"]),
            ]
        ),
        LogisticRegression(max_iter=500),
    ).fit(frame, Y)
    scorer = compile_scorer(model)
    assert [(i.name, i.kind) for i in scorer.plan.inputs] == [
        ("review", "text"),
        ("stars", "numeric"),
    ]
    probe = pd.DataFrame({"review": DOCS + PROBES, "stars": 2.0})
    ours = scorer.score_records(probe.to_dict("records"))
    assert np.array_equal(ours.extras[0][1].reshape(len(probe), -1), model.decision_function(probe))
    assert np.abs(ours.proba - model.predict_proba(probe)).max() <= TOL
    # every fill path gives the same workspace: columns, object rows, CSV text
    columns = {"review": probe["review"].to_numpy(), "stars": probe["stars"].to_numpy()}
    by_columns = scorer.score_columns(columns)
    assert np.array_equal(by_columns.proba, ours.proba)
    by_rows = scorer.score_rows(probe.to_numpy(dtype=object))
    assert np.array_equal(by_rows.proba, ours.proba)


def test_one_text_input_named_text() -> None:
    model, scorer = _fitted("tfidf", "logreg", False)
    assert [(i.name, i.kind) for i in scorer.plan.inputs] == [("text", "text")]
    one = scorer.score_record({"text": "the cat sat"})
    assert np.array_equal(one.extras[0][1], model.decision_function(["the cat sat"]))


def test_csv_file_round_trip(tmp_path: Any) -> None:
    """Through the file reader (plain and quoted lines): empty cells are empty text."""
    model, scorer = _fitted("count+tfidf", "logreg", False)
    docs = [d for d in DOCS + PROBES if "\n" not in d and "\r" not in d]
    src = tmp_path / "in.csv"
    pd.DataFrame({"text": docs}).to_csv(src, index=False)
    out = tmp_path / "out.csv"
    scorer.score_csv_file(src, out)
    got = pd.read_csv(out, keep_default_na=False)
    want = model.predict_proba(docs)
    cols = [c for c in got.columns if c.startswith("proba_")]
    assert np.abs(got[cols].to_numpy(dtype=np.float64) - want).max() <= TOL


def test_chunks_stay_bounded() -> None:
    from mlbundle_runtime.inputs import chunk_rows_for

    assert chunk_rows_for(10) == 8192
    assert chunk_rows_for(100_000) * 100_000 * 8 <= 64 << 20
    assert chunk_rows_for(10**9) == 16


@HYPOTHESIS
@given(
    st.lists(
        st.text(
            alphabet=st.characters(codec="utf-8", categories=["L", "M", "N", "P", "Z", "S"]),
            max_size=80,
        ),
        min_size=1,
        max_size=12,
    )
)
def test_hypothesis_texts(docs: list[str]) -> None:
    for vec in ("tfidf-sublinear", "count-char-wb", "tfidf-char-wb-unicode", "count-stop-list"):
        model, scorer = _fitted(vec, "logreg", False)
        _assert_exact(model, scorer, docs, docs, vec)


def test_missing_text_is_refused_empty_is_not() -> None:
    _, scorer = _fitted("tfidf", "logreg", False)
    scorer.score_records([{"text": ""}])
    with pytest.raises(InputError, match=r"record 1, field 'text': expected text .*null"):
        scorer.score_records([{"text": None}])
    with pytest.raises(InputError, match=r"record 2, field 'text': expected text .*int 3"):
        scorer.score_records([{"text": "a"}, {"text": 3}])


# -- refusals ----------------------------------------------------------------------------


def _refusal(vectorizer: Any, match: str) -> None:
    model = make_pipeline(vectorizer, LogisticRegression()).fit(DOCS, Y)
    with pytest.raises(UnsupportedEstimatorError, match=match) as info:
        compile_estimators(model)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: CountVectorizer(analyzer=str.split), r"analyzer is a Python function.*'word'"),
        (lambda: CountVectorizer(preprocessor=str.lower), r"preprocessor is a Python function"),
        (lambda: TfidfVectorizer(tokenizer=str.split), r"tokenizer is a Python function"),
        (lambda: CountVectorizer(strip_accents=str.lower), r"strip_accents is a Python function"),
        (lambda: TfidfVectorizer(dtype=np.float32), r"dtype=float32 .*valid: float64"),
        (lambda: CountVectorizer(dtype=np.float32), r"LogisticRegression .* float32 features"),
        (lambda: CountVectorizer(encoding="latin-1"), r"encoding='latin-1'.*valid: encoding"),
        (lambda: CountVectorizer(decode_error="ignore"), r"decode_error='ignore'"),
    ],
)
def test_refusals(make: Any, match: str) -> None:
    _refusal(make(), match)


def test_file_input_refused(tmp_path: Any) -> None:
    paths = []
    for k, doc in enumerate(DOCS):
        p = tmp_path / f"{k}.txt"
        p.write_text(doc, encoding="utf-8")
        paths.append(str(p))
    for kind in ("filename", "file"):
        model = make_pipeline(CountVectorizer(input="filename"), LogisticRegression())
        model.fit(paths, Y)
        model[0].input = kind  # "file" fitted the same way, on open files
        with pytest.raises(UnsupportedEstimatorError, match=rf"input='{kind}' reads documents"):
            compile_estimators(model)


def test_tfidf_transformer_needs_counts() -> None:
    X = np.abs(np.random.default_rng(0).normal(size=(30, 4)))
    model = make_pipeline(TfidfTransformer(), LogisticRegression()).fit(X, np.arange(30) % 2)
    with pytest.raises(UnsupportedEstimatorError, match="only directly after a CountVectorizer"):
        compile_estimators(model)
    counted = make_pipeline(
        CountVectorizer(dtype=np.float32), TfidfTransformer(), LogisticRegression()
    ).fit(DOCS, Y)
    with pytest.raises(UnsupportedEstimatorError, match="float32 counts"):
        compile_estimators(counted)


def test_list_selection_refused() -> None:
    """A list selects a 2-D frame, which a vectorizer iterates as its column names."""
    frame = pd.DataFrame({"review": ["good film"]})
    extractor = ColumnTransformer([("t", CountVectorizer(), ["review"])]).fit(frame)
    assert list(extractor.named_transformers_["t"].vocabulary_) == ["review"]
    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    with pytest.raises(UnsupportedEstimatorError, match=r"given the columns \['review'\]"):
        compile_estimators(model, extractor)


def test_registered() -> None:
    names = {r.cls.__name__ for r in supported()}
    assert {"CountVectorizer", "TfidfVectorizer", "TfidfTransformer"} <= names


# -- the plan reader ---------------------------------------------------------------------


def _compiled() -> Any:
    model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2)), LogisticRegression()).fit(DOCS, Y)
    return compile_estimators(model)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda t: t.update(analyzer="sentence"), "'analyzer' must be one of"),
        (lambda t: t.update(token_pattern="(a)(b)"), "at most one group"),
        (lambda t: t.update(token_pattern="(["), "not a regular expression"),
        (lambda t: t.update(ngram_range=[2, 1]), "1 <= min <= max"),
        (lambda t: t.update(cols=t["cols"][:-1]), "distinct terms, one per column"),
        (lambda t: t.update(cols=[0] + t["cols"][1:]), "distinct columns after the inputs"),
        (lambda t: t.update(vocabulary=[1] * len(t["cols"])), "list of terms"),
        (lambda t: t.update(norm="max"), "'norm' must be"),
        (lambda t: t.update(idf={"array": "nope"}), "'idf' must name a float array"),
        (lambda t: t.update(binary="yes"), "'binary' must be true or false"),
        (lambda t: t.update(input=5), "'input' must be the index"),
        (lambda t: t.update(stop_words=[None]), "'stop_words' must be"),
    ],
)
def test_reader_refuses_bad_text_features(edit: Any, match: str) -> None:
    compiled = _compiled()
    header = compiled.header
    import copy

    header = copy.deepcopy(header)
    edit(header["text"][0])
    with pytest.raises(PlanError, match=match):
        parse_plan(header, compiled.arrays)


def test_reader_needs_a_feature_per_text_input() -> None:
    import copy

    compiled = _compiled()
    header = copy.deepcopy(compiled.header)
    del header["text"]
    with pytest.raises(PlanError, match="text input 'text' has no text feature"):
        parse_plan(header, compiled.arrays)


def test_plan_round_trips() -> None:
    compiled = _compiled()
    plan = compiled.load()
    assert plan.version >= (2, 1)  # text features since 2.1
    (feature,) = plan.text
    assert feature.analyzer == "word" and feature.norm == "l2" and feature.idf is not None
    assert Scorer(plan, kernels()).score_record({"text": "cat"}).proba is not None
