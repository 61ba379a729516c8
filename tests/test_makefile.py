"""`make system-deps` on a fresh machine: only the missing packages are requested, through a fake
`apt-get`, with a PATH that holds only the tools a case says are installed."""
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAKE = shutil.which("make")
pytestmark = pytest.mark.skipif(MAKE is None, reason="make is not installed")

FAKE_APT = """#!/bin/sh
echo "$@" >> "{log}"
case "$1" in
  update) exit 0 ;;
  install) for pkg in "$@"; do
             case " {fail} " in
               *" $pkg "*) echo "E: Unable to correct problems, you have held broken packages."; exit 100 ;;
             esac
           done; exit 0 ;;
esac
"""
FAKE_LDCONFIG = """#!/bin/sh
echo "{libs}"
"""


def run_system_deps(tmp_path, tools=(), lame=False, fail=(), root=True):
    """Runs `make system-deps` with only `tools` on the PATH; returns (completed process, apt-get calls)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for util in ("grep", "tail"):  # what the recipe runs besides the tools under test
        os.symlink(shutil.which(util), bin_dir / util)
    for tool in tools:
        (bin_dir / tool).write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / tool).chmod(0o755)
    log = tmp_path / "apt.log"
    log.write_text("")
    apt = tmp_path / "apt-get"
    apt.write_text(FAKE_APT.format(log=log, fail=" ".join(fail)))
    ldconfig = tmp_path / "ldconfig"
    libs = "libmp3lame.so.0 (libc6,x86-64) => /lib/libmp3lame.so.0" if lame else ""
    ldconfig.write_text(FAKE_LDCONFIG.format(libs=libs))
    for script in (apt, ldconfig):
        script.chmod(0o755)
    proc = subprocess.run([MAKE, "-s", "-C", ROOT, "system-deps", f"APT_GET={apt}", f"LDCONFIG={ldconfig}",
                           f"IS_ROOT={'yes' if root else 'no'}"],
                          env={"PATH": str(bin_dir), "HOME": str(tmp_path)}, capture_output=True, text=True)
    calls = [line.split() for line in log.read_text().splitlines()]
    return proc, calls


def installed(calls):
    return [c[-1] for c in calls if c[0] == "install"]


def test_requests_exactly_the_missing_packages(tmp_path):
    proc, calls = run_system_deps(tmp_path, tools=("npm",), lame=True)
    assert proc.returncode == 0, proc.stderr
    assert installed(calls) == ["fluidsynth", "sox", "chromium"]
    assert "npm" not in installed(calls)  # npm from another packager (NodeSource) conflicts with apt's


def test_missing_library_is_requested(tmp_path):
    proc, calls = run_system_deps(tmp_path, tools=("npm", "fluidsynth", "sox", "chromium"), lame=False)
    assert proc.returncode == 0, proc.stderr
    assert installed(calls) == ["libmp3lame0"]


def test_chromium_is_requested_when_missing(tmp_path):
    """The report pages' test opens them in headless Chromium (Debian's `chromium`), so make test installs it."""
    proc, calls = run_system_deps(tmp_path, tools=("npm", "fluidsynth", "sox"), lame=True)
    assert proc.returncode == 0, proc.stderr
    assert installed(calls) == ["chromium"]


def test_nothing_requested_when_nothing_is_missing(tmp_path):
    proc, calls = run_system_deps(tmp_path, tools=("npm", "fluidsynth", "sox", "chromium"), lame=True)
    assert proc.returncode == 0, proc.stderr
    assert calls == []
    assert proc.stdout == ""


def test_failing_package_gives_one_clear_line(tmp_path):
    proc, calls = run_system_deps(tmp_path, tools=("npm", "chromium"), lame=True, fail=("sox",))
    assert proc.returncode != 0
    assert ["update", "-qq"] in calls  # the lists were refreshed once before giving up
    assert installed(calls) == ["fluidsynth", "sox", "sox"]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("system-deps")]
    assert len(errors) == 1  # make adds its own "Error 1" line after it
    assert "could not install sox" in errors[0]
    assert "sudo apt-get install -y sox" in errors[0]
    assert "held broken packages" in errors[0]


def test_not_root_prints_the_command_and_installs_nothing(tmp_path):
    proc, calls = run_system_deps(tmp_path, tools=("npm",), lame=True, root=False)
    assert proc.returncode == 0, proc.stderr
    assert calls == []
    assert "sudo apt-get install -y fluidsynth sox chromium" in proc.stdout
