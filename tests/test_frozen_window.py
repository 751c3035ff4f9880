"""The end users' window in the frozen binaries, driven as a user would: keys only.

The session's build (``built``) is started with no arguments under Xvfb (``display``):
the binary opens its window, the test fills the form with key presses (Tab from field to
field, a letter picks a category, Enter predicts), copies the shown result with
Ctrl+Shift+C and reads the clipboard, and compares it with what the same binary's
``predict --json`` answers for the same record; Ctrl+Q closes the window and the binary
must exit 0. Without a display and without arguments the binary prints its help.

The quick tests (no marker) check what the build asks PyInstaller for: ``[app] console =
false`` renders a windowed spec, and a release engineer's own application gets Tk only
when its code imports the window.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from bundler.freeze import (
    Application,
    bundled_names,
    render_spec,
    run_frozen,
    runtime_excludes,
    write_runtime_hooks,
)
from bundler.spec import load_spec
from tests._display import Display
from tests.conftest import ROOT, SPEC, Built, RetrainedPack

OUTPUT = Path(os.environ.get("MLBUNDLE_TEST_OUTPUT", ROOT / "tests" / "output"))
#: A penguin inside the training ranges on which the forest hesitates (Chinstrap 0.64,
#: Adelie 0.36 today): the copied line then has figures worth comparing.
RECORD = {
    "island": "Dream",
    "bill_length_mm": 44.0,
    "bill_depth_mm": 18.0,
    "flipper_length_mm": 195,
    "body_mass_g": 3900,
    "sex": "male",
}
#: What a binary started with no arguments and no display exits with, after its help.
NO_DISPLAY_EXIT = 2  # usage (README: exit codes), after the help
#: Generous: a onefile binary unpacks itself first, and CI machines are shared.
WINDOW_TIMEOUT = 60


# -- driving a frozen window ---------------------------------------------------------------


def tool(name: str) -> str:
    """An X tool the test needs; a missing one fails (scripts/setup installs them)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` is not installed: run scripts/setup (as root it installs it)")
    return path


def user_env(display: Display | None, home: Path) -> dict[str, str]:
    """A user's minimal environment (no venv, no PYTHONPATH), with the display if given."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }
    return env if display is None else display.env(env)


def x(display: Display, *args: str, timeout: float = 10) -> str:
    """Run an xdotool command on the display; its output."""
    argv = [tool("xdotool"), *args]
    proc = subprocess.run(
        argv, env=display.env(), capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def window_title(exe: Path, home: Path) -> str:
    """The title the window must show, from the binary's own record: ``<title> — <name>
    <version>``, and `` — UNAPPROVED`` for a development build."""
    proc = run_frozen(exe, "about", "--json")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    app = record["app"]
    title = f"{app.get('title') or app['name']} — {app['name']} {app['version']}"
    approved = (record.get("audit") or {}).get("status") == "APPROVED"
    return title if approved else f"{title} — UNAPPROVED"


def name_pattern(title: str) -> str:
    """An xdotool ``--name`` pattern (a POSIX extended regex) matching ``title`` whole.
    xdotool compares it with the window's name as Xlib returns it, in which a character
    outside ASCII (the title's em dashes) is not the UTF-8 the regex would hold: each run of
    them matches any text; ``wait_for_window`` then compares the name exactly."""
    parts = re.split(r"([^\x00-\x7f]+)", title)
    return (
        "^"
        + "".join(
            ".+" if i % 2 else re.sub(r"([.\[\]()*+?{}|^$\\])", r"\\\1", part)
            for i, part in enumerate(parts)
        )
        + "$"
    )


def wait_for_window(
    display: Display, title: str, proc: subprocess.Popen[str], timeout: float
) -> str:
    """The id of the visible window named ``title``, once mapped: ``xdotool search --sync``,
    given up when the binary exits first or ``timeout`` passes."""
    search = subprocess.Popen(
        [tool("xdotool"), "search", "--sync", "--onlyvisible", "--name", name_pattern(title)],
        env=display.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + timeout
    try:
        while search.poll() is None:
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(
                    f"the binary exited ({proc.returncode}) before its window showed:\n"
                    f"{out[-2000:]}{err[-2000:]}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"no window named {title!r} within {timeout:g} s")
            time.sleep(0.05)
        out, err = search.communicate()
    finally:
        if search.poll() is None:
            search.kill()
            search.wait()
    ids = out.split()
    assert search.returncode == 0 and ids, err
    named = {wid: x(display, "getwindowname", wid).rstrip("\n") for wid in ids}
    exact = [wid for wid, name in named.items() if name == title]
    assert exact, f"no window named exactly {title!r}: {named}"
    return exact[0]


@contextmanager
def started(exe: Path, display: Display, home: Path, *args: str) -> Iterator[subprocess.Popen[str]]:
    """The binary running with ``args`` on the display, as a user starts it; stopped after."""
    proc = subprocess.Popen(
        [str(exe), *args],
        env=user_env(display, home),
        cwd=home,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def keys_for(inputs: list[dict[str, Any]], record: dict[str, Any]) -> list[list[str]]:
    """xdotool commands filling the form in the window's order (the record's ``inputs``):
    a number is typed; a category is picked by its first letter, pressed once per earlier
    category with that letter; Tab moves on."""
    commands: list[list[str]] = []
    for i, item in enumerate(inputs):
        value = record[item["name"]]
        if item.get("kind") == "categorical":
            categories = [str(c) for c in item["categories"]]
            same = [c for c in categories if c[:1].lower() == str(value)[:1].lower()]
            letter = str(value)[:1].lower()
            commands += [["key", letter]] * (same.index(str(value)) + 1)
        else:
            commands.append(["type", "--delay", "20", str(value)])
        if i < len(inputs) - 1:
            commands.append(["key", "Tab"])
    return commands


def clipboard(display: Display) -> str:
    """The clipboard's text (the window owns it while it runs), or "" when nothing is there."""
    proc = subprocess.run(
        [tool("xclip"), "-o", "-selection", "clipboard"],
        env=display.env(),
        capture_output=True,
        text=True,
        timeout=5,
        check=False,
    )
    return proc.stdout if proc.returncode == 0 else ""


def copied_result(display: Display, wid: str, timeout: float = 15) -> str:
    """Ctrl+Shift+C in the window until the clipboard holds the result line."""
    deadline = time.monotonic() + timeout
    while True:
        x(display, "key", "--clearmodifiers", "ctrl+shift+c")
        text = clipboard(display).strip()
        if text or time.monotonic() > deadline:
            return text
        time.sleep(0.2)


def expected_line(answer: dict[str, Any]) -> tuple[str, list[str]]:
    """From ``predict --json``: the label the line starts with and each class's percentage."""
    label = str(answer["prediction"])
    probs = answer.get("probabilities") or {}
    return label, [f"{cls} {100 * float(p):.1f}%" for cls, p in probs.items()]


def predict_in_window(exe: Path, display: Display, home: Path, screenshot: Path | None) -> str:
    """Start ``exe`` without arguments, fill the form with keys, predict, copy the result,
    close with Ctrl+Q; returns the copied line (the binary must exit 0)."""
    about = json.loads(run_frozen(exe, "about", "--json").stdout)
    title = window_title(exe, home)
    with started(exe, display, home) as proc:
        wid = wait_for_window(display, title, proc, WINDOW_TIMEOUT)
        # the X focus a window manager would give a newly mapped window (Xvfb runs none);
        # inside the window, the first field already has Tk's focus
        x(display, "windowfocus", "--sync", wid)
        for command in keys_for(about["inputs"], RECORD):
            x(display, *command)
        x(display, "key", "Return")
        text = copied_result(display, wid)
        if screenshot is not None:
            display.screenshot(screenshot)
        x(display, "key", "--clearmodifiers", "ctrl+q")
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("the window did not close on Ctrl+Q within 30 s")
        assert proc.returncode == 0, out[-2000:] + err[-2000:]
    return text


# -- the frozen binaries ---------------------------------------------------------------------


@pytest.mark.frozen
@pytest.mark.parametrize("mode", ["onedir", "onefile"])
def test_frozen_window_predicts_what_the_cli_predicts(
    built: Built, display: Display, mode: str, tmp_path: Path
) -> None:
    exe = getattr(built, mode)
    cli = run_frozen(exe, "predict", "--json", json.dumps(RECORD))
    assert cli.returncode == 0, cli.stderr
    label, percentages = expected_line(json.loads(cli.stdout))

    name = "frozen-window.png" if mode == "onedir" else f"frozen-window-{mode}.png"
    text = predict_in_window(exe, display, tmp_path, OUTPUT / name)

    assert "\n" not in text, text  # one line, for pasting into a report
    assert text.split()[0] == label, (text, cli.stdout)
    for part in percentages:
        assert part in text, (part, text)
    assert (OUTPUT / name).stat().st_size > 0


@pytest.mark.frozen
@pytest.mark.parametrize("mode", ["onedir", "onefile"])
def test_frozen_binary_without_display_prints_its_help(
    built: Built, mode: str, tmp_path: Path
) -> None:
    exe = getattr(built, mode)
    proc = run_frozen(exe)  # no DISPLAY, no WAYLAND_DISPLAY, no arguments
    assert proc.returncode == NO_DISPLAY_EXIT, proc.stdout + proc.stderr
    shown = proc.stdout + proc.stderr
    assert "usage:" in shown and "predict" in shown, shown
    assert "Traceback" not in shown


@pytest.mark.frozen
@pytest.mark.parametrize("mode", ["onedir", "onefile"])
def test_frozen_bundle_carries_tk(built: Built, mode: str) -> None:
    names = bundled_names(getattr(built, mode))
    tops = {n.replace("\\", "/").split("/")[0] for n in names}
    assert {"tkinter", "tkinter.ttk", "_tcl_data", "_tk_data"} <= tops, sorted(tops)
    assert any(n.endswith("_tcl_data/init.tcl") for n in names)
    assert any(n.endswith("_tk_data/tk.tcl") for n in names)
    assert any(re.search(r"(^|/)_tkinter\.", n) for n in names)
    assert any(re.search(r"(^|/)libtk[0-9.]*\.so", n) for n in names)


# -- what the build asks PyInstaller for (no freezing) ---------------------------------------


def _render(tmp_path: Path, **kwargs: Any) -> str:
    payload = tmp_path / "payload"
    payload.mkdir(exist_ok=True)
    (payload / "plan.json").write_text("{}")
    return render_spec(
        name="penguins",
        backend="aot",
        modes=["onedir", "onefile"],
        payload_dir=payload,
        payload_import_root=tmp_path / "root",
        aot_extension=tmp_path / "_mlbundle_kernels.cpython-311-x86_64-linux-gnu.so",
        **kwargs,
    )


def test_console_false_in_the_spec_renders_a_windowed_binary(tmp_path: Path) -> None:
    text = SPEC.read_text(encoding="utf-8").replace('"../', f'"{ROOT}/')
    text = text.replace("[app]\n", "[app]\nconsole = false\n", 1)
    spec_file = tmp_path / "windowed.toml"
    spec_file.write_text(text, encoding="utf-8")
    spec = load_spec(spec_file)
    assert spec.app.console is False
    rendered = _render(tmp_path, console=spec.app.console)
    compile(rendered, "windowed.spec", "exec")
    assert "\nCONSOLE = False\n" in rendered
    assert rendered.count("console=CONSOLE,") == 2  # the onedir EXE and the onefile EXE
    assert "\nCONSOLE = True\n" in _render(tmp_path)  # the default: a console binary
    assert load_spec(SPEC).app.console is True


def test_the_built_in_app_keeps_tk(tmp_path: Path) -> None:
    excludes = _render(tmp_path).split("excludes=", 1)[1].split("]", 1)[0]
    for name in ("tkinter", "_tkinter", "mlbundle_runtime.window", "mlbundle_runtime.cli"):
        assert f"'{name}'" not in excludes, excludes


@pytest.mark.parametrize(
    ("source", "gets_tk"),
    [
        ("import mlbundle_runtime\nprint(mlbundle_runtime.load().name)\n", False),
        ("from mlbundle_runtime import window\nraise SystemExit(window.run())\n", True),
        ("from mlbundle_runtime.window import run\nraise SystemExit(run())\n", True),
        ("from mlbundle_runtime.cli import main\nraise SystemExit(main())\n", True),
        ("import mlbundle_runtime.window\n", True),
    ],
)
def test_an_own_application_gets_tk_only_when_it_imports_the_window(
    tmp_path: Path, source: str, gets_tk: bool
) -> None:
    (tmp_path / "own.py").write_text(source, encoding="utf-8")
    app = Application(entry=tmp_path / "own.py")
    excluded = runtime_excludes(app, "aot")
    assert ("tkinter" not in excluded) is gets_tk, excluded
    assert {"sklearn", "scipy", "joblib", "numba"} <= set(excluded)  # what aot forbids, still
    hooks = write_runtime_hooks(tmp_path / "hooks", excluded)
    window_hook = (hooks / "hook-mlbundle_runtime.window.py").read_text(encoding="utf-8")
    assert ("'tkinter'" in window_hook) is not gets_tk, window_hook


def test_a_built_in_app_without_tk_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from bundler import freeze as freeze_module
    from bundler.errors import FreezeError

    assert freeze_module._opens_window()  # the CLI opens the window: the check applies
    shipped = [
        "mlbundle_runtime.cli",
        "tkinter",
        "tkinter.ttk",
        "python3.11/lib-dynload/_tkinter.cpython-311-x86_64-linux-gnu.so",
        "_tcl_data/init.tcl",
        "_tk_data/tk.tcl",
    ]
    monkeypatch.setattr(freeze_module, "bundled_names", lambda _exe: shipped)
    freeze_module._check_window(Path("penguins"))
    without = [n for n in shipped if not n.startswith(("_tcl_data", "_tk_data", "tkinter"))]
    monkeypatch.setattr(freeze_module, "bundled_names", lambda _exe: without)
    with pytest.raises(FreezeError, match=r"lacks tkinter, Tcl/Tk's scripts: .*window"):
        freeze_module._check_window(Path("penguins"))


# -- a model pack opened with the app (a double-click on a .mlpack) ---------------------------


@pytest.mark.frozen
def test_frozen_window_installs_the_pack_it_is_opened_with(
    built: Built, retrained_pack: RetrainedPack, display: Display, tmp_path: Path
) -> None:
    """``penguins FILE.mlpack`` on a desktop: the window opens and asks; Enter says yes; the
    pack is checked and installed on the worker thread; About (F1) names model 1.1.0."""
    exe = built.onedir
    title = window_title(exe, tmp_path)
    data = tmp_path / "data"
    state = data / "models" / "state.json"
    env = dict(user_env(display, tmp_path), MLBUNDLE_DATA_DIR=str(data))
    proc = subprocess.Popen(
        [str(exe), str(retrained_pack.pack)],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_window(display, title, proc, WINDOW_TIMEOUT)
        ask = wait_for_window(display, "Update the model?", proc, WINDOW_TIMEOUT)
        assert not state.exists()  # nothing is installed before the user says yes
        x(display, "windowfocus", "--sync", ask)
        x(display, "key", "Return")
        deadline = time.monotonic() + 60
        while not (state.exists() and json.loads(state.read_text())["active"] == "1.1.0"):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the pack was not installed within 60 s"
            time.sleep(0.2)
        main = wait_for_window(display, title, proc, WINDOW_TIMEOUT)
        x(display, "windowfocus", "--sync", main)
        about = None
        deadline = time.monotonic() + 30
        while about is None:  # F1 once the form is rebuilt and has the keyboard again
            x(display, "key", "F1")
            found = subprocess.run(
                [tool("xdotool"), "search", "--onlyvisible", "--name", "^About model 1\\.1\\.0"],
                env=display.env(),
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
            about = found.stdout.split()[0] if found.stdout.split() else None
            assert about is not None or time.monotonic() < deadline, "no About for model 1.1.0"
            time.sleep(0.3)
        assert x(display, "getwindowname", about).strip() == "About model 1.1.0 — penguins"
        shot = display.screenshot(OUTPUT / "frozen-window-updated.png")
        assert shot.stat().st_size > 0
        x(display, "windowfocus", "--sync", about)
        x(display, "key", "Escape")
        x(display, "windowfocus", "--sync", main)
        x(display, "key", "--clearmodifiers", "ctrl+q")
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, out[-2000:] + err[-2000:]
        assert "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    listed = run_frozen(exe, "models", "list", "--json", env={"MLBUNDLE_DATA_DIR": str(data)})
    assert [e["version"] for e in json.loads(listed.stdout) if e["active"]] == ["1.1.0"]
