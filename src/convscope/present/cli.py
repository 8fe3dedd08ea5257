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
from typing import Annotated, Any

import typer

from convscope.errors import ConvscopeError
from convscope.present.cli_options import (
    BatchSizeOpt,
    ChannelsOpt,
    CmapOpt,
    ColsOpt,
    Command,
    CustomObjectsOpt,
    Group,
    InputsArg,
    InvertOpt,
    LayersOpt,
    MaxChannelsOpt,
    MeanOpt,
    ModelArg,
    NoLabelsOpt,
    NormOpt,
    OutDirOpt,
    OverlayOpt,
    RangeOpt,
    SaveArraysOpt,
    ScaleOpt,
    ShapeOpt,
    SliceOpt,
    StdOpt,
    TokensOpt,
    UnsafeOpt,
    VerboseOpt,
    WindowOpt,
    default_out,
)
from convscope.present.cli_options import parse_shape as _shape

app = typer.Typer(
    name="convscope",
    help="See inside any Keras 3 CNN: layer tables and feature maps of every layer.",
    cls=Group,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from convscope import __version__

        typer.echo(f"convscope {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", callback=_print_version, is_eager=True),
    ] = False,
) -> None:
    """See inside any Keras 3 CNN: layer tables and feature maps of every layer."""


_NOISE = (
    "All log messages before absl::InitializeLog()",
    "oneDNN custom operations are on",
    "cpu_feature_guard",
    "rebuild TensorFlow with the appropriate compiler flags",
    "To enable the following instructions",
)


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


def _progress(total: int, label: str) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
        disable=not sys.stderr.isatty() or total < 2,
        console=__import__("rich.console", fromlist=["Console"]).Console(stderr=True),
    )


@app.command(cls=Command)
def inspect(
    model: ModelArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of layers.")] = False,
    input_shape: ShapeOpt = None,
    unsafe: UnsafeOpt = False,
    custom_objects: CustomObjectsOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Print the layer table: path, class, output shape, parameters, kernel/stride/padding, receptive field."""
    _setup(verbose)
    from convscope.models.inspect import format_table, inspect_model
    from convscope.present.run import resolve_cli

    shape = _shape(input_shape)
    resolved = resolve_cli(model, input_shape=shape, safe_mode=not unsafe, custom_objects=custom_objects)
    info = inspect_model(resolved.model, input_shape=shape, unknown_sizes=True)
    if as_json:
        typer.echo(json.dumps(info.to_dicts(), indent=2))
    else:
        typer.echo(format_table(info))


@app.command(cls=Command)
def maps(
    model: ModelArg,
    inputs: InputsArg,
    layer: LayersOpt = None,
    out: OutDirOpt = default_out("maps"),
    save_arrays: SaveArraysOpt = False,
    norm: NormOpt = "channel",
    cmap: CmapOpt = None,
    channels: ChannelsOpt = None,
    value_range: RangeOpt = None,
    mean: MeanOpt = None,
    std: StdOpt = None,
    invert: InvertOpt = False,
    window: WindowOpt = None,
    slice_: SliceOpt = None,
    overlay: OverlayOpt = None,
    cols: ColsOpt = None,
    scale: ScaleOpt = None,
    max_channels: MaxChannelsOpt = 64,
    no_labels: NoLabelsOpt = False,
    tokens: TokensOpt = None,
    batch_size: BatchSizeOpt = 32,
    input_shape: ShapeOpt = None,
    unsafe: UnsafeOpt = False,
    custom_objects: CustomObjectsOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Write one feature-map grid PNG per (layer, input) under OUT and print each path written."""
    _setup(verbose)
    from convscope.models.tokens import parse_tokens
    from convscope.present.maps import GridOptions
    from convscope.present.run import read_options, resolve_cli, run_maps, validate_grid_options

    grid = GridOptions(
        norm=norm,
        cmap=cmap,
        channels=channels,
        cols=cols,
        scale=scale,
        labels=not no_labels,
        max_channels=max_channels,
        overlay=overlay,
        tokens=parse_tokens(tokens),
    )
    validate_grid_options(grid)  # option errors answer before the model is loaded
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
    written = run_maps(
        resolved,
        inputs,
        layers=layer,
        out=out,
        grid=grid,
        save_arrays=save_arrays,
        batch_size=batch_size,
        input_shape=shape,
        progress=_progress,
    )
    for path in written:
        typer.echo(str(path))


@app.command(cls=Command)
def demo(
    out: OutDirOpt = default_out("demo"),
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            metavar="MODEL",
            help="mnist-cnn (bundled) or efficientnet-lite0 "
            "(ImageNet photos, Grad-CAM; needs the imagenet extra).",
        ),
    ] = "mnist-cnn",
    verbose: VerboseOpt = False,
) -> None:
    """Feature maps of a zoo model on real inputs (MNIST digits by default), with a guide of where to look."""
    _setup(verbose)
    from convscope.present.demo import run_demo

    typer.echo(run_demo(out, model=model))


