"""BigBird block-sparse self-attention (ITC): global, sliding and random blocks.

Einsum letters used in this file:
    B batch, N heads, H key_dim, V value_dim, q middle query block (m of
    them), c row in a block (block_size b), k key column of a query block's
    own keys (global + window + random), s sequence position.
"""

import keras
import numpy as np
from keras import ops

from kzoo.layers.attention.masking import masked_softmax
from kzoo.layers.attention.multi_head_attention import MultiHeadAttention
from kzoo.layers.sparse.blocking import neighbour_blocks
from kzoo.layers.sparse.blocking import pad_axis
from kzoo.layers.sparse.blocking import reject_dense_masks
from kzoo.layers.sparse.blocking import padded_length
from kzoo.utils.validation import as_bool_mask
from kzoo.utils.validation import check_non_negative_int
from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import check_rank
from kzoo.utils.validation import check_same_dims
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
        attention_mask, attention_bias, use_causal_mask: accepted so that
            the layer fits a Transformer block's attention slot; must be
            None / False (a ValueError otherwise).

    Returns:
        (B, T, output_dim). A query row that sees no real token gets zero
        attention (the output bias only), never NaN.

    Example:

    >>> layer = BigBirdAttention(num_heads=2, key_dim=8, block_size=4,
    ...                          num_random_blocks=1, seed=7)
    >>> layer(keras.random.normal((2, 24, 16))).shape
    (2, 24, 16)
    """

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

    def build(self, query_shape, padding_mask_shape=None):
        check_rank("query", query_shape, 3, "(batch, sequence_length, dim)")
        super().build(query_shape)

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

    # -- the call -----------------------------------------------------------

    def call(
        self,
        query,
        padding_mask=None,
        training=None,
        attention_mask=None,
        attention_bias=None,
        use_causal_mask=False,
    ):
        reject_dense_masks("BigBirdAttention", attention_mask, attention_bias)
        if use_causal_mask:
            raise ValueError(
                "BigBirdAttention is bidirectional; received use_causal_mask=True"
            )
        shape = static_shape(query)
        check_rank("query", shape, 3, "(batch, sequence_length, dim)")
        length = shape[1]
        if length is None:
            raise ValueError(
                "BigBirdAttention needs a static sequence length; received "
                f"`query` of shape {shape}"
            )
        if padding_mask is not None:
            check_same_dims(
                "padding_mask",
                static_shape(padding_mask),
                (shape[0], length),
                "(batch_size, sequence_length)",
            )
        nb = self._num_blocks(length)
        b, g, r = self.block_size, self.num_global_blocks, self.num_random_blocks
        n_heads = self.num_heads
        m = nb - 2 * g
        padded = nb * b
        extra = padded - length
        batch = ops.shape(query)[0]
        if padding_mask is None:
            valid = ops.ones((batch, length), "bool")
        else:
            valid = as_bool_mask(padding_mask)
        valid = pad_axis(valid, 1, 0, extra, False)  # (B, Tp)

        def heads_first(x):  # (B, T, N, F) -> (B, N, Tp, F)
            return ops.transpose(pad_axis(x, 1, 0, extra), (0, 2, 1, 3))

        q = self._query_dense(query)  # (B, T, N, H)
        q = ops.multiply(q, ops.cast(self._inverse_sqrt_key_dim, q.dtype))
        q = heads_first(q)  # (B, N, Tp, H)
        k = heads_first(self._key_dense(query))  # (B, N, Tp, H)
        v = heads_first(self._value_dense(query))  # (B, N, Tp, V)
        h_dim, v_dim = q.shape[-1], v.shape[-1]
        qb = ops.reshape(q, (-1, n_heads, nb, b, h_dim))  # (B, N, nb, b, H)
        kb = ops.reshape(k, (-1, n_heads, nb, b, h_dim))
        vb = ops.reshape(v, (-1, n_heads, nb, b, v_dim))
        valid_b = ops.reshape(valid, (-1, 1, nb, b))  # (B, 1, nb, b)

        # Global query blocks see every key.
        q_glob = ops.concatenate(
            [qb[:, :, :g], qb[:, :, nb - g :]], axis=2
        )  # (B, N, 2g, b, H)
        q_glob = ops.reshape(q_glob, (-1, n_heads, 2 * g * b, h_dim))
        g_scores = ops.einsum("bnth,bnsh->bnts", q_glob, k)  # (B, N, 2gb, Tp)
        g_probs = masked_softmax(g_scores, valid[:, None, None, :])
        g_probs = self._dropout_layer(ops.cast(g_probs, v.dtype), training=training)
        g_out = ops.einsum("bnts,bnsv->bntv", g_probs, v)  # (B, N, 2gb, V)
        g_out = ops.reshape(g_out, (-1, n_heads, 2 * g, b, v_dim))

        # Middle query blocks: global keys + 3 sliding blocks + r random.
        k_glob = ops.concatenate([kb[:, :, :g], kb[:, :, nb - g :]], axis=2)
        v_glob = ops.concatenate([vb[:, :, :g], vb[:, :, nb - g :]], axis=2)
        k_glob = ops.reshape(k_glob, (-1, n_heads, 2 * g * b, h_dim))
        v_glob = ops.reshape(v_glob, (-1, n_heads, 2 * g * b, v_dim))
        m_glob = ops.concatenate(
            [valid_b[:, :, :g], valid_b[:, :, nb - g :]], axis=2
        )  # (B, 1, 2g, b)
        m_glob = ops.reshape(m_glob, (-1, 1, 1, 2 * g * b))

        k_win = neighbour_blocks(kb, 2)[:, :, g : nb - g]  # (B, N, m, 3b, H)
        v_win = neighbour_blocks(vb, 2)[:, :, g : nb - g]  # (B, N, m, 3b, V)
        m_win = neighbour_blocks(valid_b, 2, value=False)[:, :, g : nb - g]
        # Window blocks that are global are seen through the global columns.
        p = np.arange(g, nb - g)[:, None] + np.arange(-1, 2)[None, :]  # (m, 3)
        win_ok = np.repeat((p >= g) & (p < nb - g), b, axis=1)  # (m, 3b)
        m_win = ops.logical_and(m_win, win_ok)  # (B, 1, m, 3b)

        qm = qb[:, :, g : nb - g]  # (B, N, m, b, H)
        keys = [
            ops.broadcast_to(
                k_glob[:, :, None], (batch, n_heads, m, 2 * g * b, h_dim)
            ),
            k_win,
        ]
        values = [
            ops.broadcast_to(
                v_glob[:, :, None], (batch, n_heads, m, 2 * g * b, v_dim)
            ),
            v_win,
        ]
        masks = [
            ops.broadcast_to(m_glob, (batch, 1, m, 2 * g * b)),
            m_win,
        ]
        if r:
            ids, ok = self._random_blocks(nb)  # (N, m, r)
            flat = (np.arange(n_heads)[:, None, None] * nb + ids).reshape(-1)
            k_rand = ops.take(
                ops.reshape(kb, (-1, n_heads * nb, b, h_dim)), flat, axis=1
            )  # (B, N*m*r, b, H)
            v_rand = ops.take(
                ops.reshape(vb, (-1, n_heads * nb, b, v_dim)), flat, axis=1
            )
            keys.append(ops.reshape(k_rand, (-1, n_heads, m, r * b, h_dim)))
            values.append(ops.reshape(v_rand, (-1, n_heads, m, r * b, v_dim)))
            m_rand = ops.take(valid_b[:, 0], ids.reshape(-1), axis=1)  # (B, Nmr, b)
            m_rand = ops.reshape(m_rand, (-1, n_heads, m, r * b))
            m_rand = ops.logical_and(m_rand, np.repeat(ok, b, axis=-1))
            masks = [
                ops.broadcast_to(mk, (batch, n_heads, m, mk.shape[-1]))
                for mk in masks
            ] + [m_rand]
        k_cols = ops.concatenate(keys, axis=3)  # (B, N, m, K, H)
        v_cols = ops.concatenate(values, axis=3)  # (B, N, m, K, V)
        mask = ops.concatenate(masks, axis=3)  # (B, N or 1, m, K)
        scores = ops.einsum("bnqch,bnqkh->bnqck", qm, k_cols)  # (B, N, m, b, K)
        probs = masked_softmax(scores, mask[:, :, :, None, :])
        probs = self._dropout_layer(ops.cast(probs, v.dtype), training=training)
        m_out = ops.einsum("bnqck,bnqkv->bnqcv", probs, v_cols)  # (B,N,m,b,V)

        out = ops.concatenate(
            [g_out[:, :, :g], m_out, g_out[:, :, g:]], axis=2
        )  # (B, N, nb, b, V)
        out = ops.reshape(out, (-1, n_heads, padded, v_dim))
        out = ops.transpose(out, (0, 2, 1, 3))[:, :length]  # (B, T, N, V)
        return self._output_dense(out)  # (B, T, D_out)

    def compute_output_shape(self, query_shape, padding_mask_shape=None):
        out_dim = self.output_dim or query_shape[-1]
        return (query_shape[0], query_shape[1], out_dim)

    def compute_output_spec(self, query, **kwargs):
        return keras.KerasTensor(
            self.compute_output_shape(query.shape), dtype=self.compute_dtype
        )

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
