"""The report's optional parts: the layer table, Grad-CAM overlays and the scan section.

Grad-CAM comes from :mod:`convscope.attribution` and the scan from :mod:`convscope.scan`; both are
looked up at run time with :func:`importlib.util.find_spec`, so a report is made (with a note saying
what is missing) on an installation without them. A failure inside an optional part is logged and
noted on the page instead of losing the whole report.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from convscope.errors import ConvscopeError, OptionError
from convscope.present.report.content import Picture, Section

log = logging.getLogger(__name__)

CAM_METHOD = "gradcam"


def has_module(name: str) -> bool:
    """True if ``name`` can be imported (without importing it; a missing parent counts as missing)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _attribute(module: str, name: str) -> Any:
    """``module.name`` if the module is installed, imports, and has it; else ``None`` (logged)."""
    if not has_module(module):
        return None
    try:
        return getattr(importlib.import_module(module), name, None)
    except Exception as exc:  # a broken optional module must not lose the report
        log.warning("cannot import %s: %s", module, exc)
        return None


def layer_table(model: Any, input_shape: tuple[int, ...] | None, notes: list[str]) -> Any:
    """``inspect_model(model)``, or ``None`` with a note when it cannot be computed."""
    from convscope.models.inspect import inspect_model

    try:
        return inspect_model(model, input_shape=input_shape)
    except Exception as exc:  # the maps are still worth having
        log.warning("layer table not computed: %s", exc)
        notes.append(f"The layer table could not be computed: {exc}")
        return None


def cam_pictures(model: Any, data: Any, notes: list[str], class_names: Sequence[str] | None = None) -> list[Picture | None]:
    """One Grad-CAM overlay per input (``None`` where none can be drawn), noting why when there are none.

    Uses ``convscope.attribution.cam(model, x, method="gradcam")``, whose ``.maps`` are ``(N, H, W)`` at
    input resolution, blended over each input picture with :func:`convscope.render.overlay` (magma).
    """
    n = len(data.names)
    cam = _attribute("convscope.attribution", "cam")
    if cam is None:
        notes.append("Grad-CAM overlays are not drawn: this installation has no convscope.attribution.cam.")
        return [None] * n
    from convscope.render import overlay

    try:
        result = cam(model, data.x, method=CAM_METHOD)
        maps = np.asarray(result.maps)
        if maps.ndim != 3 or len(maps) != n:
            raise ConvscopeError(f"cam() returned maps of shape {maps.shape}; expected ({n}, H, W)")
        targets = tuple(getattr(result, "targets", ()) or ())
        where = f" at {getattr(result, 'layer', '')}" if getattr(result, "layer", "") else ""
        pictures: list[Picture | None] = []
        for i in range(n):
            display = data.display[i]
            if display is None:
                pictures.append(None)
                continue
            grid = overlay(display, maps[i][..., None], 0, cmap="magma", caption=False)
            target = int(targets[i]) if i < len(targets) else None
            label = "" if target is None or target < 0 else f" for class {_label(target, class_names)}"
            pictures.append(Picture.from_array(grid.image, f"Grad-CAM{where}{label}"))
    except Exception as exc:  # an optional part must not lose the report
        log.warning("Grad-CAM overlays not drawn: %s", exc, exc_info=not isinstance(exc, ConvscopeError))
        notes.append(f"Grad-CAM overlays are not drawn: {exc}")
        return [None] * n
    if all(p is None for p in pictures):
        notes.append("Grad-CAM overlays are not drawn: the inputs are arrays without a picture.")
    return pictures


def _label(index: int, class_names: Sequence[str] | None) -> str:
    return str(class_names[index]) if class_names is not None and 0 <= index < len(class_names) else str(index)


def scan_loader(scan_dir: Any) -> Callable[[Any], Any]:
    """``convscope.scan.load_scan``, checked before any work is done.

    Raises:
        OptionError: :mod:`convscope.scan` (with ``load_scan``) is not installed.
    """
    loader = _attribute("convscope.scan", "load_scan")
    if loader is None:
        raise OptionError(f"--scan {str(scan_dir)!r} needs convscope.scan.load_scan, which this installation "
                          "does not have; leave out --scan")
    return loader


def scan_section(loader: Callable[[Any], Any], scan_dir: Any, notes: list[str]) -> Section:
    """The "Scan" section: layer health table and top-k crops of the scan in ``scan_dir``.

    Raises:
        ConvscopeError: the scan folder cannot be read (the caller asked for it explicitly).
    """
    from convscope.present.report.scan_view import scan_html

    result = loader(scan_dir)
    try:
        body = scan_html(result)
    except Exception as exc:
        log.warning("scan section not drawn: %s", exc, exc_info=True)
        notes.append(f"The scan of {scan_dir} was read but could not be shown: {exc}")
        body = "<p>The scan could not be shown (see notes).</p>"
    return Section(anchor="scan", title="Scan: layer health and top-k examples", html=body)
