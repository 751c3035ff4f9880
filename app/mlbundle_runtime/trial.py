"""Silent trials: a candidate model scores beside the active one and is only logged.

While a trial runs, each prediction is scored by the active model (whose output is the
only one returned) and then by the candidate on the same rows. The comparison goes on a
queue; a background thread writes it as JSON Lines to ``<data>/logs/trial.jsonl``
(one line per row: both labels, both probabilities or values, each model's time per
row, and the inputs only when the trial was installed with ``log_inputs``), rotating
the file at ``MAX_LOG_BYTES`` (``.1`` and ``.2`` are kept). The queue is flushed at
exit. The caller pays the candidate's scoring and a queue put, nothing else; an app
with no trial never imports this module.
"""

from __future__ import annotations

import atexit
import copy
import functools
import json
import math
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlbundle_runtime.inputs import InputError
from mlbundle_runtime.scorer import _NO_ROWS, _record_at

if TYPE_CHECKING:
    from mlbundle_runtime.api import Model
    from mlbundle_runtime.scorer import Scores

__all__ = ["MAX_LOG_BYTES", "Trial", "TrialLog", "TrialReport", "read_report"]

#: The trial log is rotated when it passes this size; two older files are kept.
MAX_LOG_BYTES = 8 << 20
#: The writer thread collects this long after a first comparison before writing a batch.
BATCH_SECONDS = 0.05
KEEP = 2
#: The log's probabilities are rounded to this many decimals: JSON's shortest text of a
#: full-precision float costs twice as long to write, and the report's largest difference
#: is taken from the unrounded outputs (the running totals), not from the log.
PROBA_DECIMALS = 6
#: Beside the log: the trial's running totals, so that the report counts every row
#: compared, also those in log files rotated away.
SUMMARY_FILE = "trial-summary.json"


class TrialLog:
    """The trial's JSON Lines file, written by one background thread."""

    def __init__(self, path: Path, max_bytes: int = MAX_LOG_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._failed: str | None = None

    def put(self, item: Callable[[], list[dict[str, Any]]]) -> None:
        """Queue one comparison (a function giving its lines, run on the writer thread)."""
        if self._thread is None:
            self._start()
        self._queue.put(item)

    def flush(self) -> None:
        """Wait until everything queued so far is on disk."""
        if self._thread is None:
            return
        done = threading.Event()
        self._queue.put(done)
        done.wait(10)

    def close(self) -> None:
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(10)
        self._thread = None

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="mlbundle-trial-log", daemon=True
                )
                self._thread.start()
                atexit.register(self.close)

    def _run(self) -> None:
        out = None
        size = 0
        while True:
            item = self._queue.get()
            if item is None:
                break
            if isinstance(item, threading.Event):
                if out is not None:
                    out.flush()
                item.set()
                continue
            items = [item]
            # wake a few times a second, not once per prediction: a burst of predictions
            # is formatted in one go, with fewer switches away from the scoring thread
            time.sleep(BATCH_SECONDS)
            stop = False
            while True:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                if isinstance(more, threading.Event):
                    self._queue.put(more)  # after this batch is written
                    break
                items.append(more)
            try:
                if out is None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    out = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
                    size = out.tell()
                totals = _Totals()
                for each in items:
                    if isinstance(each, tuple):  # a comparison (Trial.compare)
                        text = _comparison_text(*each)
                        totals.add(*each)
                    else:
                        text = _text(each())
                    if size and size + len(text) > self.max_bytes:
                        out.close()
                        _rotate(self.path)
                        out = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
                        size = 0
                    out.write(text)
                    size += len(text)
                out.flush()
                if totals.calls:
                    totals.merge_into(self.path.with_name(SUMMARY_FILE))
            except (OSError, ValueError, TypeError) as exc:  # a full disk must not stop scoring
                self._failed = str(exc)
            if stop:
                break
        if out is not None:
            out.close()


def _text(lines: str | list[dict[str, Any]]) -> str:
    if isinstance(lines, str):
        return lines
    return "".join(
        json.dumps(line, separators=(",", ":"), allow_nan=False) + "\n" for line in lines
    )


def _rotate(path: Path) -> None:
    for n in range(KEEP, 0, -1):
        older = path.with_name(f"{path.name}.{n}")
        newer = path.with_name(f"{path.name}.{n - 1}") if n > 1 else path
        if newer.exists():
            os.replace(newer, older)


