"""A recurrent encoder-decoder translator with attention (RNNsearch / Luong).

Letters in shape comments: B batch, S source length, T target length,
L max_length, V target vocabulary, H hidden_dim.
"""


import keras
from keras import ops

from kzoo.layers.dropout import Dropout
from kzoo.models import generation
from kzoo.layers.recurrent.attention_decoder import ATTENTION_TYPES
from kzoo.layers.recurrent.attention_decoder import AttentionDecoder
from kzoo.layers.recurrent.attention_decoder import DECODER_CELLS
from kzoo.layers.recurrent.recurrent_encoder import RecurrentEncoder
from kzoo.layers.recurrent.recurrent_encoder import check_use_cudnn
from kzoo.models.backbone import Backbone
from kzoo.utils.validation import check_integer_dtype
from kzoo.utils.validation import check_one_of
from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import check_rate
from kzoo.utils.validation import check_token_id_range
from kzoo.utils.validation import guard_token_ids

_NEG = -1e9  # log-probability of an impossible hypothesis, finite in float32


@keras.saving.register_keras_serializable(package="kzoo")
class GRUTranslator(Backbone):
    """Bidirectional GRU/LSTM encoder, attentive GRU/LSTM decoder.

    The RNNsearch model of "Neural Machine Translation by Jointly Learning
    to Align and Translate" (Bahdanau, Cho and Bengio, 2015) with
    `attention="bahdanau"`, or the global-attention model of "Effective
    Approaches to Attention-based Neural Machine Translation" (Luong, Pham
    and Manning, 2015) with `attention="luong_dot" | "luong_general"`.

    Architecture: source and target embeddings (dropout on both); a
    `RecurrentEncoder` of `num_encoder_layers` bidirectional layers (H per
    direction) that honours the source padding mask; a linear projection of
    its (B, S, 2H) outputs to the (B, S, H) memory; the decoder's initial
    state is `tanh(W [h_fwd_last; h_bwd_first])` (and a linear map of the
    LSTM cell states); an `AttentionDecoder`; a Dense to the target
    vocabulary. Logits are float32 under every dtype policy.

    Training uses teacher forcing: `decoder_token_ids` are the target
    tokens shifted right (starting with the start token), and the logits at
    position t predict the token that follows `decoder_token_ids[:, t]`.

    `use_cudnn` goes to the Keras GRU/LSTM layers. On GPU under TensorFlow
    cuDNN kernels cannot be XLA-compiled (keras-team/keras#18456): train
    with `use_cudnn=True, jit_compile=False` or `use_cudnn=False,
    jit_compile=True`. `generate` (the contract of `kzoo.models.generation`)
    is XLA-compiled on TensorFlow only when `use_cudnn is False`.

    Args:
        source_vocabulary_size: number of source token ids.
        target_vocabulary_size: number of target token ids V (id 0 is
            padding in `generate`'s output).
        embedding_dim: width of both embeddings.
        hidden_dim: H, the width of each encoder direction, of the memory
            and of the decoder state.
        num_encoder_layers: stacked bidirectional encoder layers.
        attention: `"bahdanau"`, `"luong_dot"` or `"luong_general"`.
        cell: `"gru"` or `"lstm"`, for the encoder and the decoder.
        dropout: dropout on embeddings, between encoder layers and on the
            decoder's attentional outputs.
        use_cudnn: `False`, `True` or `"auto"`, passed to Keras GRU/LSTM.

    Inputs (dict):
        encoder_token_ids: (B, S) int; encoder_padding_mask: (B, S) bool;
        decoder_token_ids: (B, T) int; decoder_padding_mask: (B, T) bool.

    Returns:
        float32 logits (B, T, V). Outputs at real positions do not depend
        on right padding on either side. Token ids outside the vocabulary
        raise a `ValueError` on eager calls and in `generate`; under tracing
        (`fit`, `predict`, `jit_compile`) their embeddings are NaN, so that
        example's logits and loss are NaN.

    Example:

    >>> import numpy as np
    >>> from kzoo import GRUTranslator
    >>> model = GRUTranslator(50, 40, embedding_dim=8, hidden_dim=16)
    >>> from kzoo.models.generation import BeamSampler
    >>> ids = np.array([[5, 6, 2, 0]], "int32")
    >>> model.generate({"encoder_token_ids": ids, "encoder_padding_mask": ids > 0},
    ...                max_length=5, sampler=BeamSampler(num_beams=3),
    ...                stop_token_ids=(3,)).shape
    (1, 5)
    """

    SIZES = {
        "tiny": {"embedding_dim": 32, "hidden_dim": 64},
        "small": {"embedding_dim": 128, "hidden_dim": 256},
        "base": {"embedding_dim": 620, "hidden_dim": 1000},
    }
    SIZES_SOURCE = (
        "base: RNNsearch (Bahdanau et al. 2015); small: "
        "recipes/translate_gru.py's default; tiny is kzoo's"
    )
    DATA_ARGUMENTS = {"source_vocabulary_size": 30000, "target_vocabulary_size": 30000}

    def __init__(
        self,
        source_vocabulary_size,
        target_vocabulary_size,
        embedding_dim,
        hidden_dim,
        num_encoder_layers=1,
        attention="bahdanau",
        cell="gru",
        dropout=0.0,
        use_cudnn=False,
        dtype=None,
        **kwargs,
    ):
        source_vocabulary_size = check_positive_int(
            "source_vocabulary_size", source_vocabulary_size
        )
        target_vocabulary_size = check_positive_int(
            "target_vocabulary_size", target_vocabulary_size
        )
        embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        hidden_dim = check_positive_int("hidden_dim", hidden_dim)
        num_encoder_layers = check_positive_int(
            "num_encoder_layers", num_encoder_layers
        )
        attention = check_one_of("attention", attention, ATTENTION_TYPES)
        cell = check_one_of("cell", cell, DECODER_CELLS)
        dropout = check_rate("dropout", dropout)
        use_cudnn = check_use_cudnn(use_cudnn)

        # === Layers ===
        self.source_embedding = keras.layers.Embedding(
            source_vocabulary_size, embedding_dim, dtype=dtype,
            name="source_embedding",
        )
        self.target_embedding = keras.layers.Embedding(
            target_vocabulary_size, embedding_dim, dtype=dtype,
            name="target_embedding",
        )
        self.source_dropout = Dropout(dropout, dtype=dtype)
        self.target_dropout = Dropout(dropout, dtype=dtype)
        self.encoder = RecurrentEncoder(
            hidden_dim,
            num_layers=num_encoder_layers,
            cell=cell,
            bidirectional=True,
            dropout=dropout,
            use_cudnn=use_cudnn,
            return_state=True,
            dtype=dtype,
            name="encoder",
        )
        self.memory_projection = keras.layers.Dense(
            hidden_dim, use_bias=False, dtype=dtype, name="memory_projection"
        )
        self.bridges = [
            keras.layers.Dense(
                hidden_dim,
                activation="tanh" if i == 0 else None,
                dtype=dtype,
                name=f"bridge_{i}",
            )
            for i in range(2 if cell == "lstm" else 1)
        ]
        self.decoder = AttentionDecoder(
            hidden_dim,
            cell=cell,
            attention=attention,
            dropout=dropout,
            use_cudnn=use_cudnn,
            dtype=dtype,
            name="decoder",
        )
        self.logits_dense = keras.layers.Dense(
            target_vocabulary_size, dtype=dtype, name="logits"
        )

        # === Functional model ===
        inputs = {
            "encoder_token_ids": keras.Input((None,), dtype="int32",
                                             name="encoder_token_ids"),
            "encoder_padding_mask": keras.Input((None,), dtype="bool",
                                                name="encoder_padding_mask"),
            "decoder_token_ids": keras.Input((None,), dtype="int32",
                                             name="decoder_token_ids"),
            "decoder_padding_mask": keras.Input((None,), dtype="bool",
                                                name="decoder_padding_mask"),
        }
        logits, _ = self._forward(inputs)
        super().__init__(inputs=inputs, outputs=logits, dtype=dtype, **kwargs)

        # === Config ===
        self.source_vocabulary_size = source_vocabulary_size
        self.target_vocabulary_size = target_vocabulary_size
        self.embedding_dim = embedding_dim
        self.hidden_dim = hidden_dim
        self.num_encoder_layers = num_encoder_layers
        self.attention = attention
        self.cell = cell
        self.dropout = dropout
        self.use_cudnn = use_cudnn

    # -- forward pieces -----------------------------------------------------

    def _encode(self, token_ids, padding_mask, training=None):
        """-> memory (B, S, H), mask (B, S) bool, decoder initial state."""
        mask = ops.cast(padding_mask, "bool")
        x = self.source_embedding(token_ids)  # (B, S, E)
        x = guard_token_ids(x, token_ids, self.source_embedding.input_dim)  # traced: NaN
        x = self.source_dropout(x, training=training)
        outputs, *final = self.encoder(x, padding_mask=mask, training=training)
        memory = self.memory_projection(outputs)  # (B, S, H)
        state = [bridge(f) for bridge, f in zip(self.bridges, final)]  # (B, H)
        return memory, mask, state

    def _forward(self, inputs, training=None):
        memory, source_mask, state = self._encode(
            inputs["encoder_token_ids"], inputs["encoder_padding_mask"], training
        )
        y = self.target_embedding(inputs["decoder_token_ids"])  # (B, T, E)
        y = guard_token_ids(y, inputs["decoder_token_ids"], self.target_embedding.input_dim)
        y = self.target_dropout(y, training=training)
        outputs, weights = self.decoder(
            y,
            memory,
            memory_padding_mask=source_mask,
            padding_mask=ops.cast(inputs["decoder_padding_mask"], "bool"),
            initial_state=state,
            training=training,
        )  # (B, T, H), (B, T, S)
        logits = ops.cast(self.logits_dense(outputs), "float32")  # (B, T, V)
        return logits, weights

    def call(self, inputs, training=None, mask=None):
        _check_inputs(inputs)
        self._check_id_ranges(inputs)
        return super().call(inputs, training=training, mask=mask)

    def _check_id_ranges(self, inputs):
        """Eager inputs: ids out of range raise (traced: NaN, see _encode)."""
        check_token_id_range("encoder_token_ids", inputs.get("encoder_token_ids"),
                             self.source_vocabulary_size)
        check_token_id_range("decoder_token_ids", inputs.get("decoder_token_ids"),
                             self.target_vocabulary_size)

    def attention_weights(self, inputs):
        """Teacher-forced attention weights (B, T, S), float32, for heat maps."""
        _check_inputs(inputs)
        inputs = {
            k: ops.convert_to_tensor(v, "bool" if "mask" in k else "int32")
            for k, v in inputs.items()
        }
        return self._forward(inputs, training=False)[1]

    # -- decoding -----------------------------------------------------------

    def _decode_step(self, token_ids, state, memory, projected, mask):
        """(B,) previous tokens -> float32 log-probabilities (B, V).

        The padding id 0 gets log-probability -1e9.
        """
        y = self.target_embedding(token_ids)  # (B, E)
        out, _, state = self.decoder.step(y, state, memory, projected, mask)
        logits = ops.cast(self.logits_dense(out), "float32")  # (B, V)
        log_probs = ops.log_softmax(logits, axis=-1)
        # Id 0 is padding: never generated before the end token.
        is_pad = ops.arange(self.target_vocabulary_size) == 0
        return ops.where(is_pad, _NEG, log_probs), state

    def _cached_decoder(self, encoder_token_ids, encoder_padding_mask, max_length):
        """`next` for the samplers; its cache is (decoder state, memory,
        projected memory, source mask as int32), all batch-first so beams
        repeat and reorder them."""
        memory, mask, state = self._encode(encoder_token_ids, encoder_padding_mask, False)
        cache = (state, memory, self.decoder.project_memory(memory), ops.cast(mask, "int32"))

        def next(prompt, cache, index):
            state, memory, projected, mask = cache
            prev = ops.take(prompt, index - 1, axis=1)  # (B,)
            log_probs, state = self._decode_step(
                prev, state, memory, projected, ops.cast(mask, "bool"))
            return log_probs, None, (state, memory, projected, mask)

        return next, cache

    def generate(
        self, inputs, max_length=None, sampler="greedy", stop_token_ids=None,
        start_token_id=generation.DEFAULT_START_TOKEN_ID, padding_token_id=0,
    ):
        """Translates a batch: the contract of `kzoo.models.generation`.

        One compiled decode per (input shape, arguments), XLA-compiled on
        TensorFlow when `use_cudnn is False`; `generate_trace_count` counts
        traces. The padding id 0 is never generated before a stop token.
        Beam search (`sampler="beam"` or
        `kzoo.models.generation.BeamSampler(num_beams, length_penalty)`)
        ranks hypotheses by `log p / ((5 + n) / 6) ** length_penalty`
        (GNMT, Wu et al. 2016), n counting the stop token.

        Args:
            inputs: dict with `encoder_token_ids` (B, S) int and
                `encoder_padding_mask` (B, S) bool.
            max_length: output length L, the start token included; default
                (None) `2 * S + 1` (twice the padded source length, plus
                the start token).
            sampler: "greedy", "top_k", "top_p", "random", "beam" or a
                sampler object.
            stop_token_ids: tuple of ids that end a translation, or None.
            start_token_id: first decoder input (default kzoo's BOS id, 2).

        Returns:
            (B, L) int32 NumPy array: the start token, the pieces, the stop
            token, then `padding_token_id` (a traced tensor when called
            inside a `tf.function`, as `kzoo.export.translator` does).
        """
        if not isinstance(inputs, dict):
            raise ValueError(
                "`inputs` must be a dict with keys encoder_token_ids and "
                f"encoder_padding_mask; received {type(inputs).__name__}"
            )
        if max_length is None:
            source_length = getattr(inputs.get("encoder_token_ids"), "shape", (None, None))[1]
            if source_length is None:
                raise ValueError(
                    "`max_length` is needed when the source length is unknown; "
                    "received max_length=None"
                )
            max_length = 2 * int(source_length) + 1
        max_length = generation.resolve_max_length(max_length, None)
        return generation.generate_seq2seq(
            self, inputs, max_length=max_length, start_token_id=start_token_id,
            sampler=sampler, stop_token_ids=stop_token_ids, padding_token_id=padding_token_id,
            source_vocabulary_size=self.source_vocabulary_size,
            target_vocabulary_size=self.target_vocabulary_size,
            decoder=self._cached_decoder, jit_compile=self.use_cudnn is False,
        )

    # -- config -------------------------------------------------------------

    def get_config(self):
        return {
            **super().get_config(),
            "source_vocabulary_size": self.source_vocabulary_size,
            "target_vocabulary_size": self.target_vocabulary_size,
            "embedding_dim": self.embedding_dim,
            "hidden_dim": self.hidden_dim,
            "num_encoder_layers": self.num_encoder_layers,
            "attention": self.attention,
            "cell": self.cell,
            "dropout": self.dropout,
            "use_cudnn": self.use_cudnn,
        }


def _check_inputs(inputs):
    if not isinstance(inputs, dict):
        raise ValueError(
            "GRUTranslator takes a dict with keys encoder_token_ids, "
            "encoder_padding_mask, decoder_token_ids, decoder_padding_mask; "
            f"received {type(inputs).__name__}"
        )
    for name in ("encoder_token_ids", "decoder_token_ids"):
        if name in inputs:
            check_integer_dtype(name, inputs[name])
