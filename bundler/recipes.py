"""Recipes for the systems a build cannot target from here: Windows and macOS.

PyInstaller does not cross-compile, so ``bundle build`` renders, beside the installers,
what a release engineer (or CI) runs on those systems, into ``dist/<app>/recipes/``::

    windows/<name>.iss      Inno Setup script naming every file of the onedir tree
    windows/<name>.ico      the icon (when the build has one)
    macos/Info.plist        the .app bundle's Info.plist: the app's and the model's versions
    macos/make-app.sh       assembles <title>.app from the onedir tree on macOS
    macos/<name>.icns       the icon (when the build has one)
    ci-workflow.yml         GitHub Actions: build on ubuntu, windows and macos runners
    README.md               how to use each on its system

The Inno Setup script lists the tree it was rendered from: on Windows, ``bundle build``
renders it again from the Windows tree (``.exe``, ``.dll``, ``.pyd``), so the list is
always the tree that was built and tested (``docs/installers.md``).
"""

from __future__ import annotations

import io
import os
import plistlib
import re
import shlex
import uuid
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import jinja2

from bundler.tarball import _template_dir, _walk

#: AppId namespace: one stable Inno Setup AppId per app name, so upgrades replace.
APP_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "mlbundle.org")
MIN_MACOS = "11.0"
ICO_SIZES = [(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)]


def _iss(value: Any) -> str:
    """A value inside an Inno Setup string: quotes doubled, braces (constants) escaped."""
    return " ".join(str(value).split()).replace('"', '""').replace("{", "{{")


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_template_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["iss"] = _iss
    env.filters["sh"] = shlex.quote
    return env


def app_id(name: str) -> str:
    """The Inno Setup AppId of ``name`` (a UUID5: the same for every version)."""
    return str(uuid.uuid5(APP_ID_NAMESPACE, name)).upper()


def bundle_identifier(name: str, homepage: str | None) -> str:
    """``org.example.<name>`` from the homepage's domain reversed, else ``org.mlbundle.<name>``."""
    host = (urlsplit(homepage).hostname or "") if homepage else ""
    parts = [p for p in host.split(".") if p and p != "www"]
    if len(parts) < 2:
        parts = ["mlbundle", "org"]
    ident = ".".join([*reversed(parts), name])
    return re.sub(r"[^A-Za-z0-9.-]", "-", ident)


def bundle_version(version: str) -> str:
    """CFBundleVersion: up to three integers from the version (``1.2.3rc1`` -> ``1.2.3``)."""
    match = re.match(r"\d+(?:\.\d+){0,2}", version)
    return match.group(0) if match else "0"


def _publisher(maintainer: str | None) -> str:
    if not maintainer:
        return "Unknown publisher"
    return maintainer.split("<", 1)[0].strip() or maintainer


def _repo_relative(path: Path) -> str:
    """``path`` relative to the repository (``.git``) holding it, else to its spec folder."""
    path = Path(path).resolve()
    for parent in path.parents:
        if (parent / ".git").exists():
            return PurePosixPath(path.relative_to(parent)).as_posix()
    return path.name


def onedir_files(onedir: Path) -> list[str]:
    """Every file (and link) of the onedir tree, relative, sorted, ``/``-separated."""
    files = [p for p in _walk(onedir) if p.is_symlink() or not p.is_dir()]
    return sorted(p.relative_to(onedir).as_posix() for p in files)


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if isinstance(text, bytes):
        tmp.write_bytes(text)
    else:
        tmp.write_text(text, encoding="utf-8", newline="\n")
    os.replace(tmp, path)
    return path


