"""A pre-LayerNorm residual branch: `Dropout(inner(LayerNorm(x)))`."""

import keras

from kzoo.layers.dropout import Dropout
from kzoo.layers.reversible.reversible_block import ReversibleBlock
from kzoo.utils.validation import check_positive_float
from kzoo.utils.validation import check_rate


@keras.saving.register_keras_serializable(package="kzoo")
class PreNormBranch(keras.layers.Layer):
    """`Dropout(inner(LayerNorm(x), **kwargs))`: F or G of a reversible block.

    The residual branches of "Reformer: The Efficient Transformer" (Kitaev,
    Kaiser and Levskaya, 2020) are pre-normalised: F = LSH attention after a
    LayerNorm, G = chunked feed-forward after a LayerNorm.

    Args:
        inner: the layer to run after the normalisation.
        layer_norm_epsilon: epsilon of the LayerNorm.
        dropout: dropout rate on the branch's output (0: none). Inside a
            memory-saving `ReversibleEncoder` the recomputation replays the
            same masks.
        seed: int seed of that dropout.

    Call arguments:
        inputs: (B, T, D).
        padding_mask, use_causal_mask: passed to `inner` when set (an
            attention layer takes them; a feed-forward gets neither).
        training: whether dropout is active.

    Returns:
        `inner`'s output, (B, T, D).

    Example:

    >>> import keras
    >>> from kzoo.models.reformer.pre_norm_branch import PreNormBranch
    >>> branch = PreNormBranch(keras.layers.Dense(8))
    >>> tuple(branch(keras.random.normal((2, 4, 8))).shape)
    (2, 4, 8)
    """

    def __init__(self, inner, layer_norm_epsilon=1e-5, dropout=0.0, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        if not isinstance(inner, keras.layers.Layer):
            raise ValueError(f"`inner` must be a keras Layer; received {inner!r}")
        self.inner = inner
        self.layer_norm_epsilon = check_positive_float(
            "layer_norm_epsilon", layer_norm_epsilon
        )
        self.dropout = check_rate("dropout", dropout)
        self.seed = seed
        self.dropout_layer = Dropout(
            self.dropout, seed=seed, dtype=self.dtype_policy, name="dropout"
        )

    def build(self, inputs_shape):
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="layer_norm"
        )
        self.layer_norm.build(inputs_shape)
        if not self.inner.built:
            self.inner.build(inputs_shape)

    def call(self, inputs, padding_mask=None, use_causal_mask=False, training=None):
        kwargs = ReversibleBlock.f_kwargs(padding_mask, use_causal_mask)
        out = self.inner(self.layer_norm(inputs), **kwargs)  # (B, T, D)
        return self.dropout_layer(out, training=training)

    def compute_output_shape(self, inputs_shape, **kwargs):
        return self.inner.compute_output_shape(inputs_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "inner": keras.saving.serialize_keras_object(self.inner),
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "dropout": self.dropout,
                "seed": self.seed,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["inner"] = keras.saving.deserialize_keras_object(config["inner"])
        return cls(**config)
