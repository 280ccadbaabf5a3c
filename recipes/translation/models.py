"""The two translation models, built from a recipe config and the data.

Each is called once on a real batch, so that a resume backup can be
restored into it before training.
"""

from kzoo import GRUTranslator, TransformerSeq2Seq
from translation.data import make_dataset


def build_gru(config, data):
    """`GRUTranslator` with the recipe's sizes and the data's vocabularies."""
    model = GRUTranslator(
        source_vocabulary_size=data.source_tokenizer.vocabulary_size(),
        target_vocabulary_size=data.target_tokenizer.vocabulary_size(),
        embedding_dim=config.embedding_dim,
        hidden_dim=config.hidden_dim,
        num_encoder_layers=config.num_encoder_layers,
        attention=config.attention,
        cell=config.cell,
        dropout=config.dropout,
        use_cudnn=config.use_cudnn,
    )
    return built(model, config, data)


def build_transformer(config, data):
    """`TransformerSeq2Seq`; its positions cover the longest source and the
    longest output plus the start token."""
    model = TransformerSeq2Seq(
        vocabulary_size=data.source_tokenizer.vocabulary_size(),
        decoder_vocabulary_size=data.target_tokenizer.vocabulary_size(),
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        hidden_dim=config.hidden_dim,
        intermediate_dim=config.intermediate_dim,
        max_sequence_length=max(config.max_length, config.max_output_length + 1),
        dropout=config.dropout,
        normalize_first=config.normalize_first,
    )
    return built(model, config, data)


def built(model, config, data):
    """Calls `model` on one validation batch (creates its weights)."""
    inputs, _, _ = next(iter(make_dataset(config, data, data.split.validation)))
    model(inputs)
    return model
