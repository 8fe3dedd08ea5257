"""Attribution: which pixels and which feature-map positions a prediction depends on.

Methods (see :data:`METHODS`): Grad-CAM, Grad-CAM++, LayerCAM and Score-CAM at a spatial layer;
vanilla saliency, SmoothGrad and Integrated Gradients at the input. All run on every Keras 3 backend and
every model kind, batched and compiled, without modifying the model. :func:`evaluate` measures how
faithful their maps are (deletion / insertion AUC, ROAD, Average Drop / Increase in Confidence) beside a
random-map baseline.

Example:
    >>> from convscope.attribution import cam, evaluate
    >>> res = cam(model, x)                              # Grad-CAM of the top-1 class, layer chosen for you
    >>> res.layer, res.maps.shape, res.used_logits       # ('conv_1', (16, 28, 28), True)
    >>> res = cam(model, x, "scorecam", layer="conv_1", target=3, max_channels=64)
    >>> ev = evaluate(model, x, [res, cam(model, x, "gradcam", target=3)])   # faithfulness vs random maps
    >>> ev.table()                                       # deletion/insertion AUC, ROAD, Average Drop ...

Importing this package does not import Keras or TensorFlow.
"""

from convscope.attribution.activation import ScoreCAM
from convscope.attribution.api import ALIASES, METHODS, cam, get_method
from convscope.attribution.base import Attribution
from convscope.attribution.evaluate import Evaluation, MethodScores, evaluate
from convscope.attribution.gradient import GradCAM, GradCAMPlusPlus, GradientCAM, LayerCAM
from convscope.attribution.result import CamResult
from convscope.attribution.saliency import InputAttribution, IntegratedGradients, Saliency, SmoothGrad

__all__ = [
    "ALIASES",
    "METHODS",
    "Attribution",
    "CamResult",
    "Evaluation",
    "GradCAM",
    "GradCAMPlusPlus",
    "GradientCAM",
    "InputAttribution",
    "IntegratedGradients",
    "LayerCAM",
    "MethodScores",
    "Saliency",
    "ScoreCAM",
    "SmoothGrad",
    "cam",
    "evaluate",
    "get_method",
]
