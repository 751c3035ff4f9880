"""The Linux packages (.deb and .rpm): built from a small fake onedir tree (fast, not frozen),
and the example's real .deb from the session build (frozen)."""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import numpy
import pytest

from bundler.installers import (
    LINTIAN_OVERRIDES,
    MAINTAINER_PLACEHOLDER,
    X_DEB_DEPENDS,
    X_RPM_REQUIRES,
    glibc_floor,
    make_installers,
    read_elf,
)

EPOCH = "1764374400"
TITLE = "Penguin species classifier"
DESCRIPTION = "Predicts the species of a Palmer penguin from its island, sex and body measurements."
APP = {
    "name": "penguins",
    "version": "1.0.0",
    "title": TITLE,
    "description": DESCRIPTION,
    "maintainer": "Example Release Manager <release@example.org>",
    "homepage": "https://example.org/penguins",
    "license": "Apache-2.0",
}
RECORD = {
    "app": APP,
    "model": {"algorithm": "RandomForestClassifier", "version": "1.0.0", "sha256": "ab" * 32},
    "build": {"tool_version": "0.1.0"},
}
DEB = "penguins_1.0.0_amd64.deb"
RPM = "penguins-1.0.0-1.x86_64.rpm"


def _need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")


def _run(*args: str | Path) -> str:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=True).stdout


def _objdump_glibc(path: Path) -> str:
    """The highest GLIBC_x.y that ``objdump -T`` shows ``path``'s dynamic symbols need."""
    found = re.findall(r"GLIBC_(\d+(?:\.\d+)+)", _run("objdump", "-T", path))
    return max(found, key=lambda v: tuple(int(p) for p in v.split(".")))


def _icon(path: Path) -> Path:
    from PIL import Image

    Image.new("RGBA", (256, 256), (30, 90, 160, 255)).save(path)
    return path


def _onedir(where: Path) -> Path:
    """A onedir tree as PyInstaller lays it out, with a tiny real ELF as the executable."""
    onedir = where / "penguins"
    (onedir / "_internal").mkdir(parents=True)
    shutil.copy2("/bin/true", onedir / "penguins")
    (onedir / "_internal" / "base_library.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    (onedir / "mlbundle-manifest.json").write_text("{}\n")
    return onedir


def _build(where: Path, kinds: tuple[str, ...], icon: bool = True, **app: object) -> Path:
    record = RECORD | {"app": APP | app}
    out = where / "installers"
    make_installers(
        _onedir(where), out, kinds=kinds, name="penguins", version="1.0.0", title=TITLE,
        description=DESCRIPTION, record=record, work=where / "work",
        icon=_icon(where / "icon.png") if icon else None,
    )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _need("dpkg-deb", "rpmbuild")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOURCE_DATE_EPOCH", EPOCH)
        return _build(tmp_path_factory.mktemp("linux"), ("deb", "rpm"))


@pytest.fixture(autouse=True)
def _epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)


