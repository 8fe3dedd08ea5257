"""The README's shell blocks run as written, in order, in an empty folder.

Every line of every ```bash block is one command. How each is checked:

* ``pip ...`` and ``make ...`` lines: shell syntax only (``bash -n``), and every extra a ``pip install``
  names exists in pyproject.toml (the test environment already has them installed);
* a line marked ``# (long-running)`` (a server): started with ``--port 0``, run until it prints its URL,
  that URL is fetched (HTTP 200), then it is stopped with Ctrl+C;
* a line marked ``# (needs a Ray cluster)``: parsed by the real command (every option exists, every value
  passes the checks that need no model), not run;
* a plain ``convscope ...`` line (no shell syntax) goes, split as the shell splits it, through the CLI's
  ``main()`` in this process (one TensorFlow import for all: a new interpreter per line costs minutes on
  a busy 2-core machine), and must return 0 without a traceback;
* every other line runs with bash (``convscope`` and ``python`` are this interpreter with this source
  tree), ``convscope inspect`` among them so the console path is exercised once, and must exit 0 without a
  traceback; a ``convscope`` line also without TensorFlow's start-up notices.

Nothing is skipped silently: a marker this test does not know fails it.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
LONG_RUNNING = "# (long-running)"
NEEDS_RAY = "# (needs a Ray cluster)"
MARKER = re.compile(r"#\s*\((?:[^)]*)\)")
NOISE = ("absl::InitializeLog", "oneDNN custom operations", "cpu_feature_guard", "rebuild TensorFlow",
         "This TensorFlow binary is optimized")

pytestmark = pytest.mark.xdist_group("readme")


def readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def test_the_readme_has_the_commands_it_should():
    lines = readme_commands()
    assert any(line.startswith("convscope samples") for line in lines)
    assert {"inspect", "maps", "samples", "demo", "cam", "filters", "maximize", "serve", "scan", "report"} <= {
        shlex.split(line, comments=True)[1] for line in lines if line.startswith("convscope ")}
    for line in lines:
        for marker in MARKER.findall(line):
            assert marker in (LONG_RUNNING, NEEDS_RAY), f"unknown marker {marker!r} in: {line}"


@pytest.fixture(scope="module")
def shell(tmp_path_factory) -> dict[str, str]:
    """An environment whose ``convscope`` and ``python`` are this interpreter on this source tree."""
    bin_dir = tmp_path_factory.mktemp("bin")
    for name, body in (("convscope", f'exec "{sys.executable}" -m convscope "$@"'),
                       ("python", f'exec "{sys.executable}" "$@"')):
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "KERAS_BACKEND")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT / "src")
    return env


def check_syntax_and_extras(line: str) -> None:
    proc = subprocess.run(["bash", "-n", "-c", line], capture_output=True, text=True)
    assert proc.returncode == 0, (line, proc.stderr)
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for group in re.findall(r"\.\[([a-z,]+)\]", line):
        for extra in group.split(","):
            assert extra in extras, (line, extra)


def check_parses(line: str) -> None:
    import typer

    from convscope.present.cli import app

    args = shlex.split(line.split(NEEDS_RAY)[0])
    assert args[0] == "convscope", line
    command = typer.main.get_command(app).commands[args[1]]
    ctx = command.make_context(args[1], args[2:])  # every option exists; value checks run; body does not
    assert ctx.params.get("engine") == "ray"


def run_briefly(line: str, cwd: Path, env: dict[str, str]) -> None:
    args = shlex.split(line.split(LONG_RUNNING)[0])
    if "--port" not in args:
        args += ["--port", "0"]  # any free port: the README's default may be taken on a shared machine
    proc = subprocess.Popen(["bash", "-c", shlex.join(args)], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        url = None
        while url is None and time.monotonic() < deadline:
            text = proc.stdout.readline()
            if not text and proc.poll() is not None:
                break
            found = re.search(r"(http://[\w.:\[\]]+/)", text)
            url = found.group(1) if found else None
        assert url, (line, proc.poll(), proc.stderr.read() if proc.poll() is not None else "")
        with urllib.request.urlopen(url, timeout=60) as answer:
            assert answer.status == 200
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def in_process(line: str) -> bool:
    """A plain ``convscope`` line (no shell syntax), other than ``inspect`` (kept on the console path)."""
    plain = not re.search(r"[|<>;&$`]", line.split("#")[0])
    return plain and line.startswith("convscope ") and not line.startswith("convscope inspect")


def run_in_process(line: str, capsys) -> None:
    from convscope.present.cli import main

    args = shlex.split(line, comments=True)
    code = main(args[1:])
    out, err = capsys.readouterr()
    assert code == 0, (line, out[-2000:], err[-2000:])
    assert "Traceback" not in err, (line, err)


def test_every_readme_command_runs_as_written(tmp_path, shell, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    done = []
    for line in readme_commands():
        start = time.monotonic()
        if line.startswith(("pip ", "make ")):
            check_syntax_and_extras(line)
        elif NEEDS_RAY in line:
            check_parses(line)
        elif LONG_RUNNING in line:
            run_briefly(line, tmp_path, shell)
        elif in_process(line):
            run_in_process(line, capsys)  # the same argv through the same main(), without a new interpreter
        else:
            proc = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=shell, capture_output=True, text=True,
                                  timeout=900)
            assert proc.returncode == 0, (line, proc.stdout[-2000:], proc.stderr[-2000:])
            assert "Traceback" not in proc.stderr, (line, proc.stderr)
            if line.startswith("convscope "):  # the CLI keeps TensorFlow's start-up notices out of the way
                assert not [n for n in NOISE if n in proc.stderr], (line, proc.stderr)
        done.append(f"{time.monotonic() - start:6.1f} s  {line[:90]}")
    print("\n".join(done))
    assert (tmp_path / "samples" / "digit0_label0.png").is_file()
    assert (tmp_path / "convscope-out" / "maps" / "digit0_label0" / "conv_0.png").is_file()
    assert (tmp_path / "report.html").is_file() and (tmp_path / "scan-mnist" / "manifest.json").is_file()
    assert not (tmp_path / "scan-ray").exists()
