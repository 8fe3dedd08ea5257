"""Every argument and option of the ``convscope`` commands, declared once, and the command classes.

Each name below is a typer ``Annotated`` alias that a command puts in its signature (``model: ModelArg``);
its help text is true for every command that uses it and its metavar names the value (``MODEL``,
``LO,HI``, ``SPEC``), so ``--help`` shows no Python type tags. Options whose value can be checked
without a model are checked while the command line is parsed (a click callback), i.e. before the
command body runs and before Keras or TensorFlow is imported: ``--norm fancy`` or ``--range 2,1``
answer at once. The checks call light functions of the library (numpy and Pillow at most), so their
messages are the library's own.

Importing this module imports typer only.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from convscope.errors import OptionError

T = TypeVar("T")

#: Every command writes under ``convscope-out/<command>`` unless told otherwise.
OUT_ROOT = Path("convscope-out")


def default_out(command: str) -> Path:
    """The default output folder of ``command``: ``convscope-out/<command>``."""
    return OUT_ROOT / command


# -- checks run while parsing (light: they import numpy/Pillow-level modules at most) ---------------------
def checked(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A click callback that runs ``check`` on a given value (each item of a list) and passes it through."""

    def callback(value: Any) -> Any:
        if value is None:
            return value
        for item in value if isinstance(value, (list, tuple)) else [value]:
            check(item)
        return value

    return callback


def at_least(low: int, option: str) -> Callable[[Any], Any]:
    """A click callback refusing numbers below ``low`` with ``"OPTION must be >= LOW, got VALUE"``."""

    def check(value: Any) -> None:
        if value < low:
            raise OptionError(f"{option} must be an integer >= {low}, got {value}")

    return checked(check)


def _norm(value: str) -> None:
    from convscope.render.normalize import check_mode

    check_mode(value)


def _cmap(value: str) -> None:
    from convscope.render.colormap import resolve_cmap

    resolve_cmap(value)


def _channels(value: str) -> None:
    from convscope.render.channels import check_spec

    check_spec(value)


def _channels_no_top(value: str) -> None:
    from convscope.render.channels import check_spec

    check_spec(value, allow_top=False)


def _range(value: str) -> None:
    from convscope.data.preprocess import parse_range

    parse_range(value)


def _window(value: str) -> None:
    from convscope.data.window import parse_window

    parse_window(value)


def _slice(value: str) -> None:
    from convscope.data.readopts import parse_slice

    parse_slice(value)


def parse_floats(text: str, option: str) -> tuple[float, ...]:
    """``"0.485,0.456,0.406"`` -> a tuple of floats; :class:`OptionError` naming ``option`` otherwise."""
    try:
        return tuple(float(t) for t in text.split(","))
    except ValueError:
        raise OptionError(
            f"{option} {text!r} is not a list of numbers; expected e.g. 0.485,0.456,0.406"
        ) from None


def _method(value: str) -> None:
    from convscope.attribution.api import get_method

    get_method(value)


def _class(value: str) -> None:
    from convscope.present.why import parse_target

    parse_target(value, "--class")


def _target(value: str) -> None:
    from convscope.present.why import parse_target

    parse_target(value)


def _region(value: str) -> None:
    from convscope.data.pairs import parse_ints
    from convscope.present.why import REGION_HELP

    parse_ints(value, 4, "--region", REGION_HELP)


def _tokens(value: str) -> None:
    from convscope.models.tokens import parse_tokens

    parse_tokens(value)


def _overlay(value: str) -> None:
    if value != "mean" and not value.isdigit():
        raise OptionError(f"--overlay {value!r} is not valid; expected 'mean' or a channel index such as 3")


def _filter_mode(value: str) -> None:
    from convscope.render.filters import MODES

    if value not in MODES:
        raise OptionError(f"unknown filter mode {value!r}; valid: {', '.join(MODES)}")


def _param(value: str) -> None:
    from convscope.errors import nearest
    from convscope.featvis.param import PARAMS

    if value.strip().lower() not in PARAMS:
        raise OptionError(
            f"--param {value!r} is not valid; expected one of {', '.join(PARAMS)} "
            f"(did you mean {nearest(value, PARAMS, 1)[0]}?)"
        )


def _engine(value: str) -> None:
    from convscope.scan.run import ENGINES

    if value not in ENGINES:
        raise OptionError(f"--engine {value!r} is not valid; expected one of {', '.join(ENGINES)}")


