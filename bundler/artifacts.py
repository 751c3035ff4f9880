"""Stage 2: verify each artifact's sha256, then (and only then) unpickle it.

Unpickling runs code, so the hash comes first and a mismatch stops the build
with both hashes in the message. Loading also learns which scikit-learn
version pickled each estimator (scikit-learn stamps it into the pickle),
because a model unpickled under another version is not guaranteed to score
as it did when it was validated.
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


def load_artifacts(spec: Any) -> Artifacts:
    """Stage entry: verify and load the spec's model and extractor."""
    model = load_artifact("model", spec.model.path, spec.model.sha256, spec.model.version)
    extractor = None
    if spec.extractor is not None:
        extractor = load_artifact(
            "extractor", spec.extractor.path, spec.extractor.sha256, spec.extractor.version
        )
    return Artifacts(model=model, extractor=extractor)
