"""Learned absolute position embeddings.

Letters: B batch, T length, D width, L `sequence_length`.
"""

import keras
from keras import ops

from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import check_rank


@keras.saving.register_keras_serializable(package="kzoo")
class PositionEmbedding(keras.layers.Layer):
    """A learned embedding per position, as in BERT and GPT.

    From "BERT: Pre-training of Deep Bidirectional Transformers for Language
    Understanding" (Devlin et al., 2019), which learns one vector per
    position up to `sequence_length`. The layer returns the embeddings (it
    does not add them), broadcast to the input's shape.

    Args:
        sequence_length: the largest number of positions L.
        initializer: initializer of the (L, D) table.

    Call arguments:
        inputs: (B, T, D), only its shape is used; T + start_index <= L.
        start_index: int or scalar tensor, position of the first token.

    Returns:
        (B, T, D) position embeddings.

    Masking: not applicable.

    Example:

    >>> import keras
    >>> from kzoo.layers import PositionEmbedding
    >>> x = keras.random.normal((2, 5, 16))
    >>> tuple(PositionEmbedding(sequence_length=32)(x).shape)
    (2, 5, 16)
    """

    def __init__(self, sequence_length, initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.sequence_length = check_positive_int("sequence_length", sequence_length)
        self.initializer = keras.initializers.get(initializer)
        self.supports_masking = True

    def build(self, inputs_shape):
        check_rank("inputs", inputs_shape, 3, "(batch, length, hidden_dim)")
        self._check_length(inputs_shape[1])
        self.position_embeddings = self.add_weight(
            name="embeddings",
            shape=(self.sequence_length, inputs_shape[-1]),
            initializer=self.initializer,
            trainable=True,
        )

    def _check_length(self, length, start_index=0):
        if isinstance(length, int) and isinstance(start_index, int):
            if length + start_index > self.sequence_length:
                raise ValueError(
                    f"inputs of length {length} (start_index={start_index}) do "
                    f"not fit `sequence_length`={self.sequence_length}; use a "
                    "larger `sequence_length` or shorter inputs"
                )

    def call(self, inputs, start_index=0):
        shape = ops.shape(inputs)
        self._check_length(inputs.shape[1], start_index)
        embeddings = ops.convert_to_tensor(self.position_embeddings)  # (L, D)
        embeddings = ops.slice(
            embeddings, (start_index, 0), (shape[1], ops.shape(embeddings)[1])
        )  # (T, D)
        return ops.broadcast_to(
            ops.cast(embeddings, self.compute_dtype)[None], shape
        )  # (B, T, D)

    def compute_output_shape(self, inputs_shape):
        return tuple(inputs_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sequence_length": self.sequence_length,
                "initializer": keras.initializers.serialize(self.initializer),
            }
        )
        return config