def parse_shape(text: str | None) -> tuple[int, ...] | None:
    """``"28,28,1"`` (or ``28x28x1``) -> ``(28, 28, 1)``; ``None`` stays ``None``.

    Raises:
        OptionError: Not a list of positive integers.
    """
    if text is None:
        return None
    try:
        shape = tuple(int(t) for t in text.replace("x", ",").split(",") if t.strip())
    except ValueError:
        shape = ()
    if not shape or any(d < 1 for d in shape):
        raise OptionError(
            f"--input-shape {text!r} is not a shape; expected positive integers such as 28,28,1"
        )
    return shape


def _mean_std_pairing(params: dict[str, Any]) -> None:
    if "mean" in params and "std" in params:
        mean, std = params["mean"], params["std"]
        if (mean is None) != (std is None):
            raise OptionError(
                "--mean and --std go together; give both (e.g. --mean 0.5 --std 0.5) or neither"
            )
        if mean is not None and len(parse_floats(mean, "--mean")) != len(parse_floats(std, "--std")):
            raise OptionError(f"--mean {mean!r} and --std {std!r} have different lengths")


# -- arguments ------------------------------------------------------------------------------------------
_MODEL_HELP = "A .keras or .h5 file, or a zoo name (mnist-cnn, efficientnet-lite0)."
ModelArg = Annotated[str, typer.Argument(metavar="MODEL", help=_MODEL_HELP, show_default=False)]
InputsArg = Annotated[
    list[str],
    typer.Argument(
        metavar="INPUT...",
        help="Images, folders of images, or .npy/.npz arrays (arrays are taken as preprocessed).",
    ),
]
DataArg = Annotated[
    str,
    typer.Argument(
        metavar="DATA",
        help="A folder of images (recursive; sub-folders are labels), a .npy/.npz array file, "
        "or 'mnist' (the 5,000 bundled digits).",
    ),
]

# -- model loading ----------------------------------------------------------------------------------------
UnsafeOpt = Annotated[
    bool,
    typer.Option("--unsafe", help="Allow code in the model file (Lambda layers). Only for files you trust."),
]
ShapeOpt = Annotated[
    str | None,
    typer.Option(
        "--input-shape",
        metavar="SHAPE",
        callback=checked(parse_shape),
        help="One sample's shape, e.g. 28,28,1 (unbuilt or subclassed models).",
    ),
]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Log what is done.")]
CustomObjectsOpt = Annotated[
    str | None,
    typer.Option(
        "--custom-objects",
        metavar="FILE.py",
        help="A Python file defining the model's custom layers/functions; it is imported (runs code). Only for files you trust.",
    ),
]

# -- preprocessing ----------------------------------------------------------------------------------------
RangeOpt = Annotated[
    str | None,
    typer.Option(
        "--range",
        metavar="LO,HI",
        callback=checked(_range),
        help="Model input range for image files, e.g. 0,1 or -1,1 (default: a zoo model's own preprocessing, "
        "else 0,1).",
    ),
]
MeanOpt = Annotated[
    str | None,
    typer.Option(
        "--mean",
        metavar="MEAN",
        callback=checked(lambda v: parse_floats(v, "--mean")),
        help="Per-channel mean after scaling to 0..1, e.g. 0.485,0.456,0.406 (with --std).",
    ),
]
StdOpt = Annotated[
    str | None,
    typer.Option(
        "--std",
        metavar="STD",
        callback=checked(lambda v: parse_floats(v, "--std")),
        help="Per-channel std, e.g. 0.229,0.224,0.225 (with --mean).",
    ),
]
WindowOpt = Annotated[
    str | None,
    typer.Option(
        "--window",
        metavar="LEVEL,WIDTH",
        callback=checked(_window),
        help="Show values LEVEL-WIDTH/2..LEVEL+WIDTH/2 black..white, as radiology viewers do (DICOM: in "
        "physical units, e.g. 40,400 for CT soft tissue; default: the file's own window). Then --range applies.",
    ),
]
SliceOpt = Annotated[
    str | None,
    typer.Option(
        "--slice",
        metavar="AXIS[:INDEX]",
        callback=checked(_slice),
        help="For a 2D model and a volume (NIfTI, DICOM series, TIFF stack): one slice AXIS:INDEX, or every "
        "slice along AXIS (default: every slice along the acquisition axis).",
    ),
]
InvertOpt = Annotated[
    bool,
    typer.Option(
        "--invert/--no-invert", help="Invert image files (dark-on-light digits for an MNIST model)."
    ),
]
BatchSizeOpt = Annotated[
    int,
    typer.Option(
        "--batch-size",
        metavar="N",
        callback=at_least(1, "--batch-size"),
        help="Inputs per forward pass (bounds memory).",
    ),
]

