"""The app's installed model packs: install (gated inside the app), choose at start, trial.

An app built with ``[updates]`` keeps the packs it accepted in its user data folder::

    <data>/models/state.json        which pack is active, the previous ones, the trial
    <data>/models/<model_version>/  pack.json, pack.sig, payload/   (packs.extract's layout)
    <data>/models/.lock             one install, rollback or promote at a time
    <data>/models/.incoming-*/      a pack being installed; removed by the next install
    <data>/logs/trial.jsonl         the trial's log (JSON Lines), rotated at a size limit

``<data>`` is ``MLBUNDLE_DATA_DIR`` if set, else platformdirs' user data folder for the
app's name. A pack becomes active only through ``state.json``, written temp file + rename
under the lock after the pack's folder was renamed into place: a process killed at any
step leaves the previous model active (``MLBUNDLE_FAULT_AT=<step>`` kills it there, for
the tests). The bundled model is never touched, so there is always one to fall back to.

Imported only by apps whose payload has ``updates.json``: PyNaCl, platformdirs and
filelock are not loaded by any other app.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlbundle_runtime.bundle import Bundle, open_bundle
from mlbundle_runtime.errors import BundleError
from mlbundle_runtime.packs import (
    PACK_SUFFIX,
    PAYLOAD_DIR,
    Pack,
    PackError,
    key_id,
    parse_model_version,
    read_installed,
    read_pack,
)

if TYPE_CHECKING:
    from mlbundle_runtime.api import Model
    from mlbundle_runtime.trial import TrialReport

__all__ = [
    "FAULT_STEPS",
    "CheckResult",
    "Entry",
    "ModelStore",
    "data_dir",
    "resolve",
]

STATE_FORMAT = 1
#: Install checkpoints, in order; ``MLBUNDLE_FAULT_AT=<step>`` SIGKILLs the process there.
FAULT_STEPS = ("verified", "extracted", "gated", "moved", "state")
FAULT_ENV = "MLBUNDLE_FAULT_AT"
DATA_ENV = "MLBUNDLE_DATA_DIR"
#: How long an install waits for another one (another window, a second CLI) to finish.
LOCK_TIMEOUT = 30.0
_INCOMING = ".incoming-"
_EMPTY_STATE: dict[str, Any] = {
    "format": STATE_FORMAT,
    "active": None,
    "previous": [],
    "trial": None,
    "log_inputs": False,
    "last_check": None,
}

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Entry:
    """One model the app can serve: the bundled one, or an installed pack."""

    version: str
    origin: str  # "bundled" | "pack"
    active: bool
    trial: bool
    approved: bool
    folder: Path | None  # the installed pack's folder; None for the bundled model
    problem: str | None = None  # why an installed pack cannot be used, if it cannot

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "origin": self.origin,
            "active": self.active,
            "trial": self.trial,
            "approved": self.approved,
            "folder": None if self.folder is None else str(self.folder),
            "problem": self.problem,
        }


@dataclass(frozen=True)
class CheckResult:
    """What ``models check`` found at the update source."""

    source: str
    checked_at: str
    installed: Entry | None  # the pack it installed, or None: nothing newer
    message: str


def data_dir(app_name: str) -> Path:
    """The app's user data folder: ``MLBUNDLE_DATA_DIR``, else platformdirs' for its name."""
    given = os.environ.get(DATA_ENV)
    if given:
        return Path(given)
    import platformdirs

    return Path(platformdirs.user_data_dir(app_name, appauthor=False))


def _fault(step: str) -> None:
    """A checkpoint of the install: the tests kill the process here to show that an install
    cut short at any step leaves a working app."""
    if os.environ.get(FAULT_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


class ModelStore:
    """The packs installed for one app, and which of them is served."""

    def __init__(self, bundle: Bundle, updates: dict[str, Any], root: Path) -> None:
        self.bundle = bundle
        self.root = root
        self.models = root / "models"
        self.logs = root / "logs"
        try:
            self.public_key = bytes.fromhex(str(updates["public_key"]))
        except (KeyError, ValueError):
            raise BundleError(
                "the app's updates.json has no valid public_key (64 hex digits); rebuild it"
            ) from None
        if len(self.public_key) != 32:
            raise BundleError("the app's updates.json public_key is not 32 bytes; rebuild it")
        self.source: str | None = updates.get("source") or None
        self._kernels: Any = None

    @classmethod
    def for_bundle(cls, bundle: Bundle) -> ModelStore:
        """The store of the app ``bundle`` is; ``PackError`` when the app takes no packs."""
        if bundle.backend == "passthrough":
            raise PackError(
                f"{bundle.name} scores with scikit-learn itself (passthrough), so it cannot take "
                "model packs; rebuild it with the aot or jit backend and [updates]"
            )
        updates = bundle.updates()
        if updates is None:
            raise PackError(
                f"{bundle.name} was built without [updates] in its spec, so it accepts no model "
                "packs; rebuild it with [updates] public_key to install packs"
            )
        return cls(bundle, updates, data_dir(bundle.name))

    @classmethod
    def for_model(cls, model: Model) -> ModelStore:
        """The store of the app a loaded model serves (``load()``'s model)."""
        return cls.for_bundle(model._app)

    # -- reading ------------------------------------------------------------------
    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    def kernels(self) -> Any:
        """This app's kernels, loaded once: every pack's plan is scored with them."""
        if self._kernels is None:
            self._kernels = self.bundle.kernels()
        return self._kernels

    def state(self) -> tuple[dict[str, Any], str | None]:
        """state.json, checked; a missing file is the bundled model, a damaged one is too
        (with the sentence saying so): a damaged state never stops the app."""
        path = self.models / "state.json"
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return dict(_EMPTY_STATE, previous=[]), None
        except OSError as exc:
            return dict(_EMPTY_STATE, previous=[]), f"{path} cannot be read ({exc.strerror})"
        try:
            data = json.loads(raw)
            return _checked_state(data), None
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            return (
                dict(_EMPTY_STATE, previous=[]),
                f"{path} is damaged ({str(exc)[:80]}); serving the bundled model",
            )

    def bundled_version(self) -> str:
        return str(self.bundle.info.get("model_version", "?"))

    def entries(self) -> list[Entry]:
        """The bundled model first, then each installed pack (by version), with whether it is
        active, in trial, and what is wrong with it (if anything)."""
        state, _ = self.state()
        active = state["active"]
        out = [
            Entry(
                version=self.bundled_version(),
                origin="bundled",
                active=active is None,
                trial=False,
                approved=self.bundle.approved,
                folder=None,
            )
        ]
        versions = []
        if self.models.is_dir():
            for child in self.models.iterdir():
                if child.is_dir() and not child.name.startswith("."):
                    versions.append(child.name)
        for version in sorted(versions, key=_version_key):
            folder = self.models / version
            problem = None
            approved = False
            try:
                pack = read_installed(folder, self.public_key)
                approved = pack.approved
                self._check_compatible(pack, str(folder))
            except BundleError as exc:
                problem = str(exc)
            out.append(
                Entry(
                    version=version,
                    origin="pack",
                    active=version == active,
                    trial=version == state["trial"],
                    approved=approved,
                    folder=folder,
                    problem=problem,
                )
            )
        return out

    # -- installing ---------------------------------------------------------------
    def install(
        self,
        path: str | os.PathLike[str],
        *,
        trial: bool = False,
        allow_downgrade: bool = False,
        log_inputs: bool = False,
        progress: Progress = lambda _msg: None,
    ) -> Entry:
        """Verify, check and gate the pack file ``path``; make it active (or the trial).

        Every refusal is a ``PackError`` naming the file, and leaves the app as it was."""
        source = str(path)
        if trial and self.bundle.plan.output.outputs:
            raise PackError(
                f"{source}: a silent trial compares one output, and this app's model has "
                f"{len(self.bundle.plan.output.outputs)} targets; install it without --trial"
            )
        with self._lock():
            self._clean_incoming()
            progress(f"verifying {source}")
            pack = self._read_file(Path(path))
            _fault("verified")
            state, _ = self.state()
            self._check_compatible(pack, source)
            self._check_release(pack, source, state, allow_downgrade)
            version = pack.model_version
            if version == state["active"]:
                raise PackError(f"{source}: model {version} is already the active model")
            progress(f"unpacking model {version}")
            self.models.mkdir(parents=True, exist_ok=True)
            incoming = Path(tempfile.mkdtemp(prefix=_INCOMING, dir=self.models))
            from mlbundle_runtime.packs import extract

            try:
                extract(pack, incoming)
                _fault("extracted")
                progress(f"running model {version}'s release gate inside the app")
                self._gate(incoming, source)
            except BaseException:
                shutil.rmtree(incoming, ignore_errors=True)
                raise
            _fault("gated")
            target = self.models / version
            if target.exists():  # an older install of this version (a downgrade back to it)
                target.rename(Path(tempfile.mkdtemp(prefix=_INCOMING, dir=self.models)) / "old")
            incoming.rename(target)
            _fault("moved")
            old_trial = state["trial"]
            previous = [v for v in state["previous"] if v != version]
            if trial:
                state.update(trial=version, log_inputs=bool(log_inputs))
                # a new trial counts from zero (the log's older lines stay for reading)
                from mlbundle_runtime.trial import start_summary

                start_summary(self.logs, state["active"] or self.bundled_version(), version)
            else:
                if state["active"] is not None:
                    previous.append(state["active"])
                state.update(active=version, trial=None if old_trial == version else old_trial)
            state["previous"] = previous
            self._write_state(state)
            _fault("state")
            if trial and old_trial not in (None, version, state["active"]):
                shutil.rmtree(self.models / old_trial, ignore_errors=True)
            self._clean_incoming()
            progress(f"model {version} installed" + (" as a trial" if trial else ""))
            return self._entry(version)

    def rollback(self) -> Entry:
        """Back to the previous pack (or the bundled model); the old active pack goes."""
        with self._lock():
            state, _ = self.state()
            old = state["active"]
            if old is None:
                raise PackError(
                    f"the bundled model {self.bundled_version()} is active: there is no older "
                    "model to roll back to"
                )
            state["active"] = state["previous"].pop() if state["previous"] else None
            self._write_state(state)
            if old != state["trial"]:
                shutil.rmtree(self.models / old, ignore_errors=True)
            return self._active_entry(state)

    def promote(self) -> Entry:
        """The trial becomes the active model; the old active one is kept for rollback."""
        with self._lock():
            state, _ = self.state()
            candidate = state["trial"]
            if candidate is None:
                raise PackError("no model is in trial: install one with models install --trial")
            pack = read_installed(self.models / candidate, self.public_key)
            self._check_compatible(pack, str(self.models / candidate))
            if state["active"] is not None:
                state["previous"].append(state["active"])
            state["previous"] = [v for v in state["previous"] if v != candidate]
            state.update(active=candidate, trial=None)
            self._write_state(state)
            return self._active_entry(state)

    def drop(self) -> Entry:
        """The trial stops and its pack is removed; returns the (unchanged) active model."""
        with self._lock():
            state, _ = self.state()
            candidate = state["trial"]
            if candidate is None:
                raise PackError("no model is in trial: there is nothing to drop")
            state["trial"] = None
            self._write_state(state)
            if candidate != state["active"] and candidate not in state["previous"]:
                shutil.rmtree(self.models / candidate, ignore_errors=True)
            return self._active_entry(state)

    def trial_report(self) -> TrialReport:
        """What the trial's log holds: rows compared, agreement, differences, latency."""
        from mlbundle_runtime.trial import read_report

        state, _ = self.state()
        return read_report(self.logs, state["trial"], state["active"] or self.bundled_version())

    def check(self, progress: Progress = lambda _msg: None) -> CheckResult:
        """Look at the app's update source (a folder, or an https URL of a pack) and install
        the newest pack there if it is newer than the active model."""
        if not self.source:
            raise PackError(
                f"{self.bundle.name} has no update source ([updates] source in its spec); "
                "install a pack with models install FILE"
            )
        now = datetime.now(UTC).isoformat(timespec="seconds")
        try:
            result = self._check(self.source, now, progress)
        except PackError as exc:
            self._note_check({"time": now, "source": self.source, "ok": False, "error": str(exc)})
            raise
        self._note_check({"time": now, "source": self.source, "ok": True, "error": None})
        return result

    # -- helpers ------------------------------------------------------------------
    def _check(self, source: str, now: str, progress: Progress) -> CheckResult:
        state, _ = self.state()
        current = _version_key(state["active"] or self.bundled_version())
        if source.startswith("https://"):
            progress(f"downloading {source}")
            with tempfile.TemporaryDirectory() as tmp:
                target = Path(tmp) / f"download{PACK_SUFFIX}"
                _download(source, target, self._last_ok(state))
                pack = self._read_file(target, source)
                if _version_key(pack.model_version) <= current:
                    return CheckResult(
                        source,
                        now,
                        None,
                        f"model {pack.model_version} at {source} "
                        "is not newer than the active model",
                    )
                return CheckResult(
                    source,
                    now,
                    self.install(target, progress=progress),
                    f"installed model {pack.model_version} from {source}",
                )
        folder = Path(source)
        if not folder.is_dir():
            raise PackError(f"update source {source}: no such folder (and not an https:// URL)")
        best: tuple[tuple[int, ...], Path, str] | None = None
        for path in sorted(folder.glob(f"*{PACK_SUFFIX}")):
            try:
                pack = self._read_file(path)
            except PackError as exc:
                progress(f"skipped {exc}")
                continue
            if pack.app == self.bundle.name and (
                best is None or _version_key(pack.model_version) > best[0]
            ):
                best = (_version_key(pack.model_version), path, pack.model_version)
        if best is None or best[0] <= current:
            message = f"no pack newer than the active model in {source}"
            return CheckResult(source, now, None, message)
        return CheckResult(
            source,
            now,
            self.install(best[1], progress=progress),
            f"installed model {best[2]} from {best[1]}",
        )

    def _last_ok(self, state: dict[str, Any]) -> str:
        last = state.get("last_check") or {}
        return str(last.get("last_ok") or "never")

    def _note_check(self, outcome: dict[str, Any]) -> None:
        with self._lock():
            state, _ = self.state()
            last = state.get("last_check") or {}
            outcome["last_ok"] = outcome["time"] if outcome["ok"] else last.get("last_ok")
            state["last_check"] = outcome
            self._write_state(state)

    def _read_file(self, path: Path, source: str | None = None) -> Pack:
        from mlbundle_runtime.packs import MAX_PACK_BYTES

        name = source or str(path)
        try:
            size = path.stat().st_size
            if size > MAX_PACK_BYTES:
                raise PackError(f"{name}: {size:,} bytes is larger than any pack this app takes")
            data = path.read_bytes()
        except OSError as exc:
            raise PackError(f"{name}: {exc.strerror or exc}") from None
        return read_pack(data, name, self.public_key)

    def _check_compatible(self, pack: Pack, source: str) -> None:
        """The pack is for this app and asks only what this app can give: the plan format's
        major, kernels it has, and the bundled model's inputs, task and classes."""
        from mlbundle_runtime.plan import FORMAT_VERSION, plan_kernels

        app = self.bundle
        if pack.app != app.name:
            raise PackError(f"{source}: the pack is for the app {pack.app!r}, not {app.name!r}")
        req = pack.requires
        fmt = str(req.get("plan_format", ""))
        if fmt.split(".")[0] != str(FORMAT_VERSION[0]):
            raise PackError(
                f"{source}: its plan format {fmt or '?'} is not one this app reads "
                f"({FORMAT_VERSION[0]}.x); update the application"
            )
        missing = sorted(set(req.get("kernels") or []) - set(plan_kernels()))
        if missing:
            raise PackError(
                f"{source}: the pack's plan calls kernels this app does not have "
                f"({', '.join(map(str, missing))}); update the application"
            )
        plan = app.plan
        want = [{"name": i.name, "kind": i.kind} for i in plan.inputs]
        if req.get("inputs") != want:
            raise PackError(
                f"{source}: the pack's inputs ({_describe_inputs(req.get('inputs'))}) are not "
                f"this app's ({_describe_inputs(want)})"
            )
        if req.get("task") != plan.output.task:
            raise PackError(
                f"{source}: the pack's task {req.get('task')!r} is not this app's "
                f"{plan.output.task!r}"
            )
        classes = [_jsonable(c) for c in plan.output.classes]
        if list(req.get("classes") or []) != classes:
            raise PackError(
                f"{source}: the pack's classes {req.get('classes')} are not this app's {classes}"
            )
        targets = _targets(plan.output)
        if req.get("targets") != targets:
            raise PackError(
                f"{source}: the pack's targets ({_describe_targets(req.get('targets'))}) are not "
                f"this app's ({_describe_targets(targets)})"
            )

    def _check_release(
        self, pack: Pack, source: str, state: dict[str, Any], allow_downgrade: bool
    ) -> None:
        if self.bundle.info.get("release") and not pack.approved:
            raise PackError(
                f"{source}: the pack's model is UNAPPROVED (approval {pack.meta['approval']!r}) "
                "and this is a release build, which takes approved models only"
            )
        if pack.expired():
            raise PackError(f"{source}: the pack expired on {pack.meta['expires']}")
        active = state["active"] or self.bundled_version()
        if not allow_downgrade and _version_key(pack.model_version) <= _version_key(active):
            raise PackError(
                f"{source}: model {pack.model_version} is not newer than the active model "
                f"{active}; use --allow-downgrade to install an older one"
            )

    def _gate(self, folder: Path, source: str) -> None:
        """The pack's own e2e set and confidence range, scored with this app's kernels."""
        model = self._open(folder, source)
        plan, app_plan = model._bundle.plan, self.bundle.plan
        if [(i.name, i.kind) for i in plan.inputs] != [(i.name, i.kind) for i in app_plan.inputs]:
            raise PackError(f"{source}: the pack's plan takes other inputs than this app")
        if tuple(plan.output.classes) != tuple(app_plan.output.classes) or _targets(
            plan.output
        ) != _targets(app_plan.output):
            raise PackError(f"{source}: the pack's plan predicts other classes than this app")
        try:
            result = model.selftest()
        except BundleError as exc:
            raise PackError(f"{source}: the pack's gate files cannot be used ({exc})") from None
        if not result.e2e_passed:
            first = result.e2e_failures[0] if result.e2e_failures else "no rows compared"
            raise PackError(
                f"{source}: the pack's e2e set does not score as at its build inside this app "
                f"({len(result.e2e_failures)} of {result.e2e_rows} rows differ; first: {first})"
            )
        if not result.confidence_passed:
            raise PackError(
                f"{source}: the pack's {result.metric} = {result.metric_value:.4f} on its "
                f"confidence set is outside its accepted range [{result.low}, {result.high}]"
            )

    def _open(self, folder: Path, source: str) -> Model:
        """An installed (or incoming) pack's model, scored with this app's kernels."""
        from mlbundle_runtime.api import Model
        from mlbundle_runtime.scorer import Scorer

        try:
            bundle = open_bundle(folder / PAYLOAD_DIR.rstrip("/"))
        except BundleError as exc:
            raise PackError(f"{source}: the pack's payload cannot be opened ({exc})") from None
        if bundle.backend == "passthrough":
            raise PackError(f"{source}: a passthrough model cannot travel in a pack")
        return Model(bundle, Scorer(bundle.plan, self.kernels()))

    def _entry(self, version: str) -> Entry:
        for entry in self.entries():
            if entry.origin == "pack" and entry.version == version:
                return entry
        raise PackError(f"model {version} is not installed")  # pragma: no cover - just written

    def _active_entry(self, state: dict[str, Any]) -> Entry:
        if state["active"] is None:
            return self.entries()[0]
        return self._entry(state["active"])

    def _write_state(self, state: dict[str, Any]) -> None:
        self.models.mkdir(parents=True, exist_ok=True)
        path = self.models / "state.json"
        tmp = path.with_name(f".state.{os.getpid()}.tmp")
        text = json.dumps({**state, "format": STATE_FORMAT}, indent=1, sort_keys=True) + "\n"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def _clean_incoming(self) -> None:
        if not self.models.is_dir():
            return
        for child in self.models.iterdir():
            if child.name.startswith(_INCOMING) or (
                child.name.startswith(".state.") and child.name.endswith(".tmp")
            ):
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)

    def _lock(self) -> Any:
        from filelock import FileLock, Timeout

        self.models.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.models / ".lock"), timeout=LOCK_TIMEOUT)

        class _Held:
            def __enter__(self) -> None:
                try:
                    lock.acquire()
                except Timeout:
                    raise PackError(
                        f"{lock.lock_file}: another install or rollback is running; "
                        "try again when it has finished"
                    ) from None

            def __exit__(self, *exc: object) -> None:
                lock.release()

        return _Held()

    # -- start -------------------------------------------------------------------
    def resolve(self) -> Model:
        """The model to serve: the active pack if it still verifies, else the previous ones
        newest first, else the bundled model; each one skipped is a warning."""
        from mlbundle_runtime.api import Model

        state, problem = self.state()
        warnings = [problem] if problem else []
        order = ([state["active"]] if state["active"] else []) + list(reversed(state["previous"]))
        chosen: Model | None = None
        for version in order:
            folder = self.models / version
            try:
                model = self._verified(folder)
            except BundleError as exc:
                warnings.append(f"installed model {version} skipped: {exc}")
                continue
            chosen = model
            origin_version = version
            break
        if chosen is None:
            chosen = Model(
                self.bundle,
                self.bundle.scorer()
                if self._kernels is None
                else _scorer(self.bundle, self.kernels()),
            )
            chosen._set_origin("bundled", self.bundle, self.bundled_version(), None, warnings)
        else:
            chosen._set_origin(
                "pack", self.bundle, origin_version, self.models / origin_version, warnings
            )
        if state["trial"] and state["trial"] != (state["active"] or None):
            try:
                candidate = self._verified(self.models / state["trial"])
            except BundleError as exc:
                warnings.append(f"trial model {state['trial']} skipped: {exc}")
            else:
                from mlbundle_runtime.trial import Trial, TrialLog

                log = TrialLog(self.logs / "trial.jsonl")
                chosen._set_trial(
                    Trial(candidate, state["trial"], chosen.version, log, state["log_inputs"])
                )
        for line in warnings:
            _warn(line)
        return chosen

    def _verified(self, folder: Path) -> Model:
        pack = read_installed(folder, self.public_key)
        self._check_compatible(pack, str(folder))
        if pack.model_version != folder.name:
            raise PackError(f"{folder}: holds model {pack.model_version}, not {folder.name}")
        return self._open(folder, str(folder))


