"""Stage 2: verify each artifact's sha256, then (and only then) unpickle it.

Unpickling runs code, so the hash comes first and a mismatch stops the build
with both hashes in the message. Loading also learns which scikit-learn
version pickled each estimator (scikit-learn stamps it into the pickle),
because a model unpickled under another version is not guaranteed to score
as it did when it was validated.

Two mistakes are caught before the compiler sees anything, because the
compiler would report them as something else: a file that is not a joblib
pickle at all (a CSV given as the model), and a model and extractor given in
the wrong slots (a transformer where the predictor belongs).
"""

from __future__ import annotations

import contextlib
import hashlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bundler.errors import ArtifactError


@dataclass(frozen=True)
class LoadedArtifact:
    """One verified and loaded joblib file."""

    role: str  # "model" | "extractor"
    path: Path
    sha256: str
    version: str
    estimator: Any
    sklearn_version: str | None  # as stamped in the pickle
    size: int

    @property
    def algorithm(self) -> str:
        return type(self.estimator).__name__


@dataclass(frozen=True)
class Artifacts:
    """The stage's output: the model and the optional feature extractor."""

    model: LoadedArtifact
    extractor: LoadedArtifact | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)


def sha256_file(path: Path) -> str:
    """Streamed sha256, so large artifacts do not need to fit in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def _capture_pickle_versions() -> Iterator[list[str]]:
    """Record ``_sklearn_version`` as scikit-learn's ``__setstate__`` consumes it."""
    from sklearn.base import BaseEstimator

    seen: list[str] = []
    original = BaseEstimator.__setstate__

    def spy(self: Any, state: dict[str, Any]) -> None:
        if isinstance(state, dict) and "_sklearn_version" in state:
            seen.append(str(state["_sklearn_version"]))
        original(self, state)

    BaseEstimator.__setstate__ = spy  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        BaseEstimator.__setstate__ = original  # type: ignore[method-assign]


def verify_hash(path: Path, expected: str, role: str) -> str:
    """Refuse a file whose sha256 differs from the one the spec pinned."""
    if not path.is_file():
        raise ArtifactError(f"{role} artifact {path}: file not found")
    actual = sha256_file(path)
    if actual != expected.lower():
        raise ArtifactError(
            f"{role} artifact {path}: sha256 mismatch, refusing to unpickle it.\n"
            f"  expected {expected.lower()}\n  actual   {actual}\n"
            "If this file is the intended new version, put its actual hash in the spec."
        )
    return actual


#: How joblib files begin: a pickle (protocol 2 or later) or one of joblib's compressors.
_JOBLIB_MAGIC: tuple[bytes, ...] = (
    b"\x80",  # pickle protocol >= 2 (joblib.dump without compression)
    b"\x78\x01",  # zlib, by level
    b"\x78\x5e",
    b"\x78\x9c",
    b"\x78\xda",
    b"\x1f\x8b",  # gzip
    b"BZh",  # bz2
    b"\xfd7zXZ\x00",  # xz
    b"\x5d\x00\x00",  # lzma
    b"\x04\x22\x4d\x18",  # lz4
    b"ZF",  # joblib < 0.10 zlib files
)


