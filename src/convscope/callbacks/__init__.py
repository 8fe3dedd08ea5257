"""Keras callbacks (importing this package imports Keras).

The public import is ``from convscope.keras import FeatureMapCallback``.
"""

from __future__ import annotations

from convscope.callbacks.dynamics import DynamicsCallback
from convscope.callbacks.feature_maps import FeatureMapCallback
from convscope.callbacks.frames import FrameRecorder

__all__ = ["DynamicsCallback", "FeatureMapCallback", "FrameRecorder"]
