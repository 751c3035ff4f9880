"""An interrupted build loses nothing and shows no traceback.

SIGINT (Ctrl-C) and SIGTERM during ``bundle build`` end it with one line on stderr and
exit 130 or 143, the published folder as it was, no staging or temporary folder left
and no child process (PyInstaller) still running; a staging folder left by a build
killed outright is removed by the next build. The frozen tests run the real CLI in its
own session and interrupt it as soon as PyInstaller runs; the others check the rules
(``clear_stale``, ``deferred_signals``, ``stop_children``) in this process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from bundler.build import clear_stale, deferred_signals, owner_tag, stop_children
from tests.conftest import BUNDLE, EPOCH, ROOT, SPEC

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")

HOST = owner_tag().split("@")[1]


def start(*args: str) -> subprocess.Popen[str]:
    """The real ``bundle`` CLI, as ``run_bundle`` runs it, in a session of its own."""
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1", SOURCE_DATE_EPOCH=EPOCH)
    return subprocess.Popen(
        [*BUNDLE, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )


def session(sid: int) -> dict[int, str]:
    """pid -> command line of each live (not zombie) process in session ``sid``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == sid and fields[0] not in "ZX":
            found[int(entry.name)] = cmdline
    return found


def wait_for(what: str, ready, proc: subprocess.Popen[str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"bundle exited {proc.returncode} before {what}:\n{out}\n{err}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"no {what} within {timeout:g} s")
        time.sleep(0.05)


def staging_folders(out: Path) -> list[Path]:
    return sorted(out.glob(".penguins.staging-*")) if out.exists() else []


def pyinstaller_running(proc: subprocess.Popen[str]) -> bool:
    return any("PyInstaller" in cmd for cmd in session(proc.pid).values())


def interrupt_while_freezing(out: Path, sig: int, *, group: bool) -> tuple[int, str, int]:
    """Start a build into ``out``, send ``sig`` once PyInstaller runs in its staging
    folder (to the whole process group, as a terminal's Ctrl-C, or to bundle alone);
    return its exit code, stderr and pid, once nothing of the build runs any more."""
    proc = start("build", str(SPEC), "--output-dir", str(out))
    wait_for("staging folder", lambda: staging_folders(out), proc)
    wait_for("PyInstaller process", lambda: pyinstaller_running(proc), proc)
    (os.killpg if group else os.kill)(proc.pid, sig)
    try:
        _out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    left = session(proc.pid)  # at once: bundle stopped them before it exited
    if left:
        os.killpg(proc.pid, signal.SIGKILL)
    assert not left, f"still running after bundle exited: {left}"
    return proc.returncode, err, proc.pid


def assert_one_line(err: str, *words: str) -> None:
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("bundle: interrupted"), err
    for word in words:
        assert word in lines[0], err


def no_temporary_folders(out: Path, pid: int) -> None:
    """Neither the staging folder nor the prepare stage's work folder of build ``pid``."""
    assert staging_folders(out) == [], list(out.iterdir())
    assert not list(out.glob(".penguins.old-*"))
    work = list(Path(tempfile.gettempdir()).glob(f"mlbundle-prepare-penguins.{pid}@*"))
    assert work == []


@pytest.mark.frozen
def test_sigterm_while_freezing_leaves_the_published_folder_as_it_was(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    published = out / "penguins"
    published.mkdir(parents=True)
    (published / "marker").write_text("the previous build\n")
    code, err, pid = interrupt_while_freezing(out, signal.SIGTERM, group=False)
    assert code == 143, err
    assert_one_line(err, "SIGTERM", f"{published} was left as it was")
    assert sorted(p.name for p in published.iterdir()) == ["marker"]
    assert (published / "marker").read_text() == "the previous build\n"
    assert sorted(p.name for p in out.iterdir()) == ["penguins"]
    no_temporary_folders(out, pid)


@pytest.mark.frozen
def test_ctrl_c_while_freezing_publishes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    code, err, pid = interrupt_while_freezing(out, signal.SIGINT, group=True)
    assert code == 130, err
    assert_one_line(err, "SIGINT", "nothing was published")
    assert not (out / "penguins").exists()
    no_temporary_folders(out, pid)


@pytest.mark.frozen
def test_sigint_to_bundle_alone_stops_pyinstaller_too(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    code, err, pid = interrupt_while_freezing(out, signal.SIGINT, group=False)
    assert code == 130, err
    assert_one_line(err, "SIGINT")
    assert not (out / "penguins").exists()
    no_temporary_folders(out, pid)


@pytest.mark.frozen
def test_next_build_clears_the_staging_folder_of_a_killed_build(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    killed = start("build", str(SPEC), "--output-dir", str(out))
    wait_for("staging folder", lambda: staging_folders(out), killed)
    os.killpg(killed.pid, signal.SIGKILL)  # power loss: no clean-up at all
    killed.communicate()
    (stale,) = staging_folders(out)
    assert stale.name.startswith(f".penguins.staging-{killed.pid}@{HOST}-")
    # a concurrent build's folder (its owner, this test, runs) and another app's stay
    live = out / f".penguins.staging-{os.getpid()}@{HOST}-live"
    other = out / f".fieldreport.staging-{killed.pid}@{HOST}-other"
    for folder in (live, other):
        folder.mkdir()
        (folder / "marker").write_text("kept\n")

    proc = start("build", str(SPEC), "--output-dir", str(out))
    wait_for("stale folder removed", lambda: not stale.exists(), proc)
    os.kill(proc.pid, signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert_one_line(err, "SIGTERM")
    assert (live / "marker").is_file() and (other / "marker").is_file()
    assert staging_folders(out) == [live]
    assert not session(proc.pid)


def test_prepare_interrupted_leaves_the_payload_as_it_was(tmp_path: Path) -> None:
    """``bundle prepare`` freezes nothing; its work folder sits beside ``--out``."""
    payload = tmp_path / "payload"
    payload.mkdir()
    (payload / "bundle.json").write_text("{}\n")
    proc = start("prepare", str(SPEC), "--out", str(payload))
    wait_for("work folder", lambda: list(tmp_path.glob(".payload.prepare-*")), proc)
    os.kill(proc.pid, signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert_one_line(err, "SIGTERM", f"{payload} was left as it was")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["payload"]
    assert [p.name for p in payload.iterdir()] == ["bundle.json"]
    assert not session(proc.pid)


# -- the rules, in this process -----------------------------------------------------------


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_clear_stale_removes_only_folders_whose_owner_is_gone(tmp_path: Path) -> None:
    gone = dead_pid()
    names = {
        "stale": f".penguins.staging-{gone}@{HOST}-abc_123",
        "running": f".penguins.staging-{os.getpid()}@{HOST}-def456",
        "parent": f".penguins.staging-{os.getppid()}@{HOST}-ghi789",
        "other host": f".penguins.staging-{gone}@elsewhere.example-jkl",
        "not ours": ".penguins.staging-notapid",
        "other app": f".penguins2.staging-{gone}@{HOST}-mno",
    }
    for name in names.values():
        (tmp_path / name).mkdir()
        (tmp_path / name / "file").write_text("x")
    cleared = clear_stale(tmp_path, ".penguins.staging-")
    assert cleared == [tmp_path / names["stale"]]
    left = {p.name for p in tmp_path.iterdir()}
    assert left == set(names.values()) - {names["stale"]}


def test_clear_stale_puts_back_an_output_set_aside_by_a_killed_publish(tmp_path: Path) -> None:
    gone = dead_pid()
    target = tmp_path / "penguins"
    aside = tmp_path / f".penguins.old-{gone}@{HOST}"
    aside.mkdir()
    (aside / "marker").write_text("previous\n")
    assert clear_stale(tmp_path, ".penguins.old-", restore=target) == [aside]
    assert (target / "marker").read_text() == "previous\n" and not aside.exists()
    # with the output in place, a set-aside copy is only removed
    aside.mkdir()
    assert clear_stale(tmp_path, ".penguins.old-", restore=target) == [aside]
    assert not aside.exists() and (target / "marker").is_file()


def test_deferred_signals_hold_sigterm_until_the_block_ends() -> None:
    class Stopped(Exception):
        pass

    def stop(_signum: int, _frame: object) -> None:
        raise Stopped

    before = signal.signal(signal.SIGTERM, stop)
    steps = []
    try:
        with pytest.raises(Stopped), deferred_signals():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
            steps.append("after the signal")
        assert steps == ["after the signal"]
        assert signal.getsignal(signal.SIGTERM) is stop
    finally:
        signal.signal(signal.SIGTERM, before)


def test_stop_children_stops_the_tree_started_since(tmp_path: Path) -> None:
    from bundler.build import _children, _process_table

    before = _children(os.getpid(), _process_table())
    pidfile = tmp_path / "grandchild"
    child = subprocess.Popen(
        ["sh", "-c", f"sleep 60 & echo $! > {pidfile}; wait"], stdin=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 10
    while not (pidfile.exists() and pidfile.read_text().strip()):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    grandchild = int(pidfile.read_text())
    stopped = stop_children(exclude=before)
    assert child.pid in stopped and grandchild in stopped
    time.sleep(0.1)
    assert not Path(f"/proc/{child.pid}").exists()  # reaped, not a zombie
    stat = Path(f"/proc/{grandchild}/stat")
    assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] in "ZX"
