"""The ``convscope report`` command: one self-contained HTML report of a model on some inputs.

:func:`register` adds the command to the main Typer app (``convscope.present.cli`` calls it). This
module imports typer only; the command body imports the rest lazily, so ``convscope --help`` stays fast.
It imports nothing from ``convscope.present.cli`` at module level, because that module imports this one
while it is being initialized.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from convscope.present.cli_options import (
    BatchSizeOpt,
    ChannelsOpt,
    CmapOpt,
    Command,
    CustomObjectsOpt,
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
    SliceOpt,
    StdOpt,
    UnsafeOpt,
    VerboseOpt,
    WindowOpt,
    at_least,
    default_out,
)

COMMAND = "report"


def report(
    model: ModelArg,
    inputs: InputsArg,
    out: OutFileOpt = default_out(COMMAND) / "report.html",
    scan: Annotated[
        Path | None,
        typer.Option(
            "--scan",
            metavar="DIR",
            help="A folder written by `convscope scan`: adds layer health and top-k crops.",
        ),
    ] = None,
    compare: Annotated[
        Path | None,
        typer.Option(
            "--compare", metavar="DIR", help="A folder written by `convscope compare`: adds dataset shift."
        ),
    ] = None,
    similarity: Annotated[
        Path | None,
        typer.Option(
            "--similarity",
            metavar="DIR",
            help="A folder written by `convscope similarity`: adds the CKA matrix.",
        ),
    ] = None,
    ablate: Annotated[
        Path | None,
        typer.Option(
            "--ablate",
            metavar="DIR",
            help="A folder written by `convscope ablate`: adds the channels whose removal hurts each class.",
        ),
    ] = None,
    layer: LayersOpt = None,
    norm: NormOpt = "channel",
    cmap: CmapOpt = None,
    channels: ChannelsOpt = None,
    max_channels: MaxChannelsOpt = 32,
    max_map_size: Annotated[
        int,
        typer.Option(
            "--max-map-size",
            metavar="PX",
            callback=at_least(0, "--max-map-size"),
            help="Maps with a longer side are drawn at 1/k size (block means); 0 = full size.",
        ),
    ] = 112,
    no_cam: Annotated[bool, typer.Option("--no-cam", help="No Grad-CAM overlays.")] = False,
    title: Annotated[str | None, typer.Option("--title", metavar="TEXT", help="Page title.")] = None,
    value_range: RangeOpt = None,
    mean: MeanOpt = None,
    std: StdOpt = None,
    invert: InvertOpt = False,
    window: WindowOpt = None,
    slice_: SliceOpt = None,
    batch_size: BatchSizeOpt = 32,
    input_shape: ShapeOpt = None,
    unsafe: UnsafeOpt = False,
    custom_objects: CustomObjectsOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Write one self-contained HTML report (layer table, predictions, feature grids, Grad-CAM, scan) and print its path."""
    from convscope.present.cli import _setup, _shape

    _setup(verbose)
    from convscope.errors import OptionError
    from convscope.present.report import ReportOptions, build_report
    from convscope.present.run import preprocess_options, read_options, resolve_cli
    from convscope.store.output import check_file_out, os_error

    if max_map_size < 0:
        raise OptionError(f"--max-map-size must be >= 0 (0 = full size), got {max_map_size}")
    check_file_out(
        out, protected=[*inputs, model, *(d for d in (scan, compare, similarity, ablate) if d)]
    )  # the rule of where we may write
    options = ReportOptions(
        layers=layer,
        scan=scan,
        compare=compare,
        similarity=similarity,
        ablate=ablate,
        cam=not no_cam,
        norm=norm,
        cmap=cmap,
        channels=channels,
        max_channels=max_channels,
        max_map_size=max_map_size or None,
        title=title,
        batch_size=batch_size,
    )
    preprocess_options(value_range, mean, std)  # option errors answer before the model is loaded
    shape = _shape(input_shape)
    resolved = resolve_cli(
        model,
        value_range=value_range,
        mean=mean,
        std=std,
        invert=invert,
        read=read_options(window, slice_),
        input_shape=shape,
        safe_mode=not unsafe,
        custom_objects=custom_objects,
    )
    result = build_report(resolved, list(inputs), options, input_shape=shape)
    try:
        path = result.save(out, overwrite=True)  # checked above: new, or an earlier convscope report
    except OSError as exc:
        raise os_error(out, exc) from None
    typer.echo(str(path))


def register(app: typer.Typer) -> None:
    """Add the ``report`` command to ``app`` (a second call on the same app does nothing)."""
    for info in app.registered_commands:
        if info.name == COMMAND or (info.name is None and getattr(info.callback, "__name__", "") == COMMAND):
            return
    app.command(name=COMMAND, cls=Command)(report)
