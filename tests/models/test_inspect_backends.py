"""inspect_model on the JAX and torch backends (each in its own subprocess, run side by side).

Opt-in, because starting two more Keras processes takes 15-40 s: run with ``-m backends`` or with
``CONVSCOPE_TEST_BACKENDS=1``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

SCRIPT = """
import sys
sys.path.insert(0, {here!r})
import keras
import test_inspect_rf as rf
import test_inspect_table as table
from convscope.models.inspect import inspect_model

assert keras.backend.backend() == {backend!r}, keras.backend.backend()
for make in (table.nested_model, table.shared_layer_model):
    model = make()
    before = table._snapshot(model)
    info = inspect_model(model)
    table._assert_unchanged(model, before)
    table._check_common(model, info)
table.test_subclassed_model()
for name in ("conv4-same-stride2-odd", "chain-3"):
    rf.test_field_matches_influence(name)
rf.test_residual_branch()
print("ok")
"""


def test_jax_and_torch_backends(request: pytest.FixtureRequest) -> None:
    wanted = "backends" in (request.config.getoption("markexpr", "") or "")
    if not (wanted or os.environ.get("CONVSCOPE_TEST_BACKENDS") == "1"):
        pytest.skip("backend subprocess test is opt-in: use -m backends or CONVSCOPE_TEST_BACKENDS=1")
    backends = [b for b in ("jax", "torch") if importlib.util.find_spec(b) is not None]
    if not backends:
        pytest.skip("neither jax nor torch is installed")
    procs = {}
    for backend in backends:
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        code = SCRIPT.format(here=str(HERE), backend=backend)
        procs[backend] = subprocess.Popen(
            [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    for backend, proc in procs.items():
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0 and out.strip().endswith("ok"), f"{backend}:\n{out}\n{err[-3000:]}"


pytestmark = pytest.mark.backends
