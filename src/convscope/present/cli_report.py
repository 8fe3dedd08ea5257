"""The ``convscope report`` command: one self-contained HTML report of a model on some inputs.

:func:`register` adds the command to the main Typer app (``convscope.present.cli`` calls it). This
module imports typer only; the command body imports the rest lazily, so ``convscope --help`` stays fast.
It imports nothing from ``convscope.present.cli`` at module level, because that module imports this one
while it is being initialized.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from convscope.present.cli_options import (
    BatchSizeOpt,
    ChannelsOpt,
    CmapOpt,
    Command,
    InputsArg,
    InvertOpt,
    LayersOpt,
    MaxChannelsOpt,
    MeanOpt,
    ModelArg,
    NormOpt,
    OutFileOpt,
    RangeOpt,
    ShapeOpt,
    StdOpt,
    UnsafeOpt,
    VerboseOpt,
    at_least,
    default_out,
)

COMMAND = "report"


def report(
    model: ModelArg,
    inputs: InputsArg,
    out: OutFileOpt = default_out(COMMAND) / "report.html",
    scan: Annotated[Optional[Path], typer.Option(
        "--scan", metavar="DIR", help="A folder written by `convscope scan`: adds layer health and top-k crops.")] = None,
    layer: LayersOpt = None,
    norm: NormOpt = "channel",
    cmap: CmapOpt = None,
    channels: ChannelsOpt = None,
    max_channels: MaxChannelsOpt = 32,
    max_map_size: Annotated[int, typer.Option(
        "--max-map-size", metavar="PX", callback=at_least(0, "--max-map-size"),
        help="Maps with a longer side are drawn at 1/k size (block means); 0 = full size.")] = 112,
    no_cam: Annotated[bool, typer.Option("--no-cam", help="No Grad-CAM overlays.")] = False,
    title: Annotated[Optional[str], typer.Option("--title", metavar="TEXT", help="Page title.")] = None,
    value_range: RangeOpt = None,
    mean: MeanOpt = None,
    std: StdOpt = None,
    invert: InvertOpt = False,
    batch_size: BatchSizeOpt = 32,
    input_shape: ShapeOpt = None,
    unsafe: UnsafeOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Write one self-contained HTML report (layer table, predictions, feature grids, Grad-CAM, scan) and print its path."""
    from convscope.present.cli import _setup, _shape

    _setup(verbose)
    from convscope.errors import OptionError
    from convscope.present.report import build_report
    from convscope.present.run import make_preprocess

    if max_map_size < 0:
        raise OptionError(f"--max-map-size must be >= 0 (0 = full size), got {max_map_size}")
    if out.exists() and out.is_dir():
        raise OptionError(f"--out {str(out)!r} is a folder; give the path of an .html file")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)  # e.g. the default convscope-out/report/
    except OSError as err:
        raise OptionError(f"--out {str(out)!r}: folder {str(out.parent)!r} cannot be created: "
                          f"{err.strerror or err}") from None
    result = build_report(
        model, list(inputs), layers=layer, scan=scan, cam=not no_cam, norm=norm, cmap=cmap, channels=channels,
        max_channels=max_channels, max_map_size=max_map_size or None,
        preprocess=make_preprocess(value_range, mean, std, invert), input_shape=_shape(input_shape), title=title,
        batch_size=batch_size, safe_mode=not unsafe,
    )
    path = result.save(out, overwrite=True)
    typer.echo(str(path))


def register(app: typer.Typer) -> None:
    """Add the ``report`` command to ``app`` (a second call on the same app does nothing)."""
    for info in app.registered_commands:
        if info.name == COMMAND or (info.name is None and getattr(info.callback, "__name__", "") == COMMAND):
            return
    app.command(name=COMMAND, cls=Command)(report)
