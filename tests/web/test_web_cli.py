"""``convscope serve``: registration, light imports, one-line errors, and a real run that prints its URL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
import typer

from convscope.present.cli import app, main
from convscope.present.cli_serve import register, serve

register(app)  # the lead wires this into cli.py; doing it again must be harmless


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_register_adds_serve_once():
    fresh = typer.Typer()
    register(fresh)
    register(fresh)
    register(app)
    assert [c.name for c in fresh.registered_commands] == ["serve"]
    assert sum(c.name == "serve" or c.callback is serve for c in app.registered_commands) == 1


def test_serve_help_lists_the_options(capsys):
    code, out, _ = run(capsys, "serve", "--help")
    assert code == 0
    for option in ("--images", "--host", "--port", "--max-upload-mb", "--max-pixels", "--labels"):
        assert option in out
    assert "127.0.0.1" in out and "8050" in out


def test_help_stays_light():
    code = (
        "import sys\n"
        "from convscope.present.cli import app, main\n"
        "from convscope.present.cli_serve import register\n"
        "register(app)\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'starlette', 'uvicorn', 'fastapi', 'jax', 'torch') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    assert "serve" in out and "HEAVY []" in out, out


@pytest.mark.parametrize(("args", "words"), [
    (["--images", "/no/such/folder"], "--images '/no/such/folder' is not a folder"),
    (["--port", "70000"], "--port 70000 is not a TCP port"),
    (["--max-upload-mb", "0"], "must be positive"),
    (["--host", "no.such.host.invalid"], "cannot be resolved"),
])
def test_bad_options_fail_in_one_line(capsys, args, words):
    code, out, err = run(capsys, "serve", *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("convscope: error: ") and words in err, err


def test_a_busy_port_fails_in_one_line(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        code, _, err = run(capsys, "serve", "--port", str(port))
    assert code == 2 and f"port {port} on 127.0.0.1 is already in use" in err and err.count("\n") == 1


def test_serve_prints_its_url_and_serves_until_interrupted(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "convscope.present.web", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()  # blocks until the model is loaded and the socket bound
        assert line.startswith("convscope: exploring mnist-cnn (16 images) at http://127.0.0.1:"), line
        url = line.split(" at ")[1].split()[0]
        deadline = time.monotonic() + 30
        while True:
            try:
                body = httpx.get(url + "api/model", timeout=10).json()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert body["title"] == "mnist-cnn"
        assert httpx.get(url + "api/grid.png", params={"image": "s1", "layer": "conv_0"}).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, proc.stderr.read()[-2000:]
