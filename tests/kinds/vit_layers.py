"""The custom layers of the test ViT (a file on its own, so ``--custom-objects`` can import it alone).

Registered with ``keras.saving.register_keras_serializable`` under the package ``convscope_tests``, so a
saved model reloads with ``safe_mode=True`` once this file is imported.
"""

from __future__ import annotations

import keras

PACKAGE = "convscope_tests"


@keras.saving.register_keras_serializable(package=PACKAGE)
class ClassToken(keras.layers.Layer):
    """``(N, T, C) -> (N, 1 + T, C)``: a learned class token put in front of the patch tokens."""

    def build(self, input_shape):
        self.token = self.add_weight(shape=(1, 1, input_shape[-1]), initializer="random_normal", name="token")

    def call(self, x):
        n = keras.ops.shape(x)[0]
        token = keras.ops.broadcast_to(keras.ops.cast(self.token, x.dtype), (n, 1, keras.ops.shape(x)[-1]))
        return keras.ops.concatenate([token, x], axis=1)

    def compute_output_shape(self, input_shape):
        t = None if input_shape[1] is None else input_shape[1] + 1
        return (input_shape[0], t, input_shape[2])


@keras.saving.register_keras_serializable(package=PACKAGE)
class PositionEmbedding(keras.layers.Layer):
    """``(N, T, C) -> (N, T, C)``: adds a learned ``(T, C)`` position embedding."""

    def build(self, input_shape):
        self.position = self.add_weight(
            shape=(1, input_shape[1], input_shape[2]), initializer="random_normal", name="position"
        )

    def call(self, x):
        return x + keras.ops.cast(self.position, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package=PACKAGE)
class TakeToken(keras.layers.Layer):
    """``(N, T, C) -> (N, C)``: the token at ``index`` (the class token by default)."""

    def __init__(self, index: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.index = index

    def call(self, x):
        return x[:, self.index, :]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        return {**super().get_config(), "index": self.index}
