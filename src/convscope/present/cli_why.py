"""``convscope cam``, ``filters`` and ``maximize``: why the model decided, and what a channel looks for."""

from __future__ import annotations

import typer

from convscope.present import cli as base
from convscope.present.cli_options import (
    CamLayerOpt,
    ClassOpt,
    Command,
    CustomObjectsOpt,
    EvaluateOpt,
    FilterModeOpt,
    InputsArg,
    InvertOpt,
    LayersOpt,
    MaskOpt,
    MaxFiltersOpt,
    MaximizeChannelsOpt,
    MaximizeLayerOpt,
    MeanOpt,
    MethodsOpt,
    ModelArg,
    OutDirOpt,
    ParamOpt,
    RangeOpt,
    RegionOpt,
    SaveArraysOpt,
    SeedOpt,
    ShapeOpt,
    SizeOpt,
    SliceOpt,
    StdOpt,
    StepsOpt,
    TargetOpt,
    TokensOpt,
    UnsafeOpt,
    VerboseOpt,
    WindowOpt,
    default_out,
)


def register(app: typer.Typer) -> None:
    """Add the three commands to ``app`` (once)."""
    if any(getattr(c, "name", None) == "cam" for c in app.registered_commands):
        return

    @app.command(cls=Command)
    def cam(
        model: ModelArg,
        inputs: InputsArg,
        method: MethodsOpt = None,
        layer: CamLayerOpt = None,
        target: TargetOpt = None,
        class_: ClassOpt = None,
        region: RegionOpt = None,
        mask: MaskOpt = None,
        tokens: TokensOpt = None,
        out: OutDirOpt = default_out("cam"),
        save_arrays: SaveArraysOpt = False,
        evaluate: EvaluateOpt = False,
        value_range: RangeOpt = None,
        mean: MeanOpt = None,
        std: StdOpt = None,
        invert: InvertOpt = False,
        window: WindowOpt = None,
        slice_: SliceOpt = None,
        input_shape: ShapeOpt = None,
        unsafe: UnsafeOpt = False,
        custom_objects: CustomObjectsOpt = None,
        verbose: VerboseOpt = False,
    ) -> None:
        """Class-activation maps / saliency overlaid on each input: DIR/INPUT/METHOD.png.

        With --evaluate, how faithful the maps are: a table, DIR/evaluation.json and DIR/evaluation.png.
        """
        base._setup(verbose)
        from convscope.attribution.api import get_method
        from convscope.models.tokens import parse_tokens
        from convscope.present.run import preprocess_options, read_options, resolve_cli
        from convscope.present.why import cam_target, run_cam

        for name in method or ["gradcam"]:
            get_method(name)  # option errors answer before the model is loaded
        goal = cam_target(target, class_, region, mask)
        preprocess_options(value_range, mean, std)
        shape = base._shape(input_shape)
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
        written, lines = run_cam(
            resolved,
            inputs,
            methods=method or ["gradcam"],
            layer=layer,
            target=goal,
            out=out,
            save_arrays=save_arrays,
            input_shape=shape,
            tokens=parse_tokens(tokens),
            evaluate=evaluate,
        )
        for line in lines:
            typer.echo(line)
        for path in written:
            typer.echo(str(path))

    @app.command(cls=Command)
    def filters(
        model: ModelArg,
        layer: LayersOpt = None,
        out: OutDirOpt = default_out("filters"),
        mode: FilterModeOpt = "auto",
        max_filters: MaxFiltersOpt = 64,
        unsafe: UnsafeOpt = False,
        custom_objects: CustomObjectsOpt = None,
        verbose: VerboseOpt = False,
    ) -> None:
        """Kernel weights of conv layers as grids (first-layer RGB kernels in color): DIR/LAYER.filters.png."""
        base._setup(verbose)
        from convscope.present.run import resolve_cli
        from convscope.present.why import run_filters

        resolved = resolve_cli(model, safe_mode=not unsafe, custom_objects=custom_objects)
        for path in run_filters(resolved, layer or [], out=out, mode=mode, max_filters=max_filters):
            typer.echo(str(path))

    @app.command(cls=Command)
    def maximize(
        model: ModelArg,
        layer: MaximizeLayerOpt,
        channels: MaximizeChannelsOpt = "16",
        steps: StepsOpt = 256,
        out: OutDirOpt = default_out("maximize"),
        param: ParamOpt = "fft",
        seed: SeedOpt = 0,
        size: SizeOpt = None,
        value_range: RangeOpt = None,
        mean: MeanOpt = None,
        std: StdOpt = None,
        input_shape: ShapeOpt = None,
        unsafe: UnsafeOpt = False,
        custom_objects: CustomObjectsOpt = None,
        verbose: VerboseOpt = False,
    ) -> None:
        """What each channel looks for: activation maximization of many channels as one batch."""
        base._setup(verbose)
        from convscope.present.run import preprocess_options, resolve_cli
        from convscope.present.why import run_maximize

        preprocess_options(value_range, mean, std)  # option errors answer before the model is loaded
        shape = base._shape(input_shape)
        resolved = resolve_cli(
            model,
            value_range=value_range,
            mean=mean,
            std=std,
            safe_mode=not unsafe,
            custom_objects=custom_objects,
        )
        bar = base._progress(steps, "maximizing")
        with bar:
            task = bar.add_task("maximizing", total=steps)
            written = run_maximize(
                resolved,
                layer,
                channels=channels,
                steps=steps,
                out=out,
                param=param,
                seed=seed,
                size=size,
                input_shape=shape,
                progress=lambda step, total, values: bar.update(task, completed=step),
            )
        for path in written:
            typer.echo(str(path))
