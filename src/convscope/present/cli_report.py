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

COMMAND = "report"


def report(
    model: Annotated[str, typer.Argument(help="A .keras or .h5 model file, or a zoo name (mnist-cnn).")],
    inputs: Annotated[list[str], typer.Argument(help="Images, folders of images, or .npy/.npz arrays (already preprocessed).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The HTML file to write (replaced if it exists).")] = Path("report.html"),
    scan: Annotated[Optional[Path], typer.Option("--scan", help="A folder written by `convscope scan`: adds layer health and top-k crops.")] = None,
    layer: Annotated[Optional[list[str]], typer.Option("--layer", "-l", help="Layer path, index, glob or class:NAME; repeatable. Default: every conv layer.")] = None,
    norm: Annotated[str, typer.Option(help="channel | layer | symmetric | percentile | raw")] = "channel",
    cmap: Annotated[Optional[str], typer.Option(help="gray | viridis | magma | diverging (default: gray; diverging for symmetric)")] = None,
    channels: Annotated[Optional[str], typer.Option(help="all | N (first N) | topN[:mean|:max] | list such as 0,3,8-15")] = None,
    max_channels: Annotated[int, typer.Option(help="At most this many channels per layer (keeps the file small).")] = 32,
    max_map_size: Annotated[int, typer.Option(help="Maps with a longer side are drawn at 1/k size (block means); 0 = full size.")] = 112,
    no_cam: Annotated[bool, typer.Option("--no-cam", help="No Grad-CAM overlays.")] = False,
    title: Annotated[Optional[str], typer.Option(help="Page title.")] = None,
    value_range: Annotated[Optional[str], typer.Option("--range", help="Input pixel range LO,HI for images, e.g. 0,1 or -1,1.")] = None,
    mean: Annotated[Optional[str], typer.Option(help="Per-channel mean, e.g. 0.485,0.456,0.406 (with --std; after scaling to 0..1).")] = None,
    std: Annotated[Optional[str], typer.Option(help="Per-channel std, e.g. 0.229,0.224,0.225.")] = None,
    invert: Annotated[bool, typer.Option(help="Invert images (dark-on-light digits for an MNIST model).")] = False,
    batch_size: Annotated[int, typer.Option(help="Inputs per forward pass (bounds memory).")] = 32,
    input_shape: Annotated[Optional[str], typer.Option("--input-shape", help="One sample's shape, e.g. 28,28,1 (unbuilt/subclassed models).")] = None,
    unsafe: Annotated[bool, typer.Option("--unsafe", help="Allow code in the model file (Lambda layers). Only for files you trust.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what is done.")] = False,
) -> None:
    """Write one self-contained HTML report (layer table, predictions, feature grids, Grad-CAM, scan) and print its path."""
    from convscope.present.cli import _setup, _shape

    _setup(verbose)
    from convscope.errors import OptionError
    from convscope.present.report import ReportOptions, build_report
    from convscope.present.run import preprocess_options, resolve_cli

    if max_map_size < 0:
        raise OptionError(f"--max-map-size must be >= 0 (0 = full size), got {max_map_size}")
    if out.exists() and out.is_dir():
        raise OptionError(f"--out {str(out)!r} is a folder; give the path of an .html file")
    if not out.parent.is_dir():
        raise OptionError(f"--out {str(out)!r}: folder {str(out.parent)!r} does not exist")
    options = ReportOptions(layers=layer, scan=scan, cam=not no_cam, norm=norm, cmap=cmap, channels=channels,
                            max_channels=max_channels, max_map_size=max_map_size or None, title=title,
                            batch_size=batch_size)
    preprocess_options(value_range, mean, std)  # option errors answer before the model is loaded
    shape = _shape(input_shape)
    resolved = resolve_cli(model, value_range=value_range, mean=mean, std=std, invert=invert, input_shape=shape,
                           safe_mode=not unsafe)
    result = build_report(resolved, list(inputs), options, input_shape=shape)
    path = result.save(out, overwrite=True)
    typer.echo(str(path))


def register(app: typer.Typer) -> None:
    """Add the ``report`` command to ``app`` (a second call on the same app does nothing)."""
    for info in app.registered_commands:
        if info.name == COMMAND or (info.name is None and getattr(info.callback, "__name__", "") == COMMAND):
            return
    app.command(name=COMMAND)(report)
