"""The end users' window, driven in-process on a real X display (Xvfb).

The payload comes from ``bundle prepare`` (nothing is frozen); each test builds a
``ModelWindow`` into a fresh Tk root, fills the real widgets, presses the real buttons
and keys, and compares what the widgets show with what the runtime API answers for
the same record: the window must show the model's answer, never its own.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._display import Display

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "penguins.toml"
CONFIDENCE = ROOT / "resources" / "gate" / "confidence.csv"
OUTPUT = Path(os.environ.get("MLBUNDLE_TEST_OUTPUT", ROOT / "tests" / "output"))

#: A penguin the model is sure of (Gentoo), and one it is not (row 37 of the e2e set).
GENTOO = {
    "island": "Biscoe",
    "bill_length_mm": 47.5,
    "bill_depth_mm": 14.8,
    "flipper_length_mm": 217,
    "body_mass_g": 5200,
    "sex": "female",
}
#: A Chinstrap with a little doubt (row 35 of the e2e set): the screenshot's penguin.
CHINSTRAP = {
    "island": "Dream",
    "bill_length_mm": 49,
    "bill_depth_mm": 19.5,
    "flipper_length_mm": 210,
    "body_mass_g": 3950,
    "sex": "male",
}
UNSURE = {
    "island": "Dream",
    "bill_length_mm": 43.2,
    "bill_depth_mm": 18.5,
    "flipper_length_mm": 192,
    "body_mass_g": 4100,
    "sex": "male",
}


@pytest.fixture(scope="module")
def payload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example's payload folder, as ``bundle prepare`` writes it (a few seconds)."""
    out = tmp_path_factory.mktemp("window") / "payload"
    proc = subprocess.run(
        [sys.executable, "-m", "bundler", "prepare", str(SPEC), "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env=dict(os.environ, SOURCE_DATE_EPOCH="1764374400", NO_COLOR="1"),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


@pytest.fixture(scope="module")
def model(payload: Path) -> Any:
    import mlbundle_runtime

    return mlbundle_runtime.load(payload)


@pytest.fixture()
def dialogs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    """Message boxes recorded instead of shown (a shown one would wait for a click)."""
    from tkinter import messagebox

    calls: list[tuple[str, str, str]] = []
    for kind in ("showerror", "showwarning", "showinfo"):

        def record(title: str, message: str, kind: str = kind, **_kw: Any) -> str:
            calls.append((kind, title, message))
            return "ok"

        monkeypatch.setattr(messagebox, kind, record)
    return calls


@pytest.fixture()
def window(display: Display, model: Any, dialogs: list[Any]) -> Iterator[Any]:
    """A ModelWindow in a fresh Tk root, drawn and focused; destroyed afterwards."""
    import tkinter as tk

    from mlbundle_runtime.window import ModelWindow

    root = tk.Tk()
    w = ModelWindow(root, model)
    root.geometry("+0+0")
    root.update()
    yield w
    if w.job is not None and w.job.running:
        w.job.cancel.set()
        assert w.job.thread is not None
        w.job.thread.join(10)
    with contextlib.suppress(tk.TclError):
        root.destroy()


def fill(w: Any, record: dict[str, object]) -> None:
    """Type a record into the form, as text (None: leave the field empty)."""
    for name, value in record.items():
        w.fields[name].var.set("" if value is None else str(value))
    w.root.update()


def pump(w: Any, until: Callable[[], bool], timeout: float = 30) -> None:
    """Run Tk's event loop until ``until()`` holds (as mainloop would)."""
    end = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < end, "timed out waiting for the window"
        w.root.update()
        time.sleep(0.005)


def test_form_is_generated_from_the_inputs(window: Any, model: Any) -> None:
    from tkinter import ttk

    assert list(window.fields) == [i.name for i in model.inputs]
    for item in model.inputs:
        f = window.fields[item.name]
        if item.kind == "categorical":
            assert isinstance(f.widget, ttk.Combobox)
            assert str(f.widget.cget("state")) == "readonly"
            assert tuple(f.widget.cget("values")) == ("", *item.categories)
        else:
            assert isinstance(f.widget, ttk.Entry)
            rng = item.training_range
            assert f"{rng['min']:g} – {rng['max']:g} {item.unit}" in str(f.hint.cget("text"))
    # The first field has the focus; Tab goes through the inputs in order, then Predict.
    first = window.fields[model.inputs[0].name].widget
    assert window.root.focus_get() == first
    order, widget = [], first
    for _ in model.inputs:
        order.append(widget)
        widget = widget.tk_focusNext()
    assert order == [f.widget for f in window.fields.values()]
    assert widget == window.predict_button


def test_predict_shows_the_models_answer(window: Any, model: Any, display: Display) -> None:
    fill(window, CHINSTRAP)
    window.predict_button.invoke()
    window.root.update()
    expected = model.predict(CHINSTRAP)
    assert window.result_label.cget("text") == str(expected.label)
    ranked = sorted(expected.probabilities.items(), key=lambda kv: -kv[1])
    assert [b.cls for b in window.bars] == [c for c, _p in ranked]
    for bar, (_cls, p) in zip(window.bars, ranked, strict=True):
        assert float(bar.bar.cget("value")) == pytest.approx(100 * p)
        assert bar.percent_label.cget("text") == f"{100 * p:.1f}%"
        assert bar.bar.winfo_ismapped()
    assert window.warning_label.cget("text") == ""
    assert window.uncertain_label.cget("text") == ""
    # The title and banner say this development build is not approved.
    assert model.approved is False
    assert window.root.title() == (
        f"{model.info['title']} — {model.name} {model.version} — UNAPPROVED"
    )
    assert "UNAPPROVED" in window.banner.cget("text") and window.banner.winfo_ismapped()

    # The product's face, for people to look at: a prediction on screen.
    window.root.update()
    time.sleep(0.2)
    window.root.update()
    shot = OUTPUT / "window.png"
    shot.unlink(missing_ok=True)
    display.screenshot(shot)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000


def test_regression_value_and_no_probabilities(window: Any) -> None:
    """A regressor's answer is its value, without bars; so is a classifier without
    probabilities' label (the penguins model is neither, so the answers are made here)."""
    from mlbundle_runtime.api import Prediction

    window.show(Prediction(label=1234.56789, probabilities=None, value=1234.56789))
    window.root.update()
    assert window.result_label.cget("text") == "1234.57"
    assert window.bars == [] and window.shown == "1234.57"
    window.show(Prediction(label="Adelie", probabilities=None, value=None))
    assert window.result_label.cget("text") == "Adelie" and window.shown == "Adelie"
    window.clear()
    window.root.update()
    assert window.result_label.cget("text") == "—" and window.shown == ""
    assert all(f.var.get() == "" for f in window.fields.values())


def test_enter_anywhere_predicts_and_missing_is_empty(window: Any, model: Any) -> None:
    record = dict(UNSURE, sex=None, bill_depth_mm=None)
    fill(window, record)
    entry = window.fields["bill_length_mm"].widget
    entry.focus_force()
    window.root.update()
    entry.event_generate("<Return>")
    window.root.update()
    expected = model.predict(record)
    assert window.result_label.cget("text") == str(expected.label)
    assert [b.percent_label.cget("text") for b in window.bars] == [
        f"{100 * p:.1f}%" for _c, p in sorted(expected.probabilities.items(), key=lambda kv: -kv[1])
    ]


def test_uncertain_prediction_is_marked(window: Any, model: Any) -> None:
    fill(window, UNSURE)
    window.predict()
    window.root.update()
    expected = model.predict(UNSURE)
    top = max(expected.probabilities.values())
    assert top < 0.6  # the spec's uncertain_below
    assert expected.uncertain is True
    assert "uncertain" in window.uncertain_label.cget("text")
    assert window.uncertain_label.winfo_ismapped()
    assert window.shown.endswith(" uncertain")


def test_out_of_range_value_warns_and_still_predicts(window: Any, model: Any) -> None:
    record = dict(GENTOO, body_mass_g=20000)
    fill(window, record)
    mass = window.fields["body_mass_g"]
    assert mass.state == "warn"  # marked as you type, before Predict
    assert "outside" in str(mass.hint.cget("text"))
    window.predict()
    window.root.update()
    expected = model.predict(record)
    assert window.result_label.cget("text") == str(expected.label)
    warnings = expected.warnings
    assert warnings, "the runtime gives no warning for body_mass_g = 20000"
    assert window.warning_label.cget("text") == "\n".join(f"⚠ {w}" for w in warnings)
    assert "body_mass_g" in window.warning_label.cget("text")
    assert mass.state == "warn"
    assert str(mass.widget.cget("style")) == "Warn.TEntry"
    assert all(f"warning: {w}" in window.shown for w in warnings)


def test_bad_number_is_marked_and_named(window: Any, model: Any, dialogs: list[Any]) -> None:
    fill(window, dict(GENTOO, bill_depth_mm="seventeen"))
    depth = window.fields["bill_depth_mm"]
    assert depth.state == "invalid"
    assert str(depth.widget.cget("style")) == "Invalid.TEntry"
    assert "not a number" in str(depth.hint.cget("text"))
    window.predict_button.invoke()
    window.root.update()
    assert len(dialogs) == 1
    kind, title, message = dialogs[0]
    assert kind == "showerror" and title == "Cannot predict"
    assert "bill_depth_mm" in message and "'seventeen'" in message
    assert "\n" not in message and "Traceback" not in message
    assert window.result_label.cget("text") == "—"  # nothing predicted
    assert window.root.focus_get() == depth.widget
    # Fixing the text clears the mark.
    depth.var.set("15")
    window.root.update()
    assert depth.state == "ok" and str(depth.widget.cget("style")) == "TEntry"


def test_unexpected_error_becomes_a_one_line_dialog(
    window: Any, dialogs: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_record: object) -> None:
        raise RuntimeError("the kernels fell over\nsecond line")

    monkeypatch.setattr(window.model, "predict", broken)
    fill(window, GENTOO)
    window.predict_button.invoke()  # invoke() runs the command through Tk's error handler
    window.root.update()
    assert dialogs == [("showerror", "Something went wrong", "the kernels fell over second line")]


def test_copy_result_puts_one_line_on_the_clipboard(window: Any, model: Any) -> None:
    from mlbundle_runtime.window import result_text

    fill(window, GENTOO)
    window.predict()
    window.root.event_generate("<Control-Shift-C>")
    window.root.update()
    expected = model.predict(GENTOO)
    line = window.root.clipboard_get()
    assert line == window.shown == result_text(expected)
    top = max(expected.probabilities, key=expected.probabilities.get)
    assert line.startswith(f"{top} {100 * expected.probabilities[top]:.1f}%")
    assert "\n" not in line
    if shutil.which("xclip"):  # what the frozen binary's test reads
        # The clipboard is served by this process's Tk: keep its loop running meanwhile.
        reader = subprocess.Popen(
            ["xclip", "-o", "-selection", "clipboard"], stdout=subprocess.PIPE, text=True
        )
        pump(window, lambda: reader.poll() is not None, timeout=10)
        assert reader.stdout is not None
        assert reader.stdout.read() == line


def test_about_shows_the_record(window: Any, model: Any) -> None:
    window.root.event_generate("<F1>")
    window.root.update()
    assert window.about is not None and window.about.winfo_exists()
    text = window.about_text.get("1.0", "end")
    record = model.record
    assert "UNAPPROVED: a development build" in text
    assert record["model"]["algorithm"] in text and record["model"]["sha256"] in text
    assert f"scikit-learn {record['training']['libraries']['scikit-learn']}" in text
    conf = record["gate"]["confidence"]
    assert f"{conf['metric']} = {conf['value']:.6g} on {conf['rows']} rows" in text
    assert f"{record['gate']['e2e']['rows']} rows reproduced" in text
    for item in model.inputs:
        assert item.name in text
    assert record["build"]["tool_version"] in text
    # Escape closes it, and the form gets the focus back.
    window.about.event_generate("<Escape>")
    window.root.update()
    assert window.about is None


def test_about_of_an_approved_model(
    window: Any, model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An approved build names who approved it and why (here: the record says approved)."""
    from mlbundle_runtime.window import about_lines

    monkeypatch.setattr(type(model), "approved", property(lambda _self: True))
    text = "\n".join(t for _s, t in about_lines(model))
    audit = model.record["audit"]
    assert "UNAPPROVED" not in text
    assert f"{audit['approved_by']} on {audit['approved_date']}" in text
    assert audit["approval_grounds"] in text


def big_csv(path: Path, rows: int) -> Path:
    """The confidence set repeated to ``rows`` rows (its target column left in: ignored)."""
    with open(CONFIDENCE, newline="") as f:
        lines = list(csv.reader(f))
    header, body = lines[0], lines[1:]
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(header)
        for i in range(rows):
            out.writerow(body[i % len(body)])
    return path


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return big_csv(tmp_path_factory.mktemp("files") / "day.csv", 200_000)


def test_score_a_file_with_progress_responsively(
    window: Any, model: Any, large: Path, tmp_path: Path, dialogs: list[Any]
) -> None:
    dst = tmp_path / "day.scored.csv"
    ticks: list[float] = []

    def tick() -> None:
        ticks.append(time.monotonic())
        window.root.after(10, tick)

    tick()
    seen: list[float] = []
    job = window.score_file(large, dst)
    assert str(window.cancel_button.cget("state")) == "normal"
    assert str(window.file_button.cget("state")) == "disabled"

    answers: list[str] = []

    def watch() -> bool:
        seen.append(float(window.progress.cget("value")))
        if job.running and job.rows and not answers:  # the window is usable meanwhile
            fill(window, GENTOO)
            answers.append(str(window.predict().label))
        return not job.running

    pump(window, watch)
    assert answers == [str(model.predict(GENTOO).label)]
    assert dialogs == []
    assert job.outcome == "done", job.error
    assert job.result.rows == job.result.scored == 200_000
    assert Path(job.result.output) == dst
    # The bar moved through the file, and Tk's loop kept running while the worker did.
    moving = sorted({v for v in seen if 0 < v < 1})
    assert len(moving) >= 3, seen[:20]
    assert float(window.progress.cget("value")) == 1.0
    assert "200,000" in window.progress_label.cget("text")
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    assert len(ticks) > 10 and max(gaps) < 0.5, max(gaps)
    with open(dst, newline="") as f:
        reader = csv.DictReader(f)
        first = next(reader)
        n = 1 + sum(1 for _ in reader)
    assert n == 200_000
    expected = model.predict_csv(CONFIDENCE, tmp_path / "small.csv")
    with open(tmp_path / "small.csv", newline="") as f:
        again = next(csv.DictReader(f))
    assert expected == 86 and first["prediction"] == again["prediction"]
    assert str(window.file_button.cget("state")) == "normal"
    assert str(window.cancel_button.cget("state")) == "disabled"


def test_cancel_a_file_with_escape_leaves_nothing(
    window: Any, large: Path, tmp_path: Path, dialogs: list[Any]
) -> None:
    dst = tmp_path / "out" / "day.scored.csv"
    dst.parent.mkdir()
    job = window.score_file(large, dst)
    pump(window, lambda: job.rows > 0 or not job.running)  # the first chunks are in
    assert job.running, "the file was scored before it could be cancelled"
    window.root.event_generate("<Escape>")
    pump(window, lambda: not job.running)
    assert job.outcome == "cancelled"
    assert dialogs == []
    assert list(dst.parent.iterdir()) == []  # no output, not even a temporary file
    assert "Cancelled" in window.progress_label.cget("text")
    assert float(window.progress.cget("value")) == 0
    assert str(window.file_button.cget("state")) == "normal"


def test_score_json_lines_with_a_bad_row(
    window: Any, model: Any, tmp_path: Path, dialogs: list[Any]
) -> None:
    """A row that cannot be scored is counted and named under the bar; the rest score."""
    src = tmp_path / "day.jsonl"
    rows = [GENTOO, dict(UNSURE, bill_depth_mm="seventeen"), UNSURE]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    job = window.score_file(src, tmp_path / "day.scored.jsonl")
    pump(window, lambda: not job.running)
    assert dialogs == [] and job.outcome == "done", job.error
    assert (job.result.rows, job.result.scored, job.result.failed) == (3, 2, 1)
    text = window.progress_label.cget("text")
    assert "2 of 3 rows scored into day.scored.jsonl" in text and "1 failed" in text
    assert "bill_depth_mm" in text
    out = [json.loads(line) for line in (tmp_path / "day.scored.jsonl").read_text().splitlines()]
    assert out[0]["prediction"] == model.predict(GENTOO).label
    assert out[1].get("error")


def test_a_bad_file_is_a_dialog(window: Any, tmp_path: Path, dialogs: list[Any]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("island,bill_length_mm\nDream,38\n")
    job = window.score_file(bad, tmp_path / "bad.scored.csv")
    pump(window, lambda: not job.running)
    assert job.outcome == "failed"
    assert len(dialogs) == 1 and dialogs[0][:2] == ("showerror", "Cannot score the file")
    assert "\n" not in dialogs[0][2] and "Traceback" not in dialogs[0][2]
    assert not (tmp_path / "bad.scored.csv").exists()
    window.score_file(tmp_path / "absent.csv", tmp_path / "x.csv")
    assert dialogs[1][0] == "showerror" and "absent.csv" in dialogs[1][2]


def test_keyboard_alone_fills_the_form_and_predicts(
    window: Any, model: Any, display: Display
) -> None:
    """Real key presses through the X server (xdotool), as a user or the frozen app's
    test types them: letters pick a drop-down's category, Tab moves on, Return predicts."""
    xdotool = shutil.which("xdotool")
    assert xdotool, "xdotool is not installed (scripts/setup installs it)"
    window.fields["island"].widget.focus_force()
    window.root.update()
    env = display.env()

    def keys(*args: str) -> None:
        subprocess.run([xdotool, *args], check=True, env=env, timeout=10)
        for _ in range(5):
            window.root.update()
            time.sleep(0.02)

    keys("key", "b", "Tab")
    keys("type", "--delay", "5", "47.5")
    keys("key", "Tab")
    keys("type", "--delay", "5", "14.8")
    keys("key", "Tab")
    keys("type", "--delay", "5", "217")
    keys("key", "Tab")
    keys("type", "--delay", "5", "5200")
    keys("key", "Tab", "f", "Return")
    pump(window, lambda: window.prediction is not None, timeout=5)
    assert {n: f.var.get() for n, f in window.fields.items()} == {
        k: str(v) for k, v in GENTOO.items()
    }
    assert window.result_label.cget("text") == str(model.predict(GENTOO).label)
    keys("key", "ctrl+shift+c")
    assert window.root.clipboard_get() == window.shown


def test_run_opens_the_window_and_ctrl_q_exits_0(payload: Path, display: Display) -> None:
    """``run()`` as the CLI calls it, in a fresh interpreter: it loads the model
    (``MLBUNDLE_PAYLOAD``), opens the window, and Ctrl+Q ends it with exit code 0."""
    env = display.env(dict(os.environ, PYTHONPATH=str(ROOT / "app"), MLBUNDLE_PAYLOAD=str(payload)))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from mlbundle_runtime.window import run; sys.exit(run())",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        found = subprocess.run(
            [
                "xdotool",
                "search",
                "--sync",
                "--onlyvisible",
                "--name",
                "Penguin species classifier",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        wid = found.stdout.split()[0]
        subprocess.run(["xdotool", "windowfocus", "--sync", wid], env=env, check=True, timeout=10)
        subprocess.run(["xdotool", "key", "ctrl+q"], env=env, check=True, timeout=10)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out + err
    assert err == ""


@pytest.mark.parametrize(
    ("sig", "code", "word"), [(2, 130, "interrupted"), (15, 143, "terminated")]
)
def test_ctrl_c_or_sigterm_closes_the_window_with_one_line(
    payload: Path, display: Display, large: Path, tmp_path: Path, sig: int, code: int, word: str
) -> None:
    """The app started with no arguments opens the window; a signal while it scores a file
    (its poll loop running callbacks) ends it as the CLI ends: one line, 130 or 143, and
    the file job's temporary output gone. Never an error dialog that keeps it open."""
    env = display.env(dict(os.environ, PYTHONPATH=str(ROOT / "app"), MLBUNDLE_PAYLOAD=str(payload)))
    code_text = (
        "import sys, threading\n"
        "import mlbundle_runtime.window as w\n"
        "real = w.ModelWindow.__init__\n"
        "def init(self, root, model):\n"
        "    real(self, root, model)\n"
        f"    src, dst = {str(large)!r}, {str(tmp_path / 'o.csv')!r}\n"
        "    root.after(500, lambda: self.score_file(src, dst))\n"
        "w.ModelWindow.__init__ = init\n"
        "from mlbundle_runtime.cli import main\n"
        "sys.exit(main([]))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code_text], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not any(p.name.startswith(".o.csv.") for p in tmp_path.iterdir()):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == code, err
    assert err.strip() == f"{word}: stopped; no output file was changed"
    assert list(tmp_path.iterdir()) == []


def test_run_without_a_display_says_so() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["PYTHONPATH"] = str(ROOT / "app")
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from mlbundle_runtime.window import run; sys.exit(run())",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: cannot open a window (no display): use a subcommand, e.g. predict --help"
    ]


def test_importing_the_window_does_not_import_tkinter() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "app"))
    code = "import sys, mlbundle_runtime.window; print('tkinter' in sys.modules)"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


# -- updating the model from a model pack ---------------------------------------------------


@pytest.fixture(scope="module")
def updatable(tmp_path_factory: pytest.TempPathFactory, release_keys: Any) -> Path:
    """The example's payload for an app that takes packs signed with the session's key."""
    from tests._packs import spec_text

    work = tmp_path_factory.mktemp("updatable")
    spec = work / "penguins.toml"
    spec.write_text(spec_text(release_keys.public), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "bundler", "prepare", str(spec), "--out", str(work / "payload")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env=dict(os.environ, SOURCE_DATE_EPOCH="1764374400", NO_COLOR="1"),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return work / "payload"


@pytest.fixture()
def updating(
    display: Display,
    updatable: Path,
    dialogs: list[Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Any]:
    """A window on the updatable app's bundled model, its data folder empty (per test)."""
    import tkinter as tk

    import mlbundle_runtime
    from mlbundle_runtime.window import ModelWindow

    monkeypatch.setenv("MLBUNDLE_DATA_DIR", str(tmp_path / "data"))
    root = tk.Tk()
    w = ModelWindow(root, mlbundle_runtime.load(updatable))
    root.geometry("+0+0")
    root.update()
    yield w
    job = w.install_job
    if job is not None and job.thread is not None:
        job.thread.join(60)
    with contextlib.suppress(tk.TclError):
        root.destroy()


def installed(w: Any, job: Any) -> list[str]:
    """Run the window until ``job`` ends; the install lines the window showed meanwhile."""
    assert job is not None
    shown: list[str] = []

    def watch() -> bool:
        text = str(w.install_label.cget("text")) if w.install_label.winfo_ismapped() else ""
        if text and (not shown or shown[-1] != text):
            shown.append(text)
        return not job.running

    pump(w, watch, timeout=120)
    w.root.update()
    return shown


def test_update_model_installs_a_pack_and_rebuilds_the_form(
    updating: Any, updatable: Path, retrained_pack: Any, display: Display, dialogs: list[Any]
) -> None:
    import mlbundle_runtime

    w = updating
    before = mlbundle_runtime.load(updatable)
    assert before.version == "1.0.0" and before.origin == "bundled"
    assert "model 1.0.0 · app 1.0.0" in w.version_label.cget("text")
    old_widget = w.fields["island"].widget

    shown = installed(w, w.install_pack(retrained_pack.pack))

    assert dialogs == []
    assert w.install_job.outcome == "done", w.install_job.error
    assert any(line.startswith(f"Installing {retrained_pack.pack.name}") for line in shown), shown
    assert not w.install_label.winfo_ismapped()  # gone once done
    notice = w.notice_label.cget("text")
    assert notice == (
        f"✓ Model 1.1.0 is now active (installed pack, from {retrained_pack.pack.name})."
    )
    assert "model 1.1.0 (installed pack) · app 1.0.0" in w.version_label.cget("text")
    assert w.model.version == "1.1.0" and w.model.origin == "pack"
    assert not old_widget.winfo_exists() and w.fields["island"].widget.winfo_exists()
    assert list(w.fields) == [i.name for i in w.model.inputs]
    # The form now answers with the new model: what a fresh load of the app serves.
    after = mlbundle_runtime.load(updatable)
    assert after.version == "1.1.0"
    fill(w, UNSURE)
    w.root.event_generate("<Return>")
    w.root.update()
    expected = after.predict(UNSURE)
    assert w.prediction == expected
    assert w.result_label.cget("text") == str(expected.label)
    assert expected.probabilities != before.predict(UNSURE).probabilities  # another model
    shot = OUTPUT / "window-updated.png"
    display.screenshot(shot)
    assert shot.stat().st_size > 0
    # About names the version answering and where it comes from.
    text = w.open_about()
    assert "Model in use" in text
    assert re.search(r"version\s+1\.1\.0\n", text), text
    assert re.search(r"from\s+installed pack\n", text), text
    folder = Path(os.environ["MLBUNDLE_DATA_DIR"]) / "models" / "1.1.0"
    assert f"model 1.1.0 from the installed pack in {folder}" in " ".join(text.split())


def test_a_refused_pack_is_a_one_line_dialog_and_the_model_stays(
    updating: Any, retrained_pack: Any, tmp_path: Path, dialogs: list[Any]
) -> None:
    w = updating
    data = bytearray(retrained_pack.pack.read_bytes())
    data[len(data) // 2] ^= 0x01
    bad = tmp_path / "flipped.mlpack"
    bad.write_bytes(bytes(data))
    model, widget = w.model, w.fields["island"].widget

    installed(w, w.install_pack(bad))

    assert w.install_job.outcome == "failed"
    assert len(dialogs) == 1, dialogs
    kind, title, message = dialogs[0]
    assert (kind, title) == ("showerror", "Cannot update the model")
    assert "\n" not in message and str(bad) in message and "signature" in message, message
    assert w.model is model and widget.winfo_exists()  # nothing rebuilt
    assert w.notice_label.cget("text") == ""
    assert str(w.update_button.cget("state")) == "normal"


def test_ctrl_u_asks_for_a_model_pack(
    updating: Any, retrained_pack: Any, monkeypatch: pytest.MonkeyPatch, dialogs: list[Any]
) -> None:
    from tkinter import filedialog

    asked: list[dict[str, Any]] = []

    def ask(**kw: Any) -> str:
        asked.append(kw)
        return str(retrained_pack.pack)

    monkeypatch.setattr(filedialog, "askopenfilename", ask)
    w = updating
    w.fields["island"].widget.focus_force()
    w.root.event_generate("<Control-u>")
    w.root.update()
    assert len(asked) == 1
    assert asked[0]["filetypes"][0] == ("Model packs", "*.mlpack")
    installed(w, w.install_job)
    assert w.install_job.outcome == "done" and w.model.version == "1.1.0", dialogs
    # the same command is in the File menu, with its key
    file_menu = w.root.nametowidget(w.menu.entrycget("File", "menu"))
    labels = [
        file_menu.entrycget(i, "label")
        for i in range(file_menu.index("end") + 1)
        if file_menu.type(i) == "command"
    ]
    assert "Update model…" in labels
    i = labels.index("Update model…")
    commands = [j for j in range(file_menu.index("end") + 1) if file_menu.type(j) == "command"]
    assert file_menu.entrycget(commands[i], "accelerator") == "Ctrl+U"


def test_a_pack_given_on_the_command_line_is_offered_first(
    updating: Any, retrained_pack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tkinter import messagebox

    asked: list[str] = []
    answer = [False]

    def ask(title: str, message: str, **_kw: Any) -> bool:
        asked.append(message)
        return answer[0]

    monkeypatch.setattr(messagebox, "askyesno", ask)
    w = updating
    assert w.offer_pack(retrained_pack.pack) is None  # "No": nothing happens
    assert w.install_job is None and w.model.version == "1.0.0"
    assert retrained_pack.pack.name in asked[0] and "1.0.0" in asked[0]
    answer[0] = True
    installed(w, w.offer_pack(retrained_pack.pack))
    assert w.install_job.outcome == "done" and w.model.version == "1.1.0"


def test_about_says_a_trial_is_running(updating: Any, retrained_pack: Any) -> None:
    from mlbundle_runtime.store import ModelStore

    w = updating
    active = w.model.predict(UNSURE)
    store = ModelStore.for_model(w.model)
    store.install(retrained_pack.pack, trial=True)
    w.set_model(store.resolve())
    assert w.model.version == "1.0.0" and w.model.trial == "1.1.0"
    assert "trial of 1.1.0 running" in w.version_label.cget("text")
    text = w.open_about()
    assert re.search(r"trial\s+1\.1\.0 scores beside it on every prediction", text), text
    w._close_about()
    # the form shows the active model's answer only, not the candidate's
    fill(w, UNSURE)
    w.predict()
    assert w.prediction == active
    assert w.result_label.cget("text") == str(active.label)


def test_an_app_without_updates_says_so(window: Any, dialogs: list[Any]) -> None:
    assert window.install_pack("anything.mlpack") is None
    assert len(dialogs) == 1
    kind, title, message = dialogs[0]
    assert title == "Cannot update the model" and "\n" not in message
    assert "without [updates]" in message, message
