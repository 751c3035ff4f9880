"""What the built-in application leaves out of its bundle because it never loads it: numpy's
unused subpackages, unused standard-library modules, Tcl/Tk files the window never reads
and the X client libraries it takes from the system (``bundler.freeze``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bundler import freeze
from bundler.freeze import Application, bundled_names, render_spec


def _render(tmp_path: Path, backend: str = "aot", updates: dict | None = None, **kwargs) -> str:
    payload = tmp_path / "payload"
    payload.mkdir(parents=True, exist_ok=True)
    (payload / "plan.json").write_text("{}")
    if updates is not None:
        (payload / "updates.json").write_text(json.dumps(updates))
    kernels = tmp_path / "_mlbundle_kernels.cpython-311-x86_64-linux-gnu.so"
    kernels.write_bytes(b"")
    return render_spec(
        name="app",
        backend=backend,
        modes=["onedir", "onefile"],
        payload_dir=payload,
        payload_import_root=tmp_path / "root",
        aot_extension=kernels if backend == "aot" else None,
        **kwargs,
    )


def _excludes(text: str) -> set[str]:
    block = text.split("excludes=", 1)[1].split("]", 1)[0]
    return {line.strip().strip(",").strip("'") for line in block.splitlines()[1:]}


def _spec_filters(text: str) -> dict:
    """Run the rendered spec's data and binary filters on their own (no PyInstaller)."""
    start = text.index("DATAS_DROPPED = ")
    end = text.index("a.binaries = _strip_python_runtime")
    source = text[start:end].replace("a.datas = ", "_datas = ").replace("a.binaries = ", "_b = ")
    source = source.replace("a.datas", "[]").replace("a.binaries", "[]")
    scope: dict = {"os": __import__("os")}
    exec(compile(source, "spec-filters", "exec"), scope)
    return scope


def test_the_built_in_aot_app_leaves_out_what_it_never_loads(tmp_path: Path) -> None:
    excludes = _excludes(_render(tmp_path))
    assert set(freeze.NUMPY_UNUSED) <= excludes
    assert set(freeze.STDLIB_UNUSED) <= excludes
    # what numpy's import or the runtime does use stays
    for kept in ("numpy.ma", "numpy.linalg", "numpy.lib", "urllib", "zipfile", "csv", "tkinter"):
        assert kept not in excludes, kept


def test_an_https_pack_source_keeps_what_the_download_needs(tmp_path: Path) -> None:
    key = {"public_key": "00" * 32, "key_id": "k", "source": "https://example.org/app.mlpack"}
    excludes = _excludes(_render(tmp_path, updates=key))
    for kept in freeze.TLS_KEEPS:
        assert kept not in excludes, kept
    assert "numpy.random" in excludes and "_codecs_jp" in excludes
    folder = {**key, "source": "/srv/packs"}
    excludes = _excludes(_render(tmp_path / "f", updates=folder))
    assert set(freeze.TLS_KEEPS) <= excludes
    # filelock, which guards the model store, imports decimal
    assert "decimal" not in excludes and "_decimal" not in excludes
    assert "decimal" in _excludes(_render(tmp_path / "none"))


@pytest.mark.parametrize("backend", ["passthrough", "jit"])
def test_bundles_with_scikit_learn_or_numba_keep_numpy_whole(tmp_path: Path, backend: str) -> None:
    excludes = _excludes(_render(tmp_path, backend=backend))
    for kept in ("numpy.random", "numpy.fft", "numpy.polynomial", "decimal", "unicodedata"):
        assert kept not in excludes, (backend, kept)


def test_an_own_application_keeps_numpy_the_stdlib_and_tk_files(tmp_path: Path) -> None:
    (tmp_path / "own.py").write_text("import numpy as np\nprint(np.random.rand())\n")
    text = _render(tmp_path, application=Application(entry=tmp_path / "own.py"))
    excludes = _excludes(text)
    assert "numpy.random" not in excludes and "unicodedata" not in excludes
    filters = _spec_filters(text)
    assert not filters["_dropped"]("_tcl_data/encoding/cp932.enc")
    assert filters["BINARIES_DROPPED"] == set()


def test_the_spec_drops_tk_files_the_window_never_reads(tmp_path: Path) -> None:
    filters = _spec_filters(_render(tmp_path))
    dropped = filters["_dropped"]
    for name in (
        "_tcl_data/encoding/cp932.enc",
        "_tcl_data/msgs/de.msg",
        "_tcl_data/tcl8/msgcat-1.6.1.tm",
        "_tk_data/images/logo.eps",
        "_tk_data/msgs/fr.msg",
    ):
        assert dropped(name), name
    for name in (
        "_tcl_data/init.tcl",
        "_tcl_data/encoding/cp1252.enc",
        "_tk_data/tk.tcl",
        "_tk_data/tkfbox.tcl",
        "_tk_data/msgbox.tcl",
        "_tk_data/ttk/ttk.tcl",
        "mlbundle_payload/plan.json",
    ):
        assert not dropped(name), name
    assert filters["BINARIES_DROPPED"] == {*freeze.X_SYSTEM_LIBRARIES, *freeze.CXX_SYSTEM_LIBRARIES}
    assert "libtk8.6.so" not in filters["BINARIES_DROPPED"]


@pytest.mark.frozen
def test_the_frozen_example_ships_without_them(built) -> None:
    for exe in (built.onedir, built.onefile):
        names = {n.replace("\\", "/") for n in bundled_names(exe)}
        tops = {n.split("/")[-1].split(".")[0] for n in names} | {n.split(".")[0] for n in names}
        for gone in ("_codecs_jp", "unicodedata", "_lzma", "_bz2", "_socket"):
            assert gone not in tops, (exe, gone)
        assert not any(n.startswith("numpy/random") or n == "numpy.random" for n in names)
        assert not any(n.startswith(("_tcl_data/msgs/", "_tk_data/images/")) for n in names)
        assert "_tcl_data/encoding/cp932.enc" not in names
        assert not names & {*freeze.X_SYSTEM_LIBRARIES, *freeze.CXX_SYSTEM_LIBRARIES}
        # kept: numpy.ma (np.unique imports it), Tk's scripts and libraries
        assert {"numpy.ma", "_tcl_data/init.tcl", "_tk_data/tk.tcl"} <= names
        assert any(n.startswith("libtk8.6") for n in names)
