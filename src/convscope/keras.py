"""Keras integration: ``from convscope.keras import FeatureMapCallback``.

Importing this module imports Keras (and its backend). Inside the convscope package every module uses
absolute imports, so ``import keras`` always means the real Keras, never this module.
"""

from __future__ import annotations

from convscope.callbacks.dynamics import DynamicsCallback
from convscope.callbacks.feature_maps import FeatureMapCallback

__all__ = ["DynamicsCallback", "FeatureMapCallback"]
