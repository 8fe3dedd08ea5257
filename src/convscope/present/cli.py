"""The ``convscope`` command line.

Importing this module is light (typer only): Keras/TensorFlow load inside the commands, so
``convscope --help`` answers at once. Every :class:`~convscope.errors.ConvscopeError` becomes one line
on stderr and exit code 2, with no traceback.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from convscope.errors import ConvscopeError, OptionError

app = typer.Typer(
    name="convscope",
    help="See inside any Keras 3 CNN: layer tables and feature maps of every layer.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ModelArg = Annotated[str, typer.Argument(help="A .keras or .h5 model file, or a zoo name (mnist-cnn).")]
UnsafeOpt = Annotated[bool, typer.Option("--unsafe", help="Allow code in the model file (Lambda layers). Only for files you trust.")]
ShapeOpt = Annotated[Optional[str], typer.Option("--input-shape", help="One sample's shape, e.g. 28,28,1 (unbuilt/subclassed models).")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Log what is done.")]


_NOISE = ("All log messages before absl::InitializeLog()", "oneDNN custom operations are on", "cpu_feature_guard",
          "rebuild TensorFlow with the appropriate compiler flags", "To enable the following instructions")


def _quiet_backend_import() -> None:
    """Import Keras with its backend while filtering TensorFlow's start-up banner out of stderr.

    TensorFlow's C++ runtime writes informational lines straight to file descriptor 2 at import, whatever
    ``TF_CPP_MIN_LOG_LEVEL`` says; a CLI whose errors are one line should not open with four. Anything
    else written during the import (a real problem) is passed through unchanged.
    """
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            import keras  # noqa: F401  (imports the backend)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            for line in sink.read().decode(errors="replace").splitlines():
                if line.strip() and not any(n in line for n in _NOISE):
                    print(line, file=sys.stderr)


def _setup(verbose: bool) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="convscope: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    if not verbose:
        _quiet_backend_import()


def _shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        shape = tuple(int(t) for t in text.replace("x", ",").split(",") if t.strip())
    except ValueError:
        shape = ()
    if not shape or any(d < 1 for d in shape):
        raise OptionError(f"--input-shape {text!r} is not a shape; expected positive integers such as 28,28,1")
    return shape


def _progress(total: int, label: str) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        transient=True, disable=not sys.stderr.isatty() or total < 2,
        console=__import__("rich.console", fromlist=["Console"]).Console(stderr=True),
    )


@app.command()
def inspect(
    model: ModelArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of layers.")] = False,
    input_shape: ShapeOpt = None,
    unsafe: UnsafeOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Print the layer table: path, class, output shape, parameters, kernel/stride/padding, receptive field."""
    _setup(verbose)
    from convscope.models.inspect import format_table
    from convscope.present.run import resolve_cli

    info = resolve_cli(model, input_shape=_shape(input_shape), safe_mode=not unsafe).info
    if as_json:
        typer.echo(json.dumps(info.to_dicts(), indent=2))
    else:
        typer.echo(format_table(info))


@app.command()
def maps(
    model: ModelArg,
    inputs: Annotated[list[str], typer.Argument(help="Images, folders of images, or .npy/.npz arrays (already preprocessed).")],
    layer: Annotated[Optional[list[str]], typer.Option("--layer", "-l", help="Layer path, index, glob or class:NAME; repeatable. Default: every conv layer.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("convscope-maps"),
    save_arrays: Annotated[bool, typer.Option("--save-arrays", help="Also write OUT/activations.npz (raw activations, keys = layer paths).")] = False,
    norm: Annotated[str, typer.Option(help="channel | layer | symmetric | percentile | raw")] = "channel",
    cmap: Annotated[Optional[str], typer.Option(help="gray | viridis | magma | diverging (default: gray; diverging for symmetric)")] = None,
    channels: Annotated[Optional[str], typer.Option(help="all | N (first N) | topN[:mean|:max] | list such as 0,3,8-15")] = None,
    value_range: Annotated[Optional[str], typer.Option("--range", help="Input pixel range LO,HI for images, e.g. 0,1 or -1,1.")] = None,
    mean: Annotated[Optional[str], typer.Option(help="Per-channel mean, e.g. 0.485,0.456,0.406 (with --std; after scaling to 0..1).")] = None,
    std: Annotated[Optional[str], typer.Option(help="Per-channel std, e.g. 0.229,0.224,0.225.")] = None,
    invert: Annotated[bool, typer.Option(help="Invert images (dark-on-light digits for an MNIST model).")] = False,
    overlay: Annotated[Optional[str], typer.Option(help="Also write the channel mean ('mean') or channel N overlaid on the input.")] = None,
    cols: Annotated[Optional[int], typer.Option(help="Grid columns.")] = None,
    scale: Annotated[Optional[int], typer.Option(help="Integer upscaling of each map.")] = None,
    max_channels: Annotated[int, typer.Option(help="At most this many channels per grid.")] = 64,
    no_labels: Annotated[bool, typer.Option("--no-labels", help="No channel numbers.")] = False,
    batch_size: Annotated[int, typer.Option(help="Inputs per forward pass (bounds memory).")] = 32,
    input_shape: ShapeOpt = None,
    unsafe: UnsafeOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Write one feature-map grid PNG per (layer, input) under OUT and print each path written."""
    _setup(verbose)
    from convscope.present.maps import GridOptions
    from convscope.present.run import resolve_cli, run_maps, validate_grid_options

    grid = GridOptions(norm=norm, cmap=cmap, channels=channels, cols=cols, scale=scale, labels=not no_labels,
                       max_channels=max_channels, overlay=overlay)
    validate_grid_options(grid)  # option errors answer before the model is loaded
    shape = _shape(input_shape)
    resolved = resolve_cli(model, value_range=value_range, mean=mean, std=std, invert=invert, input_shape=shape,
                           safe_mode=not unsafe)
    written = run_maps(resolved, inputs, layers=layer, out=out, grid=grid, save_arrays=save_arrays,
                       batch_size=batch_size, input_shape=shape, progress=_progress)
    for path in written:
        typer.echo(str(path))


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("convscope-demo"),
    model: Annotated[str, typer.Option("--model", "-m", help="mnist-cnn (bundled) or efficientnet-lite0 "
                                       "(ImageNet photos, Grad-CAM; needs the imagenet extra).")] = "mnist-cnn",
    verbose: VerboseOpt = False,
) -> None:
    """Feature maps of a zoo model on real inputs (MNIST digits by default), with a guide of where to look."""
    _setup(verbose)
    from convscope.present.demo import run_demo

    typer.echo(run_demo(out, model=model))


def _register_extensions() -> None:
    """Add the commands that live in their own modules (each is light to import: typer only)."""
    import importlib
    import importlib.util

    for name in ("cli_why", "cli_scan", "cli_serve", "cli_report"):
        if importlib.util.find_spec(f"convscope.present.{name}") is not None:
            importlib.import_module(f"convscope.present.{name}").register(app)


_register_extensions()


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: run the app, turning convscope errors into one line + exit 2."""
    try:
        app(args=argv, standalone_mode=False)
    except ConvscopeError as exc:
        typer.echo(f"convscope: error: {exc}", err=True)
        return 2
    except KeyboardInterrupt:
        typer.echo("convscope: interrupted", err=True)
        return 130
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            return exc.exit_code
        if isinstance(exc, click.exceptions.Exit):
            return exc.exit_code
        if isinstance(exc, click.exceptions.Abort):
            return 1
        raise
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
