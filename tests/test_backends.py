"""Run the backend-dependent tests under JAX and torch too (a Keras backend is fixed per process).

That is the probe suite, the attribution suite (its ``tf_only`` tests are deselected there) and the
layer-table and receptive-field tests of ``inspect_model``; the arithmetic tests (``test_inspect_arith.py``)
are pure Python and backend-independent.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
SUITES = [HERE / "probe", HERE / "models" / "test_inspect_table.py", HERE / "models" / "test_inspect_rf.py",
          HERE / "attribution", HERE / "featvis"]


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_suites_on_backend(backend: str) -> None:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", *map(str, SUITES)],
        env=env, capture_output=True, text=True, timeout=900,
    )
    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
    assert proc.returncode == 0, f"tests failed on {backend}:\n{tail}"
    assert " passed" in proc.stdout and "skipped" not in proc.stdout, tail