class Trial:
    """A candidate model and where its comparisons go."""

    def __init__(
        self, candidate: Model, version: str, active: str, log: TrialLog, log_inputs: bool
    ) -> None:
        self.candidate = candidate
        self.version = version
        self.active = active
        self.log = log
        self.log_inputs = log_inputs
        self.calls = 0
        #: The active scorer wrapped for single predictions (``TrialScorer``), made once.
        self.scorer: TrialScorer | None = None
        #: Names this process's calls in the log, so that the report counts calls across runs.
        self.session = f"{os.getpid()}-{int(time.time() * 1000)}"

    def compare(
        self,
        kind: str,
        active: Scores,
        active_seconds: float,
        score: Callable[[], Scores],
        inputs: Callable[[], list[Any]] | None,
    ) -> None:
        """Score the candidate (``score()``) and queue the comparison with ``active``."""
        start = time.perf_counter()
        error = None
        try:
            candidate: Scores | None = score()
        except (InputError, ValueError) as exc:
            candidate, error = None, str(exc)
        seconds = time.perf_counter() - start
        self.calls += 1
        call = self.calls
        rows = inputs() if inputs is not None and self.log_inputs else None
        self.log.put(
            (
                kind,
                (self.session, call),
                time.time(),
                (self.active, self.version),
                active,
                active_seconds,
                candidate,
                seconds,
                error,
                rows,
            )
        )


def _comparison_text(
    kind: str,
    call: tuple[str, int],
    stamp: float,
    versions: tuple[str, str],
    active: Scores,
    active_seconds: float,
    candidate: Scores | None,
    candidate_seconds: float,
    error: str | None,
    inputs: list[Any] | None,
) -> str:
    """One comparison as JSON Lines: a line per row for a single prediction, one line
    with a column per output for a batch (a file's chunk: formatting it row by row would
    cost more than the candidate's scoring)."""
    n = len(active)
    if n == 1:
        return _lines(
            kind,
            call,
            stamp,
            versions,
            active,
            active_seconds,
            candidate,
            candidate_seconds,
            error,
            inputs,
        )
    line: dict[str, Any] = {
        "time": _iso(stamp),
        "session": call[0],
        "call": call[1],
        "via": kind,
        "active_version": versions[0],
        "candidate_version": versions[1],
        "rows": n,
        "active": _columns(active),
        "candidate": None if candidate is None else _columns(candidate),
        "active_us": round(1e6 * active_seconds / max(n, 1), 2),
        "candidate_us": round(1e6 * candidate_seconds / max(n, 1), 2),
    }
    if error is not None:
        line["candidate_error"] = error
    if inputs is not None:
        line["inputs"] = [_plain(row) for row in inputs]
    return json.dumps(line, separators=(",", ":"), allow_nan=False) + "\n"


def _columns(scores: Scores) -> dict[str, Any]:
    """A batch's outputs column by column: labels, and probabilities or values (a
    non-finite number as null, which JSON has instead)."""
    if scores.label_index is not None:
        plain = _label_values(tuple(scores.classes))
        labels = [plain[i] for i in scores.label_index.tolist()]
    else:
        labels = [_plain(v) for v in scores.labels()]
    out: dict[str, Any] = {"labels": labels}
    if scores.proba is not None:
        out["proba"] = _finite_lists(np.round(scores.proba, PROBA_DECIMALS))
    if scores.values is not None:
        out["values"] = _finite_lists(scores.values)
    return out


def _finite_lists(values: np.ndarray) -> list[Any]:
    if np.isfinite(values).all():
        return values.tolist()
    return np.where(np.isfinite(values), values, None).tolist()  # object array: None stays


