"""The explorer's engine: one model, one extractor, cached activations and pictures.

Everything here is synchronous and thread-safe; the web app calls it from a thread pool. The extractor is
built once (every non-container layer plus the model output, one compiled forward pass per image) and the
forward passes are serialized by a lock. Activations are cached per image and pictures per
(image, layer, options), both in byte-bounded LRU caches with single-flight computation, so 32 clients
asking for the same thing run the model once.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from convscope.errors import LayerNotFound, OptionError, nearest
from convscope.present.web import plugins
from convscope.present.web.ablation import ablation_rows
from convscope.present.web.cache import LRUCache
from convscope.present.web.gallery import Gallery
from convscope.present.web.layers import default_layer, layer_groups
from convscope.present.web.memory import release_memory
from convscope.present.web.views import (
    bare_mosaic,
    channel_stats,
    grid_meta,
    legend_meta,
    mosaic_shape,
    top_predictions,
)
from convscope.render import (
    COLORMAPS,
    NORM_MODES,
    overlay,
    parse_channel_spec,
    render_activation,
    resolve_cmap,
)
from convscope.render.encode import encode_png
from convscope.render.normalize import check_mode

log = logging.getLogger(__name__)

MAX_SPEC_CHARS = 200


@dataclass(frozen=True)
class ViewOptions:
    """How a feature grid is drawn.

    Attributes:
        norm: Normalization mode.
        cmap: Colormap (``None`` = the mode's default).
        channels: Channel spec (``None`` = the first 64).
        aspect: Width/height of the screen area the mosaic should fill (``None`` = the renderer's choice);
            rounded to 0.1 and kept within [0.3, 8] so that similar windows share cached pictures.
    """

    norm: str = "channel"
    cmap: str | None = None
    channels: str | None = None
    aspect: float | None = None

    @classmethod
    def parse(
        cls, norm: str | None, cmap: str | None, channels: str | None, aspect: str | None = None
    ) -> ViewOptions:
        """Validate request parameters (empty strings mean the default).

        Raises:
            OptionError: a bad mode, colormap or channel spec; the message echoes it.
        """
        mode = check_mode((norm or "channel").strip())
        cmap_name = resolve_cmap(cmap) if cmap and cmap.strip() not in ("", "auto") else None
        spec = (channels or "").strip() or None
        if spec is not None:
            if len(spec) > MAX_SPEC_CHARS:
                raise OptionError(f"channel spec {spec[:40]!r}... is longer than {MAX_SPEC_CHARS} characters")
            parse_channel_spec(spec)  # grammar only, nothing expanded; indices are checked against the layer
        ratio = None
        if aspect:
            try:
                ratio = float(aspect)
            except ValueError:
                raise OptionError(f"aspect must be a number (width / height), got {aspect[:40]!r}") from None
            if not math.isfinite(ratio) or ratio <= 0:
                raise OptionError(f"aspect must be a positive number (width / height), got {aspect[:40]!r}")
            ratio = round(min(8.0, max(0.3, ratio)), 1)
        return cls(mode, cmap_name, spec, ratio)


@dataclass(frozen=True, eq=False)
class Rendered:
    """A picture and its JSON facts."""

    png: bytes
    meta: dict[str, Any]


def _sizeof_acts(acts: dict[str, np.ndarray]) -> int:
    return sum(a.nbytes for a in acts.values())


class Explorer:
    """Serve views of one model over a :class:`Gallery`.

    Args:
        model: A :class:`~convscope.models.resolve.ResolvedModel` (or a Keras model, resolved here); never
            modified. Its class names name the predictions.
        gallery: The images (built with the resolved model's spec and preprocessing).
        class_names: Override of the resolved model's class names, index = class id.
        title: Shown in the page header (e.g. the model file or zoo name).
        cache_mb: Bound of the activation cache.
        picture_cache_mb: Bound of the rendered-picture cache.
        input_shape: One sample's shape for the layer table and the warm-up pass, needed when the model
            leaves sizes free (e.g. ``(None, None, 3)``); images then keep their own size.
        tokens: ``(h, w)`` of token layers (``--tokens``); ``None`` finds each token layer's grid from the
            model (:func:`~convscope.models.grids.token_views`). Token layers are drawn as ``h x w`` maps.

    Raises:
        OptionError: ``tokens`` fits none of the model's token layers.
    """

    def __init__(
        self,
        model: Any,
        gallery: Gallery,
        *,
        class_names: Sequence[str] | None = None,
        title: str = "",
        cache_mb: int = 512,
        picture_cache_mb: int = 128,
        input_shape: tuple[int, ...] | None = None,
        tokens: tuple[int, int] | None = None,
    ) -> None:
        from convscope.models.grids import field_grids, token_views
        from convscope.models.resolve import resolve_model
        from convscope.models.tree import layer_tree
        from convscope.probe.cache import get_extractor

        resolved = resolve_model(model, input_shape=input_shape, labels=class_names or None)
        self.resolved = resolved
        self.model = model = resolved.model
        self.gallery = gallery
        self.class_names = list(resolved.class_names) if resolved.class_names else None
        self.title = title or resolved.name
        self.info = resolved.info
        self.data_format = resolved.data_format
        self._nodes = {n.path: n for n in layer_tree(model)}
        paths = [n.path for n in self._nodes.values() if not n.is_container]
        self.extractor = get_extractor(model, paths, include_output=True)
        self._output_key = self.extractor.OUTPUT_KEY
        self._forward = threading.Lock()
        self._acts: LRUCache[str, dict[str, np.ndarray]] = LRUCache(
            "activations", cache_mb << 20, _sizeof_acts
        )
        self._pictures: LRUCache[tuple[Any, ...], Rendered] = LRUCache(
            "pictures", picture_cache_mb << 20, lambda r: len(r.png) + 512
        )
        self.features = plugins.features()
        self.cam_methods = plugins.cam_methods() if self.features["cam"] else []
        warm = self._run(np.zeros((1, *self.info.input_shape[1:]), np.float32))
        shapes = {key: value.shape[1:] for key, value in warm.items() if not self.extractor.is_output(key)}
        self.token_views = token_views(self.info, shapes, given=tokens, data_format=self.data_format)
        self.layers = self._layer_rows(warm)
        self._by_key = {row["key"]: row for row in self.layers if row["key"]}
        self.grids = {
            key: grid.placement for key, grid in field_grids(self.info, self._by_key, ndim=2).items()
        }
        self.grids.update(
            {key: view.grid.placement for key, view in self.token_views.items() if view.grid is not None}
        )
        self.compare: Any = None  # a CompareResult (``serve --compare DIR``): channels show their shift
        self.ablations: dict[str, Any] = {}

    def attach_compare(self, result: Any) -> None:
        """Show each channel's dataset shift from a :class:`~convscope.diagnose.CompareResult` of this model.

        Raises:
            OptionError: The comparison was computed on another model (its weights' hash differs).
        """
        self._same_model(result, "--compare")
        self.compare = result
        self._pictures.shrink(0, keep=0)  # channel facts drawn before now lack the shift

    def _same_model(self, result: Any, option: str) -> None:
        """Refuse a results folder computed on another model (its weights' hash differs from this one's)."""
        from convscope.scan.manifest import model_identity

        mine = model_identity(self.resolved.source or None, self.model)["sha256"]
        theirs = result.manifest.get("model", {}).get("sha256")
        if mine != theirs:
            raise OptionError(
                f"{option} {str(result.path)!r} was computed on model "
                f"{result.manifest.get('model', {}).get('source')!r}, not on {self.title!r} (the weights differ)"
            )

    def shift(self, key: str, channel: int) -> dict[str, Any] | None:
        """The dataset shift of one channel (``None`` without compare results or for a layer not compared)."""
        if self.compare is None or key not in self.compare.layers:
            return None
        a, b = self.compare.names()
        return {**self.compare.layers[key].channel(channel), "a": a, "b": b}

    def attach_ablation(self, result: Any) -> None:
        """Show an ``ablate`` result (:class:`~convscope.diagnose.AblationResult`) in its layer's channel panel.

        Raises:
            OptionError: The result was computed on another model, or its layer is not a spatial layer of
                this model.
        """
        self._same_model(result, "--ablate")
        row = self._by_key.get(result.layer)
        if row is None or not row["spatial"]:
            spatial = [r["key"] for r in self.layers if r["spatial"]]
            raise OptionError(
                f"--ablate: layer {result.layer!r} is not a spatial layer of {self.title!r}; its spatial "
                f"layers: {', '.join(nearest(result.layer, spatial))}"
            )
        self.ablations[result.layer] = result
        self._pictures.shrink(0, keep=0)  # channel facts drawn before now lack the effect

    # -- model facts --------------------------------------------------------------------------------------
    def _layer_rows(self, acts: dict[str, np.ndarray]) -> list[dict[str, Any]]:
        from convscope.models.keys import call_keys

        keys = call_keys((row.path, row.call) for row in self.info.layers)
        rows = []
        for row in self.info.to_dicts():
            first = keys[(row["path"], row["call"])]  # a layer with several outputs shows its first
            key = next((k for k in (str(first), str(replace(first, output=0))) if k in acts), None)
            shape = list(acts[key].shape[1:]) if key else None
            view = self.token_views.get(key) if key else None
            spatial = bool(key) and (len(shape or ()) == 3 or view is not None)
            filters = self.features["filters"] and "Conv" in row["class"] and not row["call"]
            rows.append(
                {
                    **row,
                    "key": key,
                    "viewable": key is not None,
                    "spatial": spatial,
                    "tokens": view.describe() if view is not None else None,
                    "has_filters": bool(filters and key),
                }
            )
        return rows

    def summary(self) -> dict[str, Any]:
        """The model as the page needs it: name, input, layer table (with its collapsible groups and the
        layer to open first, see :mod:`~convscope.present.web.layers`), options and optional views."""
        rows, groups = layer_groups(self.layers)
        return {
            "title": self.title,
            "name": self.info.name,
            "kind": self.info.kind,
            "input_shape": list(self.info.input_shape[1:]),
            "total_params": self.info.total_params,
            "data_format": self.data_format,
            "layers": rows,
            "groups": groups,
            "default_layer": default_layer(self.layers),
            "norms": list(NORM_MODES),
            "cmaps": ["auto", *COLORMAPS],
            "class_names": self.class_names,
            "features": {**self.features, "cam_methods": self.cam_methods},
            "preprocess": self.gallery.preprocess.describe(self.gallery.spec),
        }

    def layer(self, key: str) -> dict[str, Any]:
        """The layer row of activation key ``key``.

        Raises:
            LayerNotFound: No such viewable layer; the message suggests near keys.
        """
        row = self._by_key.get(key)
        if row is None:
            raise LayerNotFound(
                f"no layer {key[:80]!r} with an activation in model {self.info.name!r}; "
                f"nearest: {', '.join(nearest(key, list(self._by_key)))}"
            )
        return row

    # -- forward passes -----------------------------------------------------------------------------------
    def _run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        with self._forward:
            return self.extractor(x)

    def activations(self, image_id: str) -> dict[str, np.ndarray]:
        """Every layer's activation of one image (no batch axis), from one cached forward pass.

        Token layers are as the model computes them, ``(T, C)``; :meth:`maps` gives what is drawn.
        """

        def compute() -> dict[str, np.ndarray]:
            x = self.gallery.prepared(image_id).x
            return {key: value[0] for key, value in self._run(x[None]).items()}

        return self._acts.get_or_compute(image_id, compute)

    def predict(self, image_id: str) -> dict[str, Any]:
        """Top-5 classes of one image (labels from the zoo entry when known).

        A model with several outputs answers for its first declared output and lists every head under
        ``heads`` (``[{"name": ..., **its top-5}]``, class names only where the head's size fits them).
        """
        from convscope.models.predictions import head_class_names

        acts = self.activations(image_id)
        out = acts.get(self._output_key)
        if out is None:
            return {"available": False, "reason": "the model has no single output tensor"}
        heads = self.extractor.heads(acts)
        entry = self.gallery.entry(image_id)
        if len(heads) < 2:
            result = top_predictions(out, self.class_names)
            return {**result, "image": image_id, "true_label": entry.label}
        names = head_class_names(heads, self.class_names)
        listed = [{"name": name, **top_predictions(value, names[name])} for name, value in heads.items()]
        first = listed[0]
        return {**first, "heads": listed, "image": image_id, "true_label": entry.label}

    def maps(self, image_id: str, key: str) -> tuple[np.ndarray, str]:
        """What is drawn for layer ``key`` of one image and its data format: the activation, or for a token
        layer its ``(h, w, C)`` maps (channels last, extra tokens set aside)."""
        act = self.activations(image_id)[key]
        view = self.token_views.get(key)
        if view is None:
            return act, self.data_format
        return view.to_maps(act), "channels_last"

    # -- pictures -----------------------------------------------------------------------------------------
    def grid(self, image_id: str, key: str, options: ViewOptions) -> Rendered:
        """The feature grid of layer ``key`` for one image (cached)."""
        row = self.layer(key)

        def render() -> Rendered:
            act, data_format = self.maps(image_id, key)
            layout = None
            if options.aspect is not None:
                layout = mosaic_shape(
                    act.shape, options.channels, options.aspect, data_format=data_format, labels=False
                )
            rows, cols = layout or (None, None)
            # A 2-D mosaic goes out bare: the page writes its caption, channel numbers and colorbar as text.
            labels = act.ndim != 3
            view = self.token_views.get(key)
            picture = render_activation(
                act,
                layer=key,
                notes=view.notes() if view is not None else (),
                data_format=data_format,
                norm=options.norm,
                cmap=options.cmap,
                channels=options.channels,
                rows=rows,
                cols=cols,
                labels=labels,
            )
            meta = grid_meta(picture, key, options.norm, data_format, layout, labels=labels)
            pixels, meta = bare_mosaic(picture, meta)
            return Rendered(encode_png(pixels), {**meta, "image": image_id, "tokens": row["tokens"]})

        return self._pictures.get_or_compute(("grid", image_id, key, options), render)

    def channel(
        self, image_id: str, key: str, channel: int, cmap: str = "magma", alpha: float = 0.5
    ) -> Rendered:
        """One channel of a 2-D layer, large and overlaid on the input picture, with its statistics."""
        row = self.layer(key)
        if not row["spatial"]:
            raise OptionError(
                f"layer {key!r} has shape {row['output_shape']}; channel overlays need a 2-D map"
            )
        cmap_name = resolve_cmap(cmap)
        if not 0.0 <= alpha <= 1.0:
            raise OptionError(f"alpha must be in [0, 1], got {alpha}")

        def render() -> Rendered:
            act, data_format = self.maps(image_id, key)
            hwc = np.moveaxis(act, 0, -1) if data_format == "channels_first" else act
            if not 0 <= channel < hwc.shape[-1]:
                raise OptionError(
                    f"channel {channel} is out of range for layer {key!r}: valid are 0..{hwc.shape[-1] - 1}"
                )
            grid = self.grids.get(key)
            display = self.gallery.prepared(image_id).display
            picture = overlay(
                display, hwc, channel, layer=key, grid=grid, cmap=cmap_name, alpha=alpha, caption=False
            )  # the page writes the caption and colorbar as text
            stats = channel_stats(hwc, channel, grid, row.get("rf_size"))
            return Rendered(
                picture.to_png(),
                {
                    **stats,
                    "layer": key,
                    "image": image_id,
                    "caption": picture.caption,
                    "tokens": row["tokens"],
                    "n_channels": int(hwc.shape[-1]),
                    "legend": legend_meta(picture),
                    "shift": self.shift(key, channel),
                    "ablation": ablation_rows(self.ablations[key], channel)
                    if key in self.ablations
                    else None,
                },
            )

        return self._pictures.get_or_compute(("channel", image_id, key, channel, cmap_name, alpha), render)

    def cam(
        self, image_id: str, method: str = "gradcam", target: str | None = None, region: str | None = None
    ) -> Rendered:
        """The class-activation map over the input picture (needs :mod:`convscope.attribution`).

        Args:
            image_id: The image.
            method: An attribution method (see :func:`~convscope.present.web.plugins.cam_methods`).
            target: A target spec (``"281"``, ``"class:281"``, ``"output:box[2]"``, ``"seg:1"``...); ``None``
                = the predicted class, or for a segmentation model the class predicted on most pixels.
            region: ``X0,Y0,X1,Y1`` for a ``seg:`` target.
        """
        goal = plugins.cam_target(target, region)

        def render() -> Rendered:
            prepared = self.gallery.prepared(image_id)
            chosen = goal if goal is not None else self._default_target(image_id)
            with self._forward:
                heat, facts = plugins.cam_map(self.model, prepared.x, method, chosen)
            cls = facts.get("target")
            explained = facts.get("explained", "class")
            name = (
                self.class_names[cls]
                if self.class_names and cls is not None and 0 <= cls < len(self.class_names)
                else cls
            )
            what = (
                f" for class {name}"
                if explained == "class" and cls is not None
                else f" for {explained}"
                + (f" ({name})" if explained.startswith("seg") and name is not None else "")
            )
            label = f"{method} @ {facts.get('layer') or '?'}{what}"
            picture = overlay(
                prepared.display, np.asarray(heat, np.float32)[..., None], 0, layer=label, caption=False
            )  # the page writes the caption and colorbar as text
            return Rendered(
                picture.to_png(),
                {
                    **facts,
                    "image": image_id,
                    "class_name": name,
                    "caption": picture.caption,
                    "legend": legend_meta(picture),
                },
            )

        return self._pictures.get_or_compute(("cam", image_id, method, str(goal)), render)

    def _default_target(self, image_id: str) -> Any:
        """``None`` (top-1) for a model with a class output; for a per-pixel output ``(H, W, K)``, ``seg:`` the
        class predicted on most pixels other than class 0 (class 0 when nothing else is predicted)."""
        out = self.activations(image_id).get(self._output_key) if self._output_key else None
        if out is None or np.ndim(out) != 3:  # per image, no batch axis: (H, W, K)
            return None
        per_pixel = np.asarray(out)
        axis = 0 if self.data_format == "channels_first" else -1
        counts = np.bincount(per_pixel.argmax(axis=axis).ravel(), minlength=per_pixel.shape[axis])
        counts[0] = 0 if counts[1:].any() else counts[0]
        return plugins.cam_target(f"seg:{int(counts.argmax())}")

    def filters(self, key: str) -> Rendered:
        """The filters of a conv layer (needs :mod:`convscope.render.filters`)."""
        row = self.layer(key)
        if not row["has_filters"]:
            raise OptionError(f"layer {key!r} ({row['class']}) has no filters to show")

        def render() -> Rendered:
            picture = plugins.render_filters(self._nodes[row["path"]].layer)
            return Rendered(
                picture.to_png(), {"layer": key, "caption": picture.caption, "legend": legend_meta(picture)}
            )

        return self._pictures.get_or_compute(("filters", key), render)

    def idle_trim(self, fraction: float = 1 / 32) -> int:
        """Shrink the caches to ``fraction`` of their bounds and give the freed heap back (server idle).

        The most recent entry of each cache stays (the image and view on screen answer at once).

        Returns:
            Bytes evicted.
        """
        caches: list[LRUCache[Any, Any]] = [self._acts, self._pictures, *self.gallery.caches()]
        freed = sum(c.shrink(int(c.max_bytes * fraction)) for c in caches)
        release_memory()
        log.info("idle: trimmed the caches by %.1f MB", freed / 2**20)
        return freed

    def cache_stats(self) -> list[dict[str, Any]]:
        """Sizes and hit counts of the caches (for ``/api/health``)."""
        return [vars(c.stats()) for c in (self._acts, self._pictures)]
