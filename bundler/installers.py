"""Installers made from the onedir build: a portable ``.tar.gz`` and a Debian ``.deb``.

Both are byte-reproducible: members are sorted, owned by root, and stamped
with ``SOURCE_DATE_EPOCH`` (or 0), so two builds of the same inputs give the
same installer and its hash can be published.

The package's Maintainer, Homepage and licence come from the spec's ``[app]``
table. A release build must name its maintainer (a .deb's Maintainer is who
users and distributions write to); a development build without one gets an
unmistakable placeholder and a warning, never an address that looks real.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import stat
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from bundler.errors import ToolchainError

TEMPLATES = Path(__file__).resolve().parents[1] / "dist_templates"
KINDS = ("tar.gz", "deb")
#: The .deb's Maintainer when the spec names none (development builds only): ``.invalid``
#: is a domain reserved never to exist (RFC 2606), so no mail can reach a stranger.
MAINTAINER_PLACEHOLDER = "Unset Maintainer <maintainer-unset@example.invalid>"


def check_maintainer(spec: Any) -> list[str]:
    """The warning a build without ``[app] maintainer`` gets when it makes a .deb (a
    release build without one was refused by ``check_release`` before any stage ran)."""
    if spec.app.maintainer is not None:
        return []
    if "deb" not in spec.build.installers:
        return []
    return [
        f"{spec.path}: app.maintainer is not set; the .deb says Maintainer: "
        f'{MAINTAINER_PLACEHOLDER} (set maintainer = "Name <email>" in [app])'
    ]


@dataclass(frozen=True)
class Installer:
    """One installer file and what it is."""

    kind: str
    path: Path
    size: int


def _epoch() -> int:
    return int(os.environ.get("SOURCE_DATE_EPOCH", "0"))


def _render(template: str, **values: Any) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    return env.get_template(template).render(**values)


def _tar_filter(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = _epoch()
    if info.isfile():
        info.mode = 0o755 if info.mode & stat.S_IXUSR else 0o644
    elif info.isdir():
        info.mode = 0o755
    return info


def make_tarball(onedir: Path, target: Path, top: str) -> Installer:
    """``top/`` holding the onedir folder, deterministic (sorted, fixed owner and times)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        paths = [onedir, *sorted(onedir.rglob("*"))]
        for path in paths:
            arcname = top if path == onedir else f"{top}/{path.relative_to(onedir).as_posix()}"
            tar.add(path, arcname=arcname, recursive=False, filter=_tar_filter)
    tmp = target.with_name(f".{target.name}.tmp")
    with (
        open(tmp, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=_epoch(), compresslevel=9) as gz,
    ):
        gz.write(buf.getvalue())
    os.replace(tmp, target)
    return Installer("tar.gz", target, target.stat().st_size)


def debian_version(version: str) -> str:
    """A Debian-valid version from the app's (dashes are not allowed in an upstream version)."""
    return version.replace("-", "~")


def make_deb(
    onedir: Path,
    target_dir: Path,
    *,
    name: str,
    version: str,
    title: str,
    description: str,
    record: dict[str, Any],
    work: Path,
) -> Installer:
    """``/opt/<name>`` (the onedir tree) and ``/usr/bin/<name>``, built with dpkg-deb.

    Maintainer, Homepage and licence are read from the record's ``mlbundle_runtime`` section, so the
    package says exactly what the bundle's record says.
    """
    dpkg = shutil.which("dpkg-deb")
    if dpkg is None:
        raise ToolchainError(
            "dpkg-deb is needed to build the .deb installer: "
            'install it (`apt-get install dpkg`) or drop "deb" from '
            "build.installers"
        )
    root = work / "deb-root"
    shutil.copytree(onedir, root / "opt" / name, symlinks=True)
    launcher = root / "usr" / "bin" / name
    launcher.parent.mkdir(parents=True)
    launcher.write_text(_render("deb/launcher.sh.j2", name=name, title=title, package=name))
    launcher.chmod(0o755)
    size_kb = sum(p.lstat().st_size for p in root.rglob("*") if not p.is_dir()) // 1024 + 1
    model = record["model"]
    app = record["app"]
    (root / "DEBIAN").mkdir()
    (root / "DEBIAN" / "control").write_text(
        _render(
            "deb/control.j2",
            package=name,
            version=debian_version(version),
            architecture="amd64",
            maintainer=app.get("maintainer") or MAINTAINER_PLACEHOLDER,
            homepage=app.get("homepage"),
            license=app.get("license"),
            installed_kb=size_kb,
            title=title,
            description_lines=(description or title).splitlines(),
            model_algorithm=model["algorithm"],
            model_version=model["version"],
            model_sha256=model["sha256"],
            tool_version=record["build"]["tool_version"],
        )
    )
    for path in [root, *root.rglob("*")]:
        os.utime(path, (_epoch(), _epoch()), follow_symlinks=False)
    target = target_dir / f"{name}_{debian_version(version)}_amd64.deb"
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(_epoch()))
    proc = subprocess.run(
        [dpkg, "--root-owner-group", "-Zgzip", "--build", str(root), str(target)],
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        raise ToolchainError(f"dpkg-deb failed: {proc.stderr.strip()}")
    return Installer("deb", target, target.stat().st_size)


def make_installers(
    onedir: Path,
    out_dir: Path,
    *,
    kinds: tuple[str, ...],
    name: str,
    version: str,
    title: str,
    description: str,
    record: dict[str, Any],
    work: Path,
) -> list[Installer]:
    """Stage entry: every requested installer kind, from the finished onedir folder."""
    out_dir.mkdir(parents=True, exist_ok=True)
    made = []
    for kind in kinds:
        if kind == "tar.gz":
            made.append(
                make_tarball(
                    onedir, out_dir / f"{name}-{version}-linux-x86_64.tar.gz", f"{name}-{version}"
                )
            )
        elif kind == "deb":
            made.append(
                make_deb(
                    onedir,
                    out_dir,
                    name=name,
                    version=version,
                    title=title,
                    description=description,
                    record=record,
                    work=work,
                )
            )
    return made
