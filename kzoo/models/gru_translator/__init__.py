from kzoo.models.gru_translator.gru_translator import GRUTranslator  # noqa: F401