# -- layers and pictures ----------------------------------------------------------------------------------
LayersOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--layer",
        "-l",
        metavar="LAYER",
        help="Layer path, name, index, glob or class:NAME; repeatable. Default: every conv layer.",
    ),
]
CamLayerOpt = Annotated[
    str | None,
    typer.Option(
        "--layer",
        "-l",
        metavar="LAYER",
        help="Target layer of CAM methods (default: the last spatial layer feeding the classifier head).",
    ),
]
MaximizeLayerOpt = Annotated[
    str,
    typer.Option(
        "--layer", "-l", metavar="LAYER", help="The layer whose channels to visualize (path, name or index)."
    ),
]
NormOpt = Annotated[
    str,
    typer.Option(
        "--norm",
        metavar="MODE",
        callback=checked(_norm),
        help="Normalization: channel | layer | symmetric | percentile | raw.",
    ),
]
CmapOpt = Annotated[
    str | None,
    typer.Option(
        "--cmap",
        metavar="NAME",
        callback=checked(_cmap),
        help="gray | viridis | magma | diverging (default: gray; diverging for --norm symmetric).",
    ),
]
ChannelsOpt = Annotated[
    str | None,
    typer.Option(
        "--channels",
        metavar="SPEC",
        callback=checked(_channels),
        help="all | N (the first N) | topN[:mean|:max] | a list such as 0,3,8-15.",
    ),
]
MaximizeChannelsOpt = Annotated[
    str,
    typer.Option(
        "--channels",
        metavar="SPEC",
        callback=checked(_channels_no_top),
        help="N (the first N), all, or a list such as 0-7,12.",
    ),
]
MaxChannelsOpt = Annotated[
    int,
    typer.Option(
        "--max-channels",
        metavar="N",
        callback=at_least(1, "--max-channels"),
        help="At most this many channels per layer picture.",
    ),
]
OverlayOpt = Annotated[
    str | None,
    typer.Option(
        "--overlay",
        metavar="mean|N",
        callback=checked(_overlay),
        help="Also write the channel mean ('mean') or channel N overlaid on the input.",
    ),
]
ColsOpt = Annotated[
    int | None, typer.Option("--cols", metavar="N", callback=at_least(1, "--cols"), help="Grid columns.")
]
ScaleOpt = Annotated[
    int | None,
    typer.Option(
        "--scale", metavar="N", callback=at_least(1, "--scale"), help="Integer upscaling of each map."
    ),
]
NoLabelsOpt = Annotated[bool, typer.Option("--no-labels", help="No channel numbers.")]
TokensOpt = Annotated[
    str | None,
    typer.Option(
        "--tokens",
        metavar="HxW",
        callback=checked(_tokens),
        help="Draw token layers (T, C) as HxW maps, leading extra tokens (class token) set aside "
        "(default: the grid of the model's patch embedding, found automatically).",
    ),
]

# -- output -----------------------------------------------------------------------------------------------
OutDirOpt = Annotated[Path, typer.Option("--out", "-o", metavar="DIR", help="Output folder.")]
OutFileOpt = Annotated[
    Path, typer.Option("--out", "-o", metavar="FILE", help="The HTML file to write (replaced if it exists).")
]
SaveArraysOpt = Annotated[
    bool,
    typer.Option("--save-arrays", help="Also write the raw arrays as one .npz file in the output folder."),
]
ForceOpt = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Replace an earlier convscope result (or an empty folder) at --out; never anything else.",
    ),
]
StrictOpt = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="Stop at the first unreadable file instead of skipping it (skipped files are listed).",
    ),
]

