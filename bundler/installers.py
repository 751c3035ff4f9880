"""Installers made from the onedir build: a portable ``.tar.gz``, a Debian ``.deb`` and an RPM.

All are byte-reproducible: members are sorted, owned by root, and stamped
with ``SOURCE_DATE_EPOCH`` (or 0), so two builds of the same inputs give the
same installer and its hash can be published. The tarball is made by ``bundler.tarball``.

The package's Maintainer, Homepage and licence come from the spec's ``[app]``
table. A release build must name its maintainer (a .deb's Maintainer is who
users and distributions write to); a development build without one gets an
unmistakable placeholder and a warning, never an address that looks real.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import shutil
import stat
import struct
import subprocess
import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from bundler.errors import ToolchainError
from bundler.templates import template_dir

TEMPLATES = template_dir()
KINDS = ("tar.gz", "deb", "rpm")
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


# ---------------------------------------------------------------------------
# ELF: the glibc floor and what kind of file it is, read from the file itself

_SHT_GNU_VERNEED = 0x6FFFFFFE
_PT_INTERP = 3
_ET_DYN = 3
_GLIBC_VERSION = re.compile(r"GLIBC_(\d+(?:\.\d+)+)")
#: ELF e_machine to the Debian architecture and the RPM one.
_MACHINES = {62: ("amd64", "x86_64"), 183: ("arm64", "aarch64"), 3: ("i386", "i686")}


@dataclass(frozen=True)
class ElfInfo:
    """What packaging needs of one ELF file."""

    machine: int
    shared_library: bool  # ET_DYN without a program interpreter: loaded, never run
    glibc: tuple[int, ...] | None  # highest GLIBC_x.y it requires, None if none
    #: the shared libraries it needs versioned symbols of (``readelf -V``'s "File:" names)
    versioned_needs: frozenset[str] = frozenset()


def read_elf(path: Path) -> ElfInfo | None:
    """Parse ``path``'s ELF header, program headers and ``.gnu.version_r`` (the versions
    it needs from each shared library, as ``readelf -V`` prints them); None if not ELF."""
    with open(path, "rb") as f:
        data = f.read(64)
        if len(data) < 52 or data[:4] != b"\x7fELF":
            return None
        f.seek(0)
        data = f.read()
    wide = data[4] == 2
    end = "<" if data[5] == 1 else ">"
    if wide:
        e_type, machine = struct.unpack_from(end + "HH", data, 16)
        phoff, shoff = struct.unpack_from(end + "QQ", data, 32)
        phentsize, phnum, shentsize, shnum = struct.unpack_from(end + "HHHH", data, 54)
    else:
        e_type, machine = struct.unpack_from(end + "HH", data, 16)
        phoff, shoff = struct.unpack_from(end + "II", data, 28)
        phentsize, phnum, shentsize, shnum = struct.unpack_from(end + "HHHH", data, 42)
    interp = any(
        struct.unpack_from(end + "I", data, phoff + i * phentsize)[0] == _PT_INTERP
        for i in range(phnum)
    )
    sections = []
    for i in range(shnum):
        at = shoff + i * shentsize
        if wide:
            _, sh_type, _, _, off, size, link, info = struct.unpack_from(end + "IIQQQQII", data, at)
        else:
            _, sh_type, _, _, off, size, link, info = struct.unpack_from(end + "IIIIIIII", data, at)
        sections.append((sh_type, off, size, link, info))
    found: list[tuple[int, ...]] = []
    needs: set[str] = set()
    for sh_type, off, _size, link, count in sections:
        if sh_type != _SHT_GNU_VERNEED:
            continue
        strtab = sections[link][1]

        def name(at: int, strtab: int = strtab) -> str:
            stop = data.index(b"\0", strtab + at)
            return data[strtab + at : stop].decode("ascii", "replace")

        need = off
        for _ in range(count):  # sh_info: the number of Verneed entries
            _ver, cnt, file, aux, nxt = struct.unpack_from(end + "HHIII", data, need)
            needs.add(name(file))
            at = need + aux
            for _ in range(cnt):
                _hash, _flags, _other, vname, anext = struct.unpack_from(end + "IHHII", data, at)
                match = _GLIBC_VERSION.fullmatch(name(vname))
                if match:
                    found.append(tuple(int(p) for p in match.group(1).split(".")))
                at += anext
            if nxt == 0:
                break
            need += nxt
    return ElfInfo(
        machine=machine,
        shared_library=e_type == _ET_DYN and not interp,
        glibc=max(found) if found else None,
        versioned_needs=frozenset(needs),
    )


#: The X client libraries the window takes from the system (``freeze.X_SYSTEM_LIBRARIES``),
#: by what the bundled Tk and Xft load directly: the .deb's package names (their own
#: dependencies bring the rest) and the RPM's soname capabilities, which every RPM
#: distribution's packages provide.
X_DEB_DEPENDS = ("libx11-6", "libxext6", "libxrender1", "libfontconfig1", "libfreetype6")
X_RPM_REQUIRES = (
    "libX11.so.6()(64bit)",
    "libXext.so.6()(64bit)",
    "libXrender.so.1()(64bit)",
    "libfontconfig.so.1()(64bit)",
    "libfreetype.so.6()(64bit)",
)


#: The C++ runtime the built-in app takes from the system (``freeze.CXX_SYSTEM_LIBRARIES``),
#: by soname: the .deb's package and the RPM's capability. numpy's wheel itself relies on
#: the system's (the manylinux policy lets no wheel bundle it).
CXX_SYSTEM_PACKAGES = {
    "libstdc++.so.6": ("libstdc++6", "libstdc++.so.6()(64bit)"),
    "libgcc_s.so.1": ("libgcc-s1", "libgcc_s.so.1()(64bit)"),
}


@dataclass(frozen=True)
class SystemNeeds:
    """What a package of a onedir tree must say it takes from the system (Debian policy
    8.6), read in one pass over the tree's files."""

    glibc: str | None  # the highest GLIBC_x.y any ELF file requires, as "x.y"; None without ELF
    depends: tuple[str, ...]  # the .deb's packages after libc6
    requires: tuple[str, ...]  # the RPM's capabilities after glibc


