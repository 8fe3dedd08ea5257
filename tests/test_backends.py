"""Run the probe tests under the JAX and torch backends too (a Keras backend is fixed per process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_probe_suite_on_backend(backend: str) -> None:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", str(HERE / "probe")],
        env=env, capture_output=True, text=True, timeout=900,
    )
    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
    assert proc.returncode == 0, f"probe tests failed on {backend}:\n{tail}"
    assert " passed" in proc.stdout and "skipped" not in proc.stdout, tail
