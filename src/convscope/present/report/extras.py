"""The report's composed parts: the layer table, Grad-CAM overlays, the scan and ablate sections.

Each part takes convscope's own typed results (:class:`~convscope.attribution.result.CamResult`, the
:class:`~convscope.scan.result.ScanResult`) directly. A part that cannot be computed for a reason convscope
knows (a :class:`~convscope.errors.ConvscopeError`: a model without a spatial layer for Grad-CAM, arrays
without a picture) is noted on the page; any other exception is a bug and propagates.
"""

from __future__ import annotations

import logging
from typing import Any

from convscope.attribution import cam
from convscope.errors import ConvscopeError
from convscope.present.report.content import Picture, Section
from convscope.scan import load_scan

log = logging.getLogger(__name__)

CAM_METHOD = "gradcam"


def cam_pictures(model: Any, data: Any, notes: list[str], label: Any = str) -> list[Picture | None]:
    """One Grad-CAM overlay per input (``None`` where none can be drawn), noting why when there are none.

    Args:
        model: The Keras model.
        data: The inputs (``x``, ``names``, ``display``).
        notes: Page notes, appended to when the overlays cannot be drawn.
        label: ``label(class id) -> "967 espresso"`` (the resolved model's :meth:`label`).

    Returns:
        Pictures from ``cam(model, x, method="gradcam")`` (maps ``(N, H, W)`` at input resolution)
        blended over each input picture with :func:`convscope.render.overlay` (magma).
    """
    from convscope.render import overlay

    n = len(data.names)
    try:
        result = cam(model, data.x, method=CAM_METHOD)
    except ConvscopeError as exc:  # e.g. no spatial layer to explain: the rest of the report stands
        log.info("Grad-CAM overlays not drawn: %s", exc)
        notes.append(f"Grad-CAM overlays are not drawn: {exc}")
        return [None] * n
    pictures: list[Picture | None] = []
    for i in range(n):
        display = data.display[i]
        if display is None:
            pictures.append(None)
            continue
        grid = overlay(display, result.maps[i][..., None], 0, cmap="magma", caption=False)
        target = int(result.targets[i])
        pictures.append(
            Picture.from_array(grid.image, f"Grad-CAM at {result.layer} for class {label(target)}")
        )
    if all(p is None for p in pictures):
        notes.append("Grad-CAM overlays are not drawn: the inputs are arrays without a picture.")
    return pictures


def scan_section(scan_dir: Any) -> Section:
    """The "Scan" section: layer health table and top-k crops of the scan in ``scan_dir``.

    Raises:
        ConvscopeError: the scan folder cannot be read (the caller asked for it explicitly).
    """
    from convscope.present.report.scan_view import scan_html

    return Section(
        anchor="scan", title="Scan: layer health and top-k examples", html=scan_html(load_scan(scan_dir))
    )


def ablate_section(ablate_dir: Any) -> Section:
    """The "Channel importance" section: the ablate result in ``ablate_dir`` (top channels per class, crops).

    Raises:
        ConvscopeError: the ablate folder cannot be read (the caller asked for it explicitly).
    """
    from convscope.diagnose import load_ablation
    from convscope.present.report.ablate_view import ablate_html

    result = load_ablation(ablate_dir)
    return Section(
        anchor="ablate", title=f"Channel importance: ablating {result.layer}", html=ablate_html(result)
    )
