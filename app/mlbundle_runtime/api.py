"""The runtime API: the one door from an application to its model.

An application (the built-in CLI, the window, a user's own tool) loads the
model once and asks it for predictions; it never touches plans, kernels or
payload files. That seam is what lets the model be rebuilt, re-gated or
updated without a change to the application, and the application without
a new model::

    import mlbundle_runtime

    model = mlbundle_runtime.load()           # the bundled model, hash-checked
    p = model.predict({"island": "Dream", "bill_length_mm": 46.5, ...})
    p.label, p.probabilities                  # "Chinstrap", {"Adelie": 0.02, ...}

Everything here is numpy and the standard library; pandas is used only when
the caller passes a DataFrame (and so has imported pandas already).
"""

from __future__ import annotations

import copy
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from mlbundle_runtime.bundle import UPDATES_FILE, Bundle, open_bundle
from mlbundle_runtime.errors import BundleError
from mlbundle_runtime.files import Cancelled, FileResult
from mlbundle_runtime.gate import GateResult
from mlbundle_runtime.inputs import InputError

if TYPE_CHECKING:
    from mlbundle_runtime.scorer import MultiScores, Scores

__all__ = [
    "BundleError",
    "Cancelled",
    "FileResult",
    "GateResult",
    "Input",
    "InputError",
    "Model",
    "Outputs",
    "Prediction",
    "Predictions",
    "load",
]


@dataclass(frozen=True)
class Input:
    """One input the model takes, as the model record describes it.

    ``training_range`` is what the model saw in training (``{"min": .., "max": ..}``
    for a number, ``{"categories": [...]}`` for a category), or None when the record
    has none: a form can show it as a hint, and a value outside it still scores.
    """

    name: str
    kind: str  # "numeric" | "categorical"
    categories: tuple[str, ...] = ()
    training_range: dict[str, Any] | None = None
    unit: str = ""
    description: str = ""


@dataclass(frozen=True)
class Outputs:
    """What the model answers: the task, its classes, the CSV columns it writes, and the
    model owner's words on what the outputs mean and how to use them (``consume``)."""

    task: str  # "classification" | "regression" (or what the plan names)
    classes: tuple[Any, ...]
    columns: tuple[str, ...]
    description: str = ""
    consume: str = ""
    #: A classifier's prediction whose top probability is under this is uncertain
    #: (``Prediction.uncertain``); None when the model owner set no threshold.
    uncertain_below: float | None = None
    #: A multi-output model's targets, one ``Outputs`` each (its ``name``, task, classes
    #: and columns), in the order of ``y``; empty for one output.
    targets: tuple[Outputs, ...] = ()
    #: The target's name (in ``targets``; empty for a single-output model).
    name: str = ""


