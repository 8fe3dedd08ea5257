"""``convscope samples``: a zoo model's sample inputs as image files, to try the other commands on.

Importing this module imports typer only; numpy and Pillow load inside the command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from convscope.present.cli_options import Command, OutDirOpt, default_out

COMMAND = "samples"


def write_samples(model: str, out: Path) -> list[Path]:
    """Write ``convscope.models.zoo.sample_images(model)`` under ``out``: PNG for gray digits, JPEG for photos.

    Args:
        model: A zoo name or alias (``mnist-cnn``, ``digit-unet``, ``digit-locator``, ``efficientnet-lite0``).
        out: The folder (created if missing). An existing file of the same name is replaced: these are
            copies of pictures that ship with the package.

    Returns:
        The written paths, in the zoo's order.

    Raises:
        ModelLoadError: ``model`` is not a zoo name, or has no samples.
        InputError: The package holding the photos is not installed (the message has the pip command).
        OptionError: ``out`` exists and is not a folder, or cannot be created.
    """
    from PIL import Image

    from convscope.errors import OptionError
    from convscope.models import zoo

    pictures = zoo.sample_images(model)  # bad names fail before anything is written
    if out.exists() and not out.is_dir():
        raise OptionError(f"--out {str(out)!r} is a file; give a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OptionError(f"--out {str(out)!r} cannot be created: {err.strerror or err}") from None
    written = []
    for name, pixels in pictures:
        gray = pixels.ndim == 2 or pixels.shape[-1] == 1
        image = Image.fromarray(pixels.reshape(pixels.shape[:2]) if gray else pixels, "L" if gray else "RGB")
        path = out / f"{name}.png" if gray else out / f"{name}.jpg"
        if gray:
            image.save(path)
        else:
            image.save(path, quality=95)
        written.append(path)
    return written


def samples(
    model: Annotated[
        str,
        typer.Argument(
            metavar="MODEL",
            help="A zoo name (mnist-cnn, digit-unet, digit-locator, efficientnet-lite0).",
            show_default=True,
        ),
    ] = "mnist-cnn",
    out: OutDirOpt = default_out(COMMAND),
) -> None:
    """Write a zoo model's sample inputs as image files (digits as PNG, photos as JPEG) and print each path."""
    for path in write_samples(model, out):
        typer.echo(str(path))


def register(app: typer.Typer) -> None:
    """Add the ``samples`` command to ``app`` (a second call on the same app does nothing)."""
    if any(info.name == COMMAND for info in app.registered_commands):
        return
    app.command(name=COMMAND, cls=Command)(samples)
