"""The ``convscope scan`` command, added to the main app by :func:`register`.

Importing this module is light (typer only); Keras, TensorFlow and Ray load inside the command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

# Own copies of the shared option types: this module must not import cli.py at import time (cli.py
# imports it to register the command), and typer resolves annotations from this module's globals.
ModelArg = Annotated[str, typer.Argument(help="A .keras or .h5 model file, or a zoo name (mnist-cnn).")]
DataArg = Annotated[str, typer.Argument(help="A folder of images (recursive; sub-folders are labels), a .npy/.npz array file, or 'mnist' (the 5,000 bundled digits).")]
LayerOpt = Annotated[list[str] | None, typer.Option("--layer", "-l", help="Layer path, index, glob or class:NAME; repeatable. Default: every conv layer.")]
TopOpt = Annotated[int, typer.Option("--top", "-k", help="Images kept per channel (top-k by spatial max).")]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Results folder (written atomically; manifest.json last).")]
EngineOpt = Annotated[str, typer.Option(help="local (this process) or ray (a Ray cluster).")]
AddressOpt = Annotated[str | None, typer.Option(help="Ray cluster: 'auto' or ray://host:10001 (default: a new local Ray).")]
BatchOpt = Annotated[int, typer.Option(help="Images per forward pass (bounds memory).")]
RangeOpt = Annotated[str | None, typer.Option("--range", help="Input pixel range LO,HI for image files, e.g. 0,1 or -1,1.")]
InvertOpt = Annotated[bool, typer.Option(help="Invert image files (dark-on-light digits for an MNIST model).")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace a different scan (or a non-scan folder) at --out.")]
NoCropsOpt = Annotated[bool, typer.Option("--no-crops", help="Skip the receptive-field crop pictures.")]
ShapeOpt = Annotated[str | None, typer.Option("--input-shape", help="One sample's shape, e.g. 28,28,1 (unbuilt/subclassed models).")]
UnsafeOpt = Annotated[bool, typer.Option("--unsafe", help="Allow code in the model file (Lambda layers). Only for files you trust.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Log what is done.")]


def register(app: typer.Typer) -> None:
    """Add the ``scan`` command to ``app`` (a second call on the same app does nothing)."""
    if any(getattr(c, "name", None) == "scan" for c in app.registered_commands):
        return

    @app.command(name="scan")
    def scan_command(
        model: ModelArg,
        data: DataArg,
        layer: LayerOpt = None,
        top: TopOpt = 16,
        out: OutOpt = Path("convscope-scan"),
        engine: EngineOpt = "local",
        address: AddressOpt = None,
        batch_size: BatchOpt = 64,
        value_range: RangeOpt = None,
        invert: InvertOpt = False,
        force: ForceOpt = False,
        no_crops: NoCropsOpt = False,
        input_shape: ShapeOpt = None,
        unsafe: UnsafeOpt = False,
        verbose: VerboseOpt = False,
    ) -> None:
        """Scan a dataset once: per-channel statistics, top-k images with receptive-field crops, layer health.

        Writes OUT/manifest.json, OUT/summary.txt, OUT/summary.json and OUT/layers/<layer>/ (stats.npz,
        top.png, top/chNNNN.png), then prints the summary. Read it back with convscope.scan.load_scan(OUT).
        """
        from convscope.present.cli import _setup, _shape

        _setup(verbose)
        from convscope.present.run import preprocess_options, resolve_cli
        from convscope.scan import scan

        preprocess_options(value_range, None, None)  # option errors answer before the model is loaded
        shape = _shape(input_shape)
        resolved = resolve_cli(model, value_range=value_range, invert=invert, input_shape=shape, safe_mode=not unsafe)
        result = scan(
            resolved, data, layers=layer, top_k=top, out=out, engine=engine, address=address, batch_size=batch_size,
            input_shape=shape, safe_mode=not unsafe, force=force, crops=not no_crops, progress=scan_progress,
        )
        typer.echo(result.summary_text().rstrip())
        typer.echo(f"results: {result.path}")


def scan_progress(total: int, label: str) -> Any:
    """A rich progress bar with an images/s column, drawn only when stderr is a TTY."""
    import sys

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f} images/s" if speed else "- images/s")

    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), Rate(), TimeRemainingColumn(),
                    transient=True, disable=not sys.stderr.isatty() or total < 2, console=Console(stderr=True))
