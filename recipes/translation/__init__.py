"""What the translation recipes share, split by what it does.

`translate_gru.py` and `translate_transformer.py` differ only in their model
and its size table; the data, the split, the tokenizers, the training loop
(schedule, early stopping, checkpoints with exact resume, TensorBoard), the
metrics (BLEU and chrF with sacrebleu on detokenized text) and the artefacts
(a strings-to-strings SavedModel from `kzoo.export` for both) are the same,
so their numbers can stand side by side.

- `config`: the fields every translation recipe has, their checks, set-up.
- `data`: load, split, SentencePiece tokenizers, `tf.data` pipelines.
- `models`: the two models built from a config and the data.
- `training`: compile and fit with exact resume; what training measured.
- `evaluation`: test loss, BLEU / chrF (overall, per origin, copy-source
  baseline), samples, TensorBoard translations and attention maps.
- `export`: the `kzoo.export.Translator` and the artefacts on disk.

TensorFlow backend only (tf.data, tensorflow-text, SavedModel export).
Uses the shared `common` package and kzoo's public API only.
"""

import common  # noqa: F401  (sets KERAS_BACKEND before keras is imported)

from translation import config, data, evaluation, export, models, training  # noqa: E402,F401
