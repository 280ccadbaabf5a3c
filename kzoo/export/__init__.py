"""TensorFlow-only export code (SavedModel signatures with tokenizers inside). Imported explicitly, never by kzoo/__init__.

- `export_translator(model, path, source_tokenizer, target_tokenizer, **options)`:
  strings in, strings out, for `GRUTranslator` and `TransformerSeq2Seq`
  (`Translator`, in `translator.py`).
- `export_text_generator(model, path, tokenizer, **options)`: prompts in,
  continuations out, for `TransformerLM` (`TextGenerator`, in
  `language_model.py`).
- `decoding.py`: the decoding loops both use, over each model's step
  functions (not `model.generate`).
"""

from kzoo.export.language_model import TextGenerator, export_text_generator  # noqa: F401
from kzoo.export.translator import Translator, export_translator  # noqa: F401
