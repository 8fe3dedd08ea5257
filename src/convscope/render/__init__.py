"""Rendering activations to pictures: pure numpy + Pillow, no matplotlib on the hot path.

The flow is normalize -> colormap -> mosaic / overlay -> PNG::

    from convscope.render import render_activation
    grid = render_activation(act, layer="conv_1")      # act: one sample, e.g. (26, 26, 32)
    grid.save("conv_1.png")                            # or grid.to_png(), grid.to_figure()

Building blocks are exported too, for callers that compose their own pictures.
"""

from __future__ import annotations

from convscope.render.channels import (
    ChannelPlan,
    format_indices,
    inactive_channels,
    parse_channel_spec,
    parse_channels,
    select_channels,
    top_channels,
)
from convscope.render.colormap import (
    ALIASES,
    COLORMAPS,
    NAN_COLOR,
    NEGINF_COLOR,
    POSINF_COLOR,
    apply_colormap,
    get_lut,
    resolve_cmap,
)
from convscope.render.encode import encode_png
from convscope.render.filters import render_filters
from convscope.render.grid import render_activation
from convscope.render.mosaic import MosaicLayout, auto_grid, auto_scale, plan_mosaic, tile
from convscope.render.normalize import NORM_MODES, Normalized, ValueSpan, default_cmap, normalize, value_span
from convscope.render.overlay import overlay
from convscope.render.result import FeatureGrid

__all__ = [
    "ALIASES",
    "COLORMAPS",
    "NAN_COLOR",
    "NEGINF_COLOR",
    "NORM_MODES",
    "POSINF_COLOR",
    "ChannelPlan",
    "FeatureGrid",
    "MosaicLayout",
    "Normalized",
    "ValueSpan",
    "apply_colormap",
    "auto_grid",
    "auto_scale",
    "default_cmap",
    "encode_png",
    "format_indices",
    "get_lut",
    "inactive_channels",
    "normalize",
    "overlay",
    "parse_channel_spec",
    "parse_channels",
    "plan_mosaic",
    "render_activation",
    "render_filters",
    "resolve_cmap",
    "select_channels",
    "tile",
    "top_channels",
    "value_span",
]
