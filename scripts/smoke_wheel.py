"""Build convscope's sdist and wheel, install the wheel into a clean virtualenv and smoke-test it there.

Run by ``make wheel-smoke`` (and CI). The wheel is installed outside the source tree, so a file missing from
the package data (zoo models, the explorer's static files) fails here even when the editable install works:

    python scripts/smoke_wheel.py [--python /usr/bin/python3] [--keep]

Steps: ``python -m build`` (sdist, then the wheel built from that sdist), a new venv in a temporary folder,
``pip install 'convscope-*.whl[tf,web]'``, then from a folder outside the checkout: ``convscope --version``
(equal to the wheel's version), the package imported from the venv's site-packages, ``convscope demo``
(its PNGs decoded with Pillow), and ``convscope serve`` on a free port answering its page, a static file,
the model table, a prediction and a feature-map PNG; finally the server is stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*cmd: str | Path, cwd: Path | None = None, timeout: float = 1800) -> str:
    """Run a command, echo it, fail loudly with its output."""
    print("+", " ".join(map(str, cmd)), flush=True)
    proc = subprocess.run(list(map(str, cmd)), cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        sys.exit(f"FAILED ({proc.returncode}): {' '.join(map(str, cmd))}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc.stdout


def build(dist: Path) -> tuple[Path, Path]:
    """The sdist and the wheel (built from the sdist by ``python -m build``)."""
    run(sys.executable, "-m", "build", "--outdir", dist, ROOT, timeout=900)
    sdists, wheels = sorted(dist.glob("convscope-*.tar.gz")), sorted(dist.glob("convscope-*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, (sdists, wheels)
    return sdists[0], wheels[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, timeout: float = 60) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - loopback only
        return r.status, r.headers.get("content-type", ""), r.read()


def smoke_serve(bindir: Path, work: Path) -> None:
    """Start ``convscope serve`` from the wheel and check the page, a static file and the API."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (work / "serve.log").open("w")
    proc = subprocess.Popen(
        [str(bindir / "convscope"), "serve", "--port", str(port)], cwd=work, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                status, _, _ = get(f"{base}/api/health", timeout=5)
                if status == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"serve did not come up:\n{(work / 'serve.log').read_text()[-4000:]}")
            time.sleep(1)
        status, ctype, body = get(f"{base}/")
        assert status == 200 and "text/html" in ctype and b"<html" in body.lower(), (status, ctype)
        status, ctype, body = get(f"{base}/static/app.js")
        assert status == 200 and len(body) > 1000, (status, len(body))
        model = json.loads(get(f"{base}/api/model")[2])
        assert model["layers"] and model["default_layer"], model.keys()
        images = json.loads(get(f"{base}/api/images")[2])["images"]
        assert images, "the bundled sample digits are missing"
        first = images[0]["id"]
        prediction = json.loads(get(f"{base}/api/predict?image={first}")[2])
        print("serve: predict", json.dumps(prediction)[:200], flush=True)
        layer = urllib.request.quote(model["default_layer"])
        status, ctype, png = get(f"{base}/api/grid.png?image={first}&layer={layer}")
        assert status == 200 and ctype == "image/png" and png[:8] == b"\x89PNG\r\n\x1a\n", (status, ctype)
        print(f"serve: OK ({len(model['layers'])} layers, {len(images)} images, grid PNG {len(png)} bytes)")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", default=sys.executable, help="Interpreter for the clean venv.")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary folder.")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="convscope-wheel-"))
    try:
        sdist, wheel = build(tmp / "dist")
        version = wheel.name.split("-")[1]
        print(f"built {sdist.name} ({sdist.stat().st_size // 1024} KiB), {wheel.name} ({wheel.stat().st_size // 1024} KiB)")
        venv = tmp / "venv"
        run(args.python, "-m", "venv", venv)
        bindir = venv / "bin"
        run(bindir / "python", "-m", "pip", "install", "-q", f"{wheel}[tf,web]", timeout=1800)
        work = tmp / "work"  # outside the checkout: nothing can be imported from src/
        work.mkdir()
        out = run(bindir / "convscope", "--version", cwd=work).strip()
        assert out == f"convscope {version}", out
        where = run(bindir / "python", "-c", "import convscope; print(convscope.__file__)", cwd=work).strip()
        assert Path(where).resolve().is_relative_to(venv.resolve()), where
        run(bindir / "convscope", "demo", "--out", work / "demo", cwd=work)
        pngs = sorted((work / "demo").rglob("*.png"))
        assert pngs, "the demo wrote no PNG"
        check = "import sys; from PIL import Image\nfor p in sys.argv[1:]: Image.open(p).verify()"
        run(bindir / "python", "-c", check, *pngs, cwd=work)
        print(f"demo: OK ({len(pngs)} PNGs)")
        smoke_serve(bindir, work)
        print(f"wheel smoke test passed: {wheel.name}")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
