"""The shared graph of `RecurrentClassifier` and `RecurrentRegressor`."""

import keras
from keras import ops

from kzoo.layers.dropout import Dropout
from kzoo.layers.recurrent.recurrent_encoder import RECURRENT_CELLS
from kzoo.layers.recurrent.recurrent_encoder import RecurrentEncoder
from kzoo.layers.recurrent.recurrent_encoder import check_use_cudnn
from kzoo.models.backbone import Backbone
from kzoo.utils.validation import check_integer_dtype
from kzoo.utils.validation import check_one_of
from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import check_rate


# Sizes of the recurrent models (kzoo's own: no paper fixes one).
RECURRENT_SIZES = {
    "tiny": {"embedding_dim": 32, "hidden_dim": 32, "num_layers": 1},
    "small": {"embedding_dim": 128, "hidden_dim": 128, "num_layers": 1},
    "base": {"embedding_dim": 256, "hidden_dim": 256, "num_layers": 2},
}


class RecurrentSequenceModel(Backbone):
    """Embedding (or float features) -> RecurrentEncoder -> final state -> Dense.

    Base class; see `RecurrentClassifier` and `RecurrentRegressor`. The
    sequence summary is the final state of the last layer (forward state
    at the last real token, backward state at the first token), so right
    padding does not change the output.
    """

    def __init__(
        self,
        vocabulary_size,
        num_outputs,
        cell,
        hidden_dim,
        num_layers,
        bidirectional,
        dropout,
        embedding_dim,
        num_features,
        use_cudnn,
        dtype=None,
        **kwargs,
    ):
        if (vocabulary_size is None) == (num_features is None):
            raise ValueError(
                "Exactly one of `vocabulary_size` (token inputs) and "
                "`num_features` (float feature inputs) must be set; received "
                f"vocabulary_size={vocabulary_size!r}, "
                f"num_features={num_features!r}"
            )
        vocabulary_size = check_positive_int(
            "vocabulary_size", vocabulary_size, allow_none=True
        )
        num_features = check_positive_int("num_features", num_features, allow_none=True)
        num_outputs = check_positive_int(self._outputs_argument, num_outputs)
        cell = check_one_of("cell", cell, RECURRENT_CELLS)
        hidden_dim = check_positive_int("hidden_dim", hidden_dim)
        num_layers = check_positive_int("num_layers", num_layers)
        dropout = check_rate("dropout", dropout)
        embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        use_cudnn = check_use_cudnn(use_cudnn)

        # === Layers ===
        self.token_embedding = None
        if vocabulary_size is not None:
            self.token_embedding = keras.layers.Embedding(
                vocabulary_size, embedding_dim, dtype=dtype, name="token_embedding"
            )
        self.input_dropout = Dropout(dropout, dtype=dtype)
        self.encoder = RecurrentEncoder(
            hidden_dim,
            num_layers=num_layers,
            cell=cell,
            bidirectional=bidirectional,
            dropout=dropout,
            use_cudnn=use_cudnn,
            return_state=True,
            dtype=dtype,
            name="encoder",
        )
        self.output_dropout = Dropout(dropout, dtype=dtype)
        self.output_dense = keras.layers.Dense(num_outputs, dtype=dtype, name="output")

        # === Functional model ===
        mask = keras.Input((None,), dtype="bool", name="padding_mask")
        if vocabulary_size is not None:
            ids = keras.Input((None,), dtype="int32", name="token_ids")
            inputs = {"token_ids": ids, "padding_mask": mask}
            x = self.token_embedding(ids)  # (B, T, E)
        else:
            features = keras.Input((None, num_features), name="features")
            inputs = {"features": features, "padding_mask": mask}
            x = features  # (B, T, F)
        x = self.input_dropout(x)
        _, final_h, *_ = self.encoder(x, padding_mask=mask)  # (B, D)
        x = self.output_dropout(final_h)
        outputs = ops.cast(self.output_dense(x), "float32")  # (B, num_outputs)
        super().__init__(inputs=inputs, outputs=outputs, dtype=dtype, **kwargs)

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_features = num_features
        self.cell = cell
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.bidirectional = bool(bidirectional)
        self.dropout = dropout
        self.embedding_dim = embedding_dim
        self.use_cudnn = use_cudnn

    _outputs_argument = "num_outputs"

    def call(self, inputs, training=None, mask=None):
        if isinstance(inputs, dict) and "token_ids" in inputs:
            check_integer_dtype("token_ids", inputs["token_ids"])
        return super().call(inputs, training=training, mask=mask)

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "cell": self.cell,
            "hidden_dim": self.hidden_dim,
            "num_layers": self.num_layers,
            "bidirectional": self.bidirectional,
            "dropout": self.dropout,
            "embedding_dim": self.embedding_dim,
            "use_cudnn": self.use_cudnn,
        }
