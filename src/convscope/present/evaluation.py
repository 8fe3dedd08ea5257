"""How a faithfulness :class:`~convscope.attribution.evaluate.Evaluation` is shown: one text table and one
curve plot (PNG bytes). Nothing here computes a metric, prints or writes a file; ``convscope cam
--evaluate`` (:func:`convscope.present.why.run_cam`) prints the lines and writes the bytes.

The plot needs matplotlib (``pip install 'convscope[eval]'``, or ``[plot]``); it is drawn on a
``matplotlib.figure.Figure`` with the Agg canvas, never through pyplot, so no window opens and no global
state is left behind.
"""

from __future__ import annotations

import importlib
import io
import math
from typing import Any

from convscope.attribution.faithfulness import METRICS, RANDOM, Evaluation
from convscope.errors import OptionError

INSTALL_HINT = "pip install 'convscope[eval]'"
_RANDOM_COLOR = "0.45"


def require_plotting() -> None:
    """Check that matplotlib is importable (before any work is done).

    Raises:
        OptionError: It is not; the message gives the install line.
    """
    try:
        importlib.import_module("matplotlib")
    except ImportError:
        raise OptionError(f"--evaluate draws its curves with matplotlib: {INSTALL_HINT}") from None


def _number(value: float, metric: str) -> str:
    if not math.isfinite(value):
        return "-"
    return f"{value:.1f}" if metric in ("average_drop", "increase") else f"{value:.3f}"


def _scored(ev: Evaluation) -> str:
    """What the scores are, e.g. ``"probability of the explained class"``, ``"logit of seg class 1"``."""
    if ev.score == "custom":
        return "the custom target"
    what = "the explained class" if ev.explained == "class" else ev.explained
    return f"{ev.score}{' (sum over the region)' if ev.explained.startswith('seg') else ''} of {what}"


def _grid(ev: Evaluation) -> str:
    rows, cols = ev.random_grid
    return f"{rows}x{cols}" if rows else "pixel"


def format_evaluation(ev: Evaluation) -> list[str]:
    """The summary as text lines: a caption, one table (methods x metrics, means over the images, the
    random baseline last) and a legend saying which direction is better and how the images were perturbed."""
    header = ["method", *(label for _, label, _ in METRICS)]
    rows = [[row["method"], *(_number(row[k], k) for k, _, _ in METRICS)] for row in ev.table()]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    lower = [label for _, label, better in METRICS if better == "lower"]
    higher = [label for _, label, better in METRICS if better == "higher"]
    what = _scored(ev)
    return [
        f"faithfulness of the maps over {len(ev)} image(s); score = {what} (means over the images):",
        line(header),
        "  ".join("-" * w for w in widths),
        *(line(r) for r in rows),
        f"lower is better: {', '.join(lower)}; higher is better: {', '.join(higher)}",
        f"deletion: pixels -> {ev.deletion}; insertion into {ev.insertion}; {ev.steps} steps; ROAD at "
        f"{', '.join(f'{f:g}' for f in ev.fractions)} (noisy linear imputation); {RANDOM} = uniform "
        f"random maps on a {_grid(ev)} grid (seed {ev.seed})",
    ]


def evaluation_figure(ev: Evaluation) -> Any:
    """A matplotlib Figure: mean deletion and insertion curves, and mean ROAD MoRF / LeRF curves, of every
    method and of the random baseline (gray, dashed). Created without pyplot."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    fig = Figure(figsize=(17.0, 5.0), dpi=100, layout="constrained")
    axes = fig.subplots(1, 3)
    palette = [f"C{i}" for i in range(10)]
    colors: dict[str, str] = {}
    for m in ev.methods:
        colors[m.method] = _RANDOM_COLOR if m.method == RANDOM else palette[len(colors) % len(palette)]
    probability = ev.score == "probability"
    ylabel = f"mean {_scored(ev)}"
    panels = (
        (
            axes[0],
            "deletion",
            "deletion_auc",
            f"Deletion: most relevant pixels \u2192 {ev.deletion}",
            "removed",
        ),
        (axes[1], "insertion", "insertion_auc", f"Insertion into {ev.insertion}", "inserted"),
    )
    for ax, curve, auc, title, verb in panels:
        for m in ev.methods:
            rnd = m.method == RANDOM
            ax.plot(
                ev.x,
                getattr(m, curve).mean(axis=0),
                color=colors[m.method],
                linestyle="--" if rnd else "-",
                linewidth=2.2 if not rnd else 2.0,
                label=f"{m.method}  (AUC {m.per_image(auc).mean():.3f})",
            )
        ax.set_title(title, fontsize=11)
        ax.set_xlabel(f"fraction of pixels {verb}, most relevant first")
        ax.set_xlim(0, 1)
        ax.legend(fontsize=9, loc="upper right" if curve == "deletion" else "lower right", framealpha=0.9)
    ax = axes[2]
    for m in ev.methods:
        for values, style, marker in ((m.road_morf, "-", "o"), (m.road_lerf, ":", "s")):
            ax.plot(
                ev.fractions,
                values.mean(axis=0),
                color=colors[m.method],
                linestyle=style,
                marker=marker,
                markersize=4,
                linewidth=2.0,
            )
    handles = [Line2D([], [], color=colors[m.method], linewidth=2.5, label=m.method) for m in ev.methods]
    handles += [
        Line2D(
            [],
            [],
            color="black",
            linestyle="-",
            marker="o",
            markersize=4,
            label="MoRF (most relevant removed)",
        ),
        Line2D(
            [],
            [],
            color="black",
            linestyle=":",
            marker="s",
            markersize=4,
            label="LeRF (least relevant removed)",
        ),
    ]
    ax.legend(handles=handles, fontsize=9, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    ax.set_title("ROAD: pixels removed and imputed (noisy linear)", fontsize=11)
    ax.set_xlabel("fraction of pixels removed")
    ax.set_xlim(0, 1)
    for ax in axes:
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if probability:
            ax.set_ylim(-0.02, 1.02)
    fig.suptitle(
        f"Faithfulness of attribution maps: mean curves over {len(ev)} image(s); {RANDOM} = uniform random maps "
        f"({_grid(ev)})",
        fontsize=12,
    )
    return fig


def evaluation_png(ev: Evaluation) -> bytes:
    """:func:`evaluation_figure` encoded as PNG bytes (Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = evaluation_figure(ev)
    buffer = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buffer)
    return buffer.getvalue()


__all__ = ["evaluation_figure", "evaluation_png", "format_evaluation", "require_plotting"]