def _register_extensions() -> None:
    """Add the commands that live in their own modules (each is light to import: typer only)."""
    from convscope.present import (
        cli_ablate,
        cli_diagnose,
        cli_report,
        cli_samples,
        cli_scan,
        cli_serve,
        cli_why,
    )

    for module in (cli_why, cli_scan, cli_diagnose, cli_ablate, cli_serve, cli_report, cli_samples):
        module.register(app)


_register_extensions()


def _given(param: Any, argv: list[str]) -> str | None:
    """The text given on the command line for option ``param`` (its last occurrence), if any."""
    found = None
    for i, token in enumerate(argv):
        for name in getattr(param, "opts", ()):
            if token == name and i + 1 < len(argv):
                found = argv[i + 1]
            elif token.startswith(name + "="):
                found = token[len(name) + 1 :]
    return found


def _usage_error(exc: Any, argv: list[str]) -> str:
    """One line for a click usage error, with the bad value and the nearest valid option or command."""
    from convscope.errors import nearest

    ctx = getattr(exc, "ctx", None)
    command = ctx.command if ctx is not None else None
    where = f"{ctx.command_path}: " if ctx is not None and ctx.parent is not None else ""
    message = " ".join(exc.format_message().split())
    param = getattr(exc, "param", None)
    given = _given(param, argv) if param is not None and message.startswith("Invalid value") else None
    if given is not None and repr(given) not in message:
        message = f"{message.rstrip('.')} (got {given!r})"
    option = getattr(exc, "option_name", None)
    if option and command is not None and "Did you mean" not in message:  # an unknown option
        names = [o for p in command.params for o in (*p.opts, *p.secondary_opts) if o.startswith("-")]
        close = nearest(option, names, 2)
        message = f"no such option {option}" + (f"; did you mean {' or '.join(close)}?" if close else "")
    elif message.startswith("No such command") and "Did you mean" not in message and command is not None:
        typo = message.split("'")[1] if "'" in message else ""
        names = list(getattr(command, "commands", {}))
        close = nearest(typo, names, 2)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        message = f"{message.rstrip('.')}{hint}"
    help_path = ctx.command_path if ctx is not None else "convscope"
    return f"convscope: error: {where}{message} (see: {help_path} --help)"


def _click_message(exc: BaseException) -> str:
    """A click error's own message (``format_message``), or ``str(exc)`` for anything else."""
    fmt = getattr(exc, "format_message", None)
    return str(fmt()) if callable(fmt) else str(exc)


def _click_errors() -> tuple[type[BaseException], ...]:
    """The click exception bases in use: typer's vendored click (typer >= 0.22) and/or the click package."""
    bases: list[type[BaseException]] = []
    if hasattr(typer, "TyperException"):
        bases.append(typer.TyperException)
    try:
        import click

        bases.append(click.exceptions.ClickException)
    except ImportError:  # pragma: no cover - typer without click
        pass
    return tuple(bases)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: usage errors and convscope errors become one line and exit code 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        app(args=args, prog_name="convscope", standalone_mode=False)
    except ConvscopeError as exc:
        typer.echo(f"convscope: error: {' '.join(str(exc).split())}", err=True)
        return 2
    except KeyboardInterrupt:
        typer.echo("convscope: interrupted", err=True)
        return 130
    except (typer.Exit, typer.Abort) as exc:
        return int(getattr(exc, "exit_code", 1))
    except _click_errors() as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `convscope`: the help, not an error
            typer.echo(_click_message(exc))
            return 0
        if hasattr(exc, "ctx") or type(exc).__name__.endswith(("UsageError", "Parameter", "Option")):
            typer.echo(_usage_error(exc, args), err=True)
            return 2
        typer.echo(f"convscope: error: {' '.join(_click_message(exc).split())}", err=True)
        return int(getattr(exc, "exit_code", 1)) or 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