def system_needs(tree: Path) -> SystemNeeds:
    """The glibc floor, and the X client libraries (Tk bundled without libX11: the window
    loads them from the system) and C++ runtime libraries (needed by a file but not
    carried) that ``tree`` takes from the system."""
    floors: list[tuple[int, ...]] = []
    needed: set[str] = set()
    bundled: set[str] = set()
    for path in sorted(tree.rglob("*")):
        if ".so" in path.name:
            bundled.add(path.name)
        if path.is_file() and not path.is_symlink():
            info = read_elf(path)
            if info is not None:
                needed |= info.versioned_needs
                if info.glibc is not None:
                    floors.append(info.glibc)
    x = any(n.startswith("libtk") for n in bundled) and "libX11.so.6" not in bundled
    cxx = [CXX_SYSTEM_PACKAGES[n] for n in sorted(needed - bundled) if n in CXX_SYSTEM_PACKAGES]
    return SystemNeeds(
        glibc=".".join(str(p) for p in max(floors)) if floors else None,
        depends=(*(X_DEB_DEPENDS if x else ()), *(deb for deb, _ in cxx)),
        requires=(*(X_RPM_REQUIRES if x else ()), *(rpm for _, rpm in cxx)),
    )


def glibc_floor(tree: Path) -> str | None:
    """The ``libc6 (>= x.y)`` floor of a package of ``tree`` (see ``system_needs``)."""
    return system_needs(tree).glibc


def architecture(executable: Path) -> tuple[str, str]:
    """The Debian and RPM architecture names of the app's executable (x86-64 if not ELF)."""
    info = read_elf(executable) if executable.is_file() else None
    return _MACHINES.get(info.machine if info else 62, _MACHINES[62])


# ---------------------------------------------------------------------------
# Linux packages: the tree the .deb and the .rpm share

#: Licences whose full text Debian ships in /usr/share/common-licenses (SPDX id to file).
_COMMON_LICENSES = {
    "Apache-2.0": "Apache-2.0",
    "Artistic-2.0": "Artistic-2.0",
    "BSD-3-Clause": "BSD",
    "CC0-1.0": "CC0-1.0",
    "GPL-2.0-only": "GPL-2",
    "GPL-2.0-or-later": "GPL-2",
    "GPL-3.0-only": "GPL-3",
    "GPL-3.0-or-later": "GPL-3",
    "LGPL-2.1-only": "LGPL-2.1",
    "LGPL-2.1-or-later": "LGPL-2.1",
    "LGPL-3.0-only": "LGPL-3",
    "LGPL-3.0-or-later": "LGPL-3",
    "MPL-2.0": "MPL-2.0",
}
#: What lintian says of a PyInstaller folder under /opt that no packaging can change
#: (docs/installers.md, "Debian package", gives each one's reason); shipped as the
#: package's lintian overrides.
LINTIAN_OVERRIDES = (
    "dir-or-file-in-opt",
    "custom-library-search-path",
    "embedded-library",
    "unstripped-binary-or-object",
    "library-not-linked-against-libc",
)


