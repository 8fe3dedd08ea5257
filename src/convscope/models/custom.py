"""Custom Keras objects: importing the Python file that defines them, and naming the ones a file lacks.

``--custom-objects FILE.py`` (Python: ``custom_objects="FILE.py"``) *runs* that file, so it is an explicit
opt-in, like ``--unsafe``. It is imported under a private module name; its folder is on ``sys.path`` only
while it imports (so it may import its neighbours) and is removed afterwards.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import logging
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

from convscope.errors import ModelLoadError

log = logging.getLogger(__name__)

HOW = "--custom-objects FILE.py (CLI) or custom_objects={'Name': Class} or custom_objects='FILE.py' (Python)"
_KERAS_MESSAGES = (
    re.compile(r"Could not locate (?:class|function) '([^']+)'"),
    re.compile(r"Unknown [a-z_ ]+: '([^']+)'"),
)


def import_objects(path: str | Path) -> dict[str, Any]:
    """Import ``path`` (a ``.py`` file) and return the classes and functions it defines, by name.

    Classes decorated with ``@keras.saving.register_keras_serializable`` register themselves while the
    file imports; the returned dict covers undecorated ones. A file is imported once per process.

    Raises:
        ModelLoadError: Not a ``.py`` file, or it fails to import (its error in one line).
    """
    file = Path(path).expanduser()
    if not file.is_file() or file.suffix != ".py":
        what = "no such file" if not file.exists() else "not a .py file"
        raise ModelLoadError(
            f"custom objects {str(path)!r}: {what}; expected the Python file (.py) that defines "
            "the model's custom classes"
        )
    resolved = file.resolve()
    name = "_convscope_custom_" + hashlib.sha256(str(resolved).encode()).hexdigest()[:16]
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, resolved)
        if spec is None or spec.loader is None:
            raise ModelLoadError(f"custom objects file {file} cannot be imported as a Python module")
        module = importlib.util.module_from_spec(spec)
        folder = str(resolved.parent)
        added = folder not in sys.path
        if added:
            sys.path.insert(0, folder)
        sys.modules[name] = module
        log.info("importing custom objects from %s", resolved)
        try:
            spec.loader.exec_module(module)
        except (Exception, SystemExit) as exc:
            sys.modules.pop(name, None)
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise ModelLoadError(
                f"custom objects file {file} failed to import: {type(exc).__name__}: {first}"
            ) from exc
        finally:
            if added and folder in sys.path:
                sys.path.remove(folder)
    return {
        key: value
        for key, value in vars(module).items()
        if not key.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and getattr(value, "__module__", None) == name
    }


def resolve_objects(custom_objects: Any) -> dict[str, Any] | None:
    """``custom_objects`` as Keras takes it: a dict as is, a path imported (see :func:`import_objects`)."""
    if custom_objects is None or isinstance(custom_objects, dict):
        return custom_objects
    if isinstance(custom_objects, (str, Path)):
        return import_objects(custom_objects)
    raise ModelLoadError(
        f"custom_objects must be a dict {{'Name': Class}} or the path of a .py file, "
        f"got {type(custom_objects).__name__}"
    )


def _entries(config: Any) -> list[tuple[str, str]]:
    """``(class_name, registered_name)`` of every object in a Keras config not defined by Keras itself."""
    found: list[tuple[str, str]] = []
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            module, cls = node.get("module"), node.get("class_name")
            if (
                isinstance(cls, str)
                and isinstance(module, str)
                and module.split(".")[0] not in ("keras", "builtins")
            ):
                if cls == "function" and isinstance(node.get("config"), str):
                    cls = node["config"]
                found.append((cls, node.get("registered_name") or cls))
            stack.extend(reversed(list(node.values())))  # document order
        elif isinstance(node, list):
            stack.extend(reversed(node))
    return found


#: Packages whose layers a model file may name, and how to install each (pip names).
KNOWN_PACKAGES = {"keras_hub": "keras-hub", "keras_nlp": "keras-nlp", "keras_cv": "keras-cv"}


def missing_packages(path: Path) -> dict[str, list[str]]:
    """``{pip name: [class names]}`` of the layer packages (KerasHub, ...) a ``.keras`` file's classes come
    from that cannot be imported here; empty when none is missing or the file is not an archive."""
    config = _config_of(path) if zipfile.is_zipfile(path) else None
    missing: dict[str, list[str]] = {}
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            module, cls = node.get("module"), node.get("class_name")
            top = module.split(".")[0] if isinstance(module, str) else ""
            if top in KNOWN_PACKAGES and isinstance(cls, str) and not _importable(top):
                names = missing.setdefault(KNOWN_PACKAGES[top], [])
                if cls not in names:
                    names.append(cls)
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend(reversed(node))
    return missing


def _importable(package: str) -> bool:
    try:
        importlib.import_module(package)
    except Exception:  # noqa: BLE001 - missing, or broken on import: either way Keras cannot use it
        return False
    return True


def _config_of(path: Path) -> Any:
    """The parsed ``config.json`` of a ``.keras`` archive (already size-checked), ``None`` otherwise."""
    try:
        with zipfile.ZipFile(path) as zf:
            return json.loads(zf.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


def missing_names(path: Path, message: str, custom_objects: dict[str, Any] | None) -> list[str]:
    """The custom classes/functions a model file needs that Keras cannot find, best first.

    Walks ``config.json`` of a ``.keras`` archive for objects not defined by Keras and neither registered
    nor in ``custom_objects``; otherwise (an ``.h5`` file) reads the name out of Keras' message.
    """
    import keras

    given = custom_objects or {}
    names: list[str] = []
    config = _config_of(path) if zipfile.is_zipfile(path) else None
    for cls, registered in _entries(config) if config is not None else []:
        if cls in given or registered in given or keras.saving.get_registered_object(registered, given):
            continue
        shown = cls if registered in (cls, "function") else f"{cls} (registered as {registered!r})"
        if shown not in names:
            names.append(shown)
    if not names:
        for pattern in _KERAS_MESSAGES:
            for found in pattern.findall(message):
                shown = f"{found.split('>')[-1]} (registered as {found!r})" if ">" in found else found
                if shown not in names:
                    names.append(shown)
    return names
