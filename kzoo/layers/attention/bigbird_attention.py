"""BigBird block-sparse self-attention (ITC): global, sliding and random blocks.

Einsum letters used in this file:
    B batch, N heads, H key_dim, V value_dim, q middle query block (m of
    them), c row in a block (block_size b), k key column of a query block's
    own keys (global + window + random), s sequence position.
"""

import keras
import numpy as np
from keras import ops

from kzoo.layers.attention.blocking import neighbour_blocks
from kzoo.layers.attention.blocking import pad_axis
from kzoo.layers.attention.blocking import padded_length
from kzoo.layers.attention.masking import masked_softmax
from kzoo.layers.attention.multi_head_attention import MultiHeadAttention
from kzoo.layers.attention.multi_head_attention import PatternSupport
from kzoo.utils.validation import as_bool_mask
from kzoo.utils.validation import check_non_negative_int
from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import static_shape


@keras.saving.register_keras_serializable(package="kzoo")
class BigBirdAttention(MultiHeadAttention):
    """Block-sparse self-attention of BigBird (ITC form), in O(n).

    Implements the attention of "Big Bird: Transformers for Longer
    Sequences" (Zaheer et al., 2020), internal transformer construction
    (ITC). The sequence is cut into blocks of `block_size`. The first and
    last `num_global_blocks` blocks are global: they attend to every token
    and every token attends to them. Every other block attends to its own
    block and its two neighbours (sliding window) and to
    `num_random_blocks` random blocks chosen, per head, among the other
    non-global blocks. All of it is computed blockwise (gathered key
    blocks and batched matmuls), never as an n x n tensor.

    The random pattern is a pure function of `seed`, the number of blocks
    and the head: it is drawn with a NumPy generator seeded by `(seed,
    number of blocks)` when a sequence length is first seen, so it is the
    same in every call, after `get_config` / `from_config` and after a
    `.keras` reload. With `seed=None` a seed is drawn once at construction
    and stored in the config (the pattern is then fixed for that layer).
    `attention_pattern(sequence_length)` returns the equivalent dense
    (N, T, T) mask.

    The layer has the same variables, in the same order, as
    `kzoo.layers.MultiHeadAttention` / `keras.layers.MultiHeadAttention`;
    `set_weights` copies a dense layer in.

    Sequences whose length is not a multiple of `block_size` are padded
    inside the layer (the padding is never attended to and is cut from the
    output). The padded sequence needs at least `2 * num_global_blocks + 1`
    blocks; shorter sequences raise a `ValueError`.

    Args:
        num_heads: number of attention heads N.
        key_dim: size H of each head for query and key.
        block_size: rows per block b.
        num_random_blocks: random key blocks per query block and head
            (fewer when fewer candidate blocks exist).
        num_global_blocks: global blocks at each end of the sequence.
        seed: seed of the random pattern and of dropout.
        **kwargs: `value_dim`, `dropout`, `use_bias`, `output_dim`,
            `kernel_initializer`, `bias_initializer` as for
            `MultiHeadAttention`, and base layer arguments.

    Call arguments:
        query: (B, T, D), the sequence (self-attention only).
        padding_mask: (B, T) bool, True for real tokens; padding is never
            attended to.
        training: whether dropout is active.
        Cross-attention, explicit masks or biases, the causal form, caches
        and returned scores have no block-sparse form here; the dense core
        rejects each with its shared `ValueError`.

    Returns:
        (B, T, output_dim). A query row that sees no real token gets zero
        attention (the output bias only), never NaN.

    Example:

    >>> import keras
    >>> from kzoo.layers import BigBirdAttention
    >>> layer = BigBirdAttention(num_heads=2, key_dim=8, block_size=4,
    ...                          num_random_blocks=1, seed=7)
    >>> tuple(layer(keras.random.normal((2, 24, 16))).shape)
    (2, 24, 16)
    """

    _pattern_summary = "global, sliding and random blocks"
    _support = PatternSupport.sparse_self_attention(causal_forms=(False,))

    def __init__(
        self,
        num_heads,
        key_dim,
        block_size,
        num_random_blocks=3,
        num_global_blocks=1,
        seed=None,
        **kwargs,
    ):
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**31))
        super().__init__(num_heads=num_heads, key_dim=key_dim, seed=seed, **kwargs)
        self.block_size = check_positive_int("block_size", block_size)
        self.num_random_blocks = check_non_negative_int(
            "num_random_blocks", num_random_blocks
        )
        self.num_global_blocks = check_positive_int(
            "num_global_blocks", num_global_blocks
        )
        check_non_negative_int("seed", seed)
        self._patterns = {}

    # -- the static pattern --------------------------------------------------

    def _num_blocks(self, sequence_length):
        nb = padded_length(sequence_length, self.block_size) // self.block_size
        need = 2 * self.num_global_blocks + 1
        if nb < need:
            raise ValueError(
                f"BigBirdAttention needs at least 2 * num_global_blocks + 1 = "
                f"{need} blocks of block_size={self.block_size}, i.e. a "
                f"sequence_length > {(need - 1) * self.block_size}; received "
                f"sequence_length={sequence_length}"
            )
        return nb

    def _random_blocks(self, nb):
        """Static (N, m, r) random block ids and validity, m middle blocks."""
        if nb in self._patterns:
            return self._patterns[nb]
        g, r = self.num_global_blocks, self.num_random_blocks
        middle = np.arange(g, nb - g)
        rng = np.random.default_rng([self.seed, nb])
        ids = np.zeros((self.num_heads, len(middle), r), "int32")
        valid = np.zeros((self.num_heads, len(middle), r), bool)
        for head in range(self.num_heads):
            for i, p in enumerate(middle):
                ids[head, i] = p  # placeholder for empty slots (masked)
                cands = middle[np.abs(middle - p) > 1]
                take = min(r, len(cands))
                if take:
                    chosen = np.sort(rng.choice(cands, size=take, replace=False))
                    ids[head, i, :take] = chosen
                    valid[head, i, :take] = True
        self._patterns[nb] = (ids, valid)
        return ids, valid

    def attention_pattern(self, sequence_length):
        """The dense (N, T, T) boolean mask equal to this layer's pattern.

        For tests and inspection (it is n x n); padding masks come on top.
        """
        nb = self._num_blocks(sequence_length)
        g = self.num_global_blocks
        ids, valid = self._random_blocks(nb)
        blocks = np.zeros((self.num_heads, nb, nb), bool)
        blocks[:, :g, :] = blocks[:, nb - g :, :] = True
        blocks[:, :, :g] = blocks[:, :, nb - g :] = True
        for p in range(g, nb - g):
            blocks[:, p, max(p - 1, 0) : p + 2] = True
            for head in range(self.num_heads):
                blocks[head, p, ids[head, p - g][valid[head, p - g]]] = True
        ones = np.ones((self.block_size, self.block_size), bool)
        tokens = np.stack([np.kron(b, ones) for b in blocks]).astype(bool)
        return tokens[:, :sequence_length, :sequence_length]

    # -- the pattern ----------------------------------------------------------

    def _compute_attention(self, query, key, value, padding_mask=None,
                           training=None, **kwargs):
        """Block-sparse attention of (B, T, N, H) heads -> (B, T, N, V)."""
        length = static_shape(query)[1]
        if length is None:
            raise ValueError(
                "BigBirdAttention needs a static sequence length; received "
                f"`query` of shape {static_shape(query)}"
            )
        nb = self._num_blocks(length)
        b, g = self.block_size, self.num_global_blocks
        extra = nb * b - length
        if padding_mask is None:
            valid = ops.ones(ops.shape(query)[:2], "bool")
        else:
            valid = as_bool_mask(padding_mask)
        valid = pad_axis(valid, 1, 0, extra, False)  # (B, Tp)

        def blocks(x):  # (B, T, N, F) -> (B, N, nb, b, F)
            x = ops.transpose(pad_axis(x, 1, 0, extra), (0, 2, 1, 3))
            return ops.reshape(x, (-1, self.num_heads, nb, b, x.shape[-1]))

        scale = ops.cast(self._inverse_sqrt_key_dim, query.dtype)
        qb = blocks(ops.multiply(query, scale))  # (B, N, nb, b, H)
        kb, vb = blocks(key), blocks(value)  # (B, N, nb, b, H|V)
        valid_b = ops.reshape(valid, (-1, 1, nb, b))  # (B, 1, nb, b)
        g_out = self._global_rows(qb, kb, vb, valid, training)  # (B,N,2g,b,V)
        m_out = self._middle_rows(qb, kb, vb, valid_b, training)  # (B,N,m,b,V)
        out = ops.concatenate(
            [g_out[:, :, :g], m_out, g_out[:, :, g:]], axis=2
        )  # (B, N, nb, b, V)
        out = ops.reshape(out, (-1, self.num_heads, nb * b, out.shape[-1]))
        return ops.transpose(out, (0, 2, 1, 3))[:, :length], None  # (B,T,N,V)

    def _global_rows(self, qb, kb, vb, valid, training):
        """The global query blocks, first and last g, see every real key."""
        g, nb = self.num_global_blocks, qb.shape[2]
        n, b = self.num_heads, self.block_size
        q_glob = ops.concatenate([qb[:, :, :g], qb[:, :, nb - g :]], axis=2)
        q_glob = ops.reshape(q_glob, (-1, n, 2 * g * b, qb.shape[-1]))
        k = ops.reshape(kb, (-1, n, nb * b, kb.shape[-1]))  # (B, N, Tp, H)
        v = ops.reshape(vb, (-1, n, nb * b, vb.shape[-1]))  # (B, N, Tp, V)
        scores = ops.einsum("bnth,bnsh->bnts", q_glob, k)  # (B, N, 2gb, Tp)
        probs = masked_softmax(scores, valid[:, None, None, :])
        probs = self._dropout_layer(ops.cast(probs, v.dtype), training=training)
        out = ops.einsum("bnts,bnsv->bntv", probs, v)  # (B, N, 2gb, V)
        return ops.reshape(out, (-1, n, 2 * g, b, v.shape[-1]))

    def _middle_columns(self, kb, vb, valid_b):
        """Each middle block's keys, values and key mask: the global blocks,
        its sliding window of 3 blocks and its random blocks.

        Returns (B, N, m, K, H), (B, N, m, K, V) and (B, N|1, m, K).
        """
        g, nb, n, b = self.num_global_blocks, kb.shape[2], self.num_heads, self.block_size
        m, batch = nb - 2 * g, ops.shape(kb)[0]

        def ends(x):  # the 2g global blocks, flattened: (B, N|1, 2gb, ...)
            x = ops.concatenate([x[:, :, :g], x[:, :, nb - g :]], axis=2)
            return ops.reshape(x, (-1, x.shape[1], 2 * g * b) + tuple(x.shape[4:]))

        def per_block(x):  # the same columns for every middle block
            return ops.broadcast_to(x[:, :, None], (batch, x.shape[1], m) + tuple(x.shape[2:]))

        # Window blocks that are global are seen through the global columns.
        p = np.arange(g, nb - g)[:, None] + np.arange(-1, 2)[None, :]  # (m, 3)
        win_ok = np.repeat((p >= g) & (p < nb - g), b, axis=1)  # (m, 3b)
        keys = [per_block(ends(kb)), neighbour_blocks(kb, 2)[:, :, g : nb - g]]
        values = [per_block(ends(vb)), neighbour_blocks(vb, 2)[:, :, g : nb - g]]
        masks = [
            per_block(ends(valid_b)),
            ops.logical_and(neighbour_blocks(valid_b, 2, value=False)[:, :, g : nb - g], win_ok),
        ]  # (B, 1, m, 2gb) and (B, 1, m, 3b)
        if self.num_random_blocks:
            k_rand, v_rand, m_rand = self._random_columns(kb, vb, valid_b)
            keys.append(k_rand)
            values.append(v_rand)
            masks = [ops.broadcast_to(mk, (batch, n, m, mk.shape[-1])) for mk in masks]
            masks.append(m_rand)
        return (
            ops.concatenate(keys, axis=3),
            ops.concatenate(values, axis=3),
            ops.concatenate(masks, axis=3),
        )

    def _random_columns(self, kb, vb, valid_b):
        """The r random key blocks of each middle block and head, gathered."""
        nb, n, b, r = kb.shape[2], self.num_heads, self.block_size, self.num_random_blocks
        m = nb - 2 * self.num_global_blocks
        ids, ok = self._random_blocks(nb)  # (N, m, r) static
        flat = (np.arange(n)[:, None, None] * nb + ids).reshape(-1)

        def gather(x):  # (B, N, nb, b, F) -> (B, N, m, r b, F)
            x = ops.take(ops.reshape(x, (-1, n * nb, b, x.shape[-1])), flat, axis=1)
            return ops.reshape(x, (-1, n, m, r * b, x.shape[-1]))

        m_rand = ops.take(valid_b[:, 0], ids.reshape(-1), axis=1)  # (B, Nmr, b)
        m_rand = ops.reshape(m_rand, (-1, n, m, r * b))
        m_rand = ops.logical_and(m_rand, np.repeat(ok, b, axis=-1))
        return gather(kb), gather(vb), m_rand

    def _middle_rows(self, qb, kb, vb, valid_b, training):
        """Middle query blocks against their gathered key columns."""
        g, nb = self.num_global_blocks, qb.shape[2]
        k_cols, v_cols, mask = self._middle_columns(kb, vb, valid_b)
        qm = qb[:, :, g : nb - g]  # (B, N, m, b, H)
        scores = ops.einsum("bnqch,bnqkh->bnqck", qm, k_cols)  # (B, N, m, b, K)
        probs = masked_softmax(scores, mask[:, :, :, None, :])
        probs = self._dropout_layer(ops.cast(probs, v_cols.dtype), training=training)
        return ops.einsum("bnqck,bnqkv->bnqcv", probs, v_cols)  # (B, N, m, b, V)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "block_size": self.block_size,
                "num_random_blocks": self.num_random_blocks,
                "num_global_blocks": self.num_global_blocks,
            }
        )
        return config
