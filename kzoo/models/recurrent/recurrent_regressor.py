import keras

from kzoo.models.recurrent.recurrent_sequence_model import RECURRENT_SIZES
from kzoo.models.recurrent.recurrent_sequence_model import RecurrentSequenceModel


@keras.saving.register_keras_serializable(package="kzoo")
class RecurrentRegressor(RecurrentSequenceModel):
    """Sequence regressor over token ids or float feature sequences.

    Same graph as `RecurrentClassifier` (the recurrent models of "Long
    Short-Term Memory", Hochreiter and Schmidhuber, 1997; GRU of Cho et
    al., 2014) with a linear output of `output_dim` values. Give
    `vocabulary_size` for token inputs or `num_features` for float
    features (time series), not both.

    Args:
        vocabulary_size: number of token ids, or None with `num_features`.
        output_dim: number of regressed values.
        cell: `"simple_rnn"`, `"lstm"` or `"gru"`.
        hidden_dim: units per direction.
        num_layers: stacked recurrent layers.
        bidirectional: run each layer in both directions.
        dropout: on inputs, between layers and before the Dense.
        embedding_dim: width of the token embedding (token inputs only).
        num_features: F, width of float feature inputs, or None.
        use_cudnn: passed to Keras GRU/LSTM.

    Inputs (dict):
        `{"token_ids" (B, T) int, "padding_mask" (B, T) bool}` or
        `{"features" (B, T, F) float, "padding_mask" (B, T) bool}`.
        Right padding does not change the output.

    Returns:
        float32 (B, output_dim).

    Example:

    >>> import numpy as np
    >>> from kzoo import RecurrentRegressor
    >>> model = RecurrentRegressor(output_dim=2, num_features=3, hidden_dim=8)
    >>> x = np.random.rand(4, 7, 3).astype("float32")
    >>> tuple(model({"features": x, "padding_mask": np.ones((4, 7), bool)}).shape)
    (4, 2)
    """

    _outputs_argument = "output_dim"

    SIZES = RECURRENT_SIZES
    SIZES_SOURCE = "kzoo's"
    DATA_ARGUMENTS = {"num_features": 1}

    def __init__(
        self,
        vocabulary_size=None,
        output_dim=1,
        cell="lstm",
        hidden_dim=64,
        num_layers=1,
        bidirectional=True,
        dropout=0.0,
        embedding_dim=64,
        num_features=None,
        use_cudnn=False,
        **kwargs,
    ):
        super().__init__(
            vocabulary_size=vocabulary_size,
            num_outputs=output_dim,
            cell=cell,
            hidden_dim=hidden_dim,
            num_layers=num_layers,
            bidirectional=bidirectional,
            dropout=dropout,
            embedding_dim=embedding_dim,
            num_features=num_features,
            use_cudnn=use_cudnn,
            **kwargs,
        )
        self.output_dim = output_dim

    def get_config(self):
        return {
            **super().get_config(),
            "output_dim": self.output_dim,
            "num_features": self.num_features,
        }
