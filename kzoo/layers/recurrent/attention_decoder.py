"""A GRU/LSTM decoder that attends over encoder outputs (Bahdanau or Luong).

Letters in shape comments: B batch, T target length, S source length,
E input (embedding) width, M memory width, H hidden_dim.
"""

import keras
from keras import ops

from kzoo.backend.loops import time_scan
from kzoo.layers.dropout import Dropout
from kzoo.layers.recurrent.bahdanau_attention import BahdanauAttention
from kzoo.layers.recurrent.luong_attention import LuongAttention
from kzoo.layers.recurrent.recurrent_encoder import check_use_cudnn
from kzoo.layers.recurrent.recurrent_encoder import make_recurrent_layer
from kzoo.utils.validation import check_one_of
from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import check_rank
from kzoo.utils.validation import check_rate
from kzoo.utils.validation import check_same_dims
from kzoo.utils.validation import static_shape

DECODER_CELLS = ("gru", "lstm")
ATTENTION_TYPES = ("bahdanau", "luong_dot", "luong_general")
_CELLS = {"gru": keras.layers.GRUCell, "lstm": keras.layers.LSTMCell}


@keras.saving.register_keras_serializable(package="kzoo")
class AttentionDecoder(keras.layers.Layer):
    """Recurrent decoder with attention over a memory (the encoder outputs).

    Two wirings, from two papers:

    - `attention="bahdanau"`: "Neural Machine Translation by Jointly
      Learning to Align and Translate" (Bahdanau, Cho and Bengio, 2015).
      At step i the previous state s_{i-1} attends (additive scores) to the
      memory; the context c_i is fed with the input y_{i-1} into the cell:
      `s_i = cell([y_{i-1}; c_i], s_{i-1})`. Attention sits inside the
      recurrence, so the teacher-forced pass is a `keras.ops.scan` over
      `step`.
    - `attention="luong_dot" | "luong_general"`: "Effective Approaches to
      Attention-based Neural Machine Translation" (Luong, Pham and Manning,
      2015), global attention without input feeding:
      `h_t = cell(y_{t-1}, h_{t-1})`, then h_t attends to the memory. The
      recurrence does not see the context, so the teacher-forced pass runs
      a Keras GRU/LSTM over the whole target, then attends in parallel.

    Both end with Luong's attentional state `tanh(W_c [h_t; c_t])` (H
    wide), followed by dropout. `step` runs one token and is what decoding
    uses; stepping it by hand equals `call` (tested).

    Args:
        hidden_dim: state width H of the decoder cell.
        cell: `"gru"` or `"lstm"`.
        attention: `"bahdanau"`, `"luong_dot"` or `"luong_general"`.
        dropout: dropout rate on the attentional outputs.
        use_cudnn: passed to the Keras GRU/LSTM of the Luong wiring (the
            Bahdanau wiring steps a cell and never uses cuDNN). On GPU
            under TensorFlow cuDNN cannot be XLA-compiled
            (keras-team/keras#18456).
        seed: seed for the dropout `SeedGenerator`.

    Call arguments:
        inputs: (B, T, E) decoder inputs (embedded previous tokens).
        memory: (B, S, M) encoder outputs. `luong_dot` needs M == H.
        memory_padding_mask: (B, S) bool, True for real source tokens.
        padding_mask: (B, T) bool, True for real target tokens; a padded
            step keeps the state unchanged.
        initial_state: list of (B, H) tensors, `[h]` for GRU and `[h, c]`
            for LSTM; zeros when None.
        training: whether dropout is active.

    Returns:
        `(outputs, weights)`: attentional outputs (B, T, H) and attention
        weights (B, T, S) in float32.

    Example:

    >>> import keras
    >>> from kzoo.layers import AttentionDecoder
    >>> decoder = AttentionDecoder(hidden_dim=8, attention="luong_general")
    >>> y, memory = keras.random.normal((2, 4, 6)), keras.random.normal((2, 5, 8))
    >>> outputs, weights = decoder(y, memory)
    >>> tuple(outputs.shape), tuple(weights.shape)
    ((2, 4, 8), (2, 4, 5))
    """

    def __init__(
        self,
        hidden_dim,
        cell="gru",
        attention="bahdanau",
        dropout=0.0,
        use_cudnn=False,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_dim = check_positive_int("hidden_dim", hidden_dim)
        self.cell = check_one_of("cell", cell, DECODER_CELLS)
        self.attention = check_one_of("attention", attention, ATTENTION_TYPES)
        self.dropout = check_rate("dropout", dropout)
        self.use_cudnn = check_use_cudnn(use_cudnn)
        self.seed = seed

    @property
    def num_states(self):
        return 2 if self.cell == "lstm" else 1

    def build(self, inputs_shape, memory_shape=None, **kwargs):
        check_rank("inputs", inputs_shape, 3, "(batch, target_length, dim)")
        check_rank("memory", memory_shape, 3, "(batch, source_length, dim)")
        batch, h = inputs_shape[0], self.hidden_dim
        memory_dim = memory_shape[-1]
        if self.attention == "bahdanau":
            self._rnn = None
            self._cell = _CELLS[self.cell](h, dtype=self.dtype_policy, name="cell")
            self._cell.build((batch, inputs_shape[-1] + memory_dim))
            self._attention = BahdanauAttention(
                h, dtype=self.dtype_policy, name="attention"
            )
        else:
            if self.attention == "luong_dot" and memory_dim != h:
                raise ValueError(
                    "`attention`='luong_dot' needs memory width == hidden_dim; "
                    f"received memory width {memory_dim} and hidden_dim {h}"
                )
            self._rnn = make_recurrent_layer(
                self.cell,
                h,
                self.use_cudnn,
                self.dtype_policy,
                "rnn",
                return_sequences=True,
                return_state=True,
            )
            self._rnn.build(tuple(inputs_shape))
            self._cell = self._rnn.cell
            self._attention = LuongAttention(
                self.attention[len("luong_"):],
                dtype=self.dtype_policy,
                name="attention",
            )
        self._attention.build((batch, None, h), tuple(memory_shape))
        self._combine = keras.layers.Dense(
            h, activation="tanh", use_bias=False, dtype=self.dtype_policy,
            name="combine",
        )
        self._combine.build((batch, None, h + memory_dim))
        self._dropout = Dropout(
            self.dropout, seed=self.seed, dtype=self.dtype_policy
        )

    # -- pieces used by decoding --------------------------------------------

    def get_initial_state(self, batch_size):
        return [
            ops.zeros((batch_size, self.hidden_dim), self.compute_dtype)
            for _ in range(self.num_states)
        ]

    def _as_state_list(self, state, batch_size):
        if state is None:
            return self.get_initial_state(batch_size)
        if not isinstance(state, (list, tuple)):
            state = [state]
        if len(state) != self.num_states:
            raise ValueError(
                f"`initial_state` for cell={self.cell!r} must be a list of "
                f"{self.num_states} (batch, hidden_dim) tensors; received "
                f"{len(state)}"
            )
        return [ops.cast(s, self.compute_dtype) for s in state]

    def project_memory(self, memory):
        """Keys for the attention, computed once per source sentence."""
        return self._attention.project_keys(memory)

    def step(
        self, inputs, state, memory, projected_memory, memory_padding_mask=None
    ):
        """One decoding step (no dropout).

        Args:
            inputs: (B, E) the embedded previous token.
            state: list of (B, H), as `initial_state`.
            memory: (B, S, M); projected_memory: `project_memory(memory)`.
            memory_padding_mask: (B, S) bool.

        Returns:
            `(output (B, H), weights (B, S) float32, new_state)`.
        """
        if self.attention == "bahdanau":
            query = ops.expand_dims(state[0], 1)  # (B, 1, H)
            context, weights = self._attention.attend(
                query, memory, projected_memory, memory_padding_mask
            )  # (B, 1, M), (B, 1, S)
            context = context[:, 0]  # (B, M)
            cell_inputs = ops.concatenate(
                [ops.cast(inputs, context.dtype), context], axis=-1
            )  # (B, E + M)
            h, new_state = self._cell(cell_inputs, list(state))  # (B, H)
        else:
            h, new_state = self._cell(inputs, list(state))  # (B, H)
            context, weights = self._attention.attend(
                ops.expand_dims(h, 1), memory, projected_memory, memory_padding_mask
            )
            context = context[:, 0]  # (B, M)
        if not isinstance(new_state, (list, tuple)):
            new_state = [new_state]
        output = self._combine(ops.concatenate([h, context], axis=-1))  # (B, H)
        return output, weights[:, 0], list(new_state)

    def _bahdanau_loop(self, inputs_tm, mask_tm, state, memory, projected, mask):
        """Runs `step` over time-major inputs; padded steps keep the state.

        Returns the (T, B, H) outputs and (T, B, S) attention weights, in a
        loop XLA can differentiate on both backends (`time_scan`).
        """
        n = self.num_states

        def one_step(carry, x_t, m_t):
            out, w, new = self.step(x_t, carry, memory, projected, mask)
            keep = ops.expand_dims(m_t, -1)  # (B, 1)
            new = [ops.where(keep, a, b) for a, b in zip(new, carry)]
            return new, (ops.cast(out, self.compute_dtype), w)

        batch = ops.shape(inputs_tm)[1]
        specs = [
            ((batch, self.hidden_dim), self.compute_dtype),
            ((batch, ops.shape(memory)[1]), "float32"),
        ]
        return time_scan(one_step, list(state[:n]), (inputs_tm, mask_tm), specs)

    # -- the teacher-forced pass --------------------------------------------

    def call(
        self,
        inputs,
        memory,
        memory_padding_mask=None,
        padding_mask=None,
        initial_state=None,
        training=None,
    ):
        in_shape, mem_shape = static_shape(inputs), static_shape(memory)
        if memory_padding_mask is not None:
            check_same_dims(
                "memory_padding_mask",
                static_shape(memory_padding_mask),
                mem_shape[:2],
                "(batch_size, source_length)",
            )
            memory_padding_mask = ops.cast(memory_padding_mask, "bool")
        if padding_mask is not None:
            check_same_dims(
                "padding_mask",
                static_shape(padding_mask),
                in_shape[:2],
                "(batch_size, target_length)",
            )
            padding_mask = ops.cast(padding_mask, "bool")
        state = self._as_state_list(initial_state, ops.shape(inputs)[0])
        projected = self.project_memory(memory)  # (B, S, U or H)

        if self.attention == "bahdanau":
            if padding_mask is None:
                padding_mask = ops.ones(ops.shape(inputs)[:2], "bool")
            inputs_tm = ops.transpose(inputs, (1, 0, 2))  # (T, B, E)
            mask_tm = ops.transpose(padding_mask, (1, 0))  # (T, B)

            outputs, weights = self._bahdanau_loop(
                inputs_tm, mask_tm, state, memory, projected, memory_padding_mask
            )  # (T, B, H), (T, B, S)
            outputs = ops.transpose(outputs, (1, 0, 2))  # (B, T, H)
            weights = ops.transpose(weights, (1, 0, 2))  # (B, T, S)
        else:
            h_seq, *_ = self._rnn(
                inputs, initial_state=state, mask=padding_mask, training=training
            )  # (B, T, H)
            context, weights = self._attention.attend(
                h_seq, memory, projected, memory_padding_mask
            )  # (B, T, M), (B, T, S)
            outputs = self._combine(
                ops.concatenate([h_seq, context], axis=-1)
            )  # (B, T, H)
        outputs = self._dropout(outputs, training=training)
        return outputs, weights

    def compute_output_shape(self, inputs_shape, memory_shape, **kwargs):
        return (
            tuple(inputs_shape[:2]) + (self.hidden_dim,),
            (inputs_shape[0], inputs_shape[1], memory_shape[1]),
        )

    def compute_output_spec(self, inputs, memory, **kwargs):
        outputs, weights = self.compute_output_shape(inputs.shape, memory.shape)
        return (
            keras.KerasTensor(outputs, dtype=self.compute_dtype),
            keras.KerasTensor(weights, dtype="float32"),
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "cell": self.cell,
                "attention": self.attention,
                "dropout": self.dropout,
                "use_cudnn": self.use_cudnn,
                "seed": self.seed,
            }
        )
        return config
