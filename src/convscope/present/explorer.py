"""The notebook explorer: an ipywidgets panel over one probe of a model on some images.

The model runs once (one compiled pass for every selected layer, via the cached extractor); each
change of a control only re-renders one picture from the stored activations, so it answers at once.
Controls: layer, channel (all / one), image, normalization, colormap. ``pip install convscope[notebook]``
brings ipywidgets.

Example:
    >>> ex = explore("mnist-cnn", x)          # x: (N, 28, 28, 1); last expression of a cell -> the widget
    >>> ex.set(layer="conv_1", channel=5, norm="layer")
    >>> ex.grid                               # the picture shown, a FeatureGrid
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from convscope.errors import OptionError, nearest

log = logging.getLogger(__name__)

ALL = -1  # the channel control's value for "all channels"
CMAPS = ("auto", "gray", "viridis", "magma", "diverging")
CHANNEL_PX = 256  # a single channel is enlarged to about this size


class Explorer:
    """Interactive feature-map explorer.

    Args:
        model: A :class:`~convscope.models.resolve.ResolvedModel`, a ``keras.Model``, a ``.keras``/``.h5`` path
            or a zoo name (its own preprocessing reads image files).
        images: Anything :func:`convscope.activations` accepts (paths, folders, arrays).
        layers: Layer selectors; ``None`` = every conv layer.
        preprocess: A :class:`~convscope.data.Preprocess` overriding the model's own for image files.
        input_shape: One sample's shape, for unbuilt or subclassed models.
        max_channels: Channels shown in "all" mode.
        safe_mode: Keras safe mode when loading a file.

    Attributes:
        activations: ``{layer: (N, ...) array}`` from the one probe.
        names: One name per image.
        grid: The :class:`~convscope.render.FeatureGrid` currently shown.
        widget: The ipywidgets ``VBox`` (what a notebook displays).
    """

    def __init__(
        self,
        model: Any,
        images: Any,
        layers: Any = None,
        *,
        preprocess: Any = None,
        input_shape: tuple[int, ...] | None = None,
        max_channels: int = 64,
        safe_mode: bool = True,
    ) -> None:
        import ipywidgets as w

        from convscope.models.resolve import resolve_model
        from convscope.probe.cache import get_extractor
        from convscope.render import NORM_MODES

        resolved = resolve_model(model, preprocess=preprocess, input_shape=input_shape, safe_mode=safe_mode)
        keras_model = resolved.model
        data = resolved.load_inputs(images, input_shape=input_shape)
        extractor = get_extractor(resolved, layers, input_shape=input_shape)
        self.activations: dict[str, np.ndarray] = dict(extractor(data.x))
        if not self.activations:
            raise OptionError(f"no layer of model {keras_model.name!r} was selected by {layers!r}")
        self.names: tuple[str, ...] = tuple(data.names)
        self.data_format = resolved.data_format
        self.max_channels = max_channels
        keys = list(self.activations)
        self.layer_control = w.Dropdown(options=keys, value=keys[0], description="layer")
        self.image_control = w.Dropdown(
            options=[(n, i) for i, n in enumerate(self.names)], value=0, description="image"
        )
        self.channel_control = w.Dropdown(
            options=self._channel_options(keys[0]), value=ALL, description="channel"
        )
        self.norm_control = w.Dropdown(options=list(NORM_MODES), value="channel", description="norm")
        self.cmap_control = w.Dropdown(options=list(CMAPS), value="auto", description="cmap")
        self.image = w.Image(format="png")
        self.caption = w.HTML()
        controls = [
            self.layer_control,
            self.channel_control,
            self.image_control,
            self.norm_control,
            self.cmap_control,
        ]
        for control in controls:
            control.observe(self._changed, names="value")
        self.widget = w.VBox([w.HBox(controls[:3]), w.HBox(controls[3:]), self.image, self.caption])
        self.channel_control.disabled = self._n_channels(keys[0]) == 0
        self.grid: Any = None
        self._update()

    # -- state ------------------------------------------------------------------------------------------
    def _n_channels(self, key: str) -> int:
        act = self.activations[key]
        if act.ndim <= 2:  # (N, units): a vector has no maps to pick from
            return 0
        return int(act.shape[1] if self.data_format == "channels_first" else act.shape[-1])

    def _channel_options(self, key: str) -> list[tuple[str, int]]:
        n = self._n_channels(key)
        label = f"all ({min(n, self.max_channels)} of {n})" if n > self.max_channels else "all"
        return [(label, ALL)] + [(str(c), c) for c in range(n)]

    def _changed(self, change: dict[str, Any]) -> None:
        if change["owner"] is self.layer_control:
            with self.channel_control.hold_trait_notifications():
                self.channel_control.unobserve(self._changed, names="value")
                self.channel_control.options = self._channel_options(change["new"])
                self.channel_control.value = ALL
                self.channel_control.observe(self._changed, names="value")
            self.channel_control.disabled = self._n_channels(change["new"]) == 0
        self._update()

    def render(self) -> Any:
        """Render the picture the controls describe (a :class:`~convscope.render.FeatureGrid`)."""
        from convscope.render import render_activation

        key = self.layer_control.value
        act = self.activations[key][self.image_control.value]
        channel = self.channel_control.value
        cmap = None if self.cmap_control.value == "auto" else self.cmap_control.value
        kwargs: dict[str, Any] = {"channels": None, "max_channels": self.max_channels}
        if channel != ALL:
            side = max(act.shape[:-1] if self.data_format == "channels_last" else act.shape[1:])
            kwargs = {"channels": [channel], "scale": max(1, min(16, CHANNEL_PX // max(1, side)))}
        return render_activation(
            act, layer=key, data_format=self.data_format, norm=self.norm_control.value, cmap=cmap, **kwargs
        )

    def _update(self) -> None:
        from convscope.present.report.tables import esc

        self.grid = self.render()
        self.image.value = self.grid.to_png()
        self.caption.value = (
            f"<small>{esc(self.names[self.image_control.value])}: {esc(self.grid.caption)}</small>"
        )

    def set(
        self,
        *,
        layer: str | None = None,
        channel: int | str | None = None,
        image: int | str | None = None,
        norm: str | None = None,
        cmap: str | None = None,
    ) -> Explorer:
        """Set controls from code (what a click would do); ``channel="all"`` shows all channels.

        Raises:
            OptionError: a value the control does not offer (the message lists the valid ones).
        """
        if layer is not None:
            self._check(layer, list(self.activations), "layer")
            self.layer_control.value = layer
        if image is not None:
            index = self.names.index(image) if isinstance(image, str) and image in self.names else image
            self._check(index, list(range(len(self.names))), "image", shown=list(self.names))
            self.image_control.value = index
        if channel is not None:
            value = ALL if channel == "all" else channel
            self._check(value, [v for _, v in self.channel_control.options], "channel")
            self.channel_control.value = value
        if norm is not None:
            self._check(norm, list(self.norm_control.options), "norm")
            self.norm_control.value = norm
        if cmap is not None:
            self._check(cmap, list(CMAPS), "cmap")
            self.cmap_control.value = cmap
        return self

    @staticmethod
    def _check(value: Any, valid: list[Any], what: str, shown: list[Any] | None = None) -> None:
        if value not in valid:
            options = [str(v) for v in (shown or valid)]
            if what == "channel":
                hint = (
                    f"'all' or 0..{len(valid) - 2}"
                    if len(valid) > 1
                    else "'all' (this layer has no channels)"
                )
            else:
                hint = ", ".join(nearest(str(value), options))
            raise OptionError(f"{what} {value!r} is not available; valid: {hint}")

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def __repr__(self) -> str:
        return (
            f"Explorer(layer={self.layer_control.value!r}, channel={self.channel_control.value}, "
            f"image={self.names[self.image_control.value]!r}, norm={self.norm_control.value!r})"
        )