def debian_version(version: str) -> str:
    """A Debian-valid version from the app's (dashes are not allowed in an upstream version)."""
    return version.replace("-", "~")


def rpm_version(version: str) -> str:
    """An RPM-valid Version from the app's (a dash separates Version from Release)."""
    return version.replace("-", "~")


#: The model pack's MIME type (``dist_templates/desktop/mlpack.xml``): one for every mlbundle
#: app, as the format is one; each app that accepts packs declares it in its menu entry, so
#: the desktop offers it for a ``*.mlpack`` file (or one starting ``MLPACK ``).
PACK_MIME_TYPE = "application/vnd.mlbundle.pack"
PACK_MIME_XML = "desktop/mlpack.xml"


def accepts_packs(onedir: Path) -> bool:
    """Whether the frozen app was built with ``[updates]``: its payload has updates.json."""
    from mlbundle_runtime.bundle import PAYLOAD_PACKAGE
    from mlbundle_runtime.packs import UPDATES_FILE

    return any(
        (Path(onedir) / inside / PAYLOAD_PACKAGE / UPDATES_FILE).is_file()
        for inside in ("_internal", ".")
    )


def pack_mime_xml() -> str:
    """The shared-mime-info definition of the pack type, installed as
    ``share/mime/packages/<app>.xml`` (a name per package: two apps never clash)."""
    return (template_dir() / PACK_MIME_XML).read_text(encoding="utf-8")


def render_desktop_entry(
    *,
    name: str,
    title: str,
    description: str,
    exec: str,
    icon: str | None,
    version: str,
    mime_type: str | None = None,
) -> str:
    """The menu entry (``dist_templates/desktop/app.desktop.j2``): opens the window; with
    ``mime_type``, also a pack the user opens (``exec`` then ends in ``%f``)."""
    return _render(
        "desktop/app.desktop.j2",
        name=name, title=title, description=description, exec=exec, icon=icon, version=version,
        mime_type=mime_type,
    )  # fmt: skip