@pytest.fixture(scope="module")
def deb_root(packages: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("deb-root")
    _run("dpkg-deb", "-x", packages / DEB, root)
    return root


def test_read_elf_finds_the_glibc_versions_objdump_shows(tmp_path: Path) -> None:
    _need("objdump")
    info = read_elf(Path("/bin/true"))
    assert info is not None and not info.shared_library
    assert ".".join(map(str, info.glibc or ())) == _objdump_glibc(Path("/bin/true"))
    (tmp_path / "script").write_text("#!/bin/sh\n")
    assert read_elf(tmp_path / "script") is None
    assert glibc_floor(tmp_path) is None


def test_deb_control_names_the_app_and_depends_on_the_glibc_floor(packages: Path) -> None:
    fields = dict(
        line.split(": ", 1)
        for line in _run("dpkg-deb", "-f", packages / DEB).splitlines()
        if not line.startswith(" ")
    )
    floor = _objdump_glibc(Path("/bin/true"))
    assert fields["Package"] == "penguins" and fields["Version"] == "1.0.0"
    assert fields["Architecture"] == "amd64"
    assert fields["Maintainer"] == "Example Release Manager <release@example.org>"
    assert fields["Homepage"] == "https://example.org/penguins"
    assert fields["Description"] == TITLE
    assert fields["Depends"] == f"libc6 (>= {floor})"
    control = _run("dpkg-deb", "-f", packages / DEB, "Description")
    assert all(len(line) <= 80 for line in control.splitlines())


def test_a_window_that_takes_x_from_the_system_depends_on_it(tmp_path: Path) -> None:
    """Tk bundled without libX11 (the built-in window's freeze): the packages name the X
    libraries it loads from the system; a bundle with its own libX11 names none."""
    _need("dpkg-deb", "rpmbuild")
    onedir = _onedir(tmp_path / "x")
    (onedir / "_internal" / "libtk8.6.so").write_bytes(b"")
    out = tmp_path / "out"
    make_installers(
        onedir, out, kinds=("deb", "rpm"), name="penguins", version="1.0.0", title=TITLE,
        description=DESCRIPTION, record=RECORD, work=tmp_path / "work", icon=None,
    )  # fmt: skip
    floor = _objdump_glibc(Path("/bin/true"))
    depends = _run("dpkg-deb", "-f", out / DEB, "Depends").strip()
    assert depends == ", ".join([f"libc6 (>= {floor})", *X_DEB_DEPENDS])
    requires = _run("rpm", "-qp", "--requires", out / RPM).splitlines()
    assert set(X_RPM_REQUIRES) <= set(requires)
    (onedir / "_internal" / "libX11.so.6").write_bytes(b"")
    make_installers(
        onedir, tmp_path / "own", kinds=("deb",), name="penguins", version="1.0.0",
        title=TITLE, description=DESCRIPTION, record=RECORD, work=tmp_path / "work2", icon=None,
    )  # fmt: skip
    assert _run("dpkg-deb", "-f", tmp_path / "own" / DEB, "Depends").strip() == (
        f"libc6 (>= {floor})"
    )


def test_a_bundle_without_the_cxx_runtime_depends_on_the_systems(tmp_path: Path) -> None:
    """numpy's core (a real C++ extension) bundled without libstdc++ and libgcc_s (the
    built-in app's freeze): the packages name them; with both bundled, neither."""
    _need("dpkg-deb", "rpmbuild")
    onedir = _onedir(tmp_path / "cxx")
    core = next(Path(numpy.__file__).parent.glob("_core/_multiarray_umath*.so"))
    shutil.copy2(core, onedir / "_internal" / core.name)
    out = tmp_path / "out"
    make_installers(
        onedir, out, kinds=("deb", "rpm"), name="penguins", version="1.0.0", title=TITLE,
        description=DESCRIPTION, record=RECORD, work=tmp_path / "work", icon=None,
    )  # fmt: skip
    depends = _run("dpkg-deb", "-f", out / DEB, "Depends").strip().split(", ")
    assert depends[1:] == ["libgcc-s1", "libstdc++6"]
    requires = set(_run("rpm", "-qp", "--requires", out / RPM).splitlines())
    assert {"libstdc++.so.6()(64bit)", "libgcc_s.so.1()(64bit)"} <= requires
    for lib in ("libstdc++.so.6", "libgcc_s.so.1"):
        (onedir / "_internal" / lib).write_bytes(b"")
    make_installers(
        onedir, tmp_path / "own", kinds=("deb",), name="penguins", version="1.0.0",
        title=TITLE, description=DESCRIPTION, record=RECORD, work=tmp_path / "work2", icon=None,
    )  # fmt: skip
    assert ", " not in _run("dpkg-deb", "-f", tmp_path / "own" / DEB, "Depends").strip()


def test_deb_layout_menu_entry_icon_copyright_changelog(deb_root: Path) -> None:
    _need("desktop-file-validate")
    assert (deb_root / "opt/penguins/penguins").stat().st_mode & 0o111
    assert "exec /opt/penguins/penguins" in (deb_root / "usr/bin/penguins").read_text()
    desktop = deb_root / "usr/share/applications/penguins.desktop"
    entry = desktop.read_text()
    for line in ("Exec=penguins window", "Terminal=false", "Icon=penguins", f"Name={TITLE}"):
        assert f"\n{line}\n" in entry
    assert f"\nComment={DESCRIPTION}\n" in entry
    proc = subprocess.run(["desktop-file-validate", str(desktop)], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout == "", proc.stdout + proc.stderr
    icon = deb_root / "usr/share/icons/hicolor/256x256/apps/penguins.png"
    assert icon.read_bytes().startswith(b"\x89PNG")
    doc = deb_root / "usr/share/doc/penguins"
    copyright_ = (doc / "copyright").read_text()
    assert copyright_.startswith(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
    )
    assert "\nFiles: *\nCopyright: 2025 Example Release Manager <release@example.org>\n" in (
        copyright_
    )
    assert "\nLicense: Apache-2.0\n On Debian systems" in copyright_
    raw = (doc / "changelog.gz").read_bytes()
    assert raw[4:8] == bytes(4) and not raw[3] & 0x08  # gzip -n: no time, no name
    changelog = gzip.decompress(raw).decode()
    assert changelog.startswith("penguins (1.0.0) unstable; urgency=medium\n")
    assert "-- Example Release Manager <release@example.org>  Sat, 29 Nov 2025 00:00:00 +0000" in (
        changelog
    )
    overrides = (deb_root / "usr/share/lintian/overrides/penguins").read_text()
    assert [ln for ln in overrides.splitlines() if ln and not ln.startswith("#")] == [
        f"penguins: {tag}" for tag in LINTIAN_OVERRIDES
    ]
    assert (deb_root / "usr/share/man/man1/penguins.1.gz").exists()


def test_lintian_reports_no_errors_on_the_deb(packages: Path) -> None:
    _need("lintian")
    proc = subprocess.run(
        ["lintian", "--fail-on", "error", str(packages / DEB)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not re.search(r"^E:", proc.stdout, re.MULTILINE), proc.stdout


def test_rpm_metadata_files_and_untouched_binaries(packages: Path) -> None:
    rpm = packages / RPM
    info = _run("rpm", "-qip", rpm)
    for field, value in [
        ("Name", "penguins"),
        ("Version", "1.0.0"),
        ("Release", "1"),
        ("Architecture", "x86_64"),
        ("License", "Apache-2.0"),
        ("URL", "https://example.org/penguins"),
        ("Summary", TITLE),
        ("Build Host", "mlbundle"),
    ]:
        assert re.search(rf"^{field}\s*: {re.escape(value)}$", info, re.MULTILINE), field
    assert DESCRIPTION.split()[0] in info.split("Description :", 1)[1]
    files = _run("rpm", "-qlp", rpm).split()
    assert {
        "/opt/penguins",
        "/opt/penguins/penguins",
        "/opt/penguins/_internal/base_library.zip",
        "/usr/bin/penguins",
        "/usr/share/applications/penguins.desktop",
        "/usr/share/icons/hicolor/256x256/apps/penguins.png",
    } <= set(files)
    assert not any("build-id" in f for f in files)
    requires = _run("rpm", "-qp", "--requires", rpm).splitlines()
    assert f"glibc >= {_objdump_glibc(Path('/bin/true'))}" in requires
    assert not [r for r in requires if r.startswith("lib")]  # no automatic Requires
    dump = {
        line.split()[0]: line.split() for line in _run("rpm", "-qp", "--dump", rpm).splitlines()
    }
    exe = dump["/opt/penguins/penguins"]
    assert exe[3] == hashlib.sha256(Path("/bin/true").read_bytes()).hexdigest()  # not stripped
    assert exe[5:7] == ["root", "root"] and exe[2] == EPOCH


def test_deb_and_rpm_are_byte_reproducible(packages: Path, tmp_path: Path) -> None:
    again = _build(tmp_path, ("deb", "rpm"))
    for name in (DEB, RPM):
        assert (again / name).read_bytes() == (packages / name).read_bytes(), name


def test_rpm_keeps_a_percent_sign_in_the_description(tmp_path: Path) -> None:
    _need("rpmbuild")
    text = "Right 95% of the time, %{name} and %(true) stay text."
    out = tmp_path / "installers"
    make_installers(
        _onedir(tmp_path), out, kinds=("rpm",), name="penguins", version="1.0.0",
        title="100% offline", description=text, record=RECORD, work=tmp_path / "work",
    )  # fmt: skip
    info = _run("rpm", "-qip", out / RPM)
    assert "Summary     : 100% offline\n" in info and text in info


def test_without_icon_or_maintainer_the_entry_has_no_icon_line(tmp_path: Path) -> None:
    _need("dpkg-deb")
    out = _build(tmp_path, ("deb",), icon=False, maintainer=None, license=None)
    root = tmp_path / "root"
    _run("dpkg-deb", "-x", out / DEB, root)
    entry = (root / "usr/share/applications/penguins.desktop").read_text()
    assert "Icon=" not in entry and "Exec=penguins window" in entry
    assert not (root / "usr/share/icons").exists()
    assert f"Maintainer: {MAINTAINER_PLACEHOLDER}" in _run("dpkg-deb", "-f", out / DEB)
    copyright_ = (root / "usr/share/doc/penguins/copyright").read_text()
    assert "License: LicenseRef-unset\n" in copyright_


@pytest.mark.frozen
def test_the_example_deb_installs_runs_its_selftest_and_passes_lintian(
    built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _need("dpkg-deb", "lintian")
    installers = built.out / "installers"
    deb = installers / DEB
    root = tmp_path / "root"
    _run("dpkg-deb", "-x", deb, root)
    proc = subprocess.run(
        [str(root / "opt/penguins/penguins"), "selftest"], capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    floor = glibc_floor(root / "opt/penguins")
    # the built-in app takes the X client libraries and the C++ runtime from the system,
    # and says so
    depends = ", ".join([f"libc6 (>= {floor})", *X_DEB_DEPENDS, "libgcc-s1", "libstdc++6"])
    assert _run("dpkg-deb", "-f", deb, "Depends").strip() == depends
    assert (root / "usr/share/applications/penguins.desktop").exists()
    lint = subprocess.run(
        ["lintian", "--fail-on", "error", str(deb)], capture_output=True, text=True, timeout=600
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    sizes = {p.name: p.stat().st_size for p in sorted(installers.iterdir())}
    with capsys.disabled():
        print(f"\nDepends: {depends}")
        for name, size in sizes.items():
            print(f"installer {name}: {size} bytes ({size / 1e6:.1f} MB)")
        print("lintian:\n" + lint.stdout.strip())


def test_a_larger_icon_is_installed_at_256_pixels(tmp_path: Path) -> None:
    from PIL import Image

    _need("dpkg-deb")
    big = tmp_path / "big.png"
    Image.new("RGBA", (512, 512), (200, 40, 40, 255)).save(big)
    out = tmp_path / "installers"
    make_installers(
        _onedir(tmp_path), out, kinds=("deb",), name="penguins", version="1.0.0", title=TITLE,
        description=DESCRIPTION, record=RECORD, work=tmp_path / "work", icon=big,
    )  # fmt: skip
    _run("dpkg-deb", "-x", out / DEB, tmp_path / "root")
    with Image.open(tmp_path / "root/usr/share/icons/hicolor/256x256/apps/penguins.png") as icon:
        assert icon.size == (256, 256)


def test_make_installers_makes_every_kind_with_one_menu_entry(tmp_path: Path) -> None:
    import tarfile

    _need("dpkg-deb", "rpmbuild")
    out = _build(tmp_path, ("tar.gz", "deb", "rpm"))
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["penguins-1.0.0-linux-x86_64.tar.gz", DEB, RPM]
    )
    with tarfile.open(out / "penguins-1.0.0-linux-x86_64.tar.gz") as tar:
        member = tar.extractfile("penguins-1.0.0/penguins.desktop.in")
        assert member is not None
        entry = member.read().decode()
    root = tmp_path / "root"
    _run("dpkg-deb", "-x", out / DEB, root)
    deb_entry = (root / "usr/share/applications/penguins.desktop").read_text()
    same = {"Exec", "Icon"}  # the tarball's install.sh fills in its own paths
    assert [ln for ln in entry.splitlines() if ln.split("=")[0] not in same] == [
        ln for ln in deb_entry.splitlines() if ln.split("=")[0] not in same
    ]


# -- an app that accepts model packs: the pack's MIME type ------------------------------

PACK_TYPE = "application/vnd.mlbundle.pack"


@pytest.fixture(scope="module")
def pack_packages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The .deb and .rpm of an app built with ``[updates]`` (its payload has updates.json)."""
    _need("dpkg-deb", "rpmbuild")
    where = tmp_path_factory.mktemp("linux-packs")
    onedir = _onedir(where)
    payload = onedir / "_internal" / "mlbundle_payload"
    payload.mkdir()
    (payload / "updates.json").write_text('{"public_key": "00", "key_id": "0", "source": null}')
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOURCE_DATE_EPOCH", EPOCH)
        make_installers(
            onedir, where / "installers", kinds=("deb", "rpm"), name="penguins",
            version="1.0.0", title=TITLE, description=DESCRIPTION, record=RECORD,
            work=where / "work", icon=_icon(where / "icon.png"),
        )  # fmt: skip
    return where / "installers"


def test_an_app_accepting_packs_opens_them_from_the_desktop(
    pack_packages: Path, tmp_path: Path
) -> None:
    _need("desktop-file-validate", "update-mime-database")
    root = tmp_path / "root"
    _run("dpkg-deb", "-x", pack_packages / DEB, root)
    desktop = root / "usr/share/applications/penguins.desktop"
    entry = desktop.read_text()
    assert f"\nMimeType={PACK_TYPE};\n" in entry and "\nExec=penguins %f\n" in entry
    proc = subprocess.run(["desktop-file-validate", str(desktop)], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout == "", proc.stdout + proc.stderr
    # the definition, as shared-mime-info compiles it: the glob and the magic line
    mime = tmp_path / "mime"
    (mime / "packages").mkdir(parents=True)
    shutil.copy2(root / "usr/share/mime/packages/penguins.xml", mime / "packages")
    _run("update-mime-database", mime)
    assert f"{PACK_TYPE}:*.mlpack" in (mime / "globs2").read_text()
    assert b"MLPACK " in (mime / "magic").read_bytes()
    assert (mime / "application" / f"{PACK_TYPE.split('/')[1]}.xml").is_file()
    listed = _run("rpm", "-qlp", pack_packages / RPM).split()
    assert "/usr/share/mime/packages/penguins.xml" in listed


def test_a_plain_app_declares_no_pack_type(deb_root: Path) -> None:
    entry = (deb_root / "usr/share/applications/penguins.desktop").read_text()
    assert "MimeType=" not in entry and "%f" not in entry
    assert not (deb_root / "usr/share/mime").exists()


def test_lintian_reports_no_errors_on_the_deb_accepting_packs(pack_packages: Path) -> None:
    _need("lintian")
    proc = subprocess.run(
        ["lintian", "--fail-on", "error", str(pack_packages / DEB)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not re.search(r"^[EW]: .*(mime|desktop)", proc.stdout, re.MULTILINE), proc.stdout
