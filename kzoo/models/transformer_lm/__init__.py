from kzoo.models.transformer_lm.transformer_lm import TransformerLM