# -- attribution and feature visualization -------------------------------------------------------------
MethodsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--method",
        "-m",
        metavar="METHOD",
        callback=checked(_method),
        help="gradcam | gradcampp | layercam | scorecam | saliency | smoothgrad | integrated_gradients "
        "(aliases such as gradcam++ accepted); repeatable. Default: gradcam.",
    ),
]
EvaluateOpt = Annotated[
    bool,
    typer.Option(
        "--evaluate",
        help="Also measure how faithful the maps are (deletion/insertion AUC, ROAD, Average Drop) beside "
        "random maps: prints a table, writes evaluation.json and evaluation.png.",
    ),
]
ClassOpt = Annotated[
    str | None,
    typer.Option(
        "--class",
        metavar="IDX|top1",
        callback=checked(_class),
        help="Class index to explain, or top1 (default); same as --target class:IDX.",
    ),
]
TargetOpt = Annotated[
    str | None,
    typer.Option(
        "--target",
        metavar="SPEC",
        callback=checked(_target),
        help="What to explain: top1 (default) | class:IDX | output:NAME | output:NAME[IDX] | "
        "output:NAME[IDX,CLS] (multi-output models) | seg:CLS (per-pixel outputs; see --region, --mask).",
    ),
]
RegionOpt = Annotated[
    str | None,
    typer.Option(
        "--region",
        metavar="X0,Y0,X1,Y1",
        callback=checked(_region),
        help="For --target seg:CLS: sum the class over this box (input pixels; default: the pixels "
        "predicted as CLS).",
    ),
]
MaskOpt = Annotated[
    Path | None,
    typer.Option(
        "--mask",
        metavar="FILE.png",
        help="For --target seg:CLS: sum the class over the nonzero pixels of this image (input or output size).",
    ),
]
FilterModeOpt = Annotated[
    str,
    typer.Option(
        "--mode", metavar="MODE", callback=checked(_filter_mode), help="auto | rgb | channels | norm"
    ),
]
MaxFiltersOpt = Annotated[
    int,
    typer.Option(
        "--max-filters",
        metavar="N",
        callback=at_least(1, "--max-filters"),
        help="At most this many filters per grid.",
    ),
]
StepsOpt = Annotated[
    int, typer.Option("--steps", metavar="N", callback=at_least(1, "--steps"), help="Optimization steps.")
]
ParamOpt = Annotated[
    str,
    typer.Option(
        "--param", metavar="NAME", callback=checked(_param), help="fft (decorrelated Fourier) | pixel"
    ),
]
SeedOpt = Annotated[
    int, typer.Option("--seed", metavar="N", help="Random seed (equal seeds, equal pictures).")
]
SizeOpt = Annotated[
    int | None,
    typer.Option(
        "--size",
        metavar="PX",
        callback=at_least(1, "--size"),
        help="Image size (default: the model's input size).",
    ),
]

# -- scan -------------------------------------------------------------------------------------------------
TopOpt = Annotated[
    int,
    typer.Option(
        "--top",
        "-k",
        metavar="K",
        callback=at_least(1, "--top"),
        help="Images kept per channel (top-k by spatial max).",
    ),
]
EngineOpt = Annotated[
    str,
    typer.Option(
        "--engine",
        metavar="NAME",
        callback=checked(_engine),
        help="local (this process) or ray (a Ray cluster).",
    ),
]
AddressOpt = Annotated[
    str | None,
    typer.Option(
        "--address",
        metavar="ADDR",
        help="Ray cluster: 'auto' or ray://host:10001 (default: a new local Ray).",
    ),
]
NoCropsOpt = Annotated[bool, typer.Option("--no-crops", help="Skip the receptive-field crop pictures.")]


# -- command classes: help without type tags; option cross-checks before the body runs ------------------
class _Argument(TyperArgument):
    """An argument shown by its metavar alone (``MODEL``, ``[MODEL]``, ``INPUT...``)."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def _usage_display_name(self) -> str:
        name = self.metavar or self.name.upper()
        return name if self.required else f"[{name}]"


class _Option(TyperOption):
    """An option shown by its metavar (``--range LO,HI``); flags show no value at all."""

    def display_type_rich(self, ctx: Any) -> str | None:
        if self.is_flag or self.count:
            return None
        return self.metavar if self.metavar is not None else super().display_type_rich(ctx)


def _plain(param: Any) -> Any:
    if isinstance(param, TyperArgument) and not isinstance(param, _Argument):
        param.__class__ = _Argument  # same fields, only the help display differs
    elif isinstance(param, TyperOption) and not isinstance(param, _Option):
        param.__class__ = _Option
    return param


class Command(TyperCommand):
    """A convscope command: plain help, and cross-option checks (``--mean`` with ``--std``) after parsing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            _plain(param)

    def get_help_option(self, ctx: Any) -> Any:
        return _plain(super().get_help_option(ctx))

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        rest = super().parse_args(ctx, args)
        if not ctx.resilient_parsing:
            _mean_std_pairing(ctx.params)
        return rest


class Group(TyperGroup):
    """The ``convscope`` group: plain help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            _plain(param)

    def get_help_option(self, ctx: Any) -> Any:
        return _plain(super().get_help_option(ctx))


__all__ = [name for name in dir() if name.endswith(("Arg", "Opt"))] + [
    "Command",
    "Group",
    "OUT_ROOT",
    "default_out",
    "parse_floats",
    "parse_shape",
]
