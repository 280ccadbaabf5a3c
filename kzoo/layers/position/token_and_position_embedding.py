"""Token embeddings plus the embedding-level position choice.

Letters: B batch, T length, D `hidden_dim`, V `vocabulary_size`.
"""

import math

import keras
from keras import ops

from kzoo.layers.position.position_embedding import PositionEmbedding
from kzoo.layers.position.sinusoidal_position_encoding import SinusoidalPositionEncoding
from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import check_token_id_range
from kzoo.utils.validation import guard_token_ids

# Every position choice a kzoo Transformer model takes: "learned" and
# "sinusoidal" are added to the token embeddings here; "rotary", "alibi" and
# "t5" act inside attention (see kzoo/layers/transformer/attention_positions.py)
# and add nothing here.
POSITION_ENCODINGS = ("learned", "sinusoidal", "rotary", "alibi", "t5")


def check_position_encoding(value):
    if value not in POSITION_ENCODINGS:
        raise ValueError(
            f"`position_encoding` must be one of {list(POSITION_ENCODINGS)}; "
            f"received {value!r}"
        )
    return value


def attention_position(position_encoding):
    """The part of a model's position choice that its blocks apply."""
    return position_encoding if position_encoding in ("rotary", "alibi", "t5") else None


@keras.saving.register_keras_serializable(package="kzoo")
class TokenAndPositionEmbedding(keras.layers.Layer):
    """Token embedding, optionally scaled, plus absolute positions.

    The input layer of a Transformer: `token_embedding(ids) * scale +
    positions`, with learned positions (BERT, GPT: "BERT: Pre-training of
    Deep Bidirectional Transformers for Language Understanding", Devlin et
    al., 2019) or the sinusoids of "Attention Is All You Need" (Vaswani et
    al., 2017), or none when the blocks carry the positions (rotary, ALiBi,
    T5). The token embedding is a `keras.layers.ReversibleEmbedding`, so a
    head can tie its output projection to it (`reverse`); its logits are
    float32.

    Args:
        vocabulary_size: number of token ids V.
        hidden_dim: width D.
        max_sequence_length: number of learned positions (needed for
            "learned").
        position_encoding: one of "learned", "sinusoidal", "rotary",
            "alibi", "t5"; only the first two add anything here.
        scale_embeddings: multiply the token embeddings by sqrt(D) (the
            Transformer's section 3.4).
        embeddings_initializer: initializer of the token table.

    Call arguments:
        token_ids: (B, T) int.
        start_index: int or scalar tensor, position of the first token (the
            cache index when decoding step by step).

    Returns:
        (B, T, D) in the compute dtype.

    Token ids outside [0, V) raise a `ValueError` that names the id and its
    index when the ids are concrete (eager calls, NumPy inputs); under
    tracing (`fit`, `predict`, `jit_compile`, SavedModel) their embeddings
    are NaN, so the example's outputs and loss are NaN: never the finite
    garbage of a clamped or wrapped gather.

    Example:

    >>> import numpy as np
    >>> from kzoo.layers import TokenAndPositionEmbedding
    >>> embed = TokenAndPositionEmbedding(100, 16, max_sequence_length=32)
    >>> tuple(embed(np.ones((2, 5), "int32")).shape)
    (2, 5, 16)
    """

    def __init__(
        self,
        vocabulary_size,
        hidden_dim,
        max_sequence_length=None,
        position_encoding="learned",
        scale_embeddings=False,
        embeddings_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocabulary_size = check_positive_int("vocabulary_size", vocabulary_size)
        self.hidden_dim = check_positive_int("hidden_dim", hidden_dim)
        self.position_encoding = check_position_encoding(position_encoding)
        self.max_sequence_length = check_positive_int(
            "max_sequence_length", max_sequence_length,
            allow_none=position_encoding != "learned",
        )
        self.scale_embeddings = bool(scale_embeddings)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.token_embedding = keras.layers.ReversibleEmbedding(
            vocabulary_size,
            hidden_dim,
            reverse_dtype="float32",
            embeddings_initializer=self.embeddings_initializer,
            dtype=self.dtype_policy,
            name="token_embedding",
        )
        self.position_embedding = None
        if position_encoding == "learned":
            self.position_embedding = PositionEmbedding(
                max_sequence_length, dtype=self.dtype_policy, name="position_embedding"
            )
        elif position_encoding == "sinusoidal":
            self.position_embedding = SinusoidalPositionEncoding(
                dtype=self.dtype_policy, name="position_embedding"
            )

    def build(self, token_ids_shape):
        self.token_embedding.build(token_ids_shape)
        if self.position_embedding is not None:
            self.position_embedding.build(tuple(token_ids_shape) + (self.hidden_dim,))

    def call(self, token_ids, start_index=0):
        check_token_id_range("token_ids", token_ids, self.vocabulary_size)  # eager
        length = token_ids.shape[1]
        if (self.position_encoding == "learned" and isinstance(length, int)
                and isinstance(start_index, int)
                and length + start_index > self.max_sequence_length):
            raise ValueError(
                f"`token_ids` of length {length} (from position {start_index}) do not "
                f"fit `max_sequence_length`={self.max_sequence_length}, the number of "
                "learned positions; build the model with a larger "
                "`max_sequence_length` or pass shorter inputs"
            )
        x = self.token_embedding(token_ids)  # (B, T, D)
        x = guard_token_ids(x, token_ids, self.vocabulary_size)  # traced: NaN
        if self.scale_embeddings:
            x = ops.multiply(x, ops.cast(math.sqrt(self.hidden_dim), x.dtype))
        if self.position_embedding is not None:
            x = ops.add(x, self.position_embedding(x, start_index=start_index))
        return x

    def reverse(self, x):
        """(B, T, D) -> (B, T, V) float32 logits with the tied token table."""
        return self.token_embedding(x, reverse=True)

    def compute_output_shape(self, token_ids_shape):
        return tuple(token_ids_shape) + (self.hidden_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "hidden_dim": self.hidden_dim,
                "max_sequence_length": self.max_sequence_length,
                "position_encoding": self.position_encoding,
                "scale_embeddings": self.scale_embeddings,
                "embeddings_initializer": keras.initializers.serialize(
                    self.embeddings_initializer
                ),
            }
        )
        return config