def _icon_bytes(icon: Path, fmt: str) -> bytes:
    from PIL import Image

    with Image.open(icon) as img:
        img.load()
        rgba = img.convert("RGBA")
    side = max(rgba.size)
    if rgba.size != (side, side):
        square = Image.new("RGBA", (side, side), (0, 0, 0, 0))
        square.paste(rgba, ((side - rgba.width) // 2, (side - rgba.height) // 2))
        rgba = square
    if side > 1024 and fmt == "ICNS":
        rgba = rgba.resize((1024, 1024), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    if fmt == "ICO":
        if side > 256:
            rgba = rgba.resize((256, 256), Image.Resampling.LANCZOS)
        rgba.save(out, format="ICO", sizes=ICO_SIZES)
    else:
        rgba.save(out, format=fmt)
    return out.getvalue()


def render_recipes(
    onedir: Path, out_dir: Path, *, spec: Any, record: dict[str, Any], icon: Path | None
) -> list[Path]:
    """Render the recipes for ``onedir`` (the finished onedir folder) into ``out_dir``.

    ``out_dir`` is the recipes folder (``dist/<app>/recipes``); given the app's output
    folder instead (any other name), ``recipes/`` is made inside it. Returns the files.
    """
    out_dir = Path(out_dir)
    if out_dir.name != "recipes":
        out_dir = out_dir / "recipes"
    app = spec.app
    name, version, title = app.name, app.version, app.title
    description = app.description or title
    model = record["model"]
    build = record.get("build", {})
    python_full = (record.get("requirements") or {}).get("python") or build.get("python", "3")
    python = ".".join(str(python_full).split(".")[:2])
    tool_version = build.get("tool_version", "0")
    out_rel = _repo_relative(spec.build.output_dir / name)
    files = onedir_files(Path(onedir))
    platform = build.get("platform", "unknown")
    values: dict[str, Any] = {
        "name": name,
        "version": version,
        "title": title,
        "description": description,
        "homepage": app.homepage,
        "publisher": _publisher(app.maintainer),
        "model_version": model["version"],
        "model_sha256": model["sha256"],
        "tool_version": tool_version,
        "platform": platform,
        "python": python,
        "python_full": python_full,
        "app_id": app_id(name),
        "identifier": bundle_identifier(name, app.homepage),
        "spec_path": _repo_relative(spec.path),
        "out_dir": out_rel,
        "out_dir_win": out_rel.replace("/", "\\"),
        "has_icon": icon is not None,
        "icon_file": f"{name}.icns" if icon is not None else "",
    }
    env = _env()
    made: list[Path] = []

    exe = f"{name}.exe"
    iss_files = [
        (rel.replace("/", "\\"), str(PurePosixPath(rel).parent).replace("/", "\\").strip("."))
        for rel in files
    ]
    iss = env.get_template("recipes/app.iss.j2").render(
        **values,
        source_dir="{#SourceDir}",
        files=iss_files,
        exe=exe,
        ico=f"{name}.ico" if icon is not None else "",
    )
    made.append(_write(out_dir / "windows" / f"{name}.iss", iss.replace("\n", "\r\n")))
    if icon is not None:
        made.append(_write(out_dir / "windows" / f"{name}.ico", _icon_bytes(Path(icon), "ICO")))

    plist = env.get_template("recipes/Info.plist.j2").render(
        **values,
        bundle_name=title if len(title) <= 15 else name,
        bundle_version=bundle_version(version),
        min_macos=MIN_MACOS,
    )
    plistlib.loads(plist.encode("utf-8"))  # a broken plist is a bug here, not on macOS
    made.append(_write(out_dir / "macos" / "Info.plist", plist))
    made.append(
        _write(
            out_dir / "macos" / "make-app.sh",
            env.get_template("recipes/make-app.sh.j2").render(**values),
        )
    )
    (out_dir / "macos" / "make-app.sh").chmod(0o755)
    if icon is not None:
        made.append(_write(out_dir / "macos" / f"{name}.icns", _icon_bytes(Path(icon), "ICNS")))

    made.append(
        _write(
            out_dir / "ci-workflow.yml",
            env.get_template("recipes/ci-workflow.yml.j2").render(**values),
        )
    )
    made.append(
        _write(out_dir / "README.md", env.get_template("recipes/README.md.j2").render(**values))
    )
    return made
