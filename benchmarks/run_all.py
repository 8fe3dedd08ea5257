"""Run every convscope benchmark (each in its own subprocess), print everything, and summarise.

    python benchmarks/run_all.py                  # every script, summary at the end
    python benchmarks/run_all.py --only grid cli_help
    python benchmarks/run_all.py --skip memory    # the memory one takes several minutes
    python benchmarks/run_all.py --write-results  # also rewrite benchmarks/RESULTS.md with these figures

Each script prints its own tables and ends with one ``BENCH-RESULT {json}`` line; this runner collects
those lines. ``--write-results`` keeps the figures of benchmarks not run this time (they are stored in a
JSON block at the end of RESULTS.md) and keeps the hand-written notes between the NOTES markers.
Exit code: 0 when every script ran (missed targets are reported, not failed), 1 if a script crashed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
PREFIX = "BENCH-RESULT "
BENCHES = ["grid", "probe_overhead", "batch64", "memory", "cli_help", "callback", "scan", "serve", "cam", "maximize", "abuse", "evaluate"]
TITLES = {
    "grid": "1. Every conv layer of one image to a PNG grid (bench_grid.py)",
    "probe_overhead": "2. Probe overhead vs a compiled forward pass (bench_probe_overhead.py)",
    "batch64": "3. 64 images x all conv layers to PNGs (bench_batch64.py)",
    "memory": "4. Peak memory, VGG16-shaped x 128 images with --save-arrays (bench_memory.py)",
    "cli_help": "5. `convscope --help` wall time (bench_cli_help.py)",
    "callback": "6. Training slowdown of FeatureMapCallback, MNIST CNN at batch 64 (bench_callback.py)",
    "scan": "7. Dataset scan: throughput vs a compiled forward pass, peak RSS 5000 vs 500 digits (bench_scan.py)",
    "serve": "8. `convscope serve`: layer switch over HTTP and a 32-client load test (bench_serve.py)",
    "cam": "9. Grad-CAM on 64 MNIST digits vs tf-keras-vis and vs a compiled forward+backward (bench_cam.py)",
    "maximize": "10. Activation maximization: 64 channels as one batch vs one channel (bench_maximize.py)",
    "abuse": "11. `convscope serve` under abuse: 50 clients x 60 s of views, uploads, hostile requests (bench_abuse.py)",
    "evaluate": "12. Faithfulness metrics of 64 digits x 3 methods vs the bare compiled forward passes (bench_evaluate.py)",
}
TIMEOUTS = {"memory": 1800}
NOTES_BEGIN, NOTES_END = "<!-- NOTES -->", "<!-- /NOTES -->"
JSON_BEGIN, JSON_END = "<!-- results-json", "results-json -->"


def run_one(name: str, extra: list[str]) -> dict[str, Any] | None:
    script = HERE / f"bench_{name}.py"
    cmd = [sys.executable, str(script), *extra]
    print(f"\n$ {' '.join(cmd)}", flush=True)
    env = {**os.environ, "PYTHONPATH": str(HERE) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=HERE.parent)
    result = None
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(PREFIX):
            result = json.loads(line[len(PREFIX):])
            continue  # the summary shows it; keep the console readable
        if "absl::InitializeLog" in line or "oneDNN custom operations" in line:
            continue  # TensorFlow start-up chatter
        print(line, end="", flush=True)
    try:
        code = proc.wait(timeout=TIMEOUTS.get(name, 900))
    except subprocess.TimeoutExpired:
        proc.kill()
        code = -9
    print(f"[{name}: exit {code}, {time.perf_counter() - t0:.0f} s]", flush=True)
    if code != 0 or result is None:
        return None
    result["elapsed_s"] = round(time.perf_counter() - t0, 1)
    return result


def fmt_measured(t: dict[str, Any]) -> str:
    v = t["measured"]
    text = f"{v:.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    return f"{text}{t['unit']}"


def summary(results: dict[str, dict[str, Any]]) -> str:
    rows = []
    for name in BENCHES:
        r = results.get(name)
        if r is None:
            continue
        for t in r["targets"]:
            rows.append([t["target"], fmt_measured(t), f"{t['op']} {t['threshold']:g}{t['unit']}",
                         "PASS" if t["pass"] else "MISS", r["env"]["date"]])
    widths = [max(len(str(x)) for x in col) for col in zip(["target", "measured", "required", "verdict", "date"], *rows)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(["target", "measured", "required", "verdict", "date"], widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


# -- RESULTS.md ---------------------------------------------------------------------------------------------
def _figure_rows(figures: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    rows = []
    for key, value in figures.items():
        if isinstance(value, dict):
            rows += _figure_rows(value, f"{prefix}{key}.")
        elif isinstance(value, float):
            rows.append((prefix + key, f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"))
        else:
            rows.append((prefix + key, str(value)))
    return rows


def render_results(results: dict[str, dict[str, Any]], notes: str) -> str:
    out = ["# convscope benchmark results", "",
           "Generated by `python benchmarks/run_all.py --write-results` from the scripts' `BENCH-RESULT` lines. "
           "Every figure is a median over repeats after warm-up, baseline and convscope measured in the same run "
           "on the same machine; targets are reported (PASS/MISS), never asserted. Absolute times vary with the "
           "machine's load; the ratios are what the targets are about.", "", "## Summary", "",
           "| target | measured | required | verdict | date | nproc | versions |", "|---|---|---|---|---|---|---|"]
    for name in BENCHES:
        r = results.get(name)
        if r is None:
            continue
        e = r["env"]
        versions = f"convscope {e['convscope']}, keras {e['keras']}, tf {e['tensorflow']}, numpy {e['numpy']}, pillow {e['pillow']}, mpl {e['matplotlib']}, py {e['python']}"
        for t in r["targets"]:
            out.append(f"| {t['target']} | {fmt_measured(t)} | {t['op']} {t['threshold']:g}{t['unit']} | "
                       f"{'PASS' if t['pass'] else '**MISS**'} | {e['date']} | {e['nproc']} | {versions} |")
    for name in BENCHES:
        r = results.get(name)
        if r is None:
            continue
        e = r["env"]
        out += ["", f"## {TITLES[name]}", "",
                f"Run {e['date']} on {e['nproc']} cores ({e['cpu']}), Python {e['python']}, convscope {e['convscope']}, "
                f"Keras {e['keras']}, TensorFlow {e['tensorflow']}, numpy {e['numpy']}, Pillow {e['pillow']}, "
                f"matplotlib {e['matplotlib']}; script wall time {r.get('elapsed_s', '?')} s.", "",
                "| target | measured | required | verdict | note |", "|---|---|---|---|---|"]
        for t in r["targets"]:
            out.append(f"| {t['target']} | {fmt_measured(t)} | {t['op']} {t['threshold']:g}{t['unit']} | "
                       f"{'PASS' if t['pass'] else '**MISS**'} | {t.get('note', '')} |")
        out += ["", "<details><summary>all figures (ms unless named otherwise)</summary>", "",
                "| figure | value |", "|---|---|"]
        out += [f"| {k} | {v} |" for k, v in _figure_rows(r["figures"])]
        out += ["", "</details>"]
    out += ["", "## Notes and diagnosis", "", NOTES_BEGIN, notes.strip(), NOTES_END, "",
            JSON_BEGIN, json.dumps(results, indent=1), JSON_END, ""]
    return "\n".join(out)


def read_previous() -> tuple[dict[str, dict[str, Any]], str]:
    if not RESULTS.exists():
        return {}, ""
    text = RESULTS.read_text()
    previous: dict[str, dict[str, Any]] = {}
    m = re.search(re.escape(JSON_BEGIN) + r"(.*?)" + re.escape(JSON_END), text, re.S)
    if m:
        try:
            previous = json.loads(m.group(1))
        except json.JSONDecodeError:
            previous = {}
    n = re.search(re.escape(NOTES_BEGIN) + r"(.*?)" + re.escape(NOTES_END), text, re.S)
    return previous, (n.group(1) if n else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the convscope benchmarks and summarise them.")
    parser.add_argument("--only", nargs="+", choices=BENCHES, help="run only these")
    parser.add_argument("--skip", nargs="+", choices=BENCHES, default=[], help="skip these")
    parser.add_argument("--quick", action="store_true", help="pass --quick to the scripts that have it (smoke test)")
    parser.add_argument("--write-results", action="store_true", help="rewrite benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    names = [n for n in (args.only or BENCHES) if n not in args.skip]
    results: dict[str, dict[str, Any]] = {}
    failed = []
    for name in names:
        extra = ["--quick"] if args.quick and name in {"grid", "probe_overhead", "batch64", "scan", "cam", "maximize", "abuse", "evaluate"} else []
        r = run_one(name, extra)
        if r is None:
            failed.append(name)
        else:
            results[name] = r
    print("\n" + "=" * 100)
    print("SUMMARY")
    print("=" * 100)
    print(summary(results))
    if failed:
        print(f"\nscripts that did not finish: {', '.join(failed)}")
    if args.write_results:
        if args.quick:
            print("\n--quick figures are not written to RESULTS.md")
        else:
            previous, notes = read_previous()
            previous.update(results)
            RESULTS.write_text(render_results(previous, notes))
            print(f"\nwrote {RESULTS}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