class _Totals:
    """One batch's comparisons added up (vectorised), then merged into the summary file."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.versions: tuple[str, str] | None = None
        self.rows = self.agreed = self.calls = self.errors = 0
        self.max_proba: float | None = None
        self.max_value: float | None = None
        self.active_us = self.candidate_us = 0.0

    def add(
        self,
        kind: str,
        call: tuple[str, int],
        stamp: float,
        versions: tuple[str, str],
        active: Scores,
        active_seconds: float,
        candidate: Scores | None,
        candidate_seconds: float,
        error: str | None,
        inputs: list[Any] | None,
    ) -> None:
        if self.versions not in (None, versions):  # a trial changed mid-batch: keep the last
            self._reset()
        self.versions = versions
        self.calls += 1
        n = len(active)
        if candidate is None:
            self.errors += n
            return
        self.rows += n
        self.active_us += 1e6 * active_seconds
        self.candidate_us += 1e6 * candidate_seconds
        if active.values is not None and candidate.values is not None:
            diff = np.abs(active.values - candidate.values)
            self.agreed += int(np.count_nonzero(diff <= 1e-9))
            self.max_value = _fmax(self.max_value, diff)
        elif (
            active.label_index is not None
            and candidate.label_index is not None
            and tuple(active.classes) == tuple(candidate.classes)
        ):
            self.agreed += int(np.count_nonzero(active.label_index == candidate.label_index))
        else:
            same = [a == c for a, c in zip(active.labels(), candidate.labels(), strict=True)]
            self.agreed += sum(same)
        if active.proba is not None and candidate.proba is not None:
            self.max_proba = _fmax(self.max_proba, np.abs(active.proba - candidate.proba))

    def merge_into(self, path: Path) -> None:
        """Add these totals to the summary file (read, add, write beside, rename), under a
        lock: several processes of the app may run the trial at once."""
        from filelock import FileLock

        assert self.versions is not None
        with FileLock(str(path) + ".lock", timeout=10):
            try:
                old = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                old = None
            keys = ("rows", "agreed", "calls", "candidate_errors", "active_us", "candidate_us")
            if not isinstance(old, dict) or not all(
                isinstance(old.get(k), int | float) for k in keys
            ):
                old = None
            if old is None or [old.get("active"), old.get("candidate")] != list(self.versions):
                old = dict.fromkeys(keys, 0)
                old.update(max_proba_diff=None, max_value_diff=None)
            new = {
                "format": 1,
                "active": self.versions[0],
                "candidate": self.versions[1],
                "rows": old["rows"] + self.rows,
                "agreed": old["agreed"] + self.agreed,
                "calls": old["calls"] + self.calls,
                "candidate_errors": old["candidate_errors"] + self.errors,
                "active_us": old["active_us"] + self.active_us,
                "candidate_us": old["candidate_us"] + self.candidate_us,
                "max_proba_diff": _max_of(old.get("max_proba_diff"), self.max_proba),
                "max_value_diff": _max_of(old.get("max_value_diff"), self.max_value),
            }
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(json.dumps(new, allow_nan=False) + "\n", encoding="utf-8")
            os.replace(tmp, path)


def start_summary(logs: Path, active: str, candidate: str) -> None:
    """A new trial's totals, all zero: its report counts from here, whatever older lines
    of the log hold."""
    logs.mkdir(parents=True, exist_ok=True)
    totals = _Totals()
    totals.versions = (active, candidate)
    path = logs / SUMMARY_FILE
    path.unlink(missing_ok=True)
    totals.merge_into(path)


def _fmax(current: float | None, diffs: np.ndarray) -> float | None:
    finite = diffs[np.isfinite(diffs)]
    if not finite.size:
        return current
    return max(float(finite.max()), current or 0.0)


def _max_of(a: Any, b: float | None) -> float | None:
    values = [v for v in (a, b) if isinstance(v, int | float)]
    return max(values) if values else None


def _lines(
    kind: str,
    call: tuple[str, int],
    stamp: float,
    versions: tuple[str, str],
    active: Scores,
    active_seconds: float,
    candidate: Scores | None,
    candidate_seconds: float,
    error: str | None,
    inputs: list[Any] | None,
) -> str:
    """The comparison's JSON Lines, one per row, written as text (the fields are those of
    ``read_report``). Runs on the writer thread but holds the GIL the scoring thread
    needs, so it avoids ``json.dumps`` (a few µs a call) wherever the text is known:
    the constant head is made once per trial, floats are their ``repr``."""
    n = len(active)
    a_us = 1e6 * active_seconds / max(n, 1)
    c_us = 1e6 * candidate_seconds / max(n, 1)
    head = f'{{"time":"{_iso(stamp)}",{_head(call[0], kind, versions)}"call":{call[1]},'
    tail = f',"active_us":{a_us:.2f},"candidate_us":{c_us:.2f}'
    if error is not None:
        tail += f',"candidate_error":{json.dumps(error)}'
    a_out = _outputs(active)
    c_out = _outputs(candidate) if candidate is not None else ["null"] * n
    if inputs is None:
        return "".join(
            f'{head}"active":{a},"candidate":{c}{tail}}}\n'
            for a, c in zip(a_out, c_out, strict=True)
        )
    dumps = json.dumps
    return "".join(
        f'{head}"active":{a},"candidate":{c}{tail},"inputs":'
        f"{dumps(_plain(row), allow_nan=False)}}}\n"
        for a, c, row in zip(a_out, c_out, inputs, strict=True)
    )


@functools.lru_cache(maxsize=16)
def _head(session: str, kind: str, versions: tuple[str, str]) -> str:
    """The fields every line of one trial shares, as JSON text, made once."""
    dumps = json.dumps
    return (
        f'"session":{dumps(session)},"via":"{kind}","active_version":{dumps(versions[0])},'
        f'"candidate_version":{dumps(versions[1])},'
    )


_ISO_CACHE: list[Any] = [-1, ""]


def _iso(stamp: float) -> str:
    """``stamp`` as ISO 8601 UTC to the millisecond; the seconds' part is formatted once a
    second (a burst of predictions shares it)."""
    whole = int(stamp)
    if whole != _ISO_CACHE[0]:
        _ISO_CACHE[:] = [whole, datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")]
    return f"{_ISO_CACHE[1]}.{int((stamp - whole) * 1000):03d}+00:00"


def _outputs(scores: Scores) -> list[str]:
    """Each row's output as JSON text: its label, and its probabilities or value."""
    if scores.label_index is not None:
        texts = _label_texts(tuple(scores.classes))
        labels = [texts[i] for i in scores.label_index.tolist()]
    else:
        labels = [json.dumps(_plain(v)) for v in scores.labels()]
    proba = scores.proba
    if proba is not None:
        proba = np.round(proba, PROBA_DECIMALS)
        return [
            f'{{"label":{label},"proba":{_floats(p)}}}'
            for label, p in zip(labels, proba.tolist(), strict=True)
        ]
    if scores.values is not None:
        return [
            f'{{"label":{label},"value":{_float(v)}}}'
            for label, v in zip(labels, scores.values.tolist(), strict=True)
        ]
    return [f'{{"label":{label}}}' for label in labels]