def _gzip_bytes(data: bytes) -> bytes:
    """``gzip -9n``: no name, no time, so the same text gives the same bytes."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return buf.getvalue()


def _date(fmt: str) -> str:
    return datetime.fromtimestamp(_epoch(), tz=UTC).strftime(fmt)


def _linux_tree(
    onedir: Path,
    root: Path,
    *,
    name: str,
    version: str,
    title: str,
    description: str,
    icon: Path | None,
) -> None:
    """``root`` as installed: ``/opt/<name>``, ``/usr/bin/<name>``, the menu entry, the
    icon and the manual page. Shared libraries lose their execute bit (they are loaded,
    never run)."""
    opt = root / "opt" / name
    shutil.copytree(onedir, opt, symlinks=True)
    for path in opt.rglob("*"):
        if path.is_file() and not path.is_symlink():
            info = read_elf(path)
            if info is not None and info.shared_library:
                path.chmod(0o644)
    launcher = root / "usr" / "bin" / name
    launcher.parent.mkdir(parents=True)
    launcher.write_text(_render("deb/launcher.sh.j2", name=name, title=title, package=name))
    launcher.chmod(0o755)
    share = root / "usr" / "share"
    (share / "applications").mkdir(parents=True)
    packs = accepts_packs(onedir)
    (share / "applications" / f"{name}.desktop").write_text(
        render_desktop_entry(
            name=name,
            title=title,
            description=description,
            # `<app> FILE.mlpack` opens the window offering to install it; `<app>` alone
            # (the menu, %f empty) opens the window as `<app> window` does
            exec=f"{name} %f" if packs else f"{name} window",
            icon=name if icon is not None else None,
            version=version,
            mime_type=PACK_MIME_TYPE if packs else None,
        )  # fmt: skip
    )
    if packs:  # shared-mime-info's file trigger (dpkg, rpm) updates the database
        (share / "mime" / "packages").mkdir(parents=True)
        (share / "mime" / "packages" / f"{name}.xml").write_text(pack_mime_xml())
    if icon is not None:
        icons = share / "icons" / "hicolor" / "256x256" / "apps"
        icons.mkdir(parents=True)
        _icon_256(icon, icons / f"{name}.png")
    man = share / "man" / "man1"
    man.mkdir(parents=True)
    page = _render(
        "deb/app.1.j2", name=name, version=version, title=title,
        description=description or title, date=_date("%Y-%m-%d"),
    )  # fmt: skip
    (man / f"{name}.1.gz").write_bytes(_gzip_bytes(page.encode()))


def _icon_256(icon: Path, target: Path) -> None:
    """The icon as the 256x256 PNG its folder promises: copied as is when it is one, else
    scaled (deterministically: the same PNG gives the same bytes)."""
    data = icon.read_bytes()
    if data[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", data[16:24]) == (256, 256):
        target.write_bytes(data)
        return
    from PIL import Image

    with Image.open(icon) as image:
        image.convert("RGBA").resize((256, 256), Image.Resampling.LANCZOS).save(target, "PNG")


def _stamp(root: Path) -> None:
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_dir():
            path.chmod(0o755)
        elif path.is_file() and not path.is_symlink():
            path.chmod(0o755 if path.stat().st_mode & stat.S_IXUSR else 0o644)
        os.utime(path, (_epoch(), _epoch()), follow_symlinks=False)
    os.utime(root, (_epoch(), _epoch()))


def _wrap(text: str, width: int = 79) -> list[str]:
    """Description paragraphs as lines of at most ``width`` (lintian's limit is 80)."""
    lines: list[str] = []
    for para in text.splitlines():
        lines.extend(textwrap.wrap(para, width) or [""])
    return lines


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
    icon: Path | None = None,
) -> Installer:
    """``/opt/<name>`` (the onedir tree), ``/usr/bin/<name>``, a menu entry and icon, a
    manual page, a DEP-5 copyright and a changelog, built with dpkg-deb.

    Maintainer, Homepage and licence are read from the record's ``app`` section, so the
    package says exactly what the bundle's record says. ``Depends: libc6 (>= x.y)`` is the
    highest glibc symbol version the bundled ELF files require.
    """
    dpkg = shutil.which("dpkg-deb")
    if dpkg is None:
        raise ToolchainError(
            "dpkg-deb is needed to build the .deb installer: "
            'install it (`apt-get install dpkg`) or drop "deb" from '
            "build.installers"
        )
    root = work / "deb-root"
    _linux_tree(
        onedir, root, name=name, version=version, title=title, description=description,
        icon=icon,
    )  # fmt: skip
    model = record["model"]
    app = record["app"]
    maintainer = app.get("maintainer") or MAINTAINER_PLACEHOLDER
    license_ = app.get("license")
    tool_version = record["build"]["tool_version"]
    doc = root / "usr" / "share" / "doc" / name
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(
        _render(
            "deb/copyright.j2",
            name=name,
            maintainer=maintainer,
            homepage=app.get("homepage"),
            license=license_ or "LicenseRef-unset",
            common_license=_COMMON_LICENSES.get(license_ or ""),
            license_known=license_ is not None,
            year=_date("%Y"),
            tool_version=tool_version,
        )
    )
    changelog = _render(
        "deb/changelog.j2",
        package=name,
        version=debian_version(version),
        tool_version=tool_version,
        model_algorithm=model["algorithm"],
        model_version=model["version"],
        model_sha256=model["sha256"],
        maintainer=maintainer,
        date=_date("%a, %d %b %Y %H:%M:%S +0000"),
    )
    (doc / "changelog.gz").write_bytes(_gzip_bytes(changelog.encode()))
    overrides = root / "usr" / "share" / "lintian" / "overrides"
    overrides.mkdir(parents=True)
    (overrides / name).write_text(
        _render("deb/lintian-overrides.j2", name=name, tags=LINTIAN_OVERRIDES)
    )
    size_kb = sum(p.lstat().st_size for p in root.rglob("*") if not p.is_dir()) // 1024 + 1
    arch, _ = architecture(root / "opt" / name / name)
    needs = system_needs(root / "opt" / name)
    (root / "DEBIAN").mkdir()
    (root / "DEBIAN" / "control").write_text(
        _render(
            "deb/control.j2",
            package=name,
            version=debian_version(version),
            architecture=arch,
            maintainer=maintainer,
            homepage=app.get("homepage"),
            license=license_,
            glibc=needs.glibc,
            system_depends=needs.depends,
            installed_kb=size_kb,
            title=title,
            description_lines=_wrap(description or title),
            model_algorithm=model["algorithm"],
            model_version=model["version"],
            model_sha256=model["sha256"],
            tool_version=tool_version,
        )
    )
    sums = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink() and path.parts[len(root.parts)] != "DEBIAN":
            digest = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
            sums.append(f"{digest}  {path.relative_to(root).as_posix()}\n")
    (root / "DEBIAN" / "md5sums").write_text("".join(sums))
    _stamp(root)
    target = target_dir / f"{name}_{debian_version(version)}_{arch}.deb"
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


