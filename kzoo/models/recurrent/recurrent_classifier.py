import keras

from kzoo.models.recurrent.recurrent_sequence_model import RECURRENT_SIZES
from kzoo.models.recurrent.recurrent_sequence_model import RecurrentSequenceModel


@keras.saving.register_keras_serializable(package="kzoo")
class RecurrentClassifier(RecurrentSequenceModel):
    """Sequence classifier: embedding, stacked (bi)RNN, final state, logits.

    The recurrent text classifier in the line of "Long Short-Term Memory"
    (Hochreiter and Schmidhuber, 1997), "Learning Phrase Representations
    using RNN Encoder-Decoder for Statistical Machine Translation" (Cho et
    al., 2014, the GRU) and "Bidirectional Recurrent Neural Networks"
    (Schuster and Paliwal, 1997): the final state of the last layer
    (both directions concatenated) goes to a Dense layer.

    Args:
        vocabulary_size: number of token ids.
        num_classes: number of output logits.
        cell: `"simple_rnn"`, `"lstm"` or `"gru"`.
        hidden_dim: units per direction.
        num_layers: stacked recurrent layers.
        bidirectional: run each layer in both directions.
        dropout: on embeddings, between layers and before the Dense.
        embedding_dim: width of the token embedding.
        use_cudnn: passed to Keras GRU/LSTM (cuDNN on GPU cannot be
            XLA-compiled under TensorFlow, keras-team/keras#18456).

    Inputs (dict):
        token_ids: (B, T) int; padding_mask: (B, T) bool, True for real
        tokens. Right padding does not change the logits.

    Returns:
        float32 logits (B, num_classes).

    Example:

    >>> import numpy as np
    >>> from kzoo import RecurrentClassifier
    >>> model = RecurrentClassifier(50, 3, hidden_dim=8, embedding_dim=8)
    >>> ids = np.array([[4, 5, 0]], "int32")
    >>> tuple(model({"token_ids": ids, "padding_mask": ids > 0}).shape)
    (1, 3)
    """

    _outputs_argument = "num_classes"

    SIZES = RECURRENT_SIZES
    SIZES_SOURCE = "kzoo's"
    DATA_ARGUMENTS = {"vocabulary_size": 20000, "num_classes": 2}

    def __init__(
        self,
        vocabulary_size,
        num_classes,
        cell="lstm",
        hidden_dim=64,
        num_layers=1,
        bidirectional=True,
        dropout=0.0,
        embedding_dim=64,
        use_cudnn=False,
        **kwargs,
    ):
        super().__init__(
            vocabulary_size=vocabulary_size,
            num_outputs=num_classes,
            cell=cell,
            hidden_dim=hidden_dim,
            num_layers=num_layers,
            bidirectional=bidirectional,
            dropout=dropout,
            embedding_dim=embedding_dim,
            num_features=None,
            use_cudnn=use_cudnn,
            **kwargs,
        )
        self.num_classes = num_classes

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}
