"""Positions that act inside attention, shared by the Transformer blocks.

- "rotary": queries and keys rotated by position (`RotaryMultiHeadAttention`,
  the dense core's query/key hook);
- "alibi": a fixed linear distance penalty per head (`ALiBiBias`), added to
  the scores through `attention_bias`;
- "t5": a learned bias per head and distance bucket (`RelativePositionBias`),
  likewise;
- None: nothing inside attention (learned or sinusoidal positions are added
  to the embeddings, see `TokenAndPositionEmbedding`).

Each works with the key/value cache: the bias rows and the rotation start at
the absolute position of the first query (the cache index).
"""

from keras import ops

from kzoo.layers.attention.multi_head_attention import MultiHeadAttention
from kzoo.layers.attention.rotary_multi_head_attention import RotaryMultiHeadAttention
from kzoo.layers.position.alibi_bias import ALiBiBias
from kzoo.layers.position.relative_position_bias import RelativePositionBias

ATTENTION_POSITIONS = (None, "rotary", "alibi", "t5")


def check_attention_position(value):
    if value not in ATTENTION_POSITIONS:
        raise ValueError(
            "`position_encoding` of a Transformer block must be one of None, "
            f"'rotary', 'alibi', 't5' (positions inside attention); received "
            f"{value!r}. Learned and sinusoidal positions are added to the "
            "embeddings by the model (TokenAndPositionEmbedding)."
        )
    return value


def self_attention_layer(position_encoding, **kwargs):
    """The dense core, rotary when asked: `MultiHeadAttention(**kwargs)`."""
    if position_encoding == "rotary":
        return RotaryMultiHeadAttention(**kwargs)
    return MultiHeadAttention(**kwargs)


def position_bias_layer(position_encoding, num_heads, bidirectional, dtype=None):
    """The layer that makes the additive bias, or None."""
    if position_encoding == "alibi":
        return ALiBiBias(num_heads, dtype=dtype, name="alibi_bias")
    if position_encoding == "t5":
        return RelativePositionBias(
            num_heads, bidirectional=bidirectional, dtype=dtype,
            name="relative_position_bias",
        )
    return None


def position_bias(layer, query, key, query_offset=0, attention_bias=None):
    """`attention_bias` plus the position bias of `layer` (when it has one).

    `query` (B, T, ...) and `key` (B, S, ...) give only their lengths;
    `query_offset` is the absolute position of query 0 (the cache index).
    Returns None when there is no bias at all.
    """
    if layer is None:
        return attention_bias
    bias = ops.cast(layer(query, key, query_offset=query_offset), "float32")
    if attention_bias is None:
        return bias  # (1, N, T, S)
    return bias + ops.cast(attention_bias, "float32")