def _rpm_text(text: str | None) -> str | None:
    """``text`` as an RPM spec value: ``%`` starts a macro there, ``%%`` is a percent sign."""
    return None if text is None else text.replace("%", "%%")


def make_rpm(
    onedir: Path,
    target_dir: Path,
    *,
    name: str,
    version: str,
    title: str,
    description: str,
    record: dict[str, Any],
    work: Path,
    icon: Path | None = None,
) -> Installer:
    """The .deb's layout as an RPM, built by ``rpmbuild -bb`` from the onedir tree as is:
    nothing stripped, byte-compiled or given build-id links; no automatic Requires or
    Provides (the bundled libraries are private), ``Requires: glibc >= x.y`` instead."""
    rpmbuild = shutil.which("rpmbuild")
    if rpmbuild is None:
        raise ToolchainError(
            "rpmbuild is needed to build the .rpm installer: "
            'install it (`apt-get install rpm`) or drop "rpm" from build.installers'
        )
    work.mkdir(parents=True, exist_ok=True)
    root = work / "rpm-root"
    _linux_tree(
        onedir, root, name=name, version=version, title=title, description=description,
        icon=icon,
    )  # fmt: skip
    _stamp(root)
    model = record["model"]
    app = record["app"]
    _, arch = architecture(root / "opt" / name / name)
    needs = system_needs(root / "opt" / name)
    topdir = work / "rpmbuild"
    (topdir / "SPECS").mkdir(parents=True, exist_ok=True)
    spec = topdir / "SPECS" / f"{name}.spec"
    spec.write_text(
        _render(
            "rpm/app.spec.j2",
            name=name,
            version=rpm_version(version),
            release="1",
            title=_rpm_text(title),
            license=_rpm_text(app.get("license") or "LicenseRef-unset"),
            homepage=_rpm_text(app.get("homepage")),
            arch=arch,
            glibc=needs.glibc,
            system_requires=needs.requires if arch in ("x86_64", "aarch64") else (),
            description_lines=[_rpm_text(line) for line in _wrap(description or title)],
            model_algorithm=model["algorithm"],
            model_version=model["version"],
            model_sha256=model["sha256"],
            tool_version=record["build"]["tool_version"],
            root=str(root),
            icon=icon is not None,
            mime=accepts_packs(onedir),
        )
    )
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(_epoch()), LC_ALL="C", TZ="UTC")
    proc = subprocess.run(
        [
            rpmbuild, "-bb", "--nodeps", "--target", arch,
            "--define", f"_topdir {topdir}",
            "--define", "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm",
            str(spec),
        ],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    if proc.returncode != 0:
        raise ToolchainError(f"rpmbuild failed: {proc.stderr.strip()[-2000:]}")
    built = topdir / "RPMS" / f"{name}-{rpm_version(version)}-1.{arch}.rpm"
    target = target_dir / built.name
    os.replace(built, target)
    return Installer("rpm", target, target.stat().st_size)


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
    icon: Path | None = None,
) -> list[Installer]:
    """Stage entry: every requested installer kind, from the finished onedir folder."""
    out_dir.mkdir(parents=True, exist_ok=True)
    made = []
    for kind in kinds:
        if kind == "tar.gz":
            from bundler.tarball import make_tarball  # it imports Installer from here

            made.append(
                make_tarball(
                    onedir,
                    out_dir,
                    name=name,
                    version=version,
                    title=title,
                    description=description,
                    record=record,
                    icon=icon,
                )
            )
        elif kind in ("deb", "rpm"):
            make = make_deb if kind == "deb" else make_rpm
            made.append(
                make(
                    onedir,
                    out_dir,
                    name=name,
                    version=version,
                    title=title,
                    description=description,
                    record=record,
                    work=work / kind,
                    icon=icon,
                )
            )
    return made
