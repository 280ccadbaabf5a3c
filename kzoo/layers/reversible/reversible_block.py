"""A reversible residual block (RevNet / Reformer).

A `ReversibleBlock` maps (x1, x2) to (y1, y2) with

    y1 = x1 + F(x2)          x2 = y2 - G(y1)
    y2 = x2 + G(y1)          x1 = y1 - F(x2)

so the inputs of a block can be recomputed from its outputs
(`ReversibleEncoder` does that in its memory-saving backward pass).
"""

import keras
from keras import ops

from kzoo.utils.validation import check_rank


def _build_sublayer(layer, shape):
    if not layer.built:
        layer.build(shape)


@keras.saving.register_keras_serializable(package="kzoo")
class ReversibleBlock(keras.layers.Layer):
    """One reversible residual block, `y1 = x1 + F(x2)`, `y2 = x2 + G(y1)`.

    From "The Reversible Residual Network: Backpropagation Without Storing
    Activations" (Gomez et al., 2017), as used by "Reformer: The Efficient
    Transformer" (Kitaev, Kaiser and Levskaya, 2020) with F = attention and
    G = feed-forward.

    Args:
        f: a layer (B, T, D) -> (B, T, D); it receives `padding_mask` and
            `use_causal_mask` when they are given (e.g. a pre-norm attention
            branch).
        g: a layer (B, T, D) -> (B, T, D) (e.g. a pre-norm feed-forward).

    Call arguments:
        x1, x2: (B, T, D) each.
        padding_mask: optional (B, T) bool, passed to `f`.
        use_causal_mask: passed to `f` when True (causal attention).

    Returns:
        `(y1, y2)`, each (B, T, D). `inverse(y1, y2)` gives `(x1, x2)` back.

    Example:

    >>> import keras
    >>> from kzoo.layers import ReversibleBlock
    >>> block = ReversibleBlock(keras.layers.Dense(8), keras.layers.Dense(8))
    >>> x = keras.random.normal((2, 4, 8))
    >>> y1, y2 = block(x, x)
    >>> tuple(y2.shape)
    (2, 4, 8)
    """

    def __init__(self, f, g, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(f, keras.layers.Layer):
            raise ValueError(f"`f` must be a keras Layer; received {f!r}")
        if not isinstance(g, keras.layers.Layer):
            raise ValueError(f"`g` must be a keras Layer; received {g!r}")
        self.f = f
        self.g = g

    def build(self, x1_shape, x2_shape=None):
        check_rank("x1", x1_shape, 3, "(batch, sequence_length, dim)")
        _build_sublayer(self.f, x1_shape)
        _build_sublayer(self.g, x1_shape)

    @staticmethod
    def f_kwargs(padding_mask=None, use_causal_mask=False):
        """The call arguments F receives: only those that are set, so that
        any layer (a plain Dense too) can be F."""
        kwargs = {} if padding_mask is None else {"padding_mask": padding_mask}
        if use_causal_mask:
            kwargs["use_causal_mask"] = True
        return kwargs

    def call(self, x1, x2, padding_mask=None, use_causal_mask=False):
        f_out = self.f(x2, **self.f_kwargs(padding_mask, use_causal_mask))
        y1 = x1 + ops.cast(f_out, x1.dtype)  # (B, T, D)
        y2 = x2 + ops.cast(self.g(y1), x2.dtype)  # (B, T, D)
        return y1, y2

    def inverse(self, y1, y2, padding_mask=None, use_causal_mask=False):
        x2 = y2 - self.g(y1)
        x1 = y1 - self.f(x2, **self.f_kwargs(padding_mask, use_causal_mask))
        return x1, x2

    def compute_output_shape(self, x1_shape, x2_shape=None):
        return tuple(x1_shape), tuple(x1_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "f": keras.saving.serialize_keras_object(self.f),
                "g": keras.saving.serialize_keras_object(self.g),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["f"] = keras.saving.deserialize_keras_object(config["f"])
        config["g"] = keras.saving.deserialize_keras_object(config["g"])
        return cls(**config)
