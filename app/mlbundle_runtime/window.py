"""The end users' window: a form generated from the model's inputs, its answer, file scoring.

Built on the public runtime API only (``mlbundle_runtime.api``), as any user's application
is, and on Tkinter with ttk from the standard library, so a frozen app carries no GUI
toolkit beyond Tcl/Tk. Tkinter is imported inside the functions that need it, never at
module level: the command line imports this module's caller (``cli``) on every start and
must not pay for Tk.

Everything the window shows comes from the model: one field per ``Model.inputs`` entry
(labelled with its description and unit, its training range as a hint), the classes and
threshold from ``Model.outputs``, the About text from ``Model.record``. A retrained model
with another input needs no change here.

Two entry points: ``run(model)`` opens the application's window and returns an exit code;
``ModelWindow(root, model)`` builds the window into a given Tk root, which is how the
tests drive the real widgets in-process.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import re
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlbundle_runtime import api
from mlbundle_runtime.api import (
    BundleError,
    Cancelled,
    FileResult,
    Input,
    InputError,
    Model,
    Prediction,
)

if TYPE_CHECKING:
    import tkinter as tk
    from tkinter import ttk

__all__ = [
    "Bar",
    "Field",
    "FileJob",
    "InstallJob",
    "ModelWindow",
    "about_lines",
    "model_lines",
    "result_text",
    "run",
    "version_line",
]

NO_DISPLAY = "cannot open a window (no display): use a subcommand, e.g. predict --help"

#: The look: one palette, so the banner, marks and bars agree with each other.
RED = "#b3261e"
RED_BG = "#fde7e9"
AMBER = "#8a5300"
AMBER_BG = "#fff3dc"
GREEN = "#2e7d32"
GREY = "#5f6368"
BAR = "#8aa4c8"
PAD = 12

#: How often the window looks at a running file job's queue (ms): often enough for a
#: smooth bar, rare enough to cost nothing.
POLL_MS = 50


# -- text the window shows (pure functions: testable without a display) -----------------
def number(value: float) -> str:
    """A number as people write it: no trailing zeros, no float noise (58.0 -> "58")."""
    return f"{value:.6g}"


def range_hint(item: Input) -> str:
    """The training range as a hint beside a field ("33.1 – 58 mm"), or "" without one."""
    rng = item.training_range or {}
    if "min" in rng and "max" in rng:
        unit = f" {item.unit}" if item.unit else ""
        return f"{number(float(rng['min']))} – {number(float(rng['max']))}{unit}"
    return ""


def field_label(item: Input) -> str:
    """A field's label: the owner's description (else the input's name) and its unit."""
    text = item.description or item.name.replace("_", " ")
    return f"{text} ({item.unit})" if item.unit else text


def parse_number(text: str) -> float | None:
    """A numeric field's value: None when empty (missing); ValueError when not a number.

    NaN and infinity are refused (nobody measures them on purpose), and so is a comma:
    "1,500" could mean 1.5 or 1500, and a model must not guess which.
    """
    text = text.strip()
    if not text:
        return None
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def outside_range(item: Input, value: float | None) -> bool:
    """Whether a typed number lies outside what the model saw in training (it still scores)."""
    rng = item.training_range or {}
    if value is None or "min" not in rng or "max" not in rng:
        return False
    return not float(rng["min"]) <= value <= float(rng["max"])


def warned_inputs(warnings: tuple[str, ...], names: Iterable[str]) -> set[str]:
    """The inputs the warnings are about: each warning begins with its input's name
    ("body_mass_g = 20000 g is outside ...", "island: a category ...")."""
    return {n for n in names for w in warnings if re.match(rf"{re.escape(n)}\b", w)}


def ranked(prediction: Prediction) -> list[tuple[Any, float]]:
    """Class probabilities, highest first (ties in the model's class order)."""
    probs = prediction.probabilities or {}
    return sorted(probs.items(), key=lambda kv: -kv[1])


def percent(p: float) -> str:
    return f"{100 * p:.1f}%"


def headline(prediction: Prediction) -> str:
    """The big text: the class, or a regressor's value; for a multi-output model one line
    per target, ``name: value`` (or ``name: class (top probability)``)."""
    if prediction.outputs:
        return "\n".join(f"{name}: {_target_text(p)}" for name, p in prediction.outputs.items())
    if prediction.value is not None:
        return number(prediction.value)
    return str(prediction.label)


def _target_text(prediction: Prediction) -> str:
    """One target's answer as a short text: its value, or its class and top probability."""
    order = ranked(prediction)
    if order and prediction.value is None:
        return f"{prediction.label} ({percent(order[0][1])})"
    return headline(prediction)


def result_text(prediction: Prediction) -> str:
    """The result as one line, for the clipboard and reports:
    "Gentoo 97.1% (Adelie 2.0%, Chinstrap 0.9%) uncertain; warning: ..."; for several
    targets "price 3.2; rent 1.1; warning: ..."."""
    order = ranked(prediction)
    if prediction.outputs:
        text = "; ".join(f"{name} {result_text(p)}" for name, p in prediction.outputs.items())
    elif order and prediction.value is None:
        (top, p), rest = order[0], order[1:]
        text = f"{top} {percent(p)}"
        if rest:
            text += " (" + ", ".join(f"{c} {percent(q)}" for c, q in rest) + ")"
    else:
        text = headline(prediction)
    if prediction.uncertain:
        text += " uncertain"
    for warning in prediction.warnings:
        text += f"; warning: {warning}"
    return text


def model_version(model: Model) -> str:
    """The version of the model being served (the bundled one's, or an installed pack's)."""
    return str(model.info.get("model_version") or model.version or "?")


def app_version(model: Model) -> str:
    """The application's own version (the title's), whichever model it serves."""
    return str(model.info.get("version") or "")


def model_origin(model: Model) -> str:
    """Where the served model comes from, in a few words, for the heading and About."""
    if model.origin == "pack":
        return "installed pack"
    return "bundled with the application"


def version_line(model: Model) -> str:
    """The heading's small print: "model 1.1.0 (installed pack) · app 1.0.0 · trial 1.2.0"."""
    origin = " (installed pack)" if model.origin == "pack" else ""
    line = f"model {model_version(model)}{origin} · app {app_version(model)}"
    trial = model.trial
    return f"{line} · trial of {trial} running" if trial else line


def model_lines(model: Model) -> list[tuple[str, str]]:
    """About's "Model in use" rows: which version answers, from where, and a trial's."""
    rows = [("version", model_version(model)), ("from", model_origin(model))]
    source = model.source
    if source:
        rows.append(("source", str(source)))
    trial = model.trial
    if trial:
        rows.append(
            (
                "trial",
                f"{trial} scores beside it on every prediction; its answers are logged in "
                "the app's data folder, never shown",
            )
        )
    return rows


def about_key_width(model: Model) -> int:
    """The About text's key column, wide enough for every input's name."""
    return max(17, *(len(i.name) + 2 for i in model.inputs))


def about_lines(model: Model) -> list[tuple[str, str]]:
    """The model record in readable form, as (style, text) lines: "title", "alert",
    "heading" or "body". What an end user or auditor asks before trusting an answer."""
    record = model.record
    info = model.info
    audit = record.get("audit") or {}
    lines: list[tuple[str, str]] = [
        ("title", f"{info.get('title') or model.name} — {model.name} {app_version(model)}")
    ]
    if not model.approved:
        lines.append(("alert", "UNAPPROVED: a development build, not approved for release"))
    for warning in model.warnings:
        lines.append(("alert", f"⚠ {warning}"))
    description = (record.get("app") or {}).get("description")
    if description:
        lines.append(("body", description))

    width = about_key_width(model)

    def section(title: str, rows: list[tuple[str, Any]]) -> None:
        rows = [(k, v) for k, v in rows if v not in (None, "", [], {})]
        if rows:
            lines.append(("heading", title))
            lines.extend(("body", f"{k:<{width}}{v}") for k, v in rows)

    section("Model in use", model_lines(model))
    m = record.get("model") or {}
    ex = record.get("extractor") or {}
    libs = (record.get("training") or {}).get("libraries") or {}
    section(
        "Model",
        [
            ("algorithm", f"{m.get('algorithm', '?')}, version {m.get('version', '?')}"),
            ("sha256", m.get("sha256")),
            (
                "extractor",
                ex and f"{ex.get('algorithm', '?')}, version {ex.get('version', '?')}",
            ),
            ("trained with", ", ".join(f"{k} {v}" for k, v in sorted(libs.items()))),
        ],
    )
    rows: list[tuple[str, Any]] = []
    for item in model.inputs:
        if item.kind == "categorical":
            what = ", ".join(item.categories) or "categorical"
        elif item.kind == "text":
            what = "text"
        else:
            hint = range_hint(item)
            what = f"a number, trained on {hint}" if hint else "a number"
        rows.append((item.name, f"{what}" + (f" — {item.description}" if item.description else "")))
    section("Inputs", rows)
    out = record.get("outputs") or {}
    threshold = model.outputs.uncertain_below
    section(
        "Outputs",
        [
            ("task", out.get("task")),
            ("classes", ", ".join(map(str, out.get("classes") or []))),
            (
                "targets",
                ", ".join(
                    str(t.get("name"))
                    + (f" ({', '.join(map(str, t['classes']))})" if t.get("classes") else "")
                    for t in out.get("targets") or []
                ),
            ),
            ("means", out.get("description")),
            ("use", out.get("consume")),
            ("uncertain", threshold is not None and f"top probability under {percent(threshold)}"),
        ],
    )
    gate = record.get("gate") or {}
    conf = gate.get("confidence") or {}
    e2e = gate.get("e2e") or {}
    rng = conf.get("range")
    value = conf.get("value")
    section(
        "Release gate",
        [
            (
                "end-to-end",
                e2e
                and f"{e2e.get('rows', '?')} rows reproduced on "
                f"{', '.join(e2e.get('columns') or []) or '?'}",
            ),
            (
                "confidence",
                conf
                and f"{conf.get('metric')} = "
                f"{number(value) if isinstance(value, int | float) else value} on "
                f"{conf.get('rows', '?')} rows"
                + (f", accepted {number(rng[0])} – {number(rng[1])}" if rng else ""),
            ),
        ],
    )
    data = record.get("data") or {}
    section(
        "Data",
        [
            (role, ref and f"{ref.get('version')} at {ref.get('location')}")
            for role in ("training", "validation")
            for ref in [data.get(role)]
        ],
    )
    approval: list[tuple[str, Any]] = [("status", "approved" if model.approved else "UNAPPROVED")]
    if model.approved:
        approval += [
            ("approved by", f"{audit.get('approved_by')} on {audit.get('approved_date')}"),
            ("grounds", audit.get("approval_grounds")),
            (
                "privacy review",
                audit.get("privacy_reviewer")
                and f"{audit['privacy_reviewer']} ({audit.get('privacy_review_date')})",
            ),
            (
                "security review",
                audit.get("security_reviewer")
                and f"{audit['security_reviewer']} ({audit.get('security_review_date')})",
            ),
        ]
    approval.append(
        (
            "model author",
            audit.get("model_author") and f"{audit['model_author']} ({audit.get('model_date')})",
        )
    )
    section("Approval", approval)
    build = record.get("build") or {}
    backend = build.get("backend", "?")
    scoring = "scikit-learn (passthrough)" if backend == "passthrough" else f"{backend} kernels"
    section(
        "Build",
        [
            ("built", f"{build.get('time', '?')} with mlbundle {build.get('tool_version', '?')}"),
            ("scoring", scoring),
            (
                "platform",
                build.get("platform") and f"{build['platform']}, Python {build.get('python')}",
            ),
        ],
    )
    return lines


def one_line(exc: BaseException) -> str:
    """An error in plain words on one line: its message, else what kind of error it was."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    text = " ".join(str(exc).split())
    return text or type(exc).__name__.replace("Error", " error").strip()


# -- scoring a file on a worker thread ----------------------------------------------------
@dataclass
class FileJob:
    """A file being scored: the worker thread, its cancel switch and the queue it reports on.

    The worker only puts messages on ``messages``; the window reads them on Tk's thread
    (``after``), so no widget is ever touched from the worker.
    """

    src: Path
    dst: Path
    size: int
    cancel: threading.Event = field(default_factory=threading.Event)
    messages: queue.Queue[tuple[str, Any]] = field(default_factory=queue.Queue)
    started: float = field(default_factory=time.monotonic)
    thread: threading.Thread | None = None
    rows: int = 0
    fraction: float = 0.0
    outcome: str = "running"  # "running" | "done" | "cancelled" | "failed"
    result: FileResult | None = None
    error: BaseException | None = None

    @property
    def running(self) -> bool:
        return self.outcome == "running"


def _score_file(model: Model, job: FileJob) -> None:
    """The worker: score ``job.src`` into ``job.dst`` and report on the job's queue only."""

    def progress(rows: int, bytes_read: int) -> None:
        job.messages.put(("progress", (rows, bytes_read)))

    try:
        result = model.predict_file(job.src, job.dst, progress=progress, cancel=job.cancel)
    except Cancelled:
        job.messages.put(("cancelled", None))
    except Exception as exc:  # every error becomes a dialog on Tk's thread
        job.messages.put(("failed", exc))
    else:
        job.messages.put(("done", result))


def time_left(seconds: float) -> str:
    """A rough, human time left ("about 40 s left", "about 3 min left")."""
    if seconds < 1:
        return "less than a second left"
    if seconds < 90:
        return f"about {seconds:.0f} s left"
    if seconds < 5400:
        return f"about {seconds / 60:.0f} min left"
    return f"about {seconds / 3600:.1f} h left"


def scored_name(src: str | os.PathLike[str]) -> str:
    """The suggested output beside the input: day.csv -> day.scored.csv."""
    path = Path(src)
    return f"{path.stem}.scored{path.suffix or '.csv'}"


# -- installing a model pack on a worker thread ------------------------------------------
@dataclass
class InstallJob:
    """A model pack being installed: as ``FileJob``, the worker only reports on ``messages``
    ("progress" with a line of text, then "done" with the new model, or "failed")."""

    src: Path
    messages: queue.Queue[tuple[str, Any]] = field(default_factory=queue.Queue)
    thread: threading.Thread | None = None
    step: str = ""
    outcome: str = "running"  # "running" | "done" | "failed"
    entry: Any = None  # the store's Entry for the installed pack
    model: Model | None = None  # the model now active, loaded on the worker
    error: BaseException | None = None

    @property
    def running(self) -> bool:
        return self.outcome == "running"


def _install_pack(store: Any, job: InstallJob) -> None:
    """The worker: verify, gate and activate the pack, then load the model now active, so
    Tk's thread only swaps the form (a load reads and checks the plan: not for Tk)."""
    try:
        entry = store.install(job.src, progress=lambda line: job.messages.put(("progress", line)))
        job.messages.put(("progress", "loading the new model"))
        model = store.resolve()
    except Exception as exc:  # a refusal, or anything else: a one-line dialog on Tk's thread
        job.messages.put(("failed", exc))
    else:
        job.messages.put(("done", (entry, model)))


def pack_filetypes() -> list[tuple[str, str]]:
    """The file dialog's filter: model packs first, so other files are not offered."""
    from mlbundle_runtime.packs import PACK_SUFFIX

    return [("Model packs", f"*{PACK_SUFFIX}"), ("All files", "*")]


# -- the window ---------------------------------------------------------------------------
@dataclass
class Bar:
    """One class's probability in the result: its name, bar and percentage widgets."""

    cls: Any
    name_label: ttk.Label
    bar: ttk.Progressbar
    percent_label: ttk.Label


@dataclass
class Field:
    """One input's widgets: the entry, drop-down or (text input) multi-line text box, its
    variable (a text box's content, kept in step both ways), and its hint line."""

    item: Input
    widget: ttk.Entry | ttk.Combobox | tk.Text
    var: tk.StringVar
    hint: ttk.Label
    default_hint: str = ""  # what the hint line says while the field is fine
    state: str = "ok"  # "ok" | "invalid" (not a number) | "warn" (outside training range)


class ModelWindow:
    """The application's main window, built into ``root`` from ``model``.

    Widgets the tests (and a curious reader) use: ``fields[name]`` (a ``Field``: ``.widget``,
    ``.var``, ``.hint``, ``.state``), ``predict_button``, ``result_label``, ``uncertain_label``,
    ``bars`` (highest first), ``warning_label``, ``banner``, ``copy_button``, ``file_button``,
    ``progress``, ``progress_label``, ``cancel_button``, ``about_button``; after About,
    ``about`` and ``about_text``. Methods: ``predict()``, ``copy_result()``, ``open_about()``,
    ``score_file(src, dst)`` (no file dialogs), ``cancel_file()``.
    """

    def __init__(
        self,
        root: tk.Tk,
        model: Model,
        *,
        store: Any = None,
    ) -> None:
        """``store``: the ``ModelStore`` that "Update model…" installs into; default: the
        store of the app ``model`` serves, opened on first use."""
        import tkinter as tk
        from tkinter import ttk

        self.root = root
        self.model = model
        self.threshold = model.outputs.uncertain_below
        self.prediction: Prediction | None = None
        self.shown = ""  # the result as one line, what "Copy result" copies
        self.job: FileJob | None = None
        self.install_job: InstallJob | None = None
        self.store = store
        self.about: tk.Toplevel | None = None
        self.about_text: tk.Text | None = None
        self.fields: dict[str, Field] = {}
        self.bars: list[Bar] = []

        root.report_callback_exception = self._report_error  # type: ignore[method-assign]
        #: Ctrl-C or SIGTERM that arrived inside a callback: ``run`` raises it after the loop.
        self.stopped: BaseException | None = None
        root.protocol("WM_DELETE_WINDOW", self.close)
        self._style(ttk)

        outer = ttk.Frame(root, padding=0)
        outer.grid(sticky="nsew")
        root.columnconfigure(0, weight=1)
        root.rowconfigure(0, weight=1)
        outer.columnconfigure(0, weight=1)
        outer.rowconfigure(2, weight=1)
        self.outer = outer
        self._model_view(tk, ttk)

        files = ttk.LabelFrame(outer, text=" Score a file ", padding=PAD)
        files.grid(row=3, column=0, sticky="ew", padx=PAD * 2, pady=(PAD, 0))
        files.columnconfigure(1, weight=1)
        self.file_button = ttk.Button(files, text="Score a file…", command=self.choose_file)
        self.file_button.grid(row=0, column=0, rowspan=2, padx=(0, PAD))
        self.progress = ttk.Progressbar(files, maximum=1.0, style="File.Horizontal.TProgressbar")
        self.progress.grid(row=0, column=1, sticky="ew")
        self.progress_label = ttk.Label(
            files,
            text="A CSV or JSON Lines file with a column per input.",
            style="Sub.TLabel",
            wraplength=620,  # a long reason wraps rather than widening the window
        )
        self.progress_label.grid(row=1, column=1, sticky="w", pady=(4, 0))
        self.cancel_button = ttk.Button(
            files, text="Cancel", command=self.cancel_file, state="disabled"
        )
        self.cancel_button.grid(row=0, column=2, rowspan=2, padx=(PAD, 0))

        foot = ttk.Frame(outer, padding=(PAD * 2, PAD, PAD * 2, PAD * 1.5))
        foot.grid(row=4, column=0, sticky="ew")
        self.about_button = ttk.Button(foot, text="About this model (F1)", command=self.open_about)
        self.about_button.grid(row=0, column=0, sticky="w")
        self.update_button = ttk.Button(foot, text="Update model…", command=self.choose_pack)
        self.update_button.grid(row=0, column=1, sticky="w", padx=(PAD / 2, 0))
        ttk.Label(
            foot,
            text="Enter: predict · Ctrl+Shift+C: copy result · Ctrl+O: score a file · "
            "Ctrl+U: update model · Esc: cancel",
            style="Sub.TLabel",
        ).grid(row=0, column=2, sticky="e")
        foot.columnconfigure(1, weight=0)
        foot.columnconfigure(2, weight=1)
        self.install_progress = ttk.Progressbar(
            foot, mode="indeterminate", length=160, style="File.Horizontal.TProgressbar"
        )
        self.install_label = ttk.Label(foot, text="", style="Sub.TLabel", wraplength=560)

        self._menu(tk)
        for seq in ("<Return>", "<KP_Enter>"):
            root.bind(seq, lambda _e: self.predict())
        root.bind("<Escape>", lambda _e: self.cancel_file())
        root.bind("<F1>", lambda _e: self.open_about())
        for seq in ("<Control-Shift-C>", "<Control-Shift-c>"):
            root.bind(seq, lambda _e: self.copy_result())
        root.bind("<Control-o>", lambda _e: self.choose_file())
        root.bind("<Control-u>", lambda _e: self.choose_pack())
        root.bind("<Control-q>", lambda _e: self.close())
        root.minsize(760, 0)
        self.focus_first()
        # Once drawn, take the keyboard: the user (or xdotool) types into the first field
        # without a click, even where no window manager hands out the focus.
        root.after_idle(lambda: self.focus_first(force=True))

    def _model_view(self, tk: Any, ttk: Any) -> None:
        """What depends on the model: the title, banner, heading, form and result panel.
        Built again (``set_model``) when another model becomes active."""
        model, outer = self.model, self.outer
        title = f"{model.info.get('title') or model.name} — {model.name} {app_version(model)}"
        self.root.title(title if model.approved else f"{title} — UNAPPROVED")
        self.banner = ttk.Label(outer, style="Banner.TLabel", anchor="center")
        if not model.approved:
            self.banner.configure(text="UNAPPROVED — a development build, not approved for release")
            self.banner.grid(row=0, column=0, sticky="ew")

        head = ttk.Frame(outer, padding=(PAD * 2, PAD * 1.5, PAD * 2, 0))
        head.grid(row=1, column=0, sticky="ew")
        ttk.Label(head, text=model.info.get("title") or model.name, style="Title.TLabel").grid(
            sticky="w"
        )
        sub = (model.record.get("app") or {}).get("description") or ""
        version = version_line(model)
        self.version_label = ttk.Label(
            head, text=f"{sub}  ({version})" if sub else version, style="Sub.TLabel", wraplength=820
        )
        self.version_label.grid(sticky="w", pady=(2, 0))
        warned = list(model.warnings)
        self.notice_label = ttk.Label(
            head,
            text=f"⚠ {warned[0]}" if warned else "",
            style="Warn.TLabel" if warned else "Notice.TLabel",
            wraplength=820,
        )
        self.notice_label.grid(sticky="w", pady=(2, 0))

        body = ttk.Frame(outer, padding=(PAD * 2, PAD, PAD * 2, 0))
        body.grid(row=2, column=0, sticky="nsew")
        body.columnconfigure(0, weight=3, uniform="cols")
        body.columnconfigure(1, weight=2, uniform="cols")
        self._view = (self.banner, head, body)

        form = ttk.LabelFrame(body, text=" Inputs ", padding=PAD)
        form.grid(row=0, column=0, sticky="nsew", padx=(0, PAD))
        form.columnconfigure(1, weight=1)
        self.fields = {}
        for row, item in enumerate(model.inputs):
            self._add_field(tk, ttk, form, row, item)
        buttons = ttk.Frame(form)
        buttons.grid(row=2 * len(self.fields), column=0, columnspan=2, sticky="e", pady=(PAD, 0))
        # Predict is made first: Tab goes from the last input to Predict, then Clear.
        self.predict_button = ttk.Button(
            buttons, text="Predict", style="Accent.TButton", command=self.predict, default="active"
        )
        self.clear_button = ttk.Button(buttons, text="Clear", command=self.clear)
        self.predict_button.grid(row=0, column=1, padx=(PAD / 2, 0))
        self.clear_button.grid(row=0, column=0)

        result = ttk.LabelFrame(body, text=" Result ", padding=PAD)
        result.grid(row=0, column=1, sticky="nsew")
        result.columnconfigure(1, weight=1)
        self.result_label = ttk.Label(
            result, text="—", style="Result.TLabel", anchor="w", wraplength=300
        )
        self.result_label.grid(row=0, column=0, columnspan=3, sticky="w")
        self.detail_label = ttk.Label(
            result,
            text="Fill in the form and press Predict (Enter).",
            style="Sub.TLabel",
            wraplength=300,
        )
        self.detail_label.grid(row=1, column=0, columnspan=3, sticky="w")
        self.uncertain_label = ttk.Label(result, text="", style="Uncertain.TLabel", wraplength=300)
        self.uncertain_label.grid(row=2, column=0, columnspan=3, sticky="w", pady=(4, 0))
        self.bar_frame = ttk.Frame(result)
        self.bar_frame.grid(row=3, column=0, columnspan=3, sticky="ew", pady=(PAD / 2, 0))
        self.bar_frame.columnconfigure(1, weight=1)
        self._bar_widgets: dict[Any, Bar] = {}
        self.bars = []
        if model.outputs.task == "classification":
            for cls in model.outputs.classes:
                self._bar_widgets[cls] = Bar(
                    cls=cls,
                    name_label=ttk.Label(self.bar_frame, text=str(cls)),
                    bar=ttk.Progressbar(
                        self.bar_frame,
                        maximum=100,
                        length=150,
                        style="Other.Horizontal.TProgressbar",
                    ),
                    percent_label=ttk.Label(self.bar_frame, text="", width=6, anchor="e"),
                )
        self.warning_label = ttk.Label(
            result, text="", style="Warning.TLabel", wraplength=300, justify="left"
        )
        self.warning_label.grid(row=4, column=0, columnspan=3, sticky="ew", pady=(PAD, 0))
        result.rowconfigure(5, weight=1)
        result.bind("<Configure>", self._rewrap)
        self.copy_button = ttk.Button(
            result, text="Copy result", command=self.copy_result, state="disabled"
        )
        self.copy_button.grid(row=6, column=0, columnspan=3, sticky="e", pady=(PAD, 0))

    def set_model(self, model: Model) -> None:
        """Serve ``model`` from now on: the form, result panel, title and About are built
        again from it (another version may have other inputs, classes or threshold)."""
        import tkinter as tk
        from tkinter import ttk

        if self.about is not None and self.about.winfo_exists():
            self.about.destroy()
        self.about = self.about_text = None
        for widget in self._view:
            widget.destroy()
        self.model = model
        self.threshold = model.outputs.uncertain_below
        self.prediction = None
        self.shown = ""
        self._model_view(tk, ttk)
        self._order_focus()
        self.focus_first(force=True)

    def _order_focus(self) -> None:
        """Tab order as the eye reads: the form (rebuilt ones too) comes before the file
        panel and the footer, which were made earlier."""
        for widget in reversed(self._view):
            widget.lower()

    def focus_first(self, force: bool = False) -> None:
        """Put the keyboard on the first input (``force``: also take it from other windows)."""
        first = next(iter(self.fields.values()), None)
        widget = first.widget if first else self.predict_button
        if not widget.winfo_exists():
            return
        widget.focus_force() if force else widget.focus_set()

    # -- building ---------------------------------------------------------
    def _style(self, ttk: Any) -> None:
        """One look on every platform: ttk's "clam" theme, a little colour, readable fonts."""
        import tkinter.font as tkfont

        style = ttk.Style(self.root)
        if "clam" in style.theme_names():
            style.theme_use("clam")
        base = tkfont.nametofont("TkDefaultFont")
        base.configure(size=10)
        tkfont.nametofont("TkTextFont").configure(size=10)
        family = base.actual("family")
        bg = style.lookup("TFrame", "background") or "#dcdad5"
        style.configure("Title.TLabel", font=(family, 16, "bold"))
        style.configure("Sub.TLabel", foreground=GREY)
        style.configure("Notice.TLabel", foreground=GREEN, font=(family, 10, "bold"))
        style.configure("Hint.TLabel", foreground=GREY, font=(family, 9))
        style.configure("Invalid.TLabel", foreground=RED, font=(family, 9, "bold"))
        style.configure("Warn.TLabel", foreground=AMBER, font=(family, 9, "bold"))
        style.configure("Result.TLabel", font=(family, 26, "bold"))
        style.configure("Uncertain.TLabel", foreground=AMBER, font=(family, 11, "bold"))
        style.configure(
            "Warning.TLabel", foreground=AMBER, background=bg, font=(family, 10), padding=0
        )
        style.configure("Shown.Warning.TLabel", background=AMBER_BG, padding=8)
        style.configure(
            "Banner.TLabel",
            foreground="white",
            background=RED,
            font=(family, 11, "bold"),
            padding=8,
        )
        style.configure("Accent.TButton", font=(family, 10, "bold"), padding=(14, 4))
        style.configure("Invalid.TEntry", fieldbackground=RED_BG, foreground=RED)
        style.configure("Warn.TEntry", fieldbackground=AMBER_BG)
        style.configure("Warn.TCombobox", fieldbackground=AMBER_BG)
        style.map("Warn.TCombobox", fieldbackground=[("readonly", AMBER_BG)])
        style.configure("Top.Horizontal.TProgressbar", background=GREEN, troughcolor="#eeeeee")
        style.configure("Other.Horizontal.TProgressbar", background=BAR, troughcolor="#eeeeee")
        style.configure("File.Horizontal.TProgressbar", background=GREEN)
        self.fonts = {"family": family}

    def _add_field(self, tk: Any, ttk: Any, form: Any, row: int, item: Input) -> None:
        """One input: its label, its entry (or read-only drop-down) and a hint line under it."""
        ttk.Label(form, text=field_label(item), wraplength=250, justify="left").grid(
            row=2 * row, column=0, sticky="w", padx=(0, PAD), pady=(6, 0)
        )
        var = tk.StringVar(self.root, value="")
        if item.kind == "categorical":
            widget = ttk.Combobox(
                form, textvariable=var, values=("", *item.categories), state="readonly", width=24
            )
            widget.bind("<KeyPress>", lambda e, w=widget: self._pick_by_letter(w, e))
            hint_text = "choose one; empty means missing"
        elif item.kind == "text":
            widget = self._text_box(tk, form, var)
            hint_text = "text, any length (Enter starts a new line; empty is empty text)"
        else:
            widget = ttk.Entry(form, textvariable=var, width=26)
            hint = range_hint(item)
            hint_text = f"trained on {hint}" if hint else "a number; empty means missing"
        widget.grid(row=2 * row, column=1, sticky="ew", pady=(6, 0))
        # Wrapped, so a long mark never widens the form (the window would jump as you type).
        label = ttk.Label(form, text=hint_text, style="Hint.TLabel", wraplength=230)
        label.grid(row=2 * row + 1, column=1, sticky="w")
        f = Field(item=item, widget=widget, var=var, hint=label, default_hint=hint_text)
        self.fields[item.name] = f
        var.trace_add("write", lambda *_a, f=f: self._check(f))

    def _text_box(self, tk: Any, form: Any, var: Any) -> Any:
        """A multi-line text box for a text input, its content mirrored in ``var`` both ways
        (so the form reads, and tests set, every field alike). Enter inserts a new line
        here instead of predicting (Ctrl+Enter and the button still predict)."""
        box = tk.Text(form, width=40, height=6, wrap="word", undo=True)

        def to_var(_e: Any = None) -> None:
            text = box.get("1.0", "end-1c")
            if var.get() != text:
                var.set(text)
            box.edit_modified(False)

        def to_box(*_a: Any) -> None:
            if box.get("1.0", "end-1c") != var.get():
                box.delete("1.0", "end")
                box.insert("1.0", var.get())

        def newline(_e: Any) -> str:
            box.insert("insert", "\n")
            to_var()
            return "break"

        box.bind("<<Modified>>", to_var)
        box.bind("<KeyRelease>", to_var)
        for seq in ("<Return>", "<KP_Enter>"):
            box.bind(seq, newline)
        box.bind("<Control-Return>", lambda _e: (to_var(), self.predict(), "break")[-1])
        var.trace_add("write", to_box)
        return box

    def _menu(self, tk: Any) -> None:
        """The menu bar: the same commands as the buttons, with their keys shown."""
        bar = tk.Menu(self.root)
        file = tk.Menu(bar, tearoff=False)
        file.add_command(label="Predict", accelerator="Enter", command=self.predict)
        file.add_command(label="Copy result", accelerator="Ctrl+Shift+C", command=self.copy_result)
        file.add_separator()
        file.add_command(label="Score a file…", accelerator="Ctrl+O", command=self.choose_file)
        file.add_command(label="Cancel scoring", accelerator="Esc", command=self.cancel_file)
        file.add_separator()
        file.add_command(label="Update model…", accelerator="Ctrl+U", command=self.choose_pack)
        file.add_separator()
        file.add_command(label="Quit", accelerator="Ctrl+Q", command=self.close)
        bar.add_cascade(label="File", menu=file, underline=0)
        help_ = tk.Menu(bar, tearoff=False)
        help_.add_command(label="About this model", accelerator="F1", command=self.open_about)
        bar.add_cascade(label="Help", menu=help_, underline=0)
        self.root.configure(menu=bar)
        self.menu = bar

    def _pick_by_letter(self, widget: Any, event: Any) -> str | None:
        """A read-only drop-down answers keys as native ones do: a letter picks the next
        category starting with it, Backspace/Delete empties it (missing). This is what lets
        a keyboard alone (or xdotool) fill the form."""
        if event.keysym in ("BackSpace", "Delete"):
            widget.set("")
            widget.event_generate("<<ComboboxSelected>>")
            return "break"
        char = event.char
        if not char or not char.isprintable() or event.state & 0xC:  # not Control/Alt-<key>
            return None
        values = [str(v) for v in widget.cget("values")]
        current = widget.get()
        matches = [v for v in values if v and v.lower().startswith(char.lower())]
        if not matches:
            return "break"
        after = [
            v for v in matches if current in matches and matches.index(v) > matches.index(current)
        ]
        widget.set(after[0] if after else matches[0])
        widget.event_generate("<<ComboboxSelected>>")
        return "break"

    def _rewrap(self, event: Any) -> None:
        """Wrap the result's texts at the result panel's width, whatever the window's size."""
        width = max(200, event.width - 2 * PAD - 4)
        for label in (
            self.result_label,
            self.detail_label,
            self.uncertain_label,
            self.warning_label,
        ):
            label.configure(wraplength=width)

    # -- validating as you type ------------------------------------------------
    def _check(self, f: Field) -> None:
        """Mark a field as its text changes: red when not a number, amber outside the range."""
        if f.item.kind != "numeric":
            self._mark(f, "ok")
            return
        try:
            value = parse_number(f.var.get())
        except ValueError:
            self._mark(f, "invalid", "not a number")
            return
        if outside_range(f.item, value):
            self._mark(f, "warn", f"outside {range_hint(f.item)}, the training range")
        else:
            self._mark(f, "ok")

    def _mark(self, f: Field, state: str, message: str = "") -> None:
        f.state = state
        if f.item.kind == "text":
            pass  # a text box has no ttk style, and text is never wrong
        elif f.item.kind == "categorical":
            f.widget.configure(style="Warn.TCombobox" if state == "warn" else "TCombobox")
        else:
            f.widget.configure(
                style={"invalid": "Invalid.TEntry", "warn": "Warn.TEntry"}.get(state, "TEntry")
            )
        prefix = {"invalid": "✗ ", "warn": "⚠ "}.get(state, "")
        f.hint.configure(
            text=prefix + message if message else f.default_hint,
            style={"invalid": "Invalid.TLabel", "warn": "Warn.TLabel"}.get(state, "Hint.TLabel"),
        )

    # -- predicting ---------------------------------------------------------
    def record(self) -> dict[str, object]:
        """The form as a record; raises ValueError naming the first field that is not a number."""
        out: dict[str, object] = {}
        for name, f in self.fields.items():
            text = f.var.get()
            if f.item.kind == "numeric":
                try:
                    out[name] = parse_number(text)
                except ValueError:
                    raise ValueError(
                        f"{field_label(f.item)} ({name}): {text.strip()!r} is not a number. "
                        "Write a number, or leave the field empty for a missing value."
                    ) from None
            elif f.item.kind == "text":
                out[name] = text  # empty text is text, not missing
            else:
                out[name] = text or None
        return out

    def predict(self) -> Prediction | None:
        """Score the form and show the answer; a field that is not a number is named in a
        dialog instead (and focused), as is anything the model refuses."""
        from tkinter import messagebox

        for f in self.fields.values():
            self._check(f)
        bad = next((f for f in self.fields.values() if f.state == "invalid"), None)
        try:
            record = self.record()
            prediction = self.model.predict(record)
        except BundleError:
            raise  # not the user's input: the damaged-model dialog (_report_error)
        except (InputError, ValueError) as exc:
            messagebox.showerror("Cannot predict", one_line(exc), parent=self.root)
            if bad is not None:
                bad.widget.focus_set()
            return None
        self.show(prediction)
        return prediction

    def show(self, prediction: Prediction) -> None:
        """Show an answer: the label big, the probabilities as bars highest first, the
        "uncertain" mark and the warnings; the fields the warnings name are marked."""
        self.prediction = prediction
        uncertain = prediction.uncertain
        self.result_label.configure(text=headline(prediction))
        order = ranked(prediction)
        if prediction.outputs:
            detail = f"{len(prediction.outputs)} targets predicted"
        elif prediction.value is not None:
            detail = "predicted value"
        elif order:
            detail = f"{percent(order[0][1])} probability"
        else:
            detail = "predicted class"
        self.detail_label.configure(text=detail)
        self.uncertain_label.configure(
            text=(
                f"⚠ uncertain (under {100 * self.threshold:g}%)"
                if uncertain and self.threshold is not None
                else ("⚠ uncertain" if uncertain else "")
            )
        )
        for bar in self.bars:
            for w in (bar.name_label, bar.bar, bar.percent_label):
                w.grid_remove()
        self.bars = []
        for row, (cls, p) in enumerate(order):
            bar = self._bar_widgets.get(cls)
            if bar is None:
                continue
            bar.bar.configure(
                value=100 * p,
                style="Top.Horizontal.TProgressbar"
                if row == 0
                else "Other.Horizontal.TProgressbar",
            )
            bar.percent_label.configure(text=percent(p))
            bar.name_label.grid(row=row, column=0, sticky="w", padx=(0, 8), pady=2)
            bar.bar.grid(row=row, column=1, sticky="ew", pady=2)
            bar.percent_label.grid(row=row, column=2, sticky="e", padx=(8, 0), pady=2)
            self.bars.append(bar)
        warnings = prediction.warnings
        self.warning_label.configure(
            text="\n".join(f"⚠ {w}" for w in warnings),
            style="Shown.Warning.TLabel" if warnings else "Warning.TLabel",
        )
        named = warned_inputs(warnings, self.fields)
        for name, f in self.fields.items():
            if f.state != "invalid" and name in named:
                self._mark(f, "warn", "outside the training range")
        self.shown = result_text(prediction)
        self.copy_button.configure(state="normal")

    def clear(self) -> None:
        """Empty the form and the result, back to the first field."""
        for f in self.fields.values():
            f.var.set("")
        self.prediction = None
        self.shown = ""
        self.result_label.configure(text="—")
        self.detail_label.configure(text="Fill in the form and press Predict (Enter).")
        self.uncertain_label.configure(text="")
        self.warning_label.configure(text="", style="Warning.TLabel")
        for bar in self.bars:
            for w in (bar.name_label, bar.bar, bar.percent_label):
                w.grid_remove()
        self.bars = []
        self.copy_button.configure(state="disabled")
        self.focus_first()

    def copy_result(self) -> str:
        """Put the shown result on the clipboard as one line (for pasting into reports)."""
        if self.shown:
            self.root.clipboard_clear()
            self.root.clipboard_append(self.shown)
        return self.shown

    # -- about --------------------------------------------------------------
    def open_about(self) -> str:
        """Show the model record in readable form in a dialog (Escape or Close shuts it);
        returns its text."""
        import tkinter as tk
        import tkinter.font as tkfont
        from tkinter import ttk

        lines = about_lines(self.model)
        text = "\n".join(t for _s, t in lines)
        if self.about is not None and self.about.winfo_exists():
            self.about.lift()
            return text
        top = tk.Toplevel(self.root)
        # the version in the title too: what a user reads out, and what a test can see
        top.title(f"About model {model_version(self.model)} — {self.model.name}")
        top.transient(self.root)
        frame = ttk.Frame(top, padding=PAD)
        frame.grid(sticky="nsew")
        top.columnconfigure(0, weight=1)
        top.rowconfigure(0, weight=1)
        frame.columnconfigure(0, weight=1)
        frame.rowconfigure(0, weight=1)
        family = self.fonts["family"]
        widget = tk.Text(
            frame,
            width=92,
            height=30,
            wrap="word",
            relief="flat",
            padx=PAD,
            pady=PAD,
            background="white",
            highlightthickness=0,
        )
        scroll = ttk.Scrollbar(frame, orient="vertical", command=widget.yview)
        widget.configure(yscrollcommand=scroll.set)
        widget.tag_configure("title", font=(family, 13, "bold"), spacing3=4)
        widget.tag_configure(
            "alert", font=(family, 10, "bold"), foreground="white", background=RED, spacing3=4
        )
        widget.tag_configure("heading", font=(family, 10, "bold"), spacing1=10, spacing3=2)
        mono = tkfont.Font(root=self.root, family="DejaVu Sans Mono", size=9)
        widget.configure(font=mono)
        # Wrapped lines continue under the value column, not under the key.
        widget.tag_configure(
            "body",
            lmargin1=8,
            lmargin2=8 + mono.measure("0" * about_key_width(self.model)),
        )
        for style, line in lines:
            widget.insert("end", line + "\n", style)
        widget.configure(state="disabled")
        widget.grid(row=0, column=0, sticky="nsew")
        scroll.grid(row=0, column=1, sticky="ns")
        close = ttk.Button(frame, text="Close", command=self._close_about)
        close.grid(row=1, column=0, columnspan=2, sticky="e", pady=(PAD, 0))
        top.bind("<Escape>", lambda _e: self._close_about())
        top.bind("<Return>", lambda _e: self._close_about())
        top.protocol("WM_DELETE_WINDOW", self._close_about)
        close.focus_set()
        self.about, self.about_text = top, widget
        return text

    def _close_about(self) -> None:
        if self.about is not None:
            self.about.destroy()
        self.about = self.about_text = None
        self.focus_first(force=True)

    # -- updating the model ---------------------------------------------------
    def _open_store(self) -> Any:
        """The app's model store (raises ``PackError`` for an app built without
        ``[updates]``: the dialog says so)."""
        if self.store is None:
            from mlbundle_runtime.store import ModelStore

            self.store = ModelStore.for_model(self.model)
        return self.store

    def choose_pack(self) -> InstallJob | None:
        """Ask for a model pack (``*.mlpack``) and install it (Ctrl+U, "Update model…")."""
        from tkinter import filedialog

        if self.install_job is not None and self.install_job.running:
            return self.install_job
        src = filedialog.askopenfilename(
            parent=self.root, title="Update the model from a model pack", filetypes=pack_filetypes()
        )
        if not src:
            return None
        return self.install_pack(src)

    def offer_pack(self, src: str | os.PathLike[str]) -> InstallJob | None:
        """A pack the app was opened with (a double-click on a ``.mlpack``): ask first,
        naming the file and the model now active, then install it."""
        from tkinter import messagebox

        path = Path(src)
        yes = messagebox.askyesno(
            "Update the model?",
            f"Install the model in {path.name}? It replaces model {model_version(self.model)} "
            "once its signature and the release gate pass inside this app.",
            parent=self.root,
        )
        return self.install_pack(path) if yes else None

    def install_pack(self, src: str | os.PathLike[str]) -> InstallJob | None:
        """Install the pack ``src`` on a worker thread (no file dialog): the window stays
        responsive and shows each step; on success the form is rebuilt for the new model
        and a line says which version is active. A refusal is a one-line dialog and the
        model in use stays. Returns the job (``.running``, ``.outcome``), or None when it
        could not start."""
        from tkinter import messagebox

        title = "Cannot update the model"
        if self.install_job is not None and self.install_job.running:
            messagebox.showerror(title, "a model pack is being installed already", parent=self.root)
            return None
        if self.job is not None and self.job.running:
            messagebox.showerror(
                title,
                f"{self.job.src.name} is being scored: wait for it, or cancel it (Esc), first",
                parent=self.root,
            )
            return None
        path = Path(src)
        try:
            store = self._open_store()
        except Exception as exc:  # no [updates], a damaged app: its one line
            messagebox.showerror(title, one_line(exc), parent=self.root)
            return None
        job = InstallJob(src=path)
        self.install_job = job
        self.update_button.configure(state="disabled")
        self.install_progress.grid(row=1, column=0, columnspan=2, sticky="w", pady=(PAD / 2, 0))
        self.install_label.grid(row=1, column=2, sticky="w", padx=(PAD / 2, 0), pady=(PAD / 2, 0))
        self.install_label.configure(text=f"Installing {path.name}…")
        self.install_progress.start(POLL_MS)
        job.thread = threading.Thread(
            target=_install_pack,
            args=(store, job),
            name="mlbundle-install-pack",
            daemon=True,
        )
        job.thread.start()
        self.root.after(POLL_MS, self._poll_install)
        return job

    def _poll_install(self) -> None:
        """On Tk's thread: show the worker's last step; at the end, swap the model in."""
        from tkinter import messagebox

        job = self.install_job
        if job is None:
            return
        end: tuple[str, Any] | None = None
        while True:
            try:
                kind, payload = job.messages.get_nowait()
            except queue.Empty:
                break
            if kind == "progress":
                job.step = str(payload)
            else:
                end = (kind, payload)
        if end is None:
            if job.step:
                self.install_label.configure(text=f"Installing {job.src.name}: {job.step}…")
            self.root.after(POLL_MS, self._poll_install)
            return
        self.install_progress.stop()
        self.install_progress.grid_remove()
        self.install_label.grid_remove()
        self.update_button.configure(state="normal")
        kind, payload = end
        if kind == "done":
            job.entry, job.model = payload
            job.outcome = "done"
            assert job.model is not None
            self.set_model(job.model)
            self.notice_label.configure(
                text=f"✓ Model {model_version(job.model)} is now active "
                f"({model_origin(job.model)}, from {job.src.name}).",
                style="Notice.TLabel",
            )
        else:
            job.outcome, job.error = "failed", payload
            messagebox.showerror("Cannot update the model", one_line(payload), parent=self.root)

    # -- scoring a file -----------------------------------------------------
    def choose_file(self) -> FileJob | None:
        """Ask for a CSV or JSON Lines file and where to save its scores, then score it."""
        from tkinter import filedialog

        if self.job is not None and self.job.running:
            return self.job
        src = filedialog.askopenfilename(
            parent=self.root,
            title="Score a file",
            filetypes=[
                ("CSV or JSON Lines", "*.csv *.jsonl *.ndjson"),
                ("CSV", "*.csv"),
                ("JSON Lines", "*.jsonl *.ndjson"),
                ("All files", "*"),
            ],
        )
        if not src:
            return None
        dst = filedialog.asksaveasfilename(
            parent=self.root,
            title="Save the scores as",
            initialdir=str(Path(src).parent),
            initialfile=scored_name(src),
            defaultextension=Path(src).suffix or ".csv",
        )
        if not dst:
            return None
        return self.score_file(src, dst)

    def score_file(self, src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> FileJob:
        """Score ``src`` into ``dst`` on a worker thread; the window stays responsive and
        shows rows, progress and time left. Returns the job (``.running``, ``.outcome``)."""
        from tkinter import messagebox

        if self.job is not None and self.job.running:
            raise RuntimeError("a file is being scored already")
        src, dst = Path(src), Path(dst)
        try:
            size = os.stat(src).st_size
        except OSError as exc:
            messagebox.showerror("Cannot score the file", one_line(exc), parent=self.root)
            job = FileJob(src=src, dst=dst, size=0, outcome="failed", error=exc)
            return job
        job = FileJob(src=src, dst=dst, size=size)
        self.job = job
        self.file_button.configure(state="disabled")
        self.cancel_button.configure(state="normal")
        self.progress.configure(value=0)
        self.progress_label.configure(text=f"Scoring {src.name}…", style="Sub.TLabel")
        job.thread = threading.Thread(
            target=_score_file, args=(self.model, job), name="mlbundle-score-file", daemon=True
        )
        job.thread.start()
        self.root.after(POLL_MS, self._poll)
        return job

    def cancel_file(self) -> None:
        """Stop the running file job (Escape); it ends at the next chunk, leaving no output."""
        if self.job is not None and self.job.running:
            self.job.cancel.set()
            self.cancel_button.configure(state="disabled")
            self.progress_label.configure(text="Cancelling…")

    def _poll(self) -> None:
        """On Tk's thread: apply what the worker reported, then look again shortly."""
        from tkinter import messagebox

        job = self.job
        if job is None:
            return
        latest: tuple[int, int] | None = None
        end: tuple[str, Any] | None = None
        while True:
            try:
                kind, payload = job.messages.get_nowait()
            except queue.Empty:
                break
            if kind == "progress":
                latest = payload
            else:
                end = (kind, payload)
        if latest is not None and end is None:
            rows, read = latest
            job.rows = rows
            job.fraction = min(1.0, read / job.size) if job.size else 0.0
            elapsed = time.monotonic() - job.started
            left = (
                time_left(elapsed * (1 - job.fraction) / job.fraction)
                if job.fraction > 0
                else "estimating time left"
            )
            self.progress.configure(value=job.fraction)
            if not job.cancel.is_set():
                self.progress_label.configure(
                    text=f"{rows:,} rows · {percent(job.fraction)} · {left}"
                )
        if end is None:
            self.root.after(POLL_MS, self._poll)
            return
        kind, payload = end
        self.file_button.configure(state="normal")
        self.cancel_button.configure(state="disabled")
        if kind == "done":
            job.outcome, job.result = "done", payload
            self.progress.configure(value=1.0)
            r: FileResult = payload
            extra = []
            if r.failed:
                first = f": {r.first_error}" if r.first_error else ""
                extra.append(f"{r.failed:,} failed, their reasons in the error column{first}")
            if r.warned:
                extra.append(f"{r.warned:,} with warnings")
            self.progress_label.configure(
                text=f"✓ {r.scored:,} of {r.rows:,} rows scored into {Path(r.output).name}"
                + (f"; {'; '.join(extra)}" if extra else ""),
                style="TLabel",
            )
        elif kind == "cancelled":
            job.outcome = "cancelled"
            self.progress.configure(value=0)
            self.progress_label.configure(text="Cancelled: no output was written.")
        else:
            job.outcome, job.error = "failed", payload
            self.progress.configure(value=0)
            self.progress_label.configure(text=f"{job.src.name} was not scored.")
            messagebox.showerror("Cannot score the file", one_line(payload), parent=self.root)

    # -- errors and closing ------------------------------------------------------
    def _report_error(self, exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
        """Any unexpected error in a callback becomes a dialog with one line, never a
        traceback (set MLBUNDLE_DEBUG=1 to also print the traceback on stderr)."""
        from tkinter import messagebox

        if not isinstance(exc, Exception):  # Ctrl-C, SIGTERM: stop, as outside a callback
            self.stopped = exc
            job = self.job
            if job is not None and job.running:
                job.cancel.set()
            self.root.quit()
            return
        if os.environ.get("MLBUNDLE_DEBUG"):
            import traceback

            traceback.print_exception(exc_type, exc, tb)
        title = "The model is damaged" if isinstance(exc, BundleError) else "Something went wrong"
        messagebox.showerror(title, one_line(exc), parent=self.root)

    def close(self) -> None:
        """Quit: a running file job is cancelled first, so no partial output is left; an
        install is left to finish (it is atomic, but a half-checked pack helps nobody)."""
        job = self.job
        if job is not None and job.running and job.thread is not None:
            job.cancel.set()
            job.thread.join(timeout=10)
        install = self.install_job
        if install is not None and install.running and install.thread is not None:
            install.thread.join(timeout=60)
        self.root.destroy()


def _say(line: str) -> None:
    """One line on stderr, if there is one (a windowed Windows binary has none)."""
    if sys.stderr is not None:
        print(f"error: {line}", file=sys.stderr)


def run(model: Model | None = None, pack: str | os.PathLike[str] | None = None) -> int:
    """Open the application's window on ``model`` (default: the active one) and return the
    exit code when it is closed: 0; 2 (and one line on stderr) when no window can be opened,
    so a headless user is pointed at the subcommands; 4 when the model cannot be loaded.
    ``pack``: a model pack the app was opened with; the window offers to install it."""
    try:
        import tkinter as tk
        from tkinter import messagebox
    except ImportError:
        _say("cannot open a window (Tk is not available): use a subcommand, e.g. predict --help")
        return 2
    try:
        root = tk.Tk()
    except tk.TclError:
        _say(NO_DISPLAY)
        return 2
    try:
        if model is None:
            try:
                model = api.load()
            except BundleError as exc:
                root.withdraw()
                messagebox.showerror("The model cannot be loaded", one_line(exc), parent=root)
                _say(f"this application's model is damaged or missing: {exc}")
                return 4
        window = ModelWindow(root, model)
        if pack is not None:
            # the window first, drawn; then the question over it (asked from an idle
            # callback, the dialog would come up alone, before the window is mapped)
            root.update()
            root.after(POLL_MS, lambda: window.offer_pack(pack))
        try:
            root.mainloop()
            if window.stopped is not None:  # the CLI turns it into its exit code and one line
                raise window.stopped
        finally:  # Ctrl-C or SIGTERM in or out of a callback: a file job's output goes too
            job = window.job
            if job is not None and job.thread is not None and job.thread.is_alive():
                job.cancel.set()
                job.thread.join(timeout=10)
            install = window.install_job
            if install is not None and install.thread is not None and install.thread.is_alive():
                install.thread.join(timeout=60)
    finally:
        with contextlib.suppress(tk.TclError):  # already closed by the window
            root.destroy()
    return 0
