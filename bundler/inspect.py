"""``bundle inspect``: read a bundle's model record without running the bundle.

A support engineer asked "which model is this?" must not have to execute an
unknown binary to find out, so the record is read straight from disk: from
``_internal/`` of a onedir folder, from the PyInstaller archive appended to a
onefile executable (the archive format is parsed, nothing is executed), or
from inside a ``.tar.gz`` or ``.deb`` installer (the member is streamed,
nothing is extracted).
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from bundler.errors import UsageError
from bundler.manifest import IntegrityError
from mlbundle_runtime.bundle import PAYLOAD_PACKAGE, RECORD_FILE

#: The record inside a onedir folder, and as an entry of a onefile archive.
ONEDIR_RECORD = f"_internal/{PAYLOAD_PACKAGE}/{RECORD_FILE}"
ARCHIVE_RECORD = f"{PAYLOAD_PACKAGE}/{RECORD_FILE}"
_INSTALLER_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".deb")
_AR_MAGIC = b"!<arch>\n"
#: What ``inspect`` and ``verify`` accept, said whenever they are given something else.
EXPECTED_BUNDLE = (
    "expected a onedir folder, a onefile binary built by mlbundle, or a .tar.gz or .deb "
    "installer made by it"
)


def not_a_bundle(path: Path, why: str) -> IntegrityError:
    """The error for a path that is none of the things a bundle can be, saying what it is."""
    return IntegrityError(f"{path} is not an mlbundle bundle ({why}); {EXPECTED_BUNDLE}")


def file_start(path: Path) -> str:
    """``it starts with 'species,island'``: how a person recognises a file given by mistake."""
    from bundler.artifacts import describe_start

    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as exc:
        return f"it cannot be read: {exc.strerror or exc}"
    return f"it starts with {describe_start(head)}" if head else "it is empty"


def is_pyinstaller_executable(path: Path) -> bool:
    """Whether ``path`` ends in a PyInstaller archive (found by its cookie, nothing is run)."""
    from PyInstaller.archive.readers import CArchiveReader

    try:
        CArchiveReader(str(path))
    except Exception:  # noqa: BLE001 - the reader raises bare struct / archive errors
        return False
    return True


def read_record(path: Path) -> dict[str, Any]:
    """The model record of a onedir folder or executable, a onefile executable, or an
    installer (``.tar.gz`` or ``.deb``)."""
    return parse_record(record_bytes(path), str(path))


def record_bytes(path: Path) -> bytes:
    """The record's raw bytes, found by what ``path`` is (see ``read_record``)."""
    path = Path(path)
    if path.is_dir():
        if (path / ONEDIR_RECORD).is_file():
            return (path / ONEDIR_RECORD).read_bytes()
        raise not_a_bundle(path, f"a folder without {ONEDIR_RECORD}")
    if not path.exists():
        raise UsageError(f"{path} does not exist; {EXPECTED_BUNDLE}")
    if is_installer(path):
        return installer_record(path)
    beside = path.parent / ONEDIR_RECORD
    if beside.is_file():  # the executable of a onedir folder
        return beside.read_bytes()
    return archive_record(path)


def is_installer(path: Path) -> bool:
    """A ``.tar.gz`` (or plain tar) or ``.deb`` installer, by name or by content."""
    if path.name.endswith(_INSTALLER_SUFFIXES):
        return True
    try:
        with open(path, "rb") as f:
            if f.read(len(_AR_MAGIC)) == _AR_MAGIC:
                return True
        return tarfile.is_tarfile(path)
    except OSError:
        return False


@contextmanager
def open_installer(path: Path) -> Iterator[tarfile.TarFile]:
    """The installer's file tree as a tar: the tarball itself, or a .deb's ``data.tar.*``."""
    try:
        with open(path, "rb") as f:
            is_deb = f.read(len(_AR_MAGIC)) == _AR_MAGIC
        if is_deb:
            with tarfile.open(fileobj=io.BytesIO(_deb_data(path))) as tar:
                yield tar
        else:
            with tarfile.open(path) as tar:
                yield tar
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise IntegrityError(f"cannot read the installer {path}: {exc}") from exc


