"""Axial position embeddings (Reformer)."""

import keras
from keras import ops

from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import check_rank


@keras.saving.register_keras_serializable(package="kzoo")
class AxialPositionEmbedding(keras.layers.Layer):
    """Factorised learned position embeddings over a (d1, d2) grid.

    The axial position embeddings of "Reformer: The Efficient Transformer"
    (Kitaev, Kaiser and Levskaya, 2020), section 5 / the trax implementation.
    Position `p = i * d2 + j` of a sequence of at most `d1 * d2` tokens gets
    `concat(first[i], second[j])`, with tables `first` (d1, e1) and `second`
    (d2, e2), `e1 + e2 = D`: `d1*e1 + d2*e2` parameters instead of
    `d1*d2*D`.

    Args:
        axial_shape: `(d1, d2)`; the longest sequence is `d1 * d2`.
        axial_dims: `(e1, e2)`; their sum is the embedding width. `None`
            splits the input width in two halves (e1 = D // 2).
        initializer: initializer of both tables.

    Call arguments:
        inputs: (B, T, D) token embeddings (only the shape is used),
            T <= d1 * d2.
        start_index: int, position of the first token (for decoding).

    Returns:
        (B, T, D) position embeddings, to be added to `inputs`.

    Example:

    >>> import keras
    >>> from kzoo.layers import AxialPositionEmbedding
    >>> emb = AxialPositionEmbedding(axial_shape=(4, 8))
    >>> tuple(emb(keras.ops.zeros((2, 32, 16))).shape)
    (2, 32, 16)
    """

    def __init__(
        self, axial_shape, axial_dims=None, initializer="glorot_uniform", **kwargs
    ):
        super().__init__(**kwargs)
        if not isinstance(axial_shape, (tuple, list)) or len(axial_shape) != 2:
            raise ValueError(
                "`axial_shape` must be a pair (d1, d2) of positive integers; "
                f"received {axial_shape!r}"
            )
        self.axial_shape = tuple(
            check_positive_int("axial_shape", d) for d in axial_shape
        )
        if axial_dims is not None:
            if not isinstance(axial_dims, (tuple, list)) or len(axial_dims) != 2:
                raise ValueError(
                    "`axial_dims` must be a pair (e1, e2) of positive integers "
                    f"or None; received {axial_dims!r}"
                )
            axial_dims = tuple(check_positive_int("axial_dims", d) for d in axial_dims)
        self.axial_dims = axial_dims
        self.initializer = keras.initializers.get(initializer)

    @property
    def max_sequence_length(self):
        return self.axial_shape[0] * self.axial_shape[1]

    def build(self, inputs_shape):
        check_rank("inputs", inputs_shape, 3, "(batch, sequence_length, dim)")
        dim = inputs_shape[-1]
        dims = self.axial_dims or (dim // 2, dim - dim // 2)
        if sum(dims) != dim:
            raise ValueError(
                f"`axial_dims` must sum to the input width {dim}; received "
                f"{self.axial_dims!r}"
            )
        d1, d2 = self.axial_shape
        init = self.initializer
        self.first = self.add_weight(
            shape=(d1, dims[0]),
            initializer=init.__class__.from_config(init.get_config()),
            name="first",
        )
        self.second = self.add_weight(
            shape=(d2, dims[1]),
            initializer=init.__class__.from_config(init.get_config()),
            name="second",
        )

    def call(self, inputs, start_index=0):
        length = inputs.shape[1]
        if length is not None and length > self.max_sequence_length:
            raise ValueError(
                f"sequence length must be at most d1 * d2 = "
                f"{self.max_sequence_length} (`axial_shape`={self.axial_shape}); "
                f"received {length}"
            )
        d1, d2 = self.axial_shape
        first = ops.cast(self.first, self.compute_dtype)
        second = ops.cast(self.second, self.compute_dtype)
        grid = ops.concatenate(
            [
                ops.broadcast_to(first[:, None, :], (d1, d2, first.shape[-1])),
                ops.broadcast_to(second[None, :, :], (d1, d2, second.shape[-1])),
            ],
            axis=-1,
        )  # (d1, d2, D)
        table = ops.reshape(grid, (d1 * d2, -1))  # (d1*d2, D)
        table = ops.slice(
            table, (start_index, 0), (ops.shape(inputs)[1], ops.shape(table)[1])
        )  # (T, D)
        return ops.broadcast_to(table[None], ops.shape(inputs))  # (B, T, D)

    def compute_output_shape(self, inputs_shape):
        return tuple(inputs_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "axial_shape": self.axial_shape,
                "axial_dims": self.axial_dims,
                "initializer": keras.initializers.serialize(self.initializer),
            }
        )
        return config
