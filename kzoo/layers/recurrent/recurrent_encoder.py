"""A stack of (bidirectional) SimpleRNN / GRU / LSTM layers with masking."""

import keras
from keras import ops

from kzoo.layers.dropout import Dropout
from kzoo.utils.validation import check_one_of
from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import check_rank
from kzoo.utils.validation import check_rate
from kzoo.utils.validation import check_same_dims
from kzoo.utils.validation import static_shape

RECURRENT_CELLS = ("simple_rnn", "gru", "lstm")
_LAYERS = {
    "simple_rnn": keras.layers.SimpleRNN,
    "gru": keras.layers.GRU,
    "lstm": keras.layers.LSTM,
}


def check_use_cudnn(use_cudnn):
    if use_cudnn not in ("auto", True, False):
        raise ValueError(
            "`use_cudnn` must be True, False or 'auto'; received "
            f"{use_cudnn!r}"
        )
    return use_cudnn


def make_recurrent_layer(cell, units, use_cudnn, dtype, name, **kwargs):
    """A Keras SimpleRNN/GRU/LSTM layer; `use_cudnn` goes to GRU and LSTM."""
    if cell != "simple_rnn":
        kwargs["use_cudnn"] = use_cudnn
    return _LAYERS[cell](units, dtype=dtype, name=name, **kwargs)


@keras.saving.register_keras_serializable(package="kzoo")
class RecurrentEncoder(keras.layers.Layer):
    """Stacked, optionally bidirectional, recurrent encoder that honours padding.

    The encoder of "Neural Machine Translation by Jointly Learning to Align
    and Translate" (Bahdanau, Cho and Bengio, 2015) when `bidirectional`,
    stacked as in "Sequence to Sequence Learning with Neural Networks"
    (Sutskever, Vinyals and Le, 2014). Keras `SimpleRNN` / `GRU` / `LSTM`
    layers do the work; the padding mask goes to each of them, so a padded
    step leaves the state unchanged and the backward direction starts at
    the last real token: outputs at real positions and the final state do
    not depend on right padding.

    `use_cudnn` is passed to Keras GRU/LSTM. On GPU under TensorFlow the
    cuDNN kernel is fast but cannot be XLA-compiled (keras-team/keras#18456),
    so keep `False` under `jit_compile=True`; cuDNN also needs strictly
    right-padded masks.

    Args:
        hidden_dim: units per direction H.
        num_layers: number of stacked layers.
        cell: `"simple_rnn"`, `"gru"` or `"lstm"`.
        bidirectional: run each layer in both directions and concatenate.
        dropout: dropout rate between stacked layers.
        use_cudnn: `True`, `False` or `"auto"` (GRU and LSTM only).
        return_state: also return the final state of the last layer.
        seed: seed for the dropout `SeedGenerator`.

    Call arguments:
        inputs: (B, T, F) float features (e.g. embeddings).
        padding_mask: (B, T) bool, True for real steps.
        training: whether dropout is active.

    Returns:
        outputs (B, T, D) with D = H * (2 if bidirectional else 1); with
        `return_state`, `(outputs, final_h)` with final_h (B, D)
        (`[forward_last, backward_first]` when bidirectional), and for LSTM
        `(outputs, final_h, final_c)`.

    Example:

    >>> import keras
    >>> from keras import ops
    >>> from kzoo.layers import RecurrentEncoder
    >>> encoder = RecurrentEncoder(hidden_dim=8, num_layers=2)
    >>> x = keras.random.normal((2, 5, 4))
    >>> tuple(encoder(x, padding_mask=ops.ones((2, 5), "bool")).shape)
    (2, 5, 16)
    """

    def __init__(
        self,
        hidden_dim,
        num_layers=1,
        cell="gru",
        bidirectional=True,
        dropout=0.0,
        use_cudnn=False,
        return_state=False,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_dim = check_positive_int("hidden_dim", hidden_dim)
        self.num_layers = check_positive_int("num_layers", num_layers)
        self.cell = check_one_of("cell", cell, RECURRENT_CELLS)
        self.bidirectional = bool(bidirectional)
        self.dropout = check_rate("dropout", dropout)
        self.use_cudnn = check_use_cudnn(use_cudnn)
        self.return_state = bool(return_state)
        self.seed = seed

    @property
    def output_dim(self):
        return self.hidden_dim * (2 if self.bidirectional else 1)

    def build(self, inputs_shape, padding_mask_shape=None):
        check_rank("inputs", inputs_shape, 3, "(batch, time, features)")
        self._rnns = []
        self._dropouts = []
        shape = tuple(inputs_shape)
        for i in range(self.num_layers):
            rnn = make_recurrent_layer(
                self.cell,
                self.hidden_dim,
                self.use_cudnn,
                self.dtype_policy,
                f"{self.cell}_{i}",
                return_sequences=True,
                return_state=True,
            )
            if self.bidirectional:
                rnn = keras.layers.Bidirectional(
                    rnn, dtype=self.dtype_policy, name=f"bidirectional_{i}"
                )
            rnn.build(shape)
            self._rnns.append(rnn)
            self._dropouts.append(
                Dropout(
                    self.dropout,
                    seed=None if self.seed is None else self.seed + i,
                    dtype=self.dtype_policy,
                )
            )
            shape = shape[:2] + (self.output_dim,)

    def call(self, inputs, padding_mask=None, training=None):
        if padding_mask is not None:
            check_same_dims(
                "padding_mask",
                static_shape(padding_mask),
                static_shape(inputs)[:2],
                "(batch_size, time)",
            )
            padding_mask = ops.cast(padding_mask, "bool")
        x = inputs  # (B, T, F)
        n_states = 2 if self.cell == "lstm" else 1
        for i, rnn in enumerate(self._rnns):
            if i > 0:
                x = self._dropouts[i](x, training=training)
            x, *states = rnn(x, mask=padding_mask, training=training)  # (B, T, D)
        if not self.return_state:
            return x
        if self.bidirectional:
            forward, backward = states[:n_states], states[n_states:]
            states = [
                ops.concatenate([f, b], axis=-1) for f, b in zip(forward, backward)
            ]  # each (B, D)
        return (x, *states)

    def compute_output_shape(self, inputs_shape, padding_mask_shape=None):
        outputs = tuple(inputs_shape[:2]) + (self.output_dim,)
        if not self.return_state:
            return outputs
        state = (inputs_shape[0], self.output_dim)
        n_states = 2 if self.cell == "lstm" else 1
        return (outputs,) + (state,) * n_states

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "num_layers": self.num_layers,
                "cell": self.cell,
                "bidirectional": self.bidirectional,
                "dropout": self.dropout,
                "use_cudnn": self.use_cudnn,
                "return_state": self.return_state,
                "seed": self.seed,
            }
        )
        return config
