"""The Linux tarball: the onedir tree with an ``install.sh`` and an ``uninstall.sh``.

``<name>-<version>-linux-x86_64.tar.gz`` holds one folder, ``<name>-<version>/``::

    app/                 the onedir tree (the ``<name>`` executable and ``_internal/``)
    <name>.png           the icon, 256x256 (when the build has one)
    <name>.desktop.in    the menu entry; install.sh fills in the installed paths
    <name>.xml           the model pack's MIME type (an app built with [updates])
    install.sh           sh install.sh [--prefix DIR]   (default ~/.local, no root)
    uninstall.sh         sh uninstall.sh [--prefix DIR] [--purge]

``install.sh`` puts the application in ``PREFIX/lib/<name>/``, the command in
``PREFIX/bin/<name>``, the menu entry in ``PREFIX/share/applications/`` and the icon
in ``PREFIX/share/icons/hicolor/256x256/apps/`` (and the pack type in
``PREFIX/share/mime/packages/``), and lists every file and folder it
made in ``PREFIX/lib/<name>/install.log``, which ``uninstall.sh`` removes and nothing
else (``docs/installers.md``).

Byte-reproducible like every installer: members sorted, owned by root, stamped with
``SOURCE_DATE_EPOCH`` (or 0), and a gzip header without a time or a file name.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from pathlib import Path
from typing import Any

import jinja2

from bundler.installers import PACK_MIME_TYPE, Installer, accepts_packs, pack_mime_xml

KIND = "tar.gz"
#: The icon's size in the tarball and where install.sh puts it (hicolor/256x256/apps).
ICON_SIZE = 256


def _template_dir() -> Path:
    try:
        from bundler.templates import template_dir
    except ImportError:
        return Path(__file__).resolve().parents[1] / "dist_templates"
    return Path(template_dir())


def render(template: str, **values: Any) -> str:
    """One template of ``dist_templates/``, every variable required."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_template_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    return env.get_template(template).render(**values)


def _epoch() -> int:
    return int(os.environ.get("SOURCE_DATE_EPOCH", "0"))


def _desktop_template() -> str:
    """The shared ``.desktop`` template (``desktop/app.desktop.j2``) when there is one."""
    if (_template_dir() / "desktop" / "app.desktop.j2").is_file():
        return "desktop/app.desktop.j2"
    return "tar/app.desktop.j2"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def icon_png(icon: Path) -> bytes:
    """The icon as a ``ICON_SIZE`` square PNG, written without a time stamp."""
    from PIL import Image

    with Image.open(icon) as img:
        img.load()
        rgba = img.convert("RGBA")
    if rgba.size != (ICON_SIZE, ICON_SIZE):
        rgba = rgba.resize((ICON_SIZE, ICON_SIZE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    rgba.save(out, format="PNG", optimize=True)
    return out.getvalue()


class _Tar:
    """A tar archive built member by member, each one deterministic."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        # closed by gzip_to, which writes the archive out
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)  # noqa: SIM115

    def _info(self, arcname: str, kind: bytes, mode: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(arcname)
        info.type = kind
        info.mode = mode
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mtime = _epoch()
        return info

    def folder(self, arcname: str) -> None:
        self.tar.addfile(self._info(arcname, tarfile.DIRTYPE, 0o755))

    def data(self, arcname: str, data: bytes, *, executable: bool = False) -> None:
        info = self._info(arcname, tarfile.REGTYPE, 0o755 if executable else 0o644)
        info.size = len(data)
        self.tar.addfile(info, io.BytesIO(data))

    def tree(self, root: Path, top: str) -> None:
        """``root`` under ``top/``, sorted, symbolic links kept as links."""
        self.folder(top)
        for path in sorted(_walk(root), key=lambda p: p.relative_to(root).as_posix()):
            arcname = f"{top}/{path.relative_to(root).as_posix()}"
            if path.is_symlink():
                info = self._info(arcname, tarfile.SYMTYPE, 0o777)
                info.linkname = os.readlink(path)
                self.tar.addfile(info)
            elif path.is_dir():
                self.folder(arcname)
            else:
                executable = bool(path.stat().st_mode & stat.S_IXUSR)
                self.data(arcname, path.read_bytes(), executable=executable)

    def gzip_to(self, target: Path) -> None:
        self.tar.close()
        tmp = target.with_name(f".{target.name}.tmp")
        with (
            open(tmp, "wb") as raw,
            gzip.GzipFile(
                filename="", mode="wb", fileobj=raw, mtime=_epoch(), compresslevel=9
            ) as gz,
        ):
            gz.write(self.buf.getvalue())
        os.replace(tmp, target)


def _walk(root: Path) -> list[Path]:
    """Every path under ``root``, not following links to folders."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        found.extend(base / d for d in dirnames)
        found.extend(base / f for f in filenames)
    return found


def tarball_name(name: str, version: str) -> str:
    return f"{name}-{version}-linux-x86_64.tar.gz"


def make_tarball(
    onedir: Path,
    out_dir: Path,
    *,
    name: str,
    version: str,
    title: str,
    description: str,
    record: dict[str, Any],
    icon: Path | None,
) -> Installer:
    """``out_dir/<name>-<version>-linux-x86_64.tar.gz`` from the finished onedir folder."""
    onedir = Path(onedir)
    if not (onedir / name).is_file():
        raise FileNotFoundError(f"{onedir / name}: the onedir folder has no {name} executable")
    model = record.get("model") or {}
    top = f"{name}-{version}"
    packs = accepts_packs(onedir)
    values = {
        "name": name,
        "version": version,
        "title": title,
        "description": description,
        "has_icon": icon is not None,
        "model_version": model.get("version", "unknown"),
        "model_sha256": model.get("sha256", "unknown"),
        "has_mime": packs,
        # a pack the user opens is passed to the app (%f); the menu alone opens the window
        "exec_args": "%f" if packs else "window",
    }
    desktop = render(
        _desktop_template(),
        name=name,
        title=_one_line(title),
        description=_one_line(description or title),
        exec="@EXEC@",
        icon="@ICON@" if icon is not None else "",
        version=version,
        mime_type=PACK_MIME_TYPE if packs else None,
    )
    tar = _Tar()
    tar.folder(top)
    tar.tree(onedir, f"{top}/app")
    tar.data(f"{top}/install.sh", render("tar/install.sh.j2", **values).encode(), executable=True)
    tar.data(f"{top}/{name}.desktop.in", desktop.encode())
    if icon is not None:
        tar.data(f"{top}/{name}.png", icon_png(Path(icon)))
    if packs:
        tar.data(f"{top}/{name}.xml", pack_mime_xml().encode())
    tar.data(
        f"{top}/uninstall.sh", render("tar/uninstall.sh.j2", **values).encode(), executable=True
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / tarball_name(name, version)
    tar.gzip_to(target)
    return Installer(KIND, target, target.stat().st_size)
