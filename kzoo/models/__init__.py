"""kzoo models: one folder per model family; each adds its import lines below."""
from kzoo.models.gru_translator import GRUTranslator
from kzoo.models.transformer_encoder import TransformerEncoder
from kzoo.models.bert import BertEncoder, BertMaskedLM, BertClassifier
from kzoo.models.transformer_lm import TransformerLM