@dataclass(frozen=True)
class Prediction:
    """The answer for one record.

    ``label``: the predicted class (or, for a regressor, the value); ``probabilities``:
    class -> probability for classifiers that have them, else None; ``value``: the
    regression value, else None; ``extras``: further scores such as
    ``decision_function`` (a float, or label -> float), as in the JSON output;
    ``warnings``: one sentence per input outside its training range (or a category
    the model never saw), which still scores but deserves a second look;
    ``uncertain``: the top probability is under ``Outputs.uncertain_below``.

    A multi-output model answers one ``Prediction`` per target in ``outputs`` (target name
    -> its label or value and probabilities); ``label`` is then the tuple of the targets'
    predictions in order (a row of scikit-learn's 2-D ``predict``), and ``probabilities``
    and ``value`` are None.
    """

    label: Any
    probabilities: dict[Any, float] | None
    value: float | None
    extras: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    uncertain: bool = False
    outputs: dict[str, Prediction] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: what ``predict --json`` prints (class names as strings); for several
        targets ``prediction`` is ``{target: label or value}`` and ``probabilities``
        ``{target: {class: probability}}`` (the targets that have them)."""
        if self.outputs:
            each = {name: p.to_dict() for name, p in self.outputs.items()}
            out: dict[str, Any] = {"prediction": {n: d["prediction"] for n, d in each.items()}}
            proba = {n: d["probabilities"] for n, d in each.items() if "probabilities" in d}
            if proba:
                out["probabilities"] = proba
            out["warnings"] = list(self.warnings)
            return out
        out = {"prediction": self.value if self.value is not None else self.label}
        if self.probabilities is not None:
            out["probabilities"] = {str(c): p for c, p in self.probabilities.items()}
        out.update(self.extras)
        if self.uncertain:
            out["uncertain"] = True
        out["warnings"] = list(self.warnings)
        return out


@dataclass(frozen=True)
class Predictions:
    """Answers for many rows, column by column (cheap for a whole file's worth).

    ``labels``: one per row (class labels, or regression values); ``probabilities``:
    an (n, len(classes)) array or None; ``values``: regression values or None;
    ``extras``: name -> array, (n,) for a one-column score, (n, k) for one per label;
    ``warnings``: per row, as ``Prediction.warnings``; ``uncertain``: per row, as
    ``Prediction.uncertain`` (None when the model sets no threshold).
    ``predictions[i]`` is row ``i`` as a ``Prediction``.

    A multi-output model's answers are in ``outputs`` (target name -> its ``Predictions``);
    ``labels`` holds each row's tuple of predictions, ``values`` the (n, targets) array of
    a regressor's, and ``probabilities`` is None.
    """

    task: str
    classes: tuple[Any, ...]
    labels: list[Any]
    probabilities: np.ndarray | None
    values: np.ndarray | None
    extras: dict[str, np.ndarray]
    warnings: list[tuple[str, ...]]
    uncertain: np.ndarray | None
    _scores: Scores | MultiScores = field(repr=False, compare=False)
    _uncertain_below: float | None = field(default=None, repr=False, compare=False)
    outputs: dict[str, Predictions] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> Prediction:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"prediction {i} of {n}")
        return _prediction(self._scores, i % n, self._uncertain_below)

    def __iter__(self) -> Iterator[Prediction]:
        return (_prediction(self._scores, r, self._uncertain_below) for r in range(len(self)))

    def to_records(self) -> list[dict[str, Any]]:
        """Each row as ``Prediction.to_dict()`` would give it: a JSON-ready list."""
        return [p.to_dict() for p in self]


class Model:
    """A loaded model: hash-checked, bound to its kernels, ready for many predictions.

    Make one with ``load()`` and keep it: loading reads and checks the plan; each
    prediction after that only runs the kernels.
    """

    def __init__(self, bundle: Bundle, scorer: Any) -> None:
        """Use ``load()``; this binds an opened bundle to its scorer."""
        self._bundle = bundle
        self._scorer = scorer
        self._record: dict[str, Any] | None = None
        # which model this is (``load()`` sets them for an app that takes model packs)
        self._app = bundle
        self._origin = "bundled"
        self._served = str(bundle.info.get("model_version", ""))
        self._folder: Path | None = None
        self._warnings: tuple[str, ...] = ()
        self._trial: Any = None  # mlbundle_runtime.trial.Trial while a trial runs
        plan = bundle.plan
        if hasattr(scorer, "ranges"):
            from mlbundle_runtime.ranges import RangeCheck

            scorer.ranges = RangeCheck.from_record(
                plan.input_names,
                [i.kind for i in plan.inputs],
                [i.categories for i in plan.inputs],
                self._raw_record().get("inputs", []),
            )
        threshold = self._raw_record().get("outputs", {}).get("uncertain_below")
        self._uncertain_below = (
            float(threshold) if isinstance(threshold, int | float) and plan.output.proba else None
        )

    def __repr__(self) -> str:
        return (
            f"<Model {self.name} {self.version} ({'approved' if self.approved else 'UNAPPROVED'})>"
        )

    def _set_origin(
        self,
        origin: str,
        app: Bundle,
        version: str,
        folder: Path | None,
        warnings: Sequence[str],
    ) -> None:
        """Where this model comes from (the store's ``resolve``): the app it serves, the
        model version, the installed pack's folder, and what was skipped on the way."""
        self._origin, self._app, self._served = origin, app, version
        self._folder, self._warnings = folder, tuple(warnings)

    def _set_trial(self, trial: Any) -> None:
        self._trial = trial

    # -- what the model is ------------------------------------------------
    @property
    def info(self) -> dict[str, Any]:
        """The app's identity: name, version (the app's), title, backend; and the served
        model's ``model_version`` and ``approval`` (an installed pack's, if one is active)."""
        info = {k: v for k, v in self._app.info.items() if k != "files"}
        info["model_version"] = self._served
        info["approval"] = self._bundle.info.get("approval", info.get("approval"))
        return info

    @property
    def name(self) -> str:
        return self._app.name

    @property
    def version(self) -> str:
        """The version of the model actually served: the bundled model's, or the installed
        pack's (the application's own version is ``info["version"]``)."""
        return self._served

    @property
    def origin(self) -> str:
        """``"bundled"`` (the model frozen into the app) or ``"pack"`` (an installed pack)."""
        return self._origin

    @property
    def trial(self) -> str | None:
        """The version of the model in a silent trial beside this one, or None."""
        return None if self._trial is None else str(self._trial.version)

    @property
    def source(self) -> str:
        """One sentence: which model is served and where it comes from."""
        if self._origin == "pack":
            text = f"model {self._served} from the installed pack in {self._folder}"
        else:
            text = f"model {self._served} bundled with {self.name} {self._app.info.get('version')}"
        if self._trial is not None:
            text += f"; model {self._trial.version} in trial beside it (only logged)"
        return text

    @property
    def warnings(self) -> tuple[str, ...]:
        """What ``load()`` skipped on the way to this model (a damaged installed pack, a
        damaged state file), one sentence each; empty when nothing was skipped."""
        return self._warnings

    @property
    def approved(self) -> bool:
        """True when the served model was approved for release (the bundled model: a
        release build's; an installed pack: its own approval)."""
        return self._bundle.approved

    @property
    def record(self) -> dict[str, Any]:
        """The model record (versions, inputs, outputs, gate, audit), read on first use and
        hash-checked; a copy, so a caller's edit cannot change what the model reports."""
        if self._record is None:
            self._record = self._bundle.record()
        return copy.deepcopy(self._record)

    @property
    def inputs(self) -> tuple[Input, ...]:
        """The inputs in the order ``predict_many`` takes array columns."""
        described = {i.get("name"): i for i in self._raw_record().get("inputs", [])}
        out = []
        for spec in self._bundle.plan.inputs:
            meta = described.get(spec.name, {})
            out.append(
                Input(
                    name=spec.name,
                    kind=spec.kind,
                    categories=tuple(spec.categories),
                    training_range=meta.get("training_range"),
                    unit=str(meta.get("unit") or ""),
                    description=str(meta.get("description") or ""),
                )
            )
        return tuple(out)

    @property
    def outputs(self) -> Outputs:
        from mlbundle_runtime.plan import target_columns
        from mlbundle_runtime.scorer import output_columns

        plan_out = self._bundle.plan.output
        meta = self._raw_record().get("outputs", {})
        return Outputs(
            task=plan_out.task,
            classes=tuple(plan_out.classes),
            columns=tuple(output_columns(plan_out)),
            description=str(meta.get("description") or ""),
            consume=str(meta.get("consume") or ""),
            uncertain_below=self._uncertain_below,
            targets=tuple(
                Outputs(o.task, tuple(o.classes), tuple(target_columns(o)), name=o.name)
                for o in plan_out.outputs
            ),
        )

    # -- predictions ------------------------------------------------------
    def predict(self, record: Mapping[str, object]) -> Prediction:
        """Score one record keyed by input name (None or NaN: missing). Raises
        ``InputError`` naming the field when a value cannot be used."""
        if not isinstance(record, Mapping):
            return self.predict_many([record])[0]  # the records' own message
        if self._trial is not None:
            return self._predict_trial(record)
        score_record = getattr(self._scorer, "score_record", None)
        scores = score_record(record) if score_record else self._scorer.score_records([record])
        return _prediction(scores, 0, self._uncertain_below)

    def _score_one(self, record: Mapping[str, object]) -> Scores:
        score_record = getattr(self._scorer, "score_record", None)
        return score_record(record) if score_record else self._scorer.score_records([record])

    def _predict_trial(self, record: Mapping[str, object]) -> Prediction:
        """``predict`` with a trial running: the candidate scores the same record after the
        active model, and only the active model's answer is returned."""
        trial = self._trial
        scorer = trial.scorer
        if scorer is None and hasattr(self._scorer, "encoder"):
            from mlbundle_runtime.trial import TrialScorer

            scorer = trial.scorer = TrialScorer(self._scorer, trial)
        if scorer is not None:
            scores = scorer.score_record(record, lambda: [record])
            return _prediction(scores, 0, self._uncertain_below)
        from time import perf_counter

        start = perf_counter()
        scores = self._score_one(record)
        seconds = perf_counter() - start
        candidate = self._trial.candidate
        self._trial.compare(
            "predict", scores, seconds, lambda: candidate._score_one(record), lambda: [record]
        )
        return _prediction(scores, 0, self._uncertain_below)

    def predict_many(self, data: Any) -> Predictions:
        """Score many rows given as a sequence of records (dicts), a mapping of input name
        to column, a pandas DataFrame, or a 2-D numpy array in ``inputs`` order.

        Errors name the record or row counted from 1, and the field.
        """
        if self._trial is None:
            return _predictions(self._score_many(data), self._uncertain_below)
        from time import perf_counter

        start = perf_counter()
        scores = self._score_many(data)
        seconds = perf_counter() - start
        candidate = self._trial.candidate
        self._trial.compare(
            "predict_many",
            scores,
            seconds,
            lambda: candidate._score_many(data),
            lambda: _as_records(data, self._names()),
        )
        return _predictions(scores, self._uncertain_below)

    def _score_many(self, data: Any) -> Scores:
        scorer = self._scorer
        if _is_dataframe(data) or isinstance(data, Mapping):
            if hasattr(scorer, "score_columns"):
                scores = scorer.score_columns(data)
            else:
                scores = scorer.score_records(_columns_to_records(data, self._names()))
        elif isinstance(data, np.ndarray):
            if hasattr(scorer, "score_rows"):
                scores = scorer.score_rows(data)
            else:
                scores = scorer.score_records(_rows_to_records(data, self._names()))
        elif isinstance(data, Sequence) and not isinstance(data, str | bytes):
            scores = scorer.score_records(data)
        else:
            raise InputError(
                "expected records (a list of dicts), columns (a dict or DataFrame) or a 2-D "
                f"array, got {type(data).__name__}"
            )
        return scores

    def predict_csv(
        self,
        src: str | os.PathLike[str],
        dst: str | os.PathLike[str] | TextIO,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Score the CSV file ``src`` (a header of input names) into ``dst``, a path or an
        open text stream; return the rows scored. A path is written to a temporary file
        and renamed, so a failure leaves no half-written output. ``progress(rows,
        bytes_read)`` is called after each chunk, for a progress line or bar."""
        out = dst if hasattr(dst, "write") else Path(dst)  # type: ignore[arg-type]
        return int(self._scorer.score_csv_file(Path(src), out, progress))

    def predict_file(
        self,
        src: str | os.PathLike[str],
        dst: str | os.PathLike[str],
        *,
        keep: Sequence[str] = (),
        strict: bool = False,
        input_format: str | None = None,
        output_format: str | None = None,
        progress: Callable[[int, int], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> FileResult:
        """Score a CSV or JSON Lines file (by extension, or ``input_format``) into another
        (``output_format``); ``-`` is stdin or stdout. Returns a ``FileResult``.

        A row that cannot be scored keeps its place with its reason in the ``error``
        column (key), and the others are scored; ``strict=True`` raises ``InputError``
        at the first bad row instead and writes nothing. ``keep`` copies columns (an
        ID, say) through to the output. ``progress(rows, bytes_read)`` is called after
        each chunk, from the calling thread; setting ``cancel`` (from any thread)
        raises ``Cancelled`` at the next chunk. The output is written to a temporary
        file and renamed, so an error, a cancel or an interrupt leaves it as it was.
        """
        from mlbundle_runtime.files import score_file

        scorer = self._scorer
        if self._trial is not None and hasattr(scorer, "run"):
            from mlbundle_runtime.trial import TrialScorer

            scorer = TrialScorer(scorer, self._trial)
        return score_file(
            scorer,
            src,
            dst,
            input_format=input_format,
            output_format=output_format,
            keep=keep,
            strict=strict,
            uncertain_below=self._uncertain_below,
            progress=progress,
            cancel=cancel,
        )

    # -- the release gate -------------------------------------------------
    def selftest(self) -> GateResult:
        """Run the release gate inside this application: the bundled e2e rows must score as
        at build time, and the metric on the confidence set must lie in its accepted range.
        Returns the result (``.passed``, ``.summary()``); damaged gate files raise."""
        from mlbundle_runtime.gate import GateConfig, read_table, run_gate

        bundle = self._bundle
        config = GateConfig.from_json(bundle.read_json("gate.json"))
        inputs = bundle.plan.input_names
        return run_gate(
            self._scorer,
            config,
            read_table(bundle.read_bytes(config.e2e_file), config.e2e_file, inputs),
            read_table(bundle.read_bytes(config.confidence_file), config.confidence_file, inputs),
        )

    # -- helpers ----------------------------------------------------------
    def _raw_record(self) -> dict[str, Any]:
        if self._record is None:
            # a bare plan folder (the compiler's output, no build around it) has no record
            has_record = "record.json" in self._bundle.info.get("files", {})
            self._record = self._bundle.record() if has_record else {}
        return self._record

    def _names(self) -> tuple[str, ...]:
        return self._bundle.plan.input_names


def load(path: str | os.PathLike[str] | None = None) -> Model:
    """The model: from the payload folder ``path`` (what ``bundle prepare`` or a build
    writes), else from the folder ``MLBUNDLE_PAYLOAD`` names, else the one frozen into
    this application. Every file is checked against the hashes recorded at build time.

    An app built with ``[updates]`` serves its active installed model pack instead, once
    its signature, hashes and fit to the app are checked again; a pack that fails is
    skipped with a one-line warning (``Model.warnings``) for the next valid one, at last
    the bundled model (``mlbundle_runtime.store``).

    Raises ``BundleError`` when the bundle is missing, damaged, modified, or its
    kernels cannot be loaded.

    >>> import mlbundle_runtime
    >>> model = mlbundle_runtime.load("dist/penguins/payload")  # doctest: +SKIP
    """
    bundle = open_bundle(path)
    if UPDATES_FILE in bundle.info.get("files", {}):
        # an app that takes model packs: the active installed pack, if one still verifies
        from mlbundle_runtime.store import resolve

        return resolve(bundle)
    return Model(bundle, bundle.scorer())


# -- building results ------------------------------------------------------
def _prediction(
    scores: Scores | MultiScores, r: int, uncertain_below: float | None = None
) -> Prediction:
    if hasattr(scores, "names"):  # a MultiScores (the scorer is not imported at start)
        return _multi_prediction(scores, r)  # type: ignore[arg-type]
    value = float(scores.values[r]) if scores.values is not None else None
    if value is not None:
        label: Any = value
    else:
        assert scores.label_index is not None
        label = scores.classes[int(scores.label_index[r])]
    probabilities = None
    if scores.proba is not None:
        probabilities = {
            c: float(p) for c, p in zip(scores.classes, scores.proba[r].tolist(), strict=True)
        }
    extras: dict[str, Any] = {}
    for extra, values in scores.extras:
        row = values[r].tolist()
        extras[extra.name] = dict(zip(extra.labels, row, strict=True)) if extra.labels else row[0]
    uncertain = (
        uncertain_below is not None
        and probabilities is not None
        and max(probabilities.values(), default=0.0) < uncertain_below
    )
    return Prediction(
        label=label,
        probabilities=probabilities,
        value=value,
        extras=extras,
        warnings=scores.warnings[r] if scores.warnings is not None else (),
        uncertain=uncertain,
    )


def _multi_prediction(scores: MultiScores, r: int) -> Prediction:
    """Row ``r`` of a multi-output model: one ``Prediction`` per target."""
    each = {n: _prediction(s, r) for n, s in zip(scores.names, scores.outputs, strict=True)}
    return Prediction(
        label=tuple(p.label for p in each.values()),
        probabilities=None,
        value=None,
        warnings=scores.warnings[r] if scores.warnings is not None else (),
        outputs=each,
    )


def _multi_predictions(scores: MultiScores) -> Predictions:
    each = {n: _predictions(s) for n, s in zip(scores.names, scores.outputs, strict=True)}
    n = len(scores)
    values = None
    if scores.task == "regression":
        values = np.column_stack([s.values for s in scores.outputs])
    return Predictions(
        task=scores.task,
        classes=(),
        labels=scores.labels(),
        probabilities=None,
        values=values,
        extras={},
        warnings=list(scores.warnings) if scores.warnings is not None else [()] * n,
        uncertain=None,
        _scores=scores,
        outputs=each,
    )


def _predictions(scores: Scores | MultiScores, uncertain_below: float | None = None) -> Predictions:
    if hasattr(scores, "names"):
        return _multi_predictions(scores)  # type: ignore[arg-type]
    extras = {
        extra.name: (values if extra.labels else values[:, 0]) for extra, values in scores.extras
    }
    n = len(scores)
    uncertain = None
    if uncertain_below is not None and scores.proba is not None:
        top = scores.proba.max(axis=1) if scores.proba.shape[1] else np.zeros(n)
        uncertain = top < uncertain_below
    return Predictions(
        task=scores.task,
        classes=tuple(scores.classes),
        labels=scores.labels(),
        probabilities=scores.proba,
        values=scores.values,
        extras=extras,
        warnings=list(scores.warnings) if scores.warnings is not None else [()] * n,
        uncertain=uncertain,
        _scores=scores,
        _uncertain_below=uncertain_below,
    )


def _is_dataframe(data: Any) -> bool:
    """A pandas DataFrame, recognised without importing pandas (the caller has, if so)."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(data, pandas.DataFrame)


def _as_records(data: Any, names: Sequence[str]) -> list[Any]:
    """The rows of ``predict_many``'s data as records, for a trial's log of inputs."""
    if _is_dataframe(data) or isinstance(data, Mapping):
        return _columns_to_records(data, names)
    if isinstance(data, np.ndarray):
        return _rows_to_records(data, names)
    return list(data)


def _columns_to_records(data: Any, names: Sequence[str]) -> list[dict[str, object]]:
    """Columns as records, for a scorer that takes records only (passthrough)."""
    missing = [n for n in names if n not in data]
    if missing:
        raise InputError(f"columns lack input(s) {', '.join(missing)}; expected {', '.join(names)}")
    cols = [np.asarray(data[n]).tolist() for n in names]
    return [_record(names, row) for row in zip(*cols, strict=True)]


def _rows_to_records(rows: np.ndarray, names: Sequence[str]) -> list[dict[str, object]]:
    if rows.ndim != 2 or rows.shape[1] != len(names):
        raise InputError(
            f"expected rows of {len(names)} inputs ({', '.join(names)}), "
            f"got an array of shape {rows.shape}"
        )
    return [_record(names, row) for row in rows.tolist()]


def _record(names: Sequence[str], cells: Sequence[object]) -> dict[str, object]:
    """A row as a record; NaN (a DataFrame's or an array's missing cell) becomes None, as
    the column and array paths read it."""
    return {
        n: None if isinstance(v, float) and v != v else v for n, v in zip(names, cells, strict=True)
    }
