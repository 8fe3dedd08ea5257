"""The ``convscope serve`` command: the browser explorer.

Kept apart from :mod:`convscope.present.cli` and added with :func:`register`, so the CLI stays light:
this module imports typer only; Keras, Starlette and uvicorn load inside the command.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from convscope.errors import OptionError
from convscope.present.cli_options import (
    Command,
    CustomObjectsOpt,
    InvertOpt,
    MeanOpt,
    RangeOpt,
    ShapeOpt,
    SliceOpt,
    StdOpt,
    TokensOpt,
    UnsafeOpt,
    WindowOpt,
    at_least,
    checked,
)

log = logging.getLogger(__name__)


def _port(value: int) -> None:
    if not 0 <= value <= 65535:
        raise OptionError(f"--port {value} is not a TCP port; use 1..65535 (or 0 for any free port)")


def _upload_mb(value: float) -> None:
    if not value > 0:
        raise OptionError(f"--max-upload-mb must be positive, got {value}")


ModelArg = Annotated[
    str | None,
    typer.Argument(
        metavar="MODEL",
        help="A .keras or .h5 file, or a zoo name (mnist-cnn, efficientnet-lite0). "
        "Default: mnist-cnn with its sample digits.",
        show_default=False,
    ),
]
ImagesOpt = Annotated[
    Path | None,
    typer.Option(
        "--images",
        metavar="DIR",
        help="A folder of images to show in the gallery (only files directly inside it are served).",
    ),
]
HostOpt = Annotated[
    str,
    typer.Option(
        "--host", metavar="HOST", help="Address to listen on. The default serves this machine only."
    ),
]
PortOpt = Annotated[
    int, typer.Option("--port", metavar="PORT", callback=checked(_port), help="TCP port (0 = any free port).")
]


def serve(
    model: ModelArg = None,
    images: ImagesOpt = None,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8050,
    labels: Annotated[
        Path | None,
        typer.Option(
            "--labels", metavar="FILE", help="Text file of class names, one per line, in class order."
        ),
    ] = None,
    value_range: RangeOpt = None,
    mean: MeanOpt = None,
    std: StdOpt = None,
    invert: InvertOpt = False,
    window: WindowOpt = None,
    slice_: SliceOpt = None,
    max_upload_mb: Annotated[
        float,
        typer.Option(
            "--max-upload-mb",
            metavar="MB",
            callback=checked(_upload_mb),
            help="Largest accepted upload, in MB.",
        ),
    ] = 8.0,
    max_pixels: Annotated[
        int,
        typer.Option(
            "--max-pixels",
            metavar="N",
            callback=at_least(1, "--max-pixels"),
            help="Largest accepted image, in pixels (checked before decoding).",
        ),
    ] = 25_000_000,
    cache_mb: Annotated[
        int,
        typer.Option(
            "--cache-mb",
            metavar="MB",
            callback=at_least(1, "--cache-mb"),
            help="Memory for cached activations, in MB.",
        ),
    ] = 512,
    compare: Annotated[
        Path | None,
        typer.Option(
            "--compare",
            metavar="DIR",
            help="A folder written by `convscope compare` for this model: channels show their dataset shift.",
        ),
    ] = None,
    tokens: TokensOpt = None,
    ablate: Annotated[
        Path | None,
        typer.Option(
            "--ablate",
            metavar="DIR",
            help="A folder written by `convscope ablate`: the channel panel of its layer shows each "
            "channel's ablation effect.",
        ),
    ] = None,
    input_shape: ShapeOpt = None,
    unsafe: UnsafeOpt = False,
    custom_objects: CustomObjectsOpt = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log what is done, and every request.")
    ] = False,
) -> None:
    """Explore a model in the browser: layers, feature maps, channels over the input, predictions."""
    from convscope.present.cli import _setup, _shape

    _setup(verbose)
    if max_upload_mb <= 0 or max_pixels < 1 or cache_mb < 1:
        raise OptionError(
            f"--max-upload-mb ({max_upload_mb}), --max-pixels ({max_pixels}) and --cache-mb "
            f"({cache_mb}) must be positive"
        )
    if images is not None and not images.is_dir():
        raise OptionError(f"--images {str(images)!r} is not a folder")
    try:
        from convscope.present.web.app import create_app
        from convscope.present.web.server import allowed_hosts, bind, build_explorer, is_loopback, run, url_of
    except ImportError as err:  # starlette / uvicorn missing
        raise OptionError(
            f"convscope serve needs the web extra: pip install 'convscope[web]' ({err})"
        ) from None
    from convscope.models.tokens import parse_tokens
    from convscope.present.run import preprocess_options, read_options, resolve_cli

    preprocess_options(value_range, mean, std)  # option errors answer before anything is bound or loaded
    from convscope.diagnose import load_ablation, load_compare

    # bad folders answer before the port is bound
    shifts = load_compare(compare) if compare is not None else None
    ablation = load_ablation(ablate) if ablate is not None else None
    grid = parse_tokens(tokens)
    sock = bind(host, port)  # fail fast on a busy port, before loading anything
    shape = _shape(input_shape)
    resolved = resolve_cli(
        model or "mnist-cnn",
        value_range=value_range,
        mean=mean,
        std=std,
        invert=invert,
        read=read_options(window, slice_),
        input_shape=shape,
        safe_mode=not unsafe,
        labels=str(labels) if labels else None,
        custom_objects=custom_objects,
    )
    try:
        explorer = build_explorer(
            resolved,
            images=images,
            input_shape=shape,
            max_pixels=max_pixels,
            cache_mb=cache_mb,
            tokens=grid,
            compare=shifts,
            ablate=ablation,
        )
    except BaseException:
        sock.close()
        raise
    app = create_app(
        explorer, max_upload_bytes=int(max_upload_mb * (1 << 20)), allowed_hosts=allowed_hosts(host)
    )
    if not is_loopback(host):
        log.warning("listening on %s: anyone who can reach this machine can use the explorer", host)
    typer.echo(
        f"convscope: exploring {explorer.title} ({len(explorer.gallery.list())} images) at "
        f"{url_of(sock)}  (Ctrl+C to stop)"
    )
    run(app, sock, verbose=verbose)


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command to ``app`` (a second call does nothing)."""
    for info in app.registered_commands:
        if info.name == "serve" or (info.name is None and info.callback is serve):
            return
    app.command(name="serve", cls=Command)(serve)
