"""The Ray engine on a real cluster: a head and two worker nodes, each its own `ray start` process with one
CPU, on loopback. The scan on it equals the local engine's; a driver killed with -9 resumes, and a worker
actor killed mid-scan costs only its shard: the results are the same bytes as an uninterrupted Ray scan.

The nodes use 127.0.0.2 (loopback): Ray replaces 127.0.0.1 by the machine's network address. Each node is
started with `ray start --block` in its own session and stopped by its own process id (never `ray stop`,
which would stop every Ray on the machine).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("keras")

from scanhelp import assert_same_tree, cli_env, kill_when, result_tree  # noqa: E402

from convscope.models.zoo.mnist import load_mnist_digits  # noqa: E402
from convscope.present.cli import app, main  # noqa: E402
from convscope.present.cli_scan import register  # noqa: E402
from convscope.scan import load_scan  # noqa: E402
from convscope.scan.checkpoint import checkpoint_dir, read_progress  # noqa: E402

register(app)
HOST = "127.0.0.2"
ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}  # no token on a throw-away loopback cluster
RAY = str(Path(sys.executable).with_name("ray"))
OPTS = ["--batch-size", "16", "--top", "4"]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node(temp: str, port: int, head: bool, log: Path) -> subprocess.Popen:
    args = [RAY, "start", "--block", "--num-cpus=1", f"--node-ip-address={HOST}", "--disable-usage-stats",
            "--object-store-memory=100000000", *(f"--{name}={_port()}" for name in (
                "dashboard-agent-listen-port", "dashboard-agent-grpc-port", "runtime-env-agent-port",
                "metrics-export-port", "node-manager-port", "object-manager-port"))]
    if head:
        args += ["--head", f"--port={port}", "--include-dashboard=false", f"--dashboard-port={_port()}",
                 f"--ray-client-server-port={_port()}", f"--temp-dir={temp}"]
    else:
        args += [f"--address={HOST}:{port}"]
    with log.open("ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True,
                                env={**os.environ, **ENV})


def _session_pids(sessions: set[int], prefix: str = "") -> list[int]:
    """Processes of our nodes' sessions (whose command line starts with ``prefix``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) in sessions and (entry / "cmdline").read_bytes().startswith(prefix.encode()):
                found.append(int(entry.name))
        except (OSError, ProcessLookupError):
            continue
    return found


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    temp = tempfile.mkdtemp(prefix="csray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    log = tmp_path_factory.mktemp("cluster") / "nodes.log"
    port = _port()
    nodes: list[subprocess.Popen] = []
    with pytest.MonkeyPatch.context() as mp:
        for name, value in ENV.items():
            mp.setenv(name, value)
        try:
            deadline = time.monotonic() + 300
            for cpus in (1, 2, 3):  # one node at a time (the head first): a loaded machine starts them in time
                node, tries = _node(temp, port, cpus == 1, log), 1
                nodes.append(node)
                while True:  # the driver in this process (the engine uses it) sees the new node's CPU
                    try:
                        if not ray.is_initialized():
                            ray.init(address=f"{HOST}:{port}", log_to_driver=False)
                        if ray.cluster_resources().get("CPU", 0) >= cpus:
                            break
                    except (ConnectionError, RuntimeError):
                        pass
                    if node.poll() is not None and cpus > 1 and tries < 3:  # its raylet was too slow to register
                        node, tries = _node(temp, port, False, log), tries + 1
                        nodes.append(node)
                    assert time.monotonic() < deadline and (node.poll() is None), log.read_text()[-3000:]
                    time.sleep(0.5)
            assert len([n for n in ray.nodes() if n["Alive"]]) == 3
            yield {"address": f"{HOST}:{port}", "sessions": {n.pid for n in nodes}}
        finally:
            if ray.is_initialized():
                ray.shutdown()
            for node in nodes:
                node.send_signal(signal.SIGTERM)  # `ray start --block` stops its node's processes
            for node in nodes:
                try:
                    node.wait(60)
                except subprocess.TimeoutExpired:
                    node.kill()
            for pid in _session_pids({n.pid for n in nodes}):  # anything left of our nodes, by its id
                os.kill(pid, signal.SIGKILL)
            shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    x, _ = load_mnist_digits()
    path = tmp_path_factory.mktemp("cluster-data") / "digits.npy"
    np.save(path, x[::5])  # 1,000 real digits: 63 batches of 16 = 63 shards
    return path


def test_cluster_equals_local_and_survives_a_killed_driver_and_worker(cluster, digits, tmp_path, caplog):
    address = cluster["address"]
    assert main(["scan", "mnist-cnn", str(digits), "--out", str(tmp_path / "local"), *OPTS]) == 0
    ray_args = ["scan", "mnist-cnn", str(digits), *OPTS, "--engine", "ray", "--address", address]
    assert main([*ray_args, "--out", str(tmp_path / "ray")]) == 0
    local, on_ray = load_scan(tmp_path / "local"), load_scan(tmp_path / "ray")
    for key in ("conv_0", "conv_1"):  # exact fields equal; moments to float rounding of the merge order
        a, b = local[key], on_ray[key]
        for name in ("max", "frac_positive", "top_index", "top_value", "top_pos"):
            np.testing.assert_array_equal(getattr(b, name), getattr(a, name), err_msg=f"{key}.{name}")
        for name, rtol, atol in (("mean", 1e-9, 1e-12), ("std", 1e-9, 1e-12), ("mean_spatial_max", 1e-9, 0),
                                 ("corr", 0, 5e-9)):  # float rounding: the merge order, the threads of a forward pass
            np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=rtol, atol=atol, err_msg=name)
    pictures = {k: v for k, v in result_tree(tmp_path / "local").items() if k.endswith(".png")}
    assert pictures and pictures == {k: v for k, v in result_tree(tmp_path / "ray").items() if k.endswith(".png")}
    np.testing.assert_array_equal(local.predictions.top1, on_ray.predictions.top1)

    out = tmp_path / "resumed"
    log = tmp_path / "driver.txt"
    rows, size = kill_when([*ray_args, "--out", out, "--checkpoint-every", "1", "-v"], checkpoint_dir(out), 0.5,
                           cli_env(**ENV), log)
    assert size // 2 <= rows < size and not out.exists()
    killed: list[int] = []
    stop = threading.Event()

    def kill_a_worker() -> None:  # once the resumed scan has finished a shard: kill one busy actor, by its id
        while not stop.is_set():
            progress = read_progress(checkpoint_dir(out))
            workers = _session_pids(cluster["sessions"], "ray::_Worker")
            if progress is not None and progress[0] > rows and workers:
                os.kill(workers[0], signal.SIGKILL)
                killed.append(workers[0])
                return
            time.sleep(0.01)

    thread = threading.Thread(target=kill_a_worker, daemon=True)
    thread.start()
    try:
        with caplog.at_level(logging.WARNING, logger="convscope.scan.ray_engine"):
            assert main([*ray_args, "--out", str(out), "--checkpoint-every", "1", "--resume"]) == 0
    finally:
        stop.set()
        thread.join()
    assert killed and "Ray worker lost on rows" in caplog.text
    assert_same_tree(out, tmp_path / "ray")
    assert not checkpoint_dir(out).exists()
