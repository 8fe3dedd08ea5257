"""The ``convscope compare`` and ``convscope similarity`` commands, added to the main app by :func:`register`.

Importing this module is light (typer only); Keras and TensorFlow load inside the commands.
"""

from __future__ import annotations

from typing import Annotated

import typer

from convscope.present.cli_options import (
    _MODEL_HELP,
    BatchSizeOpt,
    Command,
    CustomObjectsOpt,
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
    UnsafeOpt,
    VerboseOpt,
    WindowOpt,
    at_least,
    default_out,
)

DataA = Annotated[
    str, typer.Argument(metavar="DATA_A", help="The reference dataset (folder, .npy/.npz, 'mnist').")
]
DataB = Annotated[
    str, typer.Argument(metavar="DATA_B", help="The dataset compared with it (same input shape).")
]
TopShiftOpt = Annotated[
    int,
    typer.Option(
        "--top",
        "-k",
        metavar="K",
        callback=at_least(1, "--top"),
        help="Top images kept per channel and dataset.",
    ),
]
BinsOpt = Annotated[
    int,
    typer.Option(
        "--bins",
        metavar="N",
        callback=at_least(2, "--bins"),
        help="Histogram bins per channel, 2 to 4096 (shared by both sets).",
    ),
]
SimilarityArgs = Annotated[
    list[str],
    typer.Argument(
        metavar="MODEL_A [MODEL_B] DATA",
        help="One model (compared with itself) or two, then the data. Each model: "
        + _MODEL_HELP[0].lower()
        + _MODEL_HELP[1:],
    ),
]
LayersBOpt = Annotated[
    list[str] | None,
    typer.Option("--layer-b", metavar="LAYER", help="Layers of MODEL_B (repeatable). Default: as --layer."),
]


def compare_command(
    model: ModelArg,
    data_a: DataA,
    data_b: DataB,
    layer: LayersOpt = None,
    top: TopShiftOpt = 8,
    bins: BinsOpt = 64,
    out: OutDirOpt = default_out("compare"),
    batch_size: BatchSizeOpt = 64,
    value_range: RangeOpt = None,
    invert: InvertOpt = False,
    window: WindowOpt = None,
    slice_: SliceOpt = None,
    force: ForceOpt = False,
    no_crops: NoCropsOpt = False,
    strict: StrictOpt = False,
    input_shape: ShapeOpt = None,
    unsafe: UnsafeOpt = False,
    custom_objects: CustomObjectsOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Dataset shift: how each channel's activations differ between DATA_A and DATA_B, channels ranked.

    Writes OUT/manifest.json, OUT/summary.json, OUT/summary.txt and OUT/layers/LAYER/ (a.npz, b.npz,
    shift.npz, shift.png histograms, top_a.png / top_b.png crops), then prints the summary. Read it back
    with convscope.diagnose.load_compare(OUT).
    """
    from convscope.present.cli import _setup, _shape

    _setup(verbose)
    from convscope.diagnose import compare
    from convscope.present.run import preprocess_options, read_options, resolve_cli

    preprocess_options(value_range, None, None)
    shape = _shape(input_shape)
    resolved = resolve_cli(model, value_range=value_range, invert=invert, read=read_options(window, slice_),
                           input_shape=shape, safe_mode=not unsafe, custom_objects=custom_objects)  # fmt: skip
    result = compare(resolved, data_a, data_b, layers=layer, top_k=top, bins=bins, batch_size=batch_size,
                     out=out, force=force, crops=not no_crops, input_shape=shape, safe_mode=not unsafe,
                     custom_objects=custom_objects, strict=strict)  # fmt: skip
    typer.echo(result.summary_text().rstrip())
    typer.echo(f"results: {result.path}")


def similarity_command(
    args: SimilarityArgs,
    layer: LayersOpt = None,
    layer_b: LayersBOpt = None,
    out: OutDirOpt = default_out("similarity"),
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size",
            metavar="N",
            callback=at_least(4, "--batch-size"),
            help="Minibatch of the unbiased HSIC (4 to 1024; also the forward batch).",
        ),
    ] = 64,
    force: ForceOpt = False,
    strict: StrictOpt = False,
    input_shape: ShapeOpt = None,
    unsafe: UnsafeOpt = False,
    custom_objects: CustomObjectsOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Representation similarity: the layer x layer linear CKA matrix of MODEL_A with itself or MODEL_B.

    Writes OUT/manifest.json, OUT/cka.json, OUT/cka.png, OUT/hsic.npz and OUT/summary.txt, then prints
    the matrix. Read it back with convscope.diagnose.load_similarity(OUT).
    """
    from convscope.errors import OptionError
    from convscope.present.cli import _setup, _shape

    _setup(verbose)
    if len(args) not in (2, 3):
        raise OptionError(
            f"similarity takes MODEL_A [MODEL_B] DATA, got {len(args)} arguments: {' '.join(args)!r}"
        )
    from convscope.diagnose import similarity

    shape = _shape(input_shape)
    model_b = args[1] if len(args) == 3 else None
    result = similarity(args[0], args[-1], model_b=model_b, layers=layer, layers_b=layer_b, batch_size=batch_size,
                        out=out, force=force, input_shape=shape, safe_mode=not unsafe,
                        custom_objects=custom_objects, strict=strict)  # fmt: skip
    typer.echo(result.summary_text().rstrip())
    typer.echo(f"results: {result.path}")


def register(app: typer.Typer) -> None:
    """Add ``compare`` and ``similarity`` to ``app`` (a second call does nothing)."""
    names = {info.name for info in app.registered_commands}
    if "compare" not in names:
        app.command(name="compare", cls=Command)(compare_command)
    if "similarity" not in names:
        app.command(name="similarity", cls=Command)(similarity_command)


__all__ = ["register"]
