"""TensorFlow-only export code (SavedModel signatures with tokenizers inside). Imported explicitly, never by kzoo/__init__.

- `export_translator(model, path, source_tokenizer, target_tokenizer, **options)`:
  strings in, strings out, for `GRUTranslator` and `TransformerSeq2Seq`
  (`Translator`, in `translator.py`).
- `export_text_generator(model, path, tokenizer, **options)`: prompts in,
  continuations out, for `TransformerLM` (`TextGenerator`, in
  `language_model.py`).
- `decoding.py`: each model's step function (not `model.generate`), driven
  by the samplers of `kzoo.models.generation` (greedy, `BeamSampler` with
  the GNMT length penalty, the LM's keras-hub samplers).
"""

from kzoo.export.language_model import TextGenerator, export_text_generator  # noqa: F401
from kzoo.export.translator import Translator, export_translator  # noqa: F401
