"""What an attribution method returns: a frozen :class:`CamResult` of numpy arrays and metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from convscope.errors import ConvscopeError
from convscope.render.colormap import apply_colormap
from convscope.render.display import dims, few, html_card, one_line, short
from convscope.render.encode import encode_png

if TYPE_CHECKING:
    from convscope.attribution.targets import TargetPlan

#: How the target score was measured: pre-softmax logits, probabilities, the raw model output (no softmax
#: found, or ``use_logits=False``), or a user function of the output.
SCORE_KINDS = ("logit", "probability", "output", "custom")
_THUMBS = 8  # maps drawn inline by _repr_html_
_THUMB_PX = 128  # longer maps are subsampled to about this size there


@dataclass(frozen=True, eq=False)
class CamResult:
    """Attribution maps for a batch of images.

    Attributes:
        maps: ``(N, H_in, W_in)`` float32 in [0, 1] at the input resolution, one per image: the method's
            map, rectified (IG: absolute value), upsampled and min-max normalized per image (a constant
            map becomes all zeros). Ready for ``convscope.render.overlay(image, maps[i][..., None], 0)``.
        raw: ``(N, h, w)`` float32, the method's formula at the resolution where it is computed (the
            target layer for CAMs, the input for saliency / SmoothGrad / IG), before upsampling and
            normalization. For IG it is signed: attributions summed over input channels, so that
            ``raw[i].sum() ~= f(x_i) - f(baseline)`` (completeness).
        method: Registry name of the method, e.g. ``"gradcam"``.
        layer: Path of the target layer (``outer/inner``), or ``"input"`` for input-gradient methods.
        targets: The class explained, per image (``-1`` when the target was a callable).
        scores: ``(N,)`` float32, the target score of each unmodified image (see ``score``).
        used_logits: True when the score was the pre-softmax logit of a softmax-output model.
        score: What ``scores`` measure: ``"logit"``, ``"probability"``, ``"output"`` (raw model output,
            no softmax detected) or ``"custom"`` (a callable target).
        upsample: How ``raw`` was brought to the input resolution: ``"grid"`` (the layer's receptive-field
            grid), ``"stretch"`` (bilinear over the whole image) or ``"none"`` (already at input size).
        target: The target spec explained (``"top1"``, ``"class:3"``, ``"output:box[2]"``, ``"seg:1"``...).
        explained: What ``targets`` index: ``"class"`` (class ids), ``"output NAME[...]"`` (flat element
            of that output), ``"seg class K..."`` or ``"fn:..."``.
        plan: The target as checked against the model, with each image's element fixed (a ``seg`` target
            without a region keeps "the pixels predicted as the class"); what
            :func:`~convscope.attribution.evaluate` scores. Not saved by :meth:`save`.
    """

    maps: np.ndarray
    raw: np.ndarray
    method: str
    layer: str
    targets: tuple[int, ...]
    scores: np.ndarray
    used_logits: bool
    score: str = "logit"
    upsample: str = "stretch"
    target: str = "top1"
    explained: str = "class"
    plan: TargetPlan | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        for array in (self.maps, self.raw, self.scores):
            array.setflags(write=False)

    def __len__(self) -> int:
        return int(self.maps.shape[0])

    def save(self, path: str | Path) -> Path:
        """Write the arrays and metadata to an ``.npz`` file; refuses to overwrite an existing file.

        Raises:
            ConvscopeError: ``path`` already exists.
        """
        target = Path(path)
        if target.suffix != ".npz":
            target = target.with_name(target.name + ".npz")
        if target.exists():
            raise ConvscopeError(f"{target} already exists; refusing to overwrite it (choose another path)")
        with target.open("xb") as fh:
            np.savez(
                fh,
                maps=self.maps,
                raw=self.raw,
                scores=self.scores,
                targets=np.asarray(self.targets),
                method=self.method,
                layer=self.layer,
                used_logits=self.used_logits,
                score=self.score,
                upsample=self.upsample,
            )
        return target

    def __repr__(self) -> str:
        return one_line(
            "CamResult",
            f"method={self.method!r}",
            f"layer={short(self.layer)!r}",
            f"maps={dims(self.maps.shape)}",
            f"raw={dims(self.raw.shape)}",
            f"targets={few(self.targets)}",
            f"score={self.score}",
            f"upsample={self.upsample}",
        )

    def _repr_html_(self) -> str:
        """A table of the metadata, the first maps inline (magma, as PNG) and each image's target and score."""
        n = len(self)
        finite = self.raw[np.isfinite(self.raw)]
        raw_range = f" [{finite.min():.4g}, {finite.max():.4g}]" if finite.size else ""
        rows = [
            ("method", self.method),
            ("layer", self.layer),
            ("images", n),
            ("maps", dims(self.maps.shape)),
            ("raw", dims(self.raw.shape) + raw_range),
            ("score", self.score + (" (pre-softmax)" if self.used_logits else "")),
            ("upsample", self.upsample),
        ]
        pictures = []
        for i in range(min(n, _THUMBS)):
            step = max(1, -(-max(self.maps.shape[1:]) // _THUMB_PX))
            png = encode_png(apply_colormap(self.maps[i, ::step, ::step], "magma"))
            pictures.append(
                (png, f"image {i}: target {self.targets[i]}, {self.score} {float(self.scores[i]):.4g}")
            )
        lines = [(i, self.targets[i], f"{float(self.scores[i]):.4g}") for i in range(min(n, 100))]
        note = f"first {_THUMBS} maps of {n} shown" if n > _THUMBS else ""
        note += f"{'; ' if note else ''}first 100 rows of {n}" if n > 100 else ""
        return html_card(
            f"CamResult {self.method} at {self.layer}",
            rows,
            images=pictures,
            image_width=128,
            table=(("image", "target", self.score), lines),
            note=note,
        )
