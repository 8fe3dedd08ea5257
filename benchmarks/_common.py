"""Shared helpers for the convscope benchmark scripts (timing, tables, environment, result lines).

Every script measures its baseline and convscope in the same process and the same run, reports medians
over repeats after warm-up, and prints ratios (plus absolute milliseconds). Nothing here asserts on
timing: a target is reported as PASS or MISS, never raised.

Each script ends with one machine-readable line::

    BENCH-RESULT {"bench": "...", "targets": [...], "figures": {...}, "env": {...}}

which ``run_all.py`` collects to build ``RESULTS.md``. Keep that format stable.
"""

from __future__ import annotations

import datetime as _dt
import gc
import json
import logging
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

# Quiet TensorFlow and pin the non-interactive matplotlib backend before anything imports them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# The recipe's per-call sub-models make Keras retrace predict() and TensorFlow warn about it: that is
# the recipe's known cost, measured here, not news.
logging.getLogger("tensorflow").setLevel(logging.ERROR)

RESULT_PREFIX = "BENCH-RESULT "


# -- timing ----------------------------------------------------------------------------------------------
def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Run ``fn()`` once; return (seconds, its result)."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def interleaved(fns: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1, collect: bool = True,
                inner: dict[str, int] | None = None) -> dict[str, list[float]]:
    """Time several callables round-robin (order reversed every other round to cancel drift).

    With ``collect`` a full ``gc.collect()`` runs (untimed) before each timed call, so the garbage one
    side leaves (matplotlib figures, Keras sub-models) is not collected on the other side's clock.
    ``inner`` runs a cheap callable several times per round (each call is one sample), so fast and slow
    sides get comparable exposure to the machine's noise. Returns ``{name: [seconds per call]}``
    (warm-up rounds excluded).
    """
    inner = inner or {}
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            for _ in range(inner.get(name, 1)):
                if collect:
                    gc.collect()
                dt, _ = timed(fns[name])
                times[name].append(dt)
    return times


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def spread(xs: Sequence[float]) -> str:
    """'min..max' in ms, for the tables."""
    return f"{min(xs) * 1e3:.1f}..{max(xs) * 1e3:.1f}"


def ms(seconds: float) -> str:
    if seconds >= 100:
        return f"{seconds * 1e3:,.0f}"
    if seconds >= 0.01:
        return f"{seconds * 1e3:.1f}"
    return f"{seconds * 1e3:.3f}"


# -- memory ----------------------------------------------------------------------------------------------
def proc_status(field: str, pid: str = "self") -> int:
    """A ``/proc/<pid>/status`` memory field (VmRSS, VmHWM, RssAnon, RssFile, ...) in bytes."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def gb(n: float) -> str:
    return f"{n / 1e9:.2f}"


# -- printing --------------------------------------------------------------------------------------------
def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> str:
    """A plain fixed-width text table (right-aligned except the first column)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def fmt(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

    lines = []
    if title:
        lines.append(title)
    lines.append(fmt(cells[0]))
    lines.append("  ".join("-" * w for w in widths))
    lines.extend(fmt(r) for r in cells[1:])
    return "\n".join(lines)


def show(text: str = "") -> None:
    print(text, flush=True)


def target(name: str, measured: float, op: str, threshold: float, unit: str, note: str = "") -> dict[str, Any]:
    """One target's verdict (PASS/MISS), never an assertion."""
    ok = measured >= threshold if op == ">=" else measured <= threshold if op == "<=" else measured < threshold
    return {"target": name, "measured": round(float(measured), 4), "op": op, "threshold": threshold,
            "unit": unit, "pass": bool(ok), "note": note}


def verdict_table(targets: Sequence[dict[str, Any]]) -> str:
    rows = [[t["target"], f"{t['measured']:.4g}{t['unit']}", f"{t['op']} {t['threshold']:g}{t['unit']}",
             "PASS" if t["pass"] else "MISS"] for t in targets]
    return table(["target", "measured", "required", "verdict"], rows)


# -- environment -----------------------------------------------------------------------------------------
def _version(module: str) -> str:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        return "-"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "-"


def env_info() -> dict[str, Any]:
    """Date, cores, CPU and the versions that matter (no heavy imports)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 0
    return {
        "date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "nproc": cores,
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "convscope": _version("convscope"),
        "keras": _version("keras"),
        "tensorflow": _version("tensorflow-cpu") if _version("tensorflow-cpu") != "-" else _version("tensorflow"),
        "numpy": _version("numpy"),
        "pillow": _version("pillow"),
        "matplotlib": _version("matplotlib"),
    }


def env_line(env: dict[str, Any]) -> str:
    return (f"{env['date']} | nproc={env['nproc']} | {env['cpu']} | python {env['python']} | "
            f"convscope {env['convscope']} | keras {env['keras']} | tf {env['tensorflow']} | "
            f"numpy {env['numpy']} | pillow {env['pillow']} | matplotlib {env['matplotlib']}")


def emit(bench: str, targets: Sequence[dict[str, Any]], figures: dict[str, Any], env: dict[str, Any]) -> None:
    """Print the verdicts and the one machine-readable result line."""
    show()
    show(verdict_table(targets))
    show()
    show(RESULT_PREFIX + json.dumps({"bench": bench, "targets": list(targets), "figures": figures, "env": env}))
    sys.stdout.flush()


def header(title: str) -> dict[str, Any]:
    env = env_info()
    show("=" * 100)
    show(title)
    show(env_line(env))
    show("=" * 100)
    return env


# -- fresh-subprocess measurements -----------------------------------------------------------------------
CHILD_RESULT = "CHILD-RESULT "


def child_result(figures: dict[str, Any]) -> None:
    """Print a child process's figures as its one result line (read back by :func:`run_child`)."""
    print(CHILD_RESULT + json.dumps(figures), flush=True)


def run_child(script: str, args: Sequence[str], what: str, timeout: float = 1800) -> dict[str, Any]:
    """Run ``python SCRIPT --child ARGS...`` in a fresh process (benchmarks/ on PYTHONPATH) and return the
    figures it printed with :func:`child_result`; raise with its output when it fails."""
    import subprocess
    from pathlib import Path

    here = str(Path(script).resolve().parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(Path(script).resolve()), "--child", *map(str, args)],
                          stdout=subprocess.PIPE, text=True, timeout=timeout, check=False, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(CHILD_RESULT)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"child for {what} failed ({proc.returncode}):\n{proc.stdout}")
    return json.loads(lines[-1][len(CHILD_RESULT):])
