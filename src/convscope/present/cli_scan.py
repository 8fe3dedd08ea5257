"""The ``convscope scan`` command, added to the main app by :func:`register`.

Importing this module is light (typer only); Keras, TensorFlow and Ray load inside the command.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from convscope.present.cli_options import (
    AddressOpt,
    BatchSizeOpt,
    Command,
    CustomObjectsOpt,
    DataArg,
    EngineOpt,
    ForceOpt,
    InvertOpt,
    LayersOpt,
    ModelArg,
    NoCropsOpt,
    OutDirOpt,
    RangeOpt,
    ShapeOpt,
    SliceOpt,
    StrictOpt,
    TokensOpt,
    TopOpt,
    UnsafeOpt,
    VerboseOpt,
    WindowOpt,
    default_out,
)

ResumeOpt = Annotated[
    bool,
    typer.Option(
        "--resume",
        help="Continue the interrupted scan checkpointed next to --out (same model, data and options); "
        "the results are the same as an uninterrupted scan's.",
    ),
]
CheckpointEveryOpt = Annotated[
    int | None,
    typer.Option(
        "--checkpoint-every",
        metavar="N",
        min=0,
        help="Save a checkpoint every N batches (default: at most once a minute; 0 = never). "
        "One is also saved on Ctrl-C.",
    ),
]
QuietOpt = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        help="For scripts: no progress bar and no summary on stdout (warnings and errors still go to "
        "stderr; the results are in OUT).",
    ),
]
FastDecodeOpt = Annotated[
    bool,
    typer.Option(
        "--fast-decode",
        help="Decode JPEGs at 1/2, 1/4 or 1/8 size where that stays at least the model's input size "
        "(faster; within a few 8-bit levels of the full decode after the resize, so the numbers differ "
        "slightly from the other commands'). Default: every file decoded in full.",
    ),
]


def register(app: typer.Typer) -> None:
    """Add the ``scan`` command to ``app`` (a second call on the same app does nothing)."""
    if any(getattr(c, "name", None) == "scan" for c in app.registered_commands):
        return

    @app.command(name="scan", cls=Command)
    def scan_command(
        model: ModelArg,
        data: DataArg,
        layer: LayersOpt = None,
        top: TopOpt = 16,
        out: OutDirOpt = default_out("scan"),
        engine: EngineOpt = "local",
        address: AddressOpt = None,
        batch_size: BatchSizeOpt = 64,
        value_range: RangeOpt = None,
        invert: InvertOpt = False,
        window: WindowOpt = None,
        slice_: SliceOpt = None,
        force: ForceOpt = False,
        no_crops: NoCropsOpt = False,
        strict: StrictOpt = False,
        tokens: TokensOpt = None,
        input_shape: ShapeOpt = None,
        unsafe: UnsafeOpt = False,
        custom_objects: CustomObjectsOpt = None,
        resume: ResumeOpt = False,
        checkpoint_every: CheckpointEveryOpt = None,
        fast_decode: FastDecodeOpt = False,
        quiet: QuietOpt = False,
        verbose: VerboseOpt = False,
    ) -> None:
        """Scan a dataset once: per-channel statistics, top-k images with receptive-field crops, layer health.

        Writes OUT/manifest.json, OUT/summary.txt, OUT/summary.json and OUT/layers/LAYER/ (stats.npz,
        top.png, top/chNNNN.png), then prints the summary. Read it back with convscope.scan.load_scan(OUT).
        While it runs, a checkpoint is kept in .OUT.checkpoint/ next to OUT; after a crash, kill or
        Ctrl-C, the same command with --resume continues from it.
        On a terminal a progress bar shows the layers scanned, images/s and the time left (--quiet: none).
        """
        from convscope.present.cli import _setup, _shape

        _setup(verbose)
        from convscope.models.tokens import parse_tokens
        from convscope.present.run import preprocess_options, read_options, resolve_cli
        from convscope.scan import scan

        preprocess_options(value_range, None, None)  # option errors answer before the model is loaded
        shape = _shape(input_shape)
        resolved = resolve_cli(
            model,
            value_range=value_range,
            invert=invert,
            read=read_options(window, slice_),
            input_shape=shape,
            safe_mode=not unsafe,
            custom_objects=custom_objects,
        )
        result = scan(
            resolved,
            data,
            layers=layer,
            top_k=top,
            out=out,
            engine=engine,
            address=address,
            batch_size=batch_size,
            input_shape=shape,
            safe_mode=not unsafe,
            force=force,
            crops=not no_crops,
            strict=strict,
            progress=None if quiet else scan_progress,
            custom_objects=custom_objects,
            tokens=parse_tokens(tokens),
            resume=resume,
            checkpoint_every=checkpoint_every,
            draft=fast_decode,
        )
        if not quiet:
            typer.echo(result.summary_text().rstrip())
            typer.echo(f"results: {result.path}")


def scan_progress(total: int, label: str) -> Any:
    """The scan's rich progress bar, on stderr and only when it is a terminal.

    Shows ``label`` (the layer set being scanned, e.g. ``scan 8 layers stem_conv..top_conv``), the bar,
    images done of ``total``, images/s (over the last 30 s), the time spent and the time left.
    """
    import sys

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.1f} images/s" if speed else "- images/s")

    return Progress(
        TextColumn(label.replace("{", "{{").replace("}", "}}"), markup=False),  # a key may hold [ or {
        BarColumn(),
        MofNCompleteColumn(),
        Rate(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        transient=True,
        disable=not sys.stderr.isatty() or total < 2,
        console=Console(stderr=True),
        speed_estimate_period=30.0,
    )
