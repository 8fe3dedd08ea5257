"""convscope.activations() on every model kind, loaded back from its .keras file with safe_mode=True, equals
Keras' own layer outputs.

The reference of each layer is ``keras.Model(inputs, layer.output)`` built on the graph that holds the
layer (the model, or the nested KerasHub backbone); tolerance 1e-5 (float32).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from models import KINDS, reference

import convscope
from convscope.models.keys import ActivationKey
from convscope.models.tree import layer_tree

ATOL = 1e-5
#: Layers compared per kind at least (the nested backbones' inner layers included).
MIN_COMPARED = {
    "unet": 12,
    "deeplab": 17,
    "two_heads": 6,
    "two_heads_list": 6,
    "regression": 5,
    "vit": 19,
    "hub_resnet": 25,
    "hub_mobilenet": 6,
    "hub_vit": 2,
}


def _compare(model, x, acts) -> list[str]:
    nodes = {n.path: n for n in layer_tree(model)}
    compared = []
    for key, value in acts.items():
        parsed = ActivationKey.parse(key)
        node = nodes[parsed.path]
        if parsed.call is not None or parsed.output is not None:
            continue
        try:
            ref = reference(model, x, node.layer)
        except (LookupError, ValueError, AttributeError):
            continue  # a layer called inside another layer's call (MHA projections): no graph output
        assert value.shape == ref.shape, (key, value.shape, ref.shape)
        np.testing.assert_allclose(value, ref, atol=ATOL, rtol=0, err_msg=key)
        compared.append(key)
    return compared


@pytest.mark.parametrize("kind", KINDS)
def test_activations_of_the_reloaded_file_equal_keras(kinds, kind):
    k = kinds[kind]
    x = k.x()
    # the saved file, loaded by convscope with safe_mode=True (the default), computes what the model built
    # in memory computes
    loaded = convscope.load_model(str(k.path))
    for got, want in zip(keras.tree.flatten(loaded(x)), keras.tree.flatten(k.model(x))):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(want), atol=ATOL
        )
    # every layer of it, in one pass, equals Keras' own output of that layer
    paths = [n.path for n in layer_tree(loaded) if not n.is_container]
    acts = convscope.activations(loaded, x, paths)
    assert len(acts) >= len([p for p in paths if "dropout" not in p and "softmax" not in p])
    compared = _compare(loaded, x, acts)
    assert len(compared) >= MIN_COMPARED[kind], compared


def test_token_layers_inside_a_keras_hub_vit_equal_keras(kinds):
    """Layers inside the KerasHub ViT's custom layers (patch conv, encoder blocks): compared with a
    functional model that calls the same sub-layers in the same order."""
    k = kinds["hub_vit"]
    x = k.x(2)
    backbone = k.model.get_layer("vit_backbone")
    patching = backbone.get_layer("vit_patching_and_embedding")
    acts = convscope.activations(
        k.model, x, ["vit_backbone/vit_patching_and_embedding/patch_embedding", "vit_backbone/vit_encoder/ln"]
    )
    conv = patching.patch_embedding
    np.testing.assert_allclose(
        acts["vit_backbone/vit_patching_and_embedding/patch_embedding"],
        keras.ops.convert_to_numpy(conv(x)),
        atol=ATOL,
        rtol=0,
    )
    tokens = patching(x)
    encoded = keras.ops.convert_to_numpy(backbone.get_layer("vit_encoder")(tokens))
    np.testing.assert_allclose(acts["vit_backbone/vit_encoder/ln"], encoded, atol=ATOL, rtol=0)
    assert encoded.shape == (2, 17, 16)
