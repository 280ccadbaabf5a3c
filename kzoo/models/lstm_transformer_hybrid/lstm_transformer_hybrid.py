"""Recurrent layers for local order, then Transformer blocks for global context.

Letters in shape comments: B batch, T length, D hidden_dim.
"""

import keras
from keras import ops

from kzoo.layers.dropout import Dropout
from kzoo.layers.recurrent.recurrent_encoder import RecurrentEncoder
from kzoo.layers.recurrent.recurrent_encoder import check_use_cudnn
from kzoo.layers.transformer.transformer_encoder_block import TransformerEncoderBlock
from kzoo.models.backbone import Backbone
from kzoo.utils.validation import check_divisible
from kzoo.utils.validation import check_integer_dtype
from kzoo.utils.validation import check_one_of
from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import check_rate

TASKS = ("classification", "regression")


@keras.saving.register_keras_serializable(package="kzoo")
class LSTMTransformerHybrid(Backbone):
    """A BiLSTM (or BiGRU) stack, then Transformer encoder blocks, pooled.

    Follows the idea of "R-Transformer: Recurrent Neural Network Enhanced
    Transformer" (Wang, Xu, Jiang and Wang, 2019): recurrent layers model
    local order, so no position embedding is needed, and multi-head
    self-attention models global dependencies. Simplification, stated
    plainly: R-Transformer runs a "LocalRNN" over a short window before
    every attention layer; here the recurrent stack runs once over the whole
    sequence (bidirectionally) below all the Transformer blocks
    (`kzoo.layers.TransformerEncoderBlock`, post-LN, with
    `kzoo.layers.MultiHeadAttention`).

    Output: masked mean over real tokens (float32), dropout, then Dense to
    `num_outputs`. `task="classification"` returns logits,
    `task="regression"` returns the values; the graph is the same, the task
    is kept in the config for the recipe (loss and metrics).

    Args:
        vocabulary_size: number of token ids.
        num_outputs: classes (logits) or regressed values.
        task: `"classification"` or `"regression"`.
        hidden_dim: D, the embedding and model width (even: the recurrent
            stack has D / 2 units per direction).
        num_recurrent_layers: bidirectional recurrent layers.
        num_transformer_layers: Transformer encoder blocks.
        num_heads: attention heads (must divide `hidden_dim`).
        intermediate_dim: feed-forward width of the blocks.
        cell: `"lstm"` or `"gru"` (or `"simple_rnn"`).
        dropout: on embeddings, recurrent and Transformer layers, pooled
            output.

    Inputs (dict):
        token_ids: (B, T) int; padding_mask: (B, T) bool, True for real
        tokens. Padding is masked in the recurrent layers, in attention
        and in the pooling: right padding does not change the output.

    Returns:
        float32 (B, num_outputs).

    Example:

    >>> import numpy as np
    >>> from kzoo import LSTMTransformerHybrid
    >>> model = LSTMTransformerHybrid(50, 2, hidden_dim=16, num_heads=2,
    ...                               intermediate_dim=32)
    >>> ids = np.array([[4, 5, 0]], "int32")
    >>> tuple(model({"token_ids": ids, "padding_mask": ids > 0}).shape)
    (1, 2)
    """

    SIZES = {
        "tiny": {"hidden_dim": 32, "num_recurrent_layers": 1,
                 "num_transformer_layers": 1, "num_heads": 2, "intermediate_dim": 64},
        "small": {"hidden_dim": 128, "num_recurrent_layers": 1,
                  "num_transformer_layers": 2, "num_heads": 4, "intermediate_dim": 256},
        "base": {"hidden_dim": 256, "num_recurrent_layers": 2,
                 "num_transformer_layers": 4, "num_heads": 8, "intermediate_dim": 1024},
    }
    SIZES_SOURCE = "kzoo's"
    DATA_ARGUMENTS = {"vocabulary_size": 20000, "num_outputs": 2}

    def __init__(
        self,
        vocabulary_size,
        num_outputs,
        task="classification",
        hidden_dim=64,
        num_recurrent_layers=1,
        num_transformer_layers=2,
        num_heads=4,
        intermediate_dim=128,
        cell="lstm",
        dropout=0.0,
        use_cudnn=False,
        dtype=None,
        **kwargs,
    ):
        vocabulary_size = check_positive_int("vocabulary_size", vocabulary_size)
        num_outputs = check_positive_int("num_outputs", num_outputs)
        task = check_one_of("task", task, TASKS)
        hidden_dim = check_positive_int("hidden_dim", hidden_dim)
        check_divisible("hidden_dim", hidden_dim, "2 (directions)", 2)
        num_recurrent_layers = check_positive_int(
            "num_recurrent_layers", num_recurrent_layers
        )
        num_transformer_layers = check_positive_int(
            "num_transformer_layers", num_transformer_layers
        )
        num_heads = check_positive_int("num_heads", num_heads)
        check_divisible("hidden_dim", hidden_dim, "num_heads", num_heads)
        intermediate_dim = check_positive_int("intermediate_dim", intermediate_dim)
        dropout = check_rate("dropout", dropout)
        use_cudnn = check_use_cudnn(use_cudnn)

        # === Layers ===
        self.token_embedding = keras.layers.Embedding(
            vocabulary_size, hidden_dim, dtype=dtype, name="token_embedding"
        )
        self.embedding_dropout = Dropout(dropout, dtype=dtype)
        self.recurrent_encoder = RecurrentEncoder(
            hidden_dim // 2,
            num_layers=num_recurrent_layers,
            cell=cell,
            bidirectional=True,
            dropout=dropout,
            use_cudnn=use_cudnn,
            dtype=dtype,
            name="recurrent_encoder",
        )
        self.transformer_layers = [
            TransformerEncoderBlock(
                num_heads=num_heads,
                intermediate_dim=intermediate_dim,
                dropout=dropout,
                dtype=dtype,
                name=f"transformer_layer_{i}",
            )
            for i in range(num_transformer_layers)
        ]
        self.output_dropout = Dropout(dropout, dtype=dtype)
        self.output_dense = keras.layers.Dense(num_outputs, dtype=dtype, name="output")

        # === Functional model ===
        inputs = {
            "token_ids": keras.Input((None,), dtype="int32", name="token_ids"),
            "padding_mask": keras.Input((None,), dtype="bool", name="padding_mask"),
        }
        mask = inputs["padding_mask"]
        x = self.token_embedding(inputs["token_ids"])  # (B, T, D)
        x = self.embedding_dropout(x)
        x = self.recurrent_encoder(x, padding_mask=mask)  # (B, T, D)
        for block in self.transformer_layers:
            x = block(x, padding_mask=mask)  # (B, T, D)
        weights = ops.cast(mask, "float32")[..., None]  # (B, T, 1)
        pooled = ops.sum(ops.cast(x, "float32") * weights, axis=1) / ops.maximum(
            ops.sum(weights, axis=1), 1.0
        )  # (B, D) float32 mean over real tokens
        pooled = self.output_dropout(ops.cast(pooled, x.dtype))
        outputs = ops.cast(self.output_dense(pooled), "float32")  # (B, num_outputs)
        super().__init__(inputs=inputs, outputs=outputs, dtype=dtype, **kwargs)

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_outputs = num_outputs
        self.task = task
        self.hidden_dim = hidden_dim
        self.num_recurrent_layers = num_recurrent_layers
        self.num_transformer_layers = num_transformer_layers
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.cell = cell
        self.dropout = dropout
        self.use_cudnn = use_cudnn

    def call(self, inputs, training=None, mask=None):
        if isinstance(inputs, dict) and "token_ids" in inputs:
            check_integer_dtype("token_ids", inputs["token_ids"])
        return super().call(inputs, training=training, mask=mask)

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "num_outputs": self.num_outputs,
            "task": self.task,
            "hidden_dim": self.hidden_dim,
            "num_recurrent_layers": self.num_recurrent_layers,
            "num_transformer_layers": self.num_transformer_layers,
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "cell": self.cell,
            "dropout": self.dropout,
            "use_cudnn": self.use_cudnn,
        }
