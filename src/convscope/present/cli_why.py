"""``convscope cam``, ``filters`` and ``maximize``: why the model decided, and what a channel looks for."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from convscope.present import cli as base


def register(app: typer.Typer) -> None:
    """Add the three commands to ``app`` (once)."""
    if any(getattr(c, "name", None) == "cam" for c in app.registered_commands):
        return

    @app.command()
    def cam(
        model: base.ModelArg,
        inputs: Annotated[list[str], typer.Argument(help="Images, folders of images, or .npy/.npz arrays.")],
        method: Annotated[Optional[list[str]], typer.Option("--method", "-m", help="gradcam | gradcam++ | layercam | scorecam | saliency | smoothgrad | integrated_gradients; repeatable.")] = None,
        layer: Annotated[Optional[str], typer.Option("--layer", "-l", help="Target layer for CAM methods (default: the last spatial layer feeding the head).")] = None,
        target: Annotated[Optional[str], typer.Option("--class", help="Class index to explain, or top1 (default).")] = None,
        out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("convscope-cam"),
        save_arrays: Annotated[bool, typer.Option("--save-arrays", help="Also write OUT/cam.npz: maps at input resolution, one key per method (+ <method>_raw).")] = False,
        value_range: Annotated[Optional[str], typer.Option("--range", help="Input pixel range LO,HI (default: the zoo model's, else 0,1).")] = None,
        mean: Annotated[Optional[str], typer.Option(help="Per-channel mean (with --std).")] = None,
        std: Annotated[Optional[str], typer.Option(help="Per-channel std (with --mean).")] = None,
        invert: Annotated[bool, typer.Option(help="Invert images.")] = False,
        input_shape: base.ShapeOpt = None,
        unsafe: base.UnsafeOpt = False,
        verbose: base.VerboseOpt = False,
    ) -> None:
        """Class-activation maps / saliency overlaid on each input: OUT/<input>/<method>.png."""
        base._setup(verbose)
        from convscope.attribution.api import get_method
        from convscope.present.run import preprocess_options, resolve_cli
        from convscope.present.why import parse_target, run_cam

        for name in method or ["gradcam"]:
            get_method(name)  # option errors answer before the model is loaded
        parse_target(target)
        preprocess_options(value_range, mean, std)
        shape = base._shape(input_shape)
        resolved = resolve_cli(model, value_range=value_range, mean=mean, std=std, invert=invert,
                               input_shape=shape, safe_mode=not unsafe)
        written, lines = run_cam(resolved, inputs, methods=method or ["gradcam"], layer=layer, target=target,
                                 out=out, save_arrays=save_arrays, input_shape=shape)
        for line in lines:
            typer.echo(line)
        for path in written:
            typer.echo(str(path))

    @app.command()
    def filters(
        model: base.ModelArg,
        layer: Annotated[Optional[list[str]], typer.Option("--layer", "-l", help="Conv layer(s); default: every conv layer.")] = None,
        out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("convscope-filters"),
        mode: Annotated[str, typer.Option(help="auto | rgb | channels | norm")] = "auto",
        max_filters: Annotated[int, typer.Option(help="At most this many filters per grid.")] = 64,
        unsafe: base.UnsafeOpt = False,
        verbose: base.VerboseOpt = False,
    ) -> None:
        """Kernel weights of conv layers as grids (first-layer RGB kernels in color): OUT/<layer>.filters.png."""
        base._setup(verbose)
        from convscope.present.run import resolve_cli
        from convscope.present.why import run_filters

        resolved = resolve_cli(model, safe_mode=not unsafe)
        for path in run_filters(resolved, layer or [], out=out, mode=mode, max_filters=max_filters):
            typer.echo(str(path))

    @app.command()
    def maximize(
        model: base.ModelArg,
        layer: Annotated[str, typer.Option("--layer", "-l", help="Layer whose channels to visualize.")],
        channels: Annotated[str, typer.Option(help="N (first N) or a list such as 0-7,12.")] = "16",
        steps: Annotated[int, typer.Option(help="Optimization steps.")] = 256,
        out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("convscope-maximize"),
        param: Annotated[str, typer.Option(help="fft (decorrelated Fourier) | pixel")] = "fft",
        seed: Annotated[int, typer.Option(help="Random seed (equal seeds, equal pictures).")] = 0,
        size: Annotated[Optional[int], typer.Option(help="Image size (default: the model's input size).")] = None,
        value_range: Annotated[Optional[str], typer.Option("--range", help="Model input range LO,HI (default: the zoo model's, else 0,1).")] = None,
        mean: Annotated[Optional[str], typer.Option(help="Per-channel mean (with --std).")] = None,
        std: Annotated[Optional[str], typer.Option(help="Per-channel std (with --mean).")] = None,
        input_shape: base.ShapeOpt = None,
        unsafe: base.UnsafeOpt = False,
        verbose: base.VerboseOpt = False,
    ) -> None:
        """What each channel looks for: activation maximization of many channels as one batch."""
        base._setup(verbose)
        from convscope.present.run import preprocess_options, resolve_cli
        from convscope.present.why import run_maximize

        preprocess_options(value_range, mean, std)  # option errors answer before the model is loaded
        shape = base._shape(input_shape)
        resolved = resolve_cli(model, value_range=value_range, mean=mean, std=std, safe_mode=not unsafe)
        bar = base._progress(steps, "maximizing")
        with bar:
            task = bar.add_task("maximizing", total=steps)
            written = run_maximize(resolved, layer, channels=channels, steps=steps, out=out, param=param, seed=seed,
                                   size=size, input_shape=shape,
                                   progress=lambda step, total, values: bar.update(task, completed=step))
        for path in written:
            typer.echo(str(path))