def _floats(values: list[float]) -> str:
    """A JSON array of floats: ``repr`` is JSON's own text for a finite float, and a
    non-finite one (never valid JSON) is null."""
    try:
        text = ",".join(map(repr, values))
    except TypeError:
        text = ",".join(map(_float, values))
    if "n" in text:  # inf or nan
        text = ",".join(map(_float, values))
    return f"[{text}]"


def _float(x: float) -> str:
    return repr(x) if math.isfinite(x) else "null"


@functools.lru_cache(maxsize=8)
def _label_values(classes: tuple[Any, ...]) -> tuple[Any, ...]:
    """Each class label as a JSON-able value, made once per model."""
    return tuple(_plain(c) for c in classes)


@functools.lru_cache(maxsize=8)
def _label_texts(classes: tuple[Any, ...]) -> tuple[str, ...]:
    """Each class label as JSON text, made once per model."""
    return tuple(json.dumps(_plain(c)) for c in classes)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


@dataclass(frozen=True)
class TrialReport:
    """The trial log's summary: how often the candidate agreed with the active model."""

    candidate: str | None  # the version in trial now (None: no trial)
    active: str
    rows: int  # rows both models scored
    agreed: int  # of them, rows with the same label (or value within 1e-9)
    max_proba_diff: float | None  # largest |p_active - p_candidate| over classes and rows
    max_value_diff: float | None  # regression: largest |value difference|
    active_us: float | None  # mean time per row, microseconds
    candidate_us: float | None
    calls: int  # predictions (calls) compared
    candidate_errors: int  # rows the candidate could not score
    log: str  # where the log is

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.rows if self.rows else None

    def to_json(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "active": self.active,
            "rows": self.rows,
            "agreed": self.agreed,
            "agreement": self.agreement,
            "max_proba_diff": self.max_proba_diff,
            "max_value_diff": self.max_value_diff,
            "active_us_per_row": self.active_us,
            "candidate_us_per_row": self.candidate_us,
            "calls": self.calls,
            "candidate_errors": self.candidate_errors,
            "log": self.log,
        }

    def lines(self) -> list[str]:
        if self.candidate is None and not self.rows:
            return ["no model is in trial, and the trial log is empty"]
        head = f"trial of model {self.candidate or '(ended)'} beside the active {self.active}"
        if not self.rows:
            return [head, "  no predictions compared yet"]
        out = [
            head,
            f"  rows compared   {self.rows:,} in {self.calls:,} calls",
            f"  label agreement {self.agreed:,} of {self.rows:,} "
            f"({100 * (self.agreement or 0):.2f}%)",
        ]
        if self.max_proba_diff is not None:
            out.append(f"  largest probability difference {self.max_proba_diff:.4f}")
        if self.max_value_diff is not None:
            out.append(f"  largest value difference {self.max_value_diff:.6g}")
        out.append(
            f"  latency per row  active {self.active_us or 0:.1f} µs, "
            f"candidate {self.candidate_us or 0:.1f} µs"
        )
        if self.candidate_errors:
            out.append(f"  rows the candidate could not score: {self.candidate_errors:,}")
        out.append(f"  log              {self.log}")
        return out


