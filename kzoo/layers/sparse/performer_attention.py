"""Performer attention: FAVOR+ positive orthogonal random features.

Einsum letters used in this file:
    B batch, T query length, S key length, N heads, H key_dim,
    V value_dim, M random features.
"""

import math

import keras
import numpy as np
from keras import ops

from kzoo.layers.attention.multi_head_attention import MultiHeadAttention
from kzoo.utils.validation import as_bool_mask
from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import check_same_dims
from kzoo.utils.validation import static_shape


def orthogonal_random_features(num_features, dim, seed=None):
    """(num_features, dim) Gaussian rows, orthogonal within blocks of `dim`.

    Each block of `dim` rows is the Q of a Gaussian matrix's QR
    decomposition; rows are rescaled by the norms of independent Gaussian
    vectors, so each row is marginally N(0, I) (FAVOR+, section 2.4).
    """
    rng = np.random.default_rng(seed)
    blocks = []
    for _ in range(-(-num_features // dim)):
        q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
        # Sign-correct Q so that it is Haar-distributed (uniform rotations);
        # the raw LAPACK Q is not, and biases the estimator.
        q = q * np.sign(np.diag(r))[None, :]
        blocks.append(q.T)
    w = np.concatenate(blocks, axis=0)[:num_features]
    norms = np.linalg.norm(rng.standard_normal((num_features, dim)), axis=1)
    return (w * norms[:, None]).astype("float32")


@keras.saving.register_keras_serializable(package="kzoo")
class PerformerAttention(MultiHeadAttention):
    """Linear-time attention with FAVOR+ positive random features.

    Implements "Rethinking Attention with Performers" (Choromanski et al.,
    2021). The softmax kernel `exp(q.k / sqrt(H))` is estimated by
    `phi(q).phi(k)` with positive features
    `phi(x) = exp(W x' - |x'|^2 / 2) / sqrt(M)`, `x' = x / H^(1/4)`, and W
    (M, H) orthogonal random features. Attention is then
    `phi(Q) (phi(K)^T V) / phi(Q) (phi(K)^T 1)`: O(T M) time and memory,
    no T x S matrix. With `use_causal_mask` the two sums run as prefix sums
    over positions (the paper's unidirectional form). Features are
    computed in float32; a per-row (queries) and per-sequence (keys) maximum
    is subtracted before `exp` for stability (it cancels exactly).

    Variables: those of `MultiHeadAttention` (`query`, `key`, `value`,
    `attention_output`, same shapes and order), so a dense layer's weights
    copy in with `set_weights(dense.get_weights() + [features])`, plus the
    non-trainable `random_features` (M, H), drawn once from `seed` at build
    time (the paper's periodic redrawing is not done).

    Args:
        num_heads: number of heads N.
        key_dim: size H of each head.
        num_random_features: M.
        seed: seed of the random features (NumPy, at build time).
        **kwargs: `value_dim`, `use_bias`, `output_dim`,
            `kernel_initializer`, `bias_initializer` of `MultiHeadAttention`
            and base layer arguments. `dropout` is not used: there is no
            attention matrix to drop from.

    Call arguments:
        query: (B, T, D_q).
        value: (B, S, D_v); defaults to `query`.
        key: (B, S, D_k); defaults to `value`.
        padding_mask: (B, S) bool, True for real keys; padded keys get zero
            features. An explicit `attention_mask` is not supported (it
            would need the T x S matrix).
        use_causal_mask: prefix-sum (unidirectional) attention, T == S.

    Returns:
        (B, T, output_dim); a query with no real key outputs zeros before
        the output projection.

    Example:

    >>> layer = PerformerAttention(num_heads=2, key_dim=8, num_random_features=32)
    >>> layer(keras.random.normal((2, 10, 16)), use_causal_mask=True).shape
    (2, 10, 16)
    """

    def __init__(self, num_heads, key_dim, num_random_features=256, seed=None, **kwargs):
        super().__init__(num_heads=num_heads, key_dim=key_dim, seed=seed, **kwargs)
        self.num_random_features = check_positive_int(
            "num_random_features", num_random_features
        )

    def build(self, query_shape, value_shape=None, key_shape=None):
        super().build(query_shape, value_shape, key_shape)
        # A holder sublayer created after the dense ones, so that `weights`
        # lists MultiHeadAttention's variables first, in Keras' order.
        self._features_holder = keras.layers.Layer(name="random_features")
        features = self._features_holder.add_weight(
            shape=(self.num_random_features, self.key_dim),
            initializer="zeros",
            trainable=False,
            name="random_features",
        )
        features.assign(
            orthogonal_random_features(
                self.num_random_features, self.key_dim, self.seed
            )
        )
        self._features_holder.built = True

    @property
    def random_features(self):
        # Not an attribute: assigning a variable to the layer would track it
        # as the layer's own and list it before the dense variables.
        return self._features_holder.weights[0]

    def _features(self, x, is_query, mask=None):
        """phi(x): (B, L, N, H) -> (B, L, N, M) float32, zero where masked."""
        x = ops.cast(x, "float32") * (float(self.key_dim) ** -0.25)
        proj = ops.einsum(
            "blnh,mh->blnm", x, ops.cast(self.random_features, "float32")
        )  # (B, L, N, M)
        sq = 0.5 * ops.sum(ops.square(x), axis=-1, keepdims=True)  # (B,L,N,1)
        logits = proj - sq
        if is_query:
            stab = ops.max(logits, axis=-1, keepdims=True)
        else:
            masked = logits
            if mask is not None:
                masked = ops.where(mask[:, :, None, None], logits, -1e30)
            stab = ops.max(masked, axis=(1, 3), keepdims=True)  # (B,1,N,1)
        phi = ops.exp(logits - ops.stop_gradient(stab))
        phi = phi / math.sqrt(float(self.num_random_features))
        if mask is not None:
            phi = ops.where(mask[:, :, None, None], phi, 0.0)
        return phi

    def _linear_attention(self, q, k, v, padding_mask=None, causal=False):
        """(B,T,N,H), (B,S,N,H), (B,S,N,V) -> (B, T, N, V)."""
        mask = None if padding_mask is None else as_bool_mask(padding_mask)
        phi_q = self._features(q, True)  # (B, T, N, M)
        phi_k = self._features(k, False, mask)  # (B, S, N, M)
        v32 = ops.cast(v, "float32")
        if causal:
            kv = ops.cumsum(
                ops.einsum("bsnm,bsnv->bsnmv", phi_k, v32), axis=1
            )  # (B, T, N, M, V) prefix sums
            z = ops.cumsum(phi_k, axis=1)  # (B, T, N, M)
            num = ops.einsum("btnm,btnmv->btnv", phi_q, kv)
            den = ops.einsum("btnm,btnm->btn", phi_q, z)
        else:
            kv = ops.einsum("bsnm,bsnv->bnmv", phi_k, v32)  # (B, N, M, V)
            z = ops.sum(phi_k, axis=1)  # (B, N, M)
            num = ops.einsum("btnm,bnmv->btnv", phi_q, kv)
            den = ops.einsum("btnm,bnm->btn", phi_q, z)
        den = ops.where(den > 0.0, den, 1.0)
        return ops.cast(num / ops.expand_dims(den, -1), v.dtype)  # (B,T,N,V)

    def call(
        self,
        query,
        value=None,
        key=None,
        padding_mask=None,
        attention_mask=None,
        attention_bias=None,
        use_causal_mask=False,
        training=None,
    ):
        if attention_mask is not None or attention_bias is not None:
            raise ValueError(
                "PerformerAttention supports `padding_mask` and "
                "`use_causal_mask` only (an arbitrary attention_mask or "
                "attention_bias needs the T x S matrix it avoids); received "
                f"attention_mask={attention_mask is not None}, "
                f"attention_bias={attention_bias is not None}"
            )
        value = query if value is None else value
        key = value if key is None else key
        q_shape, k_shape = static_shape(query), static_shape(key)
        if padding_mask is not None:
            check_same_dims(
                "padding_mask",
                static_shape(padding_mask),
                (k_shape[0], k_shape[1]),
                "(batch_size, key_length)",
            )
        if use_causal_mask and None not in (q_shape[1], k_shape[1]):
            if q_shape[1] != k_shape[1]:
                raise ValueError(
                    "use_causal_mask needs query and key of the same length; "
                    f"received query length {q_shape[1]}, key length {k_shape[1]}"
                )
        q = self._query_dense(query)  # (B, T, N, H)
        k = self._key_dense(key)  # (B, S, N, H)
        v = self._value_dense(value)  # (B, S, N, V)
        out = self._linear_attention(q, k, v, padding_mask, use_causal_mask)
        return self._output_dense(out)  # (B, T, D_out)

    def compute_output_shape(self, query_shape, value_shape=None, key_shape=None):
        out_dim = self.output_dim or query_shape[-1]
        return (query_shape[0], query_shape[1], out_dim)

    def compute_output_spec(self, query, value=None, key=None, **kwargs):
        return keras.KerasTensor(
            self.compute_output_shape(query.shape), dtype=self.compute_dtype
        )

    def get_config(self):
        config = super().get_config()
        config["num_random_features"] = self.num_random_features
        return config
