"""The window of a model with a text input (specs/reviews.toml), on a real X display.

A text input gets a multi-line text box, not a one-line entry: Enter there starts a new
line (it predicts everywhere else), Ctrl+Enter predicts, empty text is text (the model
scores it), and the box and the form's variable stay in step both ways. The answer
shown is the runtime API's for the same record, line breaks included.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._display import Display
from tests.test_window import dialogs  # noqa: F401  (a fixture)

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "reviews.toml"
#: Positive alone; negative once its second line is read.
FIRST = "Great value, works perfectly"
SECOND = "broke after a week, waste of money, terrible customer service"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The review example's payload (``bundle prepare``), loaded by the runtime API."""
    import mlbundle_runtime

    out = tmp_path_factory.mktemp("window-text") / "payload"
    proc = subprocess.run(
        [sys.executable, "-m", "bundler", "prepare", str(SPEC), "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env=dict(os.environ, SOURCE_DATE_EPOCH="1764374400", NO_COLOR="1"),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return mlbundle_runtime.load(out)


@pytest.fixture()
def window(display: Display, model: Any, dialogs: list[Any]) -> Iterator[Any]:  # noqa: F811
    import tkinter as tk

    from mlbundle_runtime.window import ModelWindow

    root = tk.Tk()
    w = ModelWindow(root, model)
    root.geometry("+0+0")
    root.update()
    yield w
    with contextlib.suppress(tk.TclError):
        root.destroy()


def _content(box: Any) -> str:
    return str(box.get("1.0", "end-1c"))


def test_text_input_is_a_multiline_box(window: Any, model: Any) -> None:
    import tkinter as tk

    (item,) = model.inputs
    assert (item.name, item.kind) == ("review", "text")
    f = window.fields["review"]
    assert isinstance(f.widget, tk.Text)
    assert int(f.widget.cget("height")) > 1 and str(f.widget.cget("wrap")) == "word"
    assert "Enter starts a new line" in str(f.hint.cget("text"))
    assert window.root.focus_get() == f.widget  # the first field has the focus
    f.var.set("set\nfrom the form")  # the variable fills the box
    window.root.update()
    assert _content(f.widget) == "set\nfrom the form"


def test_enter_makes_a_new_line_and_ctrl_enter_predicts(
    window: Any, model: Any, display: Display
) -> None:
    f = window.fields["review"]
    f.widget.focus_force()
    f.widget.insert("end", FIRST)
    f.widget.event_generate("<KeyRelease>")
    f.widget.event_generate("<Return>")  # a new line, not a prediction
    window.root.update()
    assert window.result_label.cget("text") == "—"
    f.widget.insert("end", SECOND)
    f.widget.event_generate("<KeyRelease>")
    window.root.update()
    text = f"{FIRST}\n{SECOND}"
    assert f.var.get() == text and window.record() == {"review": text}
    f.widget.event_generate("<Control-Return>")
    window.root.update()
    expected = model.predict({"review": text})
    assert str(expected.label) == "negative"
    assert str(model.predict({"review": FIRST}).label) == "positive"
    assert window.result_label.cget("text") == "negative"
    assert window.prediction.probabilities == expected.probabilities


def test_empty_text_is_scored(window: Any, model: Any, dialogs: list[Any]) -> None:  # noqa: F811
    window.predict_button.invoke()
    window.root.update()
    assert dialogs == []
    assert window.record() == {"review": ""}
    assert window.result_label.cget("text") == str(model.predict({"review": ""}).label)