def read_report(logs: Path, candidate: str | None, active: str) -> TrialReport:
    """Summarise the trial log (its rotated files too) for the trial ``candidate``."""
    path = logs / "trial.jsonl"
    summary = _read_summary(logs / SUMMARY_FILE, candidate)
    if summary is not None:
        rows = summary["rows"]
        return TrialReport(
            candidate=candidate,
            active=active,
            rows=rows,
            agreed=summary["agreed"],
            max_proba_diff=summary.get("max_proba_diff"),
            max_value_diff=summary.get("max_value_diff"),
            active_us=summary["active_us"] / rows if rows else None,
            candidate_us=summary["candidate_us"] / rows if rows else None,
            calls=summary["calls"],
            candidate_errors=summary["candidate_errors"],
            log=str(path),
        )
    files = [path.with_name(f"{path.name}.{n}") for n in range(KEEP, 0, -1)] + [path]
    rows = agreed = errors = 0
    calls: set[tuple[str, int]] = set()
    max_p: float | None = None
    max_v: float | None = None
    a_total = c_total = 0.0
    for file in files:
        try:
            text = file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for raw in text.splitlines():
            try:
                line = json.loads(raw)
                if candidate is not None and line.get("candidate_version") != candidate:
                    continue
                a, c = line["active"], line.get("candidate")
                calls.add((str(line.get("session")), int(line["call"])))
            except (ValueError, KeyError, TypeError, AttributeError):
                continue  # a line cut short by a kill, say
            if not isinstance(a, dict):
                continue
            if "labels" in a:  # a batch's line: one column per output
                n = len(a["labels"])
                if not isinstance(c, dict) or len(c.get("labels", ())) != n:
                    errors += n
                    continue
                rows += n
                a_total += n * float(line.get("active_us") or 0)
                c_total += n * float(line.get("candidate_us") or 0)
                if "values" in a and "values" in c:
                    diffs = [
                        abs(x - y)
                        for x, y in zip(a["values"], c["values"], strict=False)
                        if x is not None and y is not None
                    ]
                    agreed += sum(d <= 1e-9 for d in diffs)
                    max_v = max([*diffs, max_v or 0.0]) if diffs else max_v
                else:
                    agreed += sum(x == y for x, y in zip(a["labels"], c["labels"], strict=False))
                if "proba" in a and "proba" in c:
                    diffs = [
                        abs(x - y)
                        for pa, pc in zip(a["proba"], c["proba"], strict=False)
                        for x, y in zip(pa, pc, strict=False)
                        if x is not None and y is not None
                    ]
                    max_p = max([*diffs, max_p or 0.0]) if diffs else max_p
                continue
            if not isinstance(c, dict):
                errors += 1
                continue
            rows += 1
            a_total += float(line.get("active_us") or 0)
            c_total += float(line.get("candidate_us") or 0)
            if "proba" in a and "proba" in c:
                diffs = [
                    abs(x - y)
                    for x, y in zip(a["proba"], c["proba"], strict=False)
                    if x is not None and y is not None
                ]
                if diffs:
                    max_p = max(max(diffs), max_p or 0.0)
            if "value" in a and "value" in c and a["value"] is not None and c["value"] is not None:
                diff = abs(a["value"] - c["value"])
                max_v = max(diff, max_v or 0.0)
                agreed += diff <= 1e-9
            else:
                agreed += a.get("label") == c.get("label")
    return TrialReport(
        candidate=candidate,
        active=active,
        rows=rows,
        agreed=agreed,
        max_proba_diff=max_p,
        max_value_diff=max_v,
        active_us=a_total / rows if rows else None,
        candidate_us=c_total / rows if rows else None,
        calls=len(calls),
        candidate_errors=errors,
        log=str(path),
    )