def _deb_data(path: Path) -> bytes:
    """The ``data.tar.*`` member of a .deb, an ``ar`` archive of 60-byte headers and bodies."""
    with open(path, "rb") as f:
        f.read(len(_AR_MAGIC))
        while header := f.read(60):
            if len(header) < 60 or header[58:60] != b"`\n":
                break
            name = header[:16].decode("ascii", "replace").strip().rstrip("/")
            size = int(header[48:58].decode("ascii").strip() or 0)
            if name.startswith("data.tar"):
                return f.read(size)
            f.seek(size + size % 2, os.SEEK_CUR)
    raise IntegrityError(f"{path} is a .deb without a data.tar member")


def archive_record(executable: Path) -> bytes:
    """The record entry of a onefile executable's PyInstaller archive, read without running it."""
    from PyInstaller.archive.readers import CArchiveReader

    try:
        reader = CArchiveReader(str(executable))
    except Exception:  # noqa: BLE001 - the reader raises bare struct / archive errors
        raise not_a_bundle(
            executable, f"not a folder, an installer or an executable: {file_start(executable)}"
        ) from None
    if ARCHIVE_RECORD not in reader.toc:
        raise not_a_bundle(
            executable, f"a PyInstaller executable without a model record ({ARCHIVE_RECORD})"
        )
    try:
        return reader.extract(ARCHIVE_RECORD)
    except Exception as exc:  # zlib.error on a damaged entry
        raise IntegrityError(f"the record in {executable} is damaged: {exc}") from exc


def installer_record(installer: Path) -> bytes:
    """The record of the onedir folder inside an installer, streamed from the tar member."""
    with open_installer(installer) as tar:
        members = [
            m
            for m in tar.getmembers()
            if m.isfile() and (m.name == ONEDIR_RECORD or m.name.endswith("/" + ONEDIR_RECORD))
        ]
        if not members:
            raise IntegrityError(f"{installer} holds no bundle folder (no */{ONEDIR_RECORD})")
        member = min(members, key=lambda m: m.name.count("/"))
        stream = tar.extractfile(member)
        assert stream is not None  # a regular file member always has data
        return stream.read()


def parse_record(data: bytes, source: str) -> dict[str, Any]:
    try:
        record = json.loads(data)
    except ValueError as exc:
        raise IntegrityError(f"the model record in {source} is not valid JSON: {exc}") from exc
    if not isinstance(record, dict):
        raise IntegrityError(f"the model record in {source} is not a JSON object")
    return record


# -- display ---------------------------------------------------------------------------

#: Sections shown first, in this order; any other top-level key follows, flattened.
_SECTIONS = (
    "app",
    "model",
    "extractor",
    "training",
    "data",
    "inputs",
    "features",
    "outputs",
    "gate",
    "parity",
    "scoring_code",
    "build",
    "audit",
)


