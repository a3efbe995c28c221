"""Every eval module imports on its own, in a fresh interpreter: an import cycle only shows when the cycle's
module is the first one imported (eval.protocols <-> eval.benchmarks broke `python bench/learning.py` that way,
while the test session, which had imported eval.benchmarks first, passed)."""
from __future__ import annotations

import os
import pkgutil
import subprocess
import sys

import pytest

import eval

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULES = sorted(f"eval.{m.name}" for m in pkgutil.iter_modules(eval.__path__) if m.name != "__main__")


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_first_in_a_fresh_interpreter(module):
    run = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
