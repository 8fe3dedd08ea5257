"""Target 5: ``convscope --help`` answers in < 0.5 s wall time, without importing TensorFlow or Keras.

Times (median of ``--runs`` after one warm-up, interleaved) ``python -c pass`` (the interpreter's own
start-up, the floor), ``python -m convscope --help`` and the console script ``convscope --help`` when it is
on PATH (if PATH has a pyenv shim, the resolved script is timed too: the shim is a bash wrapper with its
own cost). Then checks with ``python -X importtime`` and ``sys.modules`` which heavy packages load.

Usage: python benchmarks/bench_cli_help.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from typing import Any

import _common as C

LIMIT_S = 0.5
HEAVY = ("tensorflow", "keras", "jax", "torch", "matplotlib", "PIL", "h5py")


def run(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr[-500:]}")
    return dt


def resolve_shim(path: str) -> str | None:
    """The real console script behind a pyenv shim (or None)."""
    if "/shims/" not in path or shutil.which("pyenv") is None:
        return None
    proc = subprocess.run(["pyenv", "which", "convscope"], capture_output=True, text=True)
    real = proc.stdout.strip()
    return real if proc.returncode == 0 and real and os.path.exists(real) else None


def heavy_modules_importtime() -> tuple[list[str], int, str]:
    """Top-level heavy packages seen by ``-X importtime``, module count, and the 5 slowest imports."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "convscope", "--help"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    mods, slow = [], []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = [p.strip() for p in line[len("import time:"):].split("|")]
        if not parts[0].isdigit():
            continue
        name = parts[2].strip()
        mods.append(name)
        slow.append((int(parts[1]), name))
    heavy = sorted({m.split(".")[0] for m in mods if m.split(".")[0] in HEAVY})
    top = ", ".join(f"{n} {us / 1e3:.0f} ms" for us, n in sorted(slow, reverse=True)[:5])
    return heavy, len(mods), top


def heavy_modules_sys() -> list[str]:
    code = ("import sys, io, contextlib\n"
            "from convscope.present.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    main(['--help'])\n"
            f"print(','.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-500:])
    out = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    return [m for m in out.split(",") if m]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    env = C.header("bench_cli_help: wall time of `convscope --help` (fresh processes)")

    cmds: dict[str, list[str]] = {
        "python -c pass (floor)": [sys.executable, "-c", "pass"],
        "python -m convscope --help": [sys.executable, "-m", "convscope", "--help"],
    }
    script = shutil.which("convscope")
    if script:
        cmds[f"convscope --help ({script})"] = [script, "--help"]
        real = resolve_shim(script)
        if real:
            cmds[f"convscope --help (resolved: {real})"] = [real, "--help"]
    times = C.interleaved({k: (lambda c=c: run(c)) for k, c in cmds.items()}, repeats=args.runs, warmup=1)
    med = {k: C.median(v) for k, v in times.items()}
    floor = med["python -c pass (floor)"]
    rows = [[k, C.ms(med[k]), C.spread(times[k]), f"{med[k] / floor:.1f}x", f"{(med[k] - floor) * 1e3:.0f}"]
            for k in cmds]
    C.show()
    C.show(C.table([f"command ({args.runs} runs)", "median ms", "min..max ms", "vs floor", "+ms over floor"], rows))

    heavy_it, n_mods, top = heavy_modules_importtime()
    heavy_sys = heavy_modules_sys()
    C.show()
    C.show(f"  -X importtime: {n_mods} modules imported; heavy packages: {heavy_it or 'none'}")
    C.show(f"  slowest imports (cumulative): {top}")
    C.show(f"  sys.modules after main(['--help']): heavy packages: {heavy_sys or 'none'}")

    # the headline: the slowest of the ways a user types it (module form and the console script as found)
    keys = [k for k in cmds if k.startswith(("python -m", "convscope --help ("))
            and "resolved" not in k]
    worst_key = max(keys, key=lambda k: med[k])
    light = not ({"tensorflow", "keras"} & (set(heavy_it) | set(heavy_sys)))
    figures: dict[str, Any] = {
        "runs": args.runs, "median_ms": {k: med[k] * 1e3 for k in cmds}, "floor_ms": floor * 1e3,
        "heavy_importtime": heavy_it, "heavy_sys_modules": heavy_sys, "modules": n_mods, "tf_keras_free": light,
    }
    targets = [
        C.target("cli --help wall time (slowest form)", med[worst_key], "<", LIMIT_S, " s", note=worst_key),
        C.target("cli --help imports no tensorflow/keras (1 = none)", 1.0 if light else 0.0, ">=", 1.0, "",
                 note=f"heavy: {sorted(set(heavy_it) | set(heavy_sys)) or 'none'}"),
    ]
    C.emit("cli_help", targets, figures, env)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
