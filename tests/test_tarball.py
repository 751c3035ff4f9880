"""The Linux tarball: install.sh into a prefix, upgrade in place, uninstall to the prefix
as it was, user data kept unless --purge, reproducible bytes.

Built from a small fake onedir tree whose executable is a shell script, so nothing here
is frozen; ``test_frozen_tarball_installs_and_selftests`` runs the real example's.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from bundler.tarball import make_tarball
from tests.conftest import Built

NAME = "demo"
RECORD = {"model": {"version": "2.0.0", "sha256": "ab" * 32}}


def fake_onedir(root: Path, version: str, files: dict[str, str]) -> Path:
    onedir = root / NAME
    (onedir / "_internal").mkdir(parents=True)
    exe = onedir / NAME
    exe.write_text(f'#!/bin/sh\necho "{NAME} {version} $*"\n')
    exe.chmod(0o755)
    for rel, text in files.items():
        (onedir / "_internal" / rel).write_text(text)
    return onedir


def png_icon(path: Path, size: int = 300) -> Path:
    from PIL import Image

    Image.new("RGBA", (size, size), (30, 90, 160, 255)).save(path)
    return path


def build(tmp: Path, version: str, files: dict[str, str], *, icon: Path | None) -> Path:
    work = tmp / f"build-{version}-{len(list(tmp.iterdir()))}"
    work.mkdir()
    onedir = fake_onedir(work, version, files)
    made = make_tarball(
        onedir,
        work / "out",
        name=NAME,
        version=version,
        title="Demo classifier",
        description="Predicts demos.\nTwo lines.",
        record=RECORD,
        icon=icon,
    )
    assert made.kind == "tar.gz" and made.path.name == f"{NAME}-{version}-linux-x86_64.tar.gz"
    assert made.size == made.path.stat().st_size
    with tarfile.open(made.path) as tar:
        tar.extractall(work / "unpacked", filter="tar")
    return work / "unpacked" / f"{NAME}-{version}"


def user_env(tmp: Path) -> dict[str, str]:
    home = tmp / "home"
    (home / "data").mkdir(parents=True, exist_ok=True)
    return dict(
        os.environ,
        HOME=str(home),
        XDG_DATA_HOME=str(home / "data"),
        TMPDIR=str(tmp),
        PATH=os.environ.get("PATH", "/usr/bin:/bin"),
    )


def run(script: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(script), *args], capture_output=True, text=True, env=env, timeout=60
    )


def listing(root: Path) -> list[tuple[str, str]]:
    """Every path under ``root`` with its kind and, for files, a hash of its bytes."""
    found = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            found.append((rel, f"link {os.readlink(path)}"))
        elif path.is_dir():
            found.append((rel, "dir"))
        else:
            found.append((rel, hashlib.sha256(path.read_bytes()).hexdigest()))
    return found


def log_entries(prefix: Path) -> set[str]:
    text = (prefix / "lib" / NAME / "install.log").read_text()
    return {line for line in text.splitlines() if not line.startswith("#")}


@pytest.fixture()
def icon(tmp_path: Path) -> Path:
    return png_icon(tmp_path / "icon.png")


def test_install_upgrade_uninstall_leaves_prefix_as_it_was(tmp_path: Path, icon: Path) -> None:
    env = user_env(tmp_path)
    old = build(tmp_path, "1.0.0", {"common.txt": "1", "old-only.txt": "old"}, icon=icon)
    new = build(tmp_path, "1.1.0", {"common.txt": "2", "new-only.txt": "new"}, icon=icon)
    prefix = tmp_path / "prefix"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / "someone-elses").write_text("#!/bin/sh\n")
    (prefix / "share" / "applications").mkdir(parents=True)
    (prefix / "share" / "applications" / "other.desktop").write_text("[Desktop Entry]\n")
    before = listing(prefix)

    proc = run(old / "install.sh", "--prefix", str(prefix), env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"Installed {NAME} 1.0.0 under {prefix}" in proc.stdout
    assert f"{prefix}/bin is not on your PATH" in proc.stdout
    command = prefix / "bin" / NAME
    out = subprocess.run([str(command), "selftest"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"{NAME} 1.0.0 selftest"
    desktop = prefix / "share" / "applications" / f"{NAME}.desktop"
    text = desktop.read_text()
    assert f"Exec={command} window" in text
    icon_path = prefix / "share/icons/hicolor/256x256/apps" / f"{NAME}.png"
    assert f"Icon={icon_path}" in text
    validate = shutil.which("desktop-file-validate")
    if validate:
        check = subprocess.run([validate, str(desktop)], capture_output=True, text=True)
        assert check.returncode == 0 and not check.stdout.strip(), check.stdout + check.stderr
    from PIL import Image

    with Image.open(icon_path) as img:
        assert img.format == "PNG" and img.size == (256, 256)
    entries = log_entries(prefix)
    assert {
        f"f lib/{NAME}/_internal/old-only.txt",
        f"f bin/{NAME}",
        f"f share/applications/{NAME}.desktop",
        f"f share/icons/hicolor/256x256/apps/{NAME}.png",
        "d share/icons",
        f"d lib/{NAME}",
    } <= entries
    assert "d bin" not in entries and "d share/applications" not in entries  # they were there

    proc = run(new / "install.sh", "--prefix", str(prefix), env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"Upgraded {NAME} 1.0.0 to 1.1.0 under {prefix}" in proc.stdout
    out = subprocess.run([str(command)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"{NAME} 1.1.0"
    app = prefix / "lib" / NAME
    assert not (app / "_internal" / "old-only.txt").exists()
    assert (app / "_internal" / "new-only.txt").read_text() == "new"
    assert (app / "_internal" / "common.txt").read_text() == "2"
    entries = log_entries(prefix)
    assert f"f lib/{NAME}/_internal/new-only.txt" in entries
    assert f"f lib/{NAME}/_internal/old-only.txt" not in entries
    assert "d share/icons" in entries  # the first install's folders stay recorded
    assert "# version 1.1.0" in (app / "install.log").read_text()
    assert not [p for p in (prefix / "lib").iterdir() if p.name != NAME]  # no temp folder

    # an older version over the newer one is refused, nothing touched
    during = listing(prefix)
    proc = run(old / "install.sh", "--prefix", str(prefix), env=env)
    assert proc.returncode == 1 and "newer than this 1.0.0" in proc.stderr
    assert listing(prefix) == during

    data = Path(env["XDG_DATA_HOME"]) / NAME
    (data / "models").mkdir(parents=True)
    (data / "models" / "update.json").write_text("{}")
    (data / "logs").mkdir()
    (data / "logs" / "app.log").write_text("ran\n")
    # the installed copy of uninstall.sh finds its own prefix
    proc = run(app / "uninstall.sh", env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"kept your data: {data}" in proc.stdout
    assert listing(prefix) == before
    assert (data / "models" / "update.json").read_text() == "{}"
    assert (data / "logs" / "app.log").is_file()

    proc = run(new / "uninstall.sh", "--prefix", str(prefix), env=env)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"uninstall.sh: {NAME} is not installed under {prefix} (no "
        f"{prefix}/lib/{NAME}/install.log); pass the --prefix it was installed with"
    )


def test_purge_and_a_new_prefix_with_a_space(tmp_path: Path, icon: Path) -> None:
    env = user_env(tmp_path)
    unpacked = build(tmp_path, "1.0.0", {"a.txt": "a"}, icon=icon)
    prefix = tmp_path / "my apps" / "prefix"  # nothing there yet: made, then removed again
    proc = run(unpacked / "install.sh", f"--prefix={prefix}", env=env)
    assert proc.returncode == 0, proc.stderr
    desktop = prefix / "share" / "applications" / f"{NAME}.desktop"
    assert f'Exec="{prefix}/bin/{NAME}" window' in desktop.read_text()
    validate = shutil.which("desktop-file-validate")
    if validate:
        check = subprocess.run([validate, str(desktop)], capture_output=True, text=True)
        assert check.returncode == 0 and not check.stdout.strip(), check.stdout
    out = subprocess.run([str(prefix / "bin" / NAME)], capture_output=True, text=True)
    assert out.stdout.strip() == f"{NAME} 1.0.0"
    data = Path(env["XDG_DATA_HOME"]) / NAME / "models"
    data.mkdir(parents=True)
    (data / "update.json").write_text("{}")
    proc = run(unpacked / "uninstall.sh", "--prefix", str(prefix), "--purge", env=env)
    assert proc.returncode == 0, proc.stderr
    assert not prefix.exists() and (tmp_path / "my apps").is_dir()
    assert not data.parent.exists()


def test_default_prefix_is_home_local_without_icon(tmp_path: Path) -> None:
    env = user_env(tmp_path)
    unpacked = build(tmp_path, "1.0.0", {"a.txt": "a"}, icon=None)
    local = Path(env["HOME"]) / ".local"
    env["PATH"] = f"{local}/bin:{env['PATH']}"
    proc = run(unpacked / "install.sh", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "not on your PATH" not in proc.stdout
    assert (local / "bin" / NAME).is_file()
    assert "Icon=" not in (local / "share/applications" / f"{NAME}.desktop").read_text()
    assert not (local / "share" / "icons").exists()
    proc = run(unpacked / "uninstall.sh", env=env)
    assert proc.returncode == 0, proc.stderr
    assert not local.exists()


def test_bad_options_exit_2_with_one_line(tmp_path: Path) -> None:
    env = user_env(tmp_path)
    unpacked = build(tmp_path, "1.0.0", {"a.txt": "a"}, icon=None)
    for script in ("install.sh", "uninstall.sh"):
        proc = run(unpacked / script, "--bogus", env=env)
        assert proc.returncode == 2
        assert proc.stderr == f"{script}: unknown option: --bogus (see --help)\n"
        proc = run(unpacked / script, "--prefix", env=env)
        assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1
        proc = run(unpacked / script, "--help", env=env)
        assert proc.returncode == 0 and proc.stdout.startswith(f"usage: sh {script}")
    proc = run(unpacked / "install.sh", "--prefix", str(tmp_path / "a$b"), env=env)
    assert proc.returncode == 2 and "may not contain" in proc.stderr


def test_scripts_are_shellcheck_clean(tmp_path: Path) -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    unpacked = build(tmp_path, "1.0.0", {"a.txt": "a"}, icon=None)
    proc = subprocess.run(
        [shellcheck, "--shell=sh", str(unpacked / "install.sh"), str(unpacked / "uninstall.sh")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout


def test_tarball_is_reproducible(
    tmp_path: Path, icon: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1764374400")
    digests = []
    for run_no in range(2):
        work = tmp_path / str(run_no)
        work.mkdir()
        onedir = fake_onedir(work, "1.0.0", {"a.txt": "a", "b.txt": "b"})
        os.utime(onedir / NAME, (1000 + run_no, 1000 + run_no))
        made = make_tarball(
            onedir,
            work / "out",
            name=NAME,
            version="1.0.0",
            title="Demo classifier",
            description="Predicts demos.",
            record=RECORD,
            icon=icon,
        )
        digests.append(hashlib.sha256(made.path.read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    with tarfile.open(made.path) as tar:
        members = tar.getmembers()
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {
        (0, 0, "root", "root", 1764374400)
    }
    names = [m.name for m in members]
    top = f"{NAME}-1.0.0"
    assert names[:2] == [top, f"{top}/app"]
    assert {f"{top}/install.sh", f"{top}/uninstall.sh", f"{top}/{NAME}.png"} <= set(names)
    assert f"{top}/{NAME}.desktop.in" in names and f"{top}/app/{NAME}" in names


@pytest.mark.frozen
def test_frozen_tarball_installs_and_selftests(built: Built, tmp_path: Path) -> None:
    tarball = built.out / "installers" / "penguins-1.0.0-linux-x86_64.tar.gz"
    with tarfile.open(tarball) as tar:
        tar.extractall(tmp_path / "unpacked", filter="tar")
    unpacked = tmp_path / "unpacked" / "penguins-1.0.0"
    assert (unpacked / "install.sh").is_file(), "the build's tarball has no install.sh"
    env = user_env(tmp_path)
    prefix = tmp_path / "prefix"
    prefix.mkdir()
    before = listing(prefix)
    proc = run(unpacked / "install.sh", "--prefix", str(prefix), env=env)
    assert proc.returncode == 0, proc.stderr
    selftest = subprocess.run(
        [str(prefix / "bin" / "penguins"), "selftest"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert selftest.returncode == 0, selftest.stdout + selftest.stderr
    desktop = prefix / "share" / "applications" / "penguins.desktop"
    # the shared build accepts model packs: a pack the user opens is passed to the app
    assert f"\nExec={prefix}/bin/penguins %f\n" in desktop.read_text()
    validate = shutil.which("desktop-file-validate")
    if validate:
        check = subprocess.run([validate, str(desktop)], capture_output=True, text=True)
        assert check.returncode == 0 and not check.stdout.strip(), check.stdout
    proc = run(prefix / "lib" / "penguins" / "uninstall.sh", env=env)
    assert proc.returncode == 0, proc.stderr
    assert listing(prefix) == before


# -- an app that accepts model packs: the pack's MIME type ------------------------------

PACK_TYPE = "application/vnd.mlbundle.pack"


def build_accepting_packs(tmp: Path) -> Path:
    """The tarball of an app built with ``[updates]`` (its payload has updates.json)."""
    work = tmp / "build-packs"
    work.mkdir()
    onedir = fake_onedir(work, "1.0.0", {})
    (onedir / "_internal" / "mlbundle_payload").mkdir()
    (onedir / "_internal" / "mlbundle_payload" / "updates.json").write_text("{}")
    made = make_tarball(
        onedir, work / "out", name=NAME, version="1.0.0", title="Demo classifier",
        description="Predicts demos.", record=RECORD, icon=None,
    )  # fmt: skip
    with tarfile.open(made.path) as tar:
        tar.extractall(work / "unpacked", filter="tar")
    return work / "unpacked" / f"{NAME}-1.0.0"


def test_pack_type_is_installed_and_uninstalled_with_the_app(tmp_path: Path) -> None:
    env = user_env(tmp_path)
    unpacked = build_accepting_packs(tmp_path)
    prefix = tmp_path / "prefix"
    prefix.mkdir()
    before = listing(prefix)
    proc = run(unpacked / "install.sh", "--prefix", str(prefix), env=env)
    assert proc.returncode == 0, proc.stderr
    desktop = (prefix / "share" / "applications" / f"{NAME}.desktop").read_text()
    assert f"\nMimeType={PACK_TYPE};\n" in desktop
    assert f"\nExec={prefix}/bin/{NAME} %f\n" in desktop
    xml = prefix / "share" / "mime" / "packages" / f"{NAME}.xml"
    assert '<glob pattern="*.mlpack"/>' in xml.read_text()
    assert f"f share/mime/packages/{NAME}.xml" in log_entries(prefix)
    if shutil.which("update-mime-database"):  # the desktop's database now knows the type
        assert f"{PACK_TYPE}:*.mlpack" in (prefix / "share" / "mime" / "globs2").read_text()
    proc = run(prefix / "lib" / NAME / "uninstall.sh", env=env)
    assert proc.returncode == 0, proc.stderr
    assert listing(prefix) == before  # the generated database went with the definition


def test_uninstall_keeps_another_apps_pack_type(tmp_path: Path) -> None:
    env = user_env(tmp_path)
    unpacked = build_accepting_packs(tmp_path)
    prefix = tmp_path / "prefix"
    other = prefix / "share" / "mime" / "packages" / "other.xml"
    other.parent.mkdir(parents=True)
    other.write_text((unpacked / f"{NAME}.xml").read_text())  # another app, the same type
    assert run(unpacked / "install.sh", "--prefix", str(prefix), env=env).returncode == 0
    proc = run(prefix / "lib" / NAME / "uninstall.sh", env=env)
    assert proc.returncode == 0, proc.stderr
    assert other.is_file() and not (other.parent / f"{NAME}.xml").exists()
    if shutil.which("update-mime-database"):  # regenerated from the other app's definition
        assert f"{PACK_TYPE}:*.mlpack" in (prefix / "share" / "mime" / "globs2").read_text()
