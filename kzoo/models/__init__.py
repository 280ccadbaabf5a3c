"""kzoo models: one folder per model family; each adds its import lines below."""
from kzoo.models.gru_translator import GRUTranslator