def record_rows(record: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(section, field, value) rows: the record as a person reads it, every section included."""
    rows: list[tuple[str, str, str]] = []
    for section in [*_SECTIONS, *sorted(set(record) - set(_SECTIONS))]:
        if section not in record or section in ("schema", "schema_version"):
            continue
        value = record[section]
        render = _RENDERERS.get(section, _generic)
        rows += [(section, field, text) for field, text in render(value)]
    return rows


def record_table(record: dict[str, Any]) -> Table:
    """``record_rows`` as a rich table, one titled block per section."""
    app = record.get("app") or {}
    table = Table(
        title=f"{app.get('title') or app.get('name', '?')} {app.get('version', '')}".strip(),
        caption=f"{record.get('schema', '?')} {record.get('schema_version', '?')}",
        show_lines=False,
    )
    table.add_column("section", style="bold")
    table.add_column("field")
    table.add_column("value", overflow="fold")
    previous = None
    for section, field, value in record_rows(record):
        if previous is not None and section != previous:
            table.add_section()
        # Text(), not str: record content is data, never rich markup ("[mm]" must show)
        label = section.replace("_", " ") if section != previous else ""
        table.add_row(Text(label), Text(field), Text(value))
        previous = section
    return table


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _versions(libs: dict[str, Any] | None) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted((libs or {}).items())) or "-"


def _generic(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Any other section: nested keys flattened to dotted fields."""
    if isinstance(value, dict) and value:
        out = []
        for key in sorted(value):
            out += _generic(value[key], f"{prefix}.{key}" if prefix else str(key))
        return out
    return [(prefix, _text(value))]


def _artifact(art: dict[str, Any] | None) -> list[tuple[str, str]]:
    if art is None:
        return [("", "none: the model carries its own preprocessing")]
    params = art.get("hyperparameters") or {}
    shown = ", ".join(
        f"{k}={v['class'].rsplit('.', 1)[-1] if isinstance(v, dict) and 'class' in v else _text(v)}"
        for k, v in sorted(params.items())
        if not isinstance(v, list)
    )
    return [
        ("algorithm", _text(art.get("algorithm"))),
        ("class", _text(art.get("class"))),
        ("version", _text(art.get("version"))),
        ("file", f"{art.get('file')} ({art.get('size')} bytes)"),
        ("sha256", _text(art.get("sha256"))),
        ("pickled by", _versions(art.get("pickled_by"))),
        ("hyperparameters", shown or "-"),
    ]


def _inputs(inputs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    rows = []
    for item in inputs:
        if item.get("kind") == "categorical":
            kind = "categorical: " + ", ".join(_text(c) for c in item.get("categories", []))
        else:
            unit = item.get("unit")
            kind = f"{item.get('kind', '?')}" + (f" [{unit}]" if unit else "")
        extra = {
            k: v
            for k, v in item.items()
            if k not in ("name", "kind", "categories", "unit", "description")
        }
        desc = item.get("description")
        text = kind + (f"; {desc}" if desc else "")
        text += "".join(f"; {k}: {_text(v)}" for k, v in sorted(extra.items()))
        rows.append((str(item.get("name", "?")), text))
    return rows


def _outputs(out: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("task", _text(out.get("task"))),
        ("classes", ", ".join(_text(c) for c in out.get("classes", [])) or "-"),
        ("columns", ", ".join(out.get("columns", []))),
        ("description", _text(out.get("description") or "-")),
        ("consume", _text(out.get("consume") or "-")),
    ]


def _gate(gate: dict[str, Any]) -> list[tuple[str, str]]:
    e2e, conf = gate.get("e2e") or {}, gate.get("confidence") or {}
    low, high = (conf.get("range") or [None, None])[:2]
    return [
        ("passed", _text(gate.get("passed"))),
        (
            "end-to-end",
            f"{e2e.get('rows')} rows, {len(e2e.get('failures') or [])} failures, "
            f"largest difference {_text(e2e.get('max_abs_diff'))} "
            f"(tolerance {_text(gate.get('tolerance'))})",
        ),
        (
            "confidence",
            f"{conf.get('metric')} = {_text(conf.get('value'))} on {conf.get('rows')} rows, "
            f"required [{_text(low)}, {_text(high)}]: "
            + ("passed" if conf.get("passed") else "FAILED"),
        ),
    ]


def _parity(parity: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("passed", _text(parity.get("passed"))),
        (
            "scikit-learn",
            f"{parity.get('rows')} rows, largest difference {_text(parity.get('max_abs_diff'))}, "
            f"{parity.get('label_mismatches')} label mismatches "
            f"(tolerance {_text(parity.get('tolerance'))})",
        ),
    ]


def _build(build: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [
        ("time", _text(build.get("time"))),
        ("tool", f"{build.get('tool')} {build.get('tool_version')}"),
        ("backend", _text(build.get("backend"))),
        ("built by", _text(build.get("built_by"))),
        ("python", _text(build.get("python"))),
        ("platform", _text(build.get("platform"))),
        ("libraries", _versions(build.get("libraries"))),
    ]
    extra = {k: v for k, v in build.items() if k not in _BUILD_SHOWN}
    return rows + (_generic(extra) if extra else [])


_BUILD_SHOWN = frozenset(
    {"time", "tool", "tool_version", "backend", "built_by", "python", "platform", "libraries"}
)


def _app(app: dict[str, Any]) -> list[tuple[str, str]]:
    base = ("name", "version", "title", "description")
    order = base + tuple(k for k in ("maintainer", "homepage", "license") if k in app)  # 1.2
    extra = {k: v for k, v in app.items() if k not in order}
    return [(k, _text(app.get(k))) for k in order] + (_generic(extra) if extra else [])


_RENDERERS = {
    "app": _app,
    "model": _artifact,
    "extractor": _artifact,
    "training": lambda t: [("libraries", _versions((t or {}).get("libraries")))],
    "inputs": _inputs,
    "features": lambda f: [("order", ", ".join(f))],
    "outputs": _outputs,
    "gate": _gate,
    "parity": _parity,
    "build": _build,
}
