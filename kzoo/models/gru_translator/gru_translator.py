"""A recurrent encoder-decoder translator with attention (RNNsearch / Luong).

Letters in shape comments: B batch, S source length, T target length,
K beam size, L max_length, V target vocabulary, H hidden_dim.
"""


import keras
from keras import ops

from kzoo.backend.compile import compiled_function
from kzoo.layers.dropout import Dropout
from kzoo.models import generation
from kzoo.layers.recurrent.attention_decoder import ATTENTION_TYPES
from kzoo.layers.recurrent.attention_decoder import AttentionDecoder
from kzoo.layers.recurrent.attention_decoder import DECODER_CELLS
from kzoo.layers.recurrent.recurrent_encoder import RecurrentEncoder
from kzoo.layers.recurrent.recurrent_encoder import check_use_cudnn
from kzoo.models.backbone import Backbone
from kzoo.utils.validation import check_integer_dtype
from kzoo.utils.validation import check_non_negative_int
from kzoo.utils.validation import check_one_of
from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import check_rank
from kzoo.utils.validation import check_rate
from kzoo.utils.validation import check_token_id_range
from kzoo.utils.validation import guard_token_ids

_NEG = -1e9  # log-probability of an impossible hypothesis, finite in float32


def gnmt_length_penalty(length, alpha):
    """`((5 + length) / 6) ** alpha`, from "Google's Neural Machine
    Translation System" (Wu et al., 2016)."""
    return ops.power((5.0 + ops.cast(length, "float32")) / 6.0, alpha)


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
    jit_compile=True`. `generate` is XLA-compiled on TensorFlow only when
    `use_cudnn is False`.

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
    >>> ids = np.array([[5, 6, 2, 0]], "int32")
    >>> tuple(model.generate(ids, ids > 0, max_length=5, start_token_id=1,
    ...                      end_token_id=2, beam_size=3).shape)
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
        self.generate_trace_count = 0

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

    def _greedy(self, memory, mask, state, max_length, start_id, end_id):
        batch = ops.shape(memory)[0]
        projected = self.decoder.project_memory(memory)
        positions = ops.arange(max_length, dtype="int32")[None, :]  # (1, L)

        def cond(i, tokens, prev, finished, state):
            return ops.logical_and(
                i < max_length, ops.logical_not(ops.all(finished))
            )

        def body(i, tokens, prev, finished, state):
            log_probs, state = self._decode_step(prev, state, memory, projected, mask)
            nxt = ops.cast(ops.argmax(log_probs, axis=-1), "int32")  # (B,)
            nxt = ops.where(finished, 0, nxt)
            tokens = ops.where(positions == i, nxt[:, None], tokens)  # (B, L)
            finished = ops.logical_or(finished, nxt == end_id)
            return i + 1, tokens, nxt, finished, state

        loop_vars = (
            ops.convert_to_tensor(0, "int32"),
            ops.zeros((batch, max_length), "int32"),
            ops.full((batch,), start_id, "int32"),
            ops.zeros((batch,), "bool"),
            state,
        )
        return ops.while_loop(cond, body, loop_vars)[1]

    def _beam_search(
        self, memory, mask, state, max_length, start_id, end_id, k, alpha
    ):
        batch = ops.shape(memory)[0]
        vocab = self.target_vocabulary_size
        # Beams live in the batch axis: row b * K + j is beam j of example b.
        memory = ops.repeat(memory, k, axis=0)  # (B*K, S, H)
        mask = ops.repeat(mask, k, axis=0)  # (B*K, S)
        state = [ops.repeat(s, k, axis=0) for s in state]  # (B*K, H)
        projected = self.decoder.project_memory(memory)
        positions = ops.arange(max_length, dtype="int32")  # (L,)
        # A finished beam may only continue with padding (id 0), at no cost.
        pad_only = ops.where(ops.arange(vocab) == 0, 0.0, _NEG)  # (V,)
        batch_offsets = ops.arange(batch, dtype="int32")[:, None] * k  # (B, 1)

        def cond(i, tokens, scores, lengths, finished, prev, state):
            return ops.logical_and(
                i < max_length, ops.logical_not(ops.all(finished))
            )

        def body(i, tokens, scores, lengths, finished, prev, state):
            log_probs, state = self._decode_step(prev, state, memory, projected, mask)
            log_probs = ops.reshape(log_probs, (batch, k, vocab))  # (B, K, V)
            log_probs = ops.where(finished[..., None], pad_only, log_probs)
            total = scores[..., None] + log_probs  # (B, K, V)
            new_lengths = lengths + ops.cast(ops.logical_not(finished), "int32")
            normalized = total / gnmt_length_penalty(new_lengths, alpha)[..., None]
            _, top = ops.top_k(ops.reshape(normalized, (batch, k * vocab)), k)
            beam = top // vocab  # (B, K) which beam each winner extends
            token = ops.cast(top % vocab, "int32")  # (B, K)
            scores = ops.take_along_axis(ops.reshape(total, (batch, -1)), top, 1)
            lengths = ops.take_along_axis(new_lengths, beam, axis=1)
            finished = ops.take_along_axis(finished, beam, axis=1)
            token = ops.where(finished, 0, token)
            finished = ops.logical_or(finished, token == end_id)
            tokens = ops.take_along_axis(tokens, beam[..., None], axis=1)
            tokens = ops.where(
                positions[None, None, :] == i, token[..., None], tokens
            )  # (B, K, L)
            rows = ops.reshape(batch_offsets + ops.cast(beam, "int32"), (-1,))
            state = [ops.take(s, rows, axis=0) for s in state]
            return i + 1, tokens, scores, lengths, finished, ops.reshape(token, (-1,)), state

        first_beam = ops.arange(k) == 0
        loop_vars = (
            ops.convert_to_tensor(0, "int32"),
            ops.zeros((batch, k, max_length), "int32"),
            ops.tile(ops.where(first_beam, 0.0, _NEG)[None, :], (batch, 1)),
            ops.zeros((batch, k), "int32"),
            ops.zeros((batch, k), "bool"),
            ops.full((batch * k,), start_id, "int32"),
            state,
        )
        tokens = ops.while_loop(cond, body, loop_vars)[1]
        # top_k sorts: beam 0 has the best length-normalised score.
        return tokens[:, 0]

    def _make_generate_function(self, max_length, start_id, end_id, k, alpha):
        def generate_step(token_ids, padding_mask):
            self.generate_trace_count += 1  # runs only while tracing
            memory, mask, state = self._encode(token_ids, padding_mask, False)
            if k == 1:
                return self._greedy(memory, mask, state, max_length, start_id, end_id)
            return self._beam_search(
                memory, mask, state, max_length, start_id, end_id, k, alpha
            )

        return compiled_function(
            generate_step,
            read_variables=self.trainable_variables + self.non_trainable_variables,
            jit_compile=self.use_cudnn is False,
        )

    def generate(
        self,
        encoder_token_ids,
        encoder_padding_mask,
        max_length,
        start_token_id,
        end_token_id,
        beam_size=1,
        length_penalty=0.6,
    ):
        """Translates a batch; greedy when `beam_size == 1`, else beam search.

        Beam search ranks hypotheses by `log p / ((5 + len) / 6) ** alpha`
        (GNMT, Wu et al. 2016), `alpha = length_penalty`, len counting the
        end token. One compiled function per (input shape, arguments) is
        built and reused; `generate_trace_count` counts traces.

        Args:
            encoder_token_ids: (B, S) int source ids.
            encoder_padding_mask: (B, S) bool.
            max_length: L, number of tokens to generate.
            start_token_id: first decoder input.
            end_token_id: ends a hypothesis.
            beam_size: K; 1 is greedy (equal to beam search with K = 1).
            length_penalty: alpha >= 0 (beam search only).

        Returns:
            int32 token ids (B, L) without the start token, with the end
            token, then padding id 0.
        """
        max_length = check_positive_int("max_length", max_length)
        start_token_id = check_non_negative_int("start_token_id", start_token_id)
        end_token_id = check_non_negative_int("end_token_id", end_token_id)
        beam_size = check_positive_int("beam_size", beam_size)
        if not isinstance(length_penalty, (int, float)) or length_penalty < 0:
            raise ValueError(
                "`length_penalty` must be a number >= 0; received "
                f"{length_penalty!r}"
            )
        check_integer_dtype("encoder_token_ids", encoder_token_ids)
        check_rank("encoder_token_ids", getattr(encoder_token_ids, "shape", None),
                   2, "(batch, source_length)")
        check_token_id_range("encoder_token_ids", encoder_token_ids,
                             self.source_vocabulary_size)
        token_ids = ops.convert_to_tensor(encoder_token_ids, "int32")
        padding_mask = ops.convert_to_tensor(encoder_padding_mask, "bool")
        batch, source_length = token_ids.shape
        if batch == 0:  # an empty batch: an empty result
            return ops.zeros((0, max_length), "int32")
        if source_length == 0:
            raise ValueError(
                "`encoder_token_ids` must have at least one position (pad an empty "
                "source to length 1 with a False `encoder_padding_mask`); received "
                f"shape {tuple(token_ids.shape)}"
            )
        key = (
            tuple(token_ids.shape), max_length, start_token_id, end_token_id,
            beam_size, float(length_penalty),
        )
        functions = generation.function_cache(self)
        if key not in functions:
            functions[key] = self._make_generate_function(
                max_length, start_token_id, end_token_id, beam_size,
                float(length_penalty),
            )
        return functions[key](token_ids, padding_mask)

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