def describe_start(head: bytes) -> str:
    """The first bytes of a file as a person recognises them: text if they are text, else hex."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if text and text.isprintable():
        return repr(text)
    return "bytes " + head[:8].hex(" ")


def check_joblib_file(path: Path, role: str) -> None:
    """Refuse a file that cannot be a joblib pickle, before unpickling turns it into a riddle.

    A CSV or text file given as the model would otherwise fail inside pickle with a message
    such as "pop from empty list"; its first bytes say what it is.
    """
    if not path.is_file():
        raise ArtifactError(
            f"{role} artifact {path} is not a file; expected a file written by joblib.dump"
        )
    with open(path, "rb") as f:
        head = f.read(16)
    if not head:
        raise ArtifactError(
            f"{role} artifact {path} is empty; expected a file written by joblib.dump"
        )
    if not head.startswith(_JOBLIB_MAGIC):
        raise ArtifactError(
            f"{role} artifact {path} is not a joblib/pickle file (it starts with "
            f"{describe_start(head)}); expected a file written by joblib.dump"
        )


def load_artifact(
    role: str, path: Path, expected_sha256: str | None, version: str = ""
) -> LoadedArtifact:
    """Verify (when a hash is given) and load one artifact."""
    import joblib
    import sklearn

    if expected_sha256 is not None:
        digest = verify_hash(path, expected_sha256, role)
    elif path.is_file():
        digest = sha256_file(path)
    else:
        raise ArtifactError(f"{role} artifact {path}: file not found")
    check_joblib_file(path, role)
    with _capture_pickle_versions() as versions, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # version mismatches are reported below, precisely
        try:
            est = joblib.load(path)
        except ModuleNotFoundError as exc:
            raise ArtifactError(
                f"{role} artifact {path} needs module {exc.name!r}, which is not installed "
                "in this build environment"
            ) from None
        except Exception as exc:  # noqa: BLE001 - any unpickling failure is the file's fault
            raise ArtifactError(f"{role} artifact {path}: cannot be loaded ({exc})") from None
    stamped = sorted(set(versions))
    if len(stamped) > 1:
        raise ArtifactError(
            f"{role} artifact {path} mixes estimators pickled by scikit-learn {', '.join(stamped)}"
        )
    trained = stamped[0] if stamped else None
    if trained is not None and trained != sklearn.__version__:
        raise ArtifactError(
            f"{role} artifact {path} was pickled by scikit-learn {trained}, but the build "
            f"environment has {sklearn.__version__}; scikit-learn does not guarantee the same "
            f"predictions across versions. Build with scikit-learn=={trained}."
        )
    return LoadedArtifact(
        role=role,
        path=path,
        sha256=digest,
        version=version,
        estimator=est,
        sklearn_version=trained,
        size=path.stat().st_size,
    )


def is_predictor(est: object) -> bool:
    """A classifier, regressor or outlier detector, or anything else with ``predict``.

    A Pipeline only has ``predict`` when its last step does, so a pipeline of
    transformers is not a predictor.
    """
    from sklearn.base import is_classifier, is_outlier_detector, is_regressor

    try:
        known = is_classifier(est) or is_regressor(est) or is_outlier_detector(est)
    except Exception:  # noqa: BLE001 - not an estimator at all: only predict() can tell
        known = False
    return known or hasattr(est, "predict")


def _kind(est: object) -> str:
    """What a loaded object is, in the words of the messages below."""
    if is_predictor(est):
        return "a predictor"
    if hasattr(est, "transform"):
        return "a transformer"
    return "not a scikit-learn estimator"


#: The keys artifacts are given by in a spec; ``bundle compile`` passes its option names.
SPEC_KEYS = {"model": "model.path", "extractor": "extractor.path"}


def check_roles(
    model: LoadedArtifact,
    extractor: LoadedArtifact | None,
    keys: dict[str, str] = SPEC_KEYS,
    where: str = "",
) -> None:
    """Refuse a model that cannot predict and an extractor that cannot transform.

    Checked before compiling: the compiler would report a transformer given as
    the model as an unsupported estimator, and point at the passthrough backend,
    which cannot help either; the real fault is which file went in which slot.
    ``where`` (the spec file) prefixes the message.
    """
    prefix = f"{where}: " if where else ""
    m_name = type(model.estimator).__name__
    m_ok = is_predictor(model.estimator)
    e_ok = extractor is None or hasattr(extractor.estimator, "transform")
    swapped = (
        extractor is not None
        and not m_ok
        and hasattr(model.estimator, "transform")
        and not e_ok
        and is_predictor(extractor.estimator)
    )
    if swapped:
        assert extractor is not None  # for the type checker: part of `swapped`
        e_name = type(extractor.estimator).__name__
        raise ArtifactError(
            f"{prefix}{keys['model']} and {keys['extractor']} look swapped: the model file "
            f"{model.path} holds a transformer ({m_name}) and the extractor file "
            f"{extractor.path} holds a predictor ({e_name}); give the predictor as the model "
            "and the transformer as the extractor"
        )
    if not m_ok:
        raise ArtifactError(
            f"{prefix}{keys['model']}: the model file {model.path} holds {_kind(model.estimator)} "
            f"({m_name}), not a predictor; the model must be a classifier, regressor or outlier "
            "detector, or a Pipeline ending in one (a feature transformer goes in "
            f"{keys['extractor']})"
        )
    if extractor is not None and not e_ok:
        e_name = type(extractor.estimator).__name__
        raise ArtifactError(
            f"{prefix}{keys['extractor']}: the extractor file {extractor.path} holds "
            f"{_kind(extractor.estimator)} ({e_name}), not a transformer; the extractor must "
            "have transform(), e.g. a ColumnTransformer or a Pipeline of transformers (a "
            f"Pipeline ending in the predictor goes in {keys['model']}, with no extractor)"
        )


def load_artifacts(spec: Any) -> Artifacts:
    """Stage entry: verify and load the spec's model and extractor, each in its right slot."""
    model = load_artifact("model", spec.model.path, spec.model.sha256, spec.model.version)
    extractor = None
    if spec.extractor is not None:
        extractor = load_artifact(
            "extractor", spec.extractor.path, spec.extractor.sha256, spec.extractor.version
        )
    check_roles(model, extractor, where=str(spec.path))
    return Artifacts(model=model, extractor=extractor)
