"""The code base stays ruff clean (the rules live in pyproject.toml)."""

import os
import shutil
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_ruff_clean():
    ruff = shutil.which('ruff')
    assert ruff, 'ruff is part of the test extra: pip install -e .[test]'
    proc = subprocess.run([ruff, 'check', REPO], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