def _read_summary(path: Path, candidate: str | None) -> dict[str, Any] | None:
    """The trial's running totals, if the file is whole and for ``candidate``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    keys = ("rows", "agreed", "calls", "candidate_errors", "active_us", "candidate_us")
    if (
        not isinstance(data, dict)
        or candidate is None
        or data.get("candidate") != candidate
        or not all(isinstance(data.get(k), int | float) for k in keys)
    ):
        return None
    return data


class TrialScorer:
    """The active model's scorer for ``predict_file`` while a trial runs: each batch the
    file reader fills is run by the active scorer, then its inputs by the candidate's."""

    def __init__(self, active: Any, trial: Trial) -> None:
        self._active = active
        self._trial = trial
        # the candidate's own scorer, without the training-range checks: its warnings are
        # never shown, and the checks would cost a single prediction more than the kernels
        self._candidate = copy.copy(trial.candidate._scorer)
        self._candidate.ranges = None
        plan, other = active.plan, self._candidate.plan
        self._k = len(plan.inputs)
        # category codes of the active plan -> the candidate's (the same lists: identity)
        self._maps: list[tuple[int, np.ndarray]] = []
        for j, (mine, theirs) in enumerate(zip(plan.inputs, other.inputs, strict=True)):
            if mine.kind == "categorical" and tuple(mine.categories) != tuple(theirs.categories):
                codes = {c: float(k) for k, c in enumerate(theirs.categories)}
                from mlbundle_runtime.inputs import UNKNOWN_CODE

                table = np.array([codes.get(c, UNKNOWN_CODE) for c in mine.categories])
                self._maps.append((j, table))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._active, name)

    def score_record(self, record: Any, inputs: Callable[[], list[Any]] | None) -> Scores:
        """``predict``'s one record: checked and encoded once, by the active scorer; the
        candidate takes the encoded inputs (its category codes mapped), so it pays for
        its compiled call only, not for checking the record again."""
        active = self._active
        ws = np.empty((1, active.plan.width))
        active.encoder.fill_record(ws[0], record)
        encoded = ws[:, : self._k].copy()  # the kernels may reuse the input columns
        start = time.perf_counter()
        scores = active._run_small(ws, _NO_ROWS, _record_at)
        seconds = time.perf_counter() - start
        self._trial.compare(
            "predict", scores, seconds, lambda: self._score(encoded, _record_at), inputs
        )
        return scores

    def run(self, ws: np.ndarray, where: Any, x: np.ndarray | None = None) -> Scores:
        inputs = (ws[:, : self._k] if x is None else x[:, : self._k]).copy()
        start = time.perf_counter()
        scores = self._active.run(ws, where, x)
        seconds = time.perf_counter() - start
        self._trial.compare(
            "predict_file", scores, seconds, lambda: self._score(inputs, where), None
        )
        return scores

    def _score(self, inputs: np.ndarray, where: Any) -> Scores:
        for j, table in self._maps:
            col = inputs[:, j]
            known = (col >= 0) & (col < len(table)) & ~np.isnan(col)
            col[known] = table[col[known].astype(np.int64)]
        ws = np.empty((inputs.shape[0], self._candidate.plan.width))
        ws[:, : self._k] = inputs
        if inputs.shape[0] == 1:  # a single prediction: the short path, as predict takes
            return self._candidate._run_small(ws, _NO_ROWS, where)
        return self._candidate.run(ws, where)