def resolve(bundle: Bundle) -> Model:
    """``load()``'s model for an app with ``updates.json``: see ``ModelStore.resolve``."""
    try:
        store = ModelStore.for_bundle(bundle)
    except PackError as exc:
        from mlbundle_runtime.api import Model

        _warn(f"model packs are off: {exc}")
        model = Model(bundle, bundle.scorer())
        model._set_origin(
            "bundled", bundle, str(bundle.info.get("model_version", "?")), None, [str(exc)]
        )
        return model
    return store.resolve()


def _scorer(bundle: Bundle, kernels: Any) -> Any:
    from mlbundle_runtime.scorer import Scorer

    return Scorer(bundle.plan, kernels)


def _warn(line: str) -> None:
    try:
        sys.stderr.write(f"warning: {line}\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass


def _checked_state(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
        raise ValueError("not a state file of format 1")
    state = dict(_EMPTY_STATE, previous=[])
    for key in ("active", "trial"):
        value = data.get(key)
        if value is not None:
            _valid_version(value)
        state[key] = value
    previous = data.get("previous", [])
    if not isinstance(previous, list):
        raise ValueError("previous is not a list")
    for value in previous:
        _valid_version(value)
    state["previous"] = list(previous)
    state["log_inputs"] = data.get("log_inputs") is True
    last = data.get("last_check")
    state["last_check"] = last if isinstance(last, dict) else None
    return state


def _valid_version(value: Any) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a model version")
    parse_model_version(value)


def _version_key(text: str) -> tuple[int, ...]:
    try:
        return parse_model_version(text)
    except PackError:
        return ()


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return value


def _targets(output: Any) -> list[dict[str, Any]] | None:
    """A multi-output plan's targets as a pack's ``requires`` lists them; None for one output."""
    if not output.outputs:
        return None
    return [
        {"name": t.name, "task": t.task, "classes": [_jsonable(c) for c in t.classes]}
        for t in output.outputs
    ]


def _describe_targets(targets: Any) -> str:
    if not targets:
        return "one output"
    try:
        return ", ".join(f"{t['name']} ({t['task']})" for t in targets)
    except (TypeError, KeyError):
        return repr(targets)


def _describe_inputs(inputs: Any) -> str:
    if not isinstance(inputs, list):
        return "none"
    return ", ".join(
        f"{i.get('name')} {i.get('kind')}" if isinstance(i, dict) else repr(i) for i in inputs
    )


def _download(url: str, target: Path, last_ok: str) -> None:
    import urllib.error
    import urllib.request

    from mlbundle_runtime.packs import MAX_PACK_BYTES

    try:
        with urllib.request.urlopen(url, timeout=30) as response, open(target, "wb") as out:  # noqa: S310 - https only
            read = 0
            while chunk := response.read(1 << 16):
                read += len(chunk)
                if read > MAX_PACK_BYTES:
                    raise PackError(f"{url}: larger than any pack this app takes")
                out.write(chunk)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise PackError(
            f"{url}: cannot be downloaded ({reason}); the app keeps its current model "
            f"(last successful check: {last_ok})"
        ) from None
