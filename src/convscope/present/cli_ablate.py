"""The ``convscope ablate`` command, added to the main app by :func:`register`.

Importing this module is light (typer only); Keras loads inside the command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from convscope.present.cli_options import (
    BatchSizeOpt,
    Command,
    CustomObjectsOpt,
    DataArg,
    ForceOpt,
    InvertOpt,
    MaximizeLayerOpt,
    ModelArg,
    OutDirOpt,
    RangeOpt,
    ShapeOpt,
    StrictOpt,
    UnsafeOpt,
    VerboseOpt,
    default_out,
)

ModeOpt = Annotated[
    str,
    typer.Option(
        "--mode",
        metavar="MODE",
        help="How a channel is removed: zero (its map set to 0) or mean (set to its mean over the dataset "
        "and all positions).",
    ),
]
ScanDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--scan",
        metavar="DIR",
        help="A scan of the same data (convscope scan): its top-k images make the crops and its channel "
        "means serve --mode mean. Default: computed.",
    ),
]
CropsOpt = Annotated[
    int, typer.Option("--top", metavar="K", help="Crops per channel when no --scan is given.", min=1)
]
ListedOpt = Annotated[
    int, typer.Option("--listed", metavar="N", help="Channels listed (and drawn) per class.", min=1)
]


def register(app: typer.Typer) -> None:
    """Add the ``ablate`` command to ``app`` (a second call on the same app does nothing)."""
    if any(getattr(c, "name", None) == "ablate" for c in app.registered_commands):
        return

    @app.command(name="ablate", cls=Command)
    def ablate_command(
        model: ModelArg,
        data: DataArg,
        layer: MaximizeLayerOpt,
        mode: ModeOpt = "zero",
        out: OutDirOpt = default_out("ablate"),
        scan: ScanDirOpt = None,
        top: CropsOpt = 8,
        listed: ListedOpt = 3,
        batch_size: BatchSizeOpt = 128,
        value_range: RangeOpt = None,
        invert: InvertOpt = False,
        force: ForceOpt = False,
        strict: StrictOpt = False,
        input_shape: ShapeOpt = None,
        unsafe: UnsafeOpt = False,
        custom_objects: CustomObjectsOpt = None,
        verbose: VerboseOpt = False,
    ) -> None:
        """Remove each channel of LAYER in turn and measure its effect on every class logit and on accuracy.

        Writes OUT/manifest.json, OUT/ablation.npz, OUT/summary.txt, OUT/channels/chNNNN.png (top-k crops
        of the listed channels) and OUT/classes/classNNNN.png, then prints the summary: the channels whose
        removal hurts each class most. Read it back with convscope.diagnose.load_ablation(OUT).
        """
        from convscope.present.cli import _setup, _shape

        _setup(verbose)
        from convscope.diagnose import ablate
        from convscope.diagnose.ablation import MODES
        from convscope.errors import OptionError
        from convscope.present.cli_scan import scan_progress
        from convscope.present.run import preprocess_options, resolve_cli

        if mode not in MODES:  # answers before the model is loaded
            raise OptionError(f"--mode {mode!r} is not valid; expected one of {', '.join(MODES)}")
        preprocess_options(value_range, None, None)
        shape = _shape(input_shape)
        resolved = resolve_cli(
            model,
            value_range=value_range,
            invert=invert,
            input_shape=shape,
            safe_mode=not unsafe,
            custom_objects=custom_objects,
        )
        result = ablate(
            resolved,
            data,
            layer=layer,
            mode=mode,
            out=out,
            scan=scan,
            batch_size=batch_size,
            top_k=top,
            listed=listed,
            input_shape=shape,
            safe_mode=not unsafe,
            strict=strict,
            force=force,
            progress=scan_progress,
        )
        typer.echo(result.summary_text(listed).rstrip())
        typer.echo(f"results: {result.path}")
