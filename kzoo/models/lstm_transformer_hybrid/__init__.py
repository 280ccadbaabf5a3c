from kzoo.models.lstm_transformer_hybrid.lstm_transformer_hybrid import (  # noqa: F401
    LSTMTransformerHybrid,
)
