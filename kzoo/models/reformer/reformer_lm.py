"""Reformer causal language model.

Letters: B batch, T length, D `hidden_dim`, V `vocabulary_size`.
"""

import keras
from keras import ops

from kzoo.layers.position.axial_position_embedding import AxialPositionEmbedding
from kzoo.layers.transformer.chunked_feed_forward import ChunkedFeedForward
from kzoo.layers.attention.lsh_attention import LSHAttention
from kzoo.layers.reversible.reversible_block import ReversibleBlock
from kzoo.layers.reversible.reversible_encoder import ReversibleEncoder
from kzoo.models import generation
from kzoo.models.backbone import Backbone
from kzoo.models.reformer.pre_norm_branch import PreNormBranch
from kzoo.models.checks import check_model_sizes
from kzoo.models.checks import validate_token_inputs
from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import check_rate
from kzoo.utils.validation import static_shape


@keras.saving.register_keras_serializable(package="kzoo")
class ReformerLM(Backbone):
    """Reformer causal language model: LSH, reversible, chunked, axial.

    "Reformer: The Efficient Transformer" (Kitaev, Kaiser and Levskaya,
    2020). Token embeddings plus `AxialPositionEmbedding`, then a
    `ReversibleEncoder` of `num_layers` blocks with F = LayerNorm + causal
    `LSHAttention` and G = LayerNorm + `ChunkedFeedForward`; the two halves
    are concatenated, normalised and projected to float32 logits.

    With `dropout` > 0, dropout acts on the attention probabilities and on
    both branches' outputs, as in the paper's residual branches; the
    memory-saving backward pass recomputes each block with the forward
    pass's dropout masks (see `ReversibleEncoder`).

    Its layers are attributes: `token_embedding`, `position_embedding`,
    `reversible_encoder`, `final_layer_norm`, `lm_head`.

    Args:
        vocabulary_size: V.
        num_layers: reversible blocks.
        num_heads: heads; must divide `hidden_dim`.
        hidden_dim: D.
        intermediate_dim: feed-forward width.
        axial_shape: (d1, d2); the longest input is d1 * d2.
        num_hashes: LSH hash rounds.
        bucket_size: LSH chunk length; inputs must be a multiple of it.
        num_buckets: buckets per round; `None` gives 2 * d1 * d2 //
            bucket_size (the paper's choice for the longest input).
        feed_forward_chunk_size: positions per feed-forward chunk.
        memory_saving: the recomputing backward pass of the stack.
        dropout: dropout rate on attention probabilities and branch
            outputs (0: none).
        redraw_rotations: LSH rotations drawn anew at every training call
            (see `LSHAttention`; replayed by the memory-saving backward).
        seed: seed of the LSH rotations and dropout (block i uses
            `seed + i`).

    Inputs (dict):
        token_ids: (B, T) int, T a multiple of `bucket_size`.
        padding_mask: (B, T) bool, True for real tokens.

    Returns:
        (B, T, V) float32 next-token logits.

    Example:

    >>> import numpy as np
    >>> from kzoo import ReformerLM
    >>> lm = ReformerLM(50, 2, 2, 16, 32, axial_shape=(4, 8), bucket_size=8)
    >>> ids = np.ones((2, 16), "int32")
    >>> tuple(lm({"token_ids": ids, "padding_mask": ids > 0}).shape)
    (2, 16, 50)
    >>> lm.generate({"token_ids": ids[:, :3], "padding_mask": ids[:, :3] > 0},
    ...             max_length=8).shape
    (2, 8)
    """

    SIZES = {
        "tiny": {"num_layers": 2, "num_heads": 2, "hidden_dim": 64,
                 "intermediate_dim": 256, "axial_shape": (8, 16), "bucket_size": 8,
                 "feed_forward_chunk_size": 8},
        "base": {"num_layers": 12, "num_heads": 8, "hidden_dim": 1024,
                 "intermediate_dim": 4096, "axial_shape": (128, 512)},
    }
    SIZES_SOURCE = (
        "base: Kitaev et al. 2020, enwik8-64K (12 layers, d_model 1024, d_ff "
        "4096, 8 heads, 64K positions); tiny is kzoo's"
    )
    DATA_ARGUMENTS = {"vocabulary_size": 256}

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        axial_shape=(32, 64),
        num_hashes=2,
        bucket_size=64,
        num_buckets=None,
        feed_forward_chunk_size=64,
        memory_saving=True,
        dropout=0.0,
        redraw_rotations=False,
        seed=None,
        dtype=None,
        **kwargs,
    ):
        check_model_sizes(vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim)
        check_positive_int("bucket_size", bucket_size)
        check_rate("dropout", dropout)
        axial_shape = tuple(axial_shape)
        if num_buckets is None:
            num_buckets = max(2, 2 * (axial_shape[0] * axial_shape[1] // bucket_size))
            num_buckets += num_buckets % 2

        # === Layers ===
        self.token_embedding = keras.layers.Embedding(
            vocabulary_size, hidden_dim, dtype=dtype, name="token_embedding"
        )
        self.position_embedding = AxialPositionEmbedding(
            axial_shape, dtype=dtype, name="position_embedding"
        )
        def block_seed(offset):
            # The branches' dropout seeds, apart from the LSH layers' ones.
            return None if seed is None else seed + num_layers + offset

        blocks = []
        for i in range(num_layers):
            attention = LSHAttention(
                num_heads=num_heads,
                key_dim=hidden_dim // num_heads,
                num_hashes=num_hashes,
                bucket_size=bucket_size,
                num_buckets=num_buckets,
                dropout=dropout,
                redraw_rotations=redraw_rotations,
                seed=None if seed is None else seed + i,
                dtype=dtype,
                name=f"lsh_attention_{i}",
            )
            feed_forward = ChunkedFeedForward(
                intermediate_dim,
                chunk_size=feed_forward_chunk_size,
                dtype=dtype,
                name=f"feed_forward_{i}",
            )
            blocks.append(
                ReversibleBlock(
                    PreNormBranch(
                        attention, dropout=dropout, seed=block_seed(2 * i),
                        dtype=dtype, name=f"attention_branch_{i}",
                    ),
                    PreNormBranch(
                        feed_forward, dropout=dropout, seed=block_seed(2 * i + 1),
                        dtype=dtype, name=f"feed_forward_branch_{i}",
                    ),
                    dtype=dtype,
                    name=f"reversible_block_{i}",
                )
            )
        self.reversible_encoder = ReversibleEncoder(
            blocks, memory_saving=memory_saving, dtype=dtype, name="reversible_encoder"
        )
        self.final_layer_norm = keras.layers.LayerNormalization(
            epsilon=1e-5, dtype=dtype, name="final_layer_norm"
        )
        self.lm_head = keras.layers.Dense(vocabulary_size, dtype=dtype, name="lm_head")

        # === Functional graph ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        padding_mask = keras.Input(shape=(None,), dtype="bool", name="padding_mask")
        tokens = self.token_embedding(token_ids)  # (B, T, D)
        x = ops.add(tokens, self.position_embedding(tokens))
        x = self.reversible_encoder(
            x, padding_mask=padding_mask, use_causal_mask=True
        )  # (B, T, 2D)
        x = self.final_layer_norm(x)
        logits = ops.cast(self.lm_head(x), "float32")  # (B, T, V)
        super().__init__(
            inputs={"token_ids": token_ids, "padding_mask": padding_mask},
            outputs=logits,
            dtype=dtype,
            **kwargs,
        )

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.axial_shape = axial_shape
        self.num_hashes = num_hashes
        self.bucket_size = bucket_size
        self.num_buckets = num_buckets
        self.feed_forward_chunk_size = feed_forward_chunk_size
        self.memory_saving = memory_saving
        self.dropout = dropout
        self.redraw_rotations = redraw_rotations
        self.seed = seed

    def call(self, inputs, training=None, mask=None):
        validate_token_inputs(inputs, ["token_ids"], [("padding_mask", "token_ids")])
        length = static_shape(inputs["token_ids"])[1]
        if length is not None and length % self.bucket_size:
            raise ValueError(
                f"the sequence length must be a multiple of bucket_size="
                f"{self.bucket_size} (pad the input); received {length}"
            )
        return super().call(inputs, training=training, mask=mask)

    def generate(self, inputs, max_length=None, sampler="greedy", stop_token_ids=None,
                 padding_token_id=0):
        """Continues right-padded prompts: the contract of
        `kzoo.models.generation`.

        There is no cache: each new token reruns the full forward pass on
        the (B, L) buffer padded to a multiple of `bucket_size`, positions
        not yet generated masked (`generation.forward_next`), so a token
        costs a whole forward pass of length L, O(L log L) with LSH; the
        loop is compiled once per input shape. The logits at a position are
        those of a forward pass over that prefix on the same buffer.

        Args:
            inputs: dict with `token_ids` (B, P) int and `padding_mask`
                (B, P) bool (each prompt with a token at position 0), or a
                bare (B, P) array.
            max_length: total output length, prompt included; default
                (None) and upper bound: d1 * d2 rounded down to a multiple
                of `bucket_size`.
            sampler: "greedy", "top_k", "top_p", "random", "beam" or a
                sampler object.
            stop_token_ids: tuple of ids, or None.

        Returns:
            (B, max_length) int32 NumPy array, the prompt tokens kept.
        """
        longest = self.axial_shape[0] * self.axial_shape[1]
        longest -= longest % self.bucket_size
        max_length = generation.resolve_max_length(
            max_length, longest, longest, "the longest input, d1 * d2 in whole buckets")

        def decoder(batch_size, max_length):
            return generation.forward_next(self, max_length, self.bucket_size), None

        return generation.generate_causal(
            self, inputs, max_length=max_length, sampler=sampler,
            stop_token_ids=stop_token_ids, padding_token_id=padding_token_id,
            vocabulary_size=self.vocabulary_size, decoder=decoder,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "hidden_dim": self.hidden_dim,
            "intermediate_dim": self.intermediate_dim,
            "axial_shape": self.axial_shape,
            "num_hashes": self.num_hashes,
            "bucket_size": self.bucket_size,
            "num_buckets": self.num_buckets,
            "feed_forward_chunk_size": self.feed_forward_chunk_size,
            "memory_saving": self.memory_saving,
            "dropout": self.dropout,
            "redraw_rotations": self.redraw_rotations,
            "seed": self.seed,
        }
