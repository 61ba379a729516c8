"""Entry points (issue 14): `tf-ada --version`; the reproduce scripts run as modules
(`python -m reproduce.table1`) with no `sys.path` edits, and as files through the installed package."""
import importlib.metadata
import os
import subprocess
import sys

import pytest

import tf_ada
from tf_ada import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(args, cwd):
    proc = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_version(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"tf-ada {tf_ada.__version__}"
    assert tf_ada.__version__ == importlib.metadata.version("tf-ada")  # the package and setup.cfg agree
    assert run(["-m", "tf_ada.cli", "--version"], ROOT).strip() == f"tf-ada {tf_ada.__version__}"


@pytest.mark.parametrize("name", ["table1", "table2", "figure2", "demo"])
def test_reproduce_scripts_run_as_modules_without_sys_path_edits(name):
    with open(os.path.join(ROOT, "reproduce", f"{name}.py")) as f:
        assert "sys.path" not in f.read()
    assert "usage:" in run(["-m", f"reproduce.{name}", "--help"], ROOT)


def test_reproduce_script_runs_as_a_file_from_anywhere(tmp_path):
    """`python reproduce/table1.py` finds `reproduce` and `tf_ada` through the installed package."""
    assert "usage:" in run([os.path.join(ROOT, "reproduce", "table1.py"), "--help"], str(tmp_path))
