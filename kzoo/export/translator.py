"""Strings in, strings out: a translator and its SavedModel export.

TensorFlow only. `Translator` wraps any kzoo encoder-decoder that has
`generate(encoder_token_ids, encoder_padding_mask, max_length,
start_token_id, end_token_id, beam_size, length_penalty)` (`GRUTranslator`,
`TransformerSeq2Seq`) with its source and target tokenizers, in one
`tf.function` from a batch of strings to a batch of strings: tokenize,
truncate, pad, generate, strip special tokens, detokenize. The same function
is what `export` writes as the SavedModel's `serving_default` signature, so
what the recipe scores is what is served:

    saved_model_cli run --dir saved_models/gru_translator/saved_model \
        --tag_set serve --signature_def serving_default \
        --input_exprs 'inputs=["Good morning."]'

Behaviour at the edges: an empty (or whitespace-only) input gives an empty
output; an input longer than `max_input_length` pieces is truncated, with a
warning on stderr (and the `truncated` output set); characters the source
vocabulary does not know (another script) become the unknown piece, which
does not crash.
"""

import sys
import warnings

import keras

from kzoo.data.translation import BOS_ID, EOS_ID, PAD_ID
from kzoo.models.generation import BeamSampler

MIN_PADDED_LENGTH = 8  # inputs are padded to 8, 16, 32, ... pieces: few shapes


class Translator:
    """Translates batches of strings with a model and two tokenizers.

    Args:
        model: a kzoo encoder-decoder with `generate(...)`.
        source_tokenizer: strings -> int ids with `tokenize`: a
            `kzoo.data.tokenizers.FrozenSentencePiece` (core TF ops: the
            SavedModel then loads anywhere, `saved_model_cli` included) or a
            keras-hub tokenizer (its tensorflow-text op must be imported
            before loading the SavedModel).
        target_tokenizer: the same kind, with `detokenize`.
        max_input_length: source pieces kept; longer inputs are truncated.
        max_output_length: pieces generated at most (end token included).
        beam_size: 1 for greedy decoding, else beam search.
        length_penalty: GNMT length penalty alpha for beam search.
        start_token_id: the decoder's first input (SentencePiece BOS).
        end_token_id: ends a translation (SentencePiece EOS).

    Example:

    A tiny untrained model and tokenizers trained on three sentences; with
    the trained model and tokenizers of `recipes/translate_gru.py`,
    `translator(["Good morning."])` gives `['Guten Morgen.']`.

    >>> import os, tempfile
    >>> from kzoo import GRUTranslator
    >>> from kzoo.data.tokenizers import FrozenSentencePiece, corpus_words
    >>> from kzoo.data.translation import train_sentence_piece
    >>> from kzoo.export.translator import Translator
    >>> english = ["Good morning.", "Good night.", "Thank you very much."]
    >>> german = ["Guten Morgen.", "Gute Nacht.", "Vielen Dank."]
    >>> source = train_sentence_piece(english, 30)
    >>> target = train_sentence_piece(german, 30)
    >>> model = GRUTranslator(source.vocabulary_size(), target.vocabulary_size(),
    ...                       embedding_dim=8, hidden_dim=8)
    >>> translator = Translator(
    ...     model, FrozenSentencePiece(source, corpus_words(english)),
    ...     FrozenSentencePiece(target), max_output_length=4)
    >>> outputs = translator(["Good morning.", ""])  # untrained: any pieces
    >>> isinstance(outputs[0], str), outputs[1]
    (True, '')
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = translator.export(os.path.join(tmp.name, "saved_model"))
    >>> os.path.exists(os.path.join(path, "saved_model.pb"))
    True
    >>> tmp.cleanup()
    """

    def __init__(
        self,
        model,
        source_tokenizer,
        target_tokenizer,
        max_input_length=64,
        max_output_length=64,
        beam_size=1,
        length_penalty=0.6,
        start_token_id=BOS_ID,
        end_token_id=EOS_ID,
    ):
        import tensorflow as tf

        from kzoo.utils.validation import check_positive_int

        if keras.backend.backend() != "tensorflow":
            raise ValueError(
                "Translator needs the TensorFlow backend (tokenizers and "
                "SavedModel export run in TensorFlow); received backend "
                f"{keras.backend.backend()!r}. Set KERAS_BACKEND=tensorflow."
            )
        self.model = model
        self.source_tokenizer = source_tokenizer
        self.target_tokenizer = target_tokenizer
        self.max_input_length = check_positive_int("max_input_length", max_input_length)
        self.max_output_length = check_positive_int(
            "max_output_length", max_output_length
        )
        self.beam_size = check_positive_int("beam_size", beam_size)
        self.length_penalty = float(length_penalty)
        self.start_token_id = int(start_token_id)
        self.end_token_id = int(end_token_id)
        self.translate_strings = tf.function(
            self._translate_strings,
            input_signature=[tf.TensorSpec([None], tf.string, name="inputs")],
        )

    def _translate_strings(self, inputs):
        """(B,) strings -> {"outputs": (B,) strings, "truncated": (B,) bool}."""
        import tensorflow as tf

        pieces = tf.cast(self.source_tokenizer.tokenize(inputs), tf.int32)  # (B, None)
        lengths = pieces.row_lengths()  # (B,)
        truncated = lengths > self.max_input_length
        num_truncated = tf.reduce_sum(tf.cast(truncated, tf.int32))

        def warn():
            tf.print(
                "WARNING: kzoo Translator:",
                num_truncated,
                "input(s) longer than",
                self.max_input_length,
                "pieces truncated to",
                self.max_input_length,
                output_stream=sys.stderr,
            )
            return tf.constant(0)

        tf.cond(num_truncated > 0, warn, lambda: tf.constant(0))
        pieces = pieces[:, : self.max_input_length]
        longest = tf.cast(tf.reduce_max(pieces.row_lengths()), tf.int32)
        # Pad to the next power of two (at least 8, at most the maximum), so
        # that a compiled `generate` sees few distinct shapes.
        width = tf.cast(MIN_PADDED_LENGTH, tf.int32)
        width = tf.while_loop(lambda w: w < longest, lambda w: w * 2, [width])[0]
        width = tf.minimum(width, self.max_input_length)  # >= longest
        batch = tf.shape(inputs)[0]
        token_ids = pieces.to_tensor(default_value=PAD_ID, shape=[batch, width])  # (B, S)
        padding_mask = tf.not_equal(token_ids, PAD_ID)  # (B, S)
        generated = self.model.generate(
            {"encoder_token_ids": token_ids, "encoder_padding_mask": padding_mask},
            max_length=self.max_output_length + 1,  # + the start token
            sampler="greedy" if self.beam_size == 1 else BeamSampler(
                self.beam_size, self.length_penalty),
            stop_token_ids=(self.end_token_id,),
            start_token_id=self.start_token_id,
        )  # (B, 1 + L): start token, pieces, end token, then padding
        generated = tf.convert_to_tensor(generated)
        keep = tf.logical_not(
            tf.reduce_any(
                tf.equal(
                    generated[..., None],
                    tf.constant([PAD_ID, self.start_token_id, self.end_token_id])[
                        None, None, :
                    ],
                ),
                axis=-1,
            )
        )
        # Pieces after the end token are padding already; strip specials.
        output_ids = tf.ragged.boolean_mask(generated, keep)  # ragged (B, None)
        text = self.target_tokenizer.detokenize(output_ids)  # (B,)
        text = tf.where(tf.equal(lengths, 0), tf.constant(""), text)
        return {"outputs": text, "truncated": truncated}

    def __call__(self, sentences, batch_size=64):
        """Translates a list of strings; returns a list of strings."""
        import tensorflow as tf

        sentences = [str(s) for s in sentences]
        results, truncated = [], 0
        for start in range(0, len(sentences), batch_size):
            batch = sentences[start : start + batch_size]
            real = len(batch)
            if len(sentences) > batch_size:
                # Same batch size every call (empty strings are cheap): one
                # compiled `generate` per padded length, not per batch size.
                batch = batch + [""] * (batch_size - real)
            out = self.translate_strings(tf.constant(batch, tf.string))
            results.extend(t.decode("utf-8") for t in out["outputs"].numpy()[:real])
            truncated += int(out["truncated"].numpy()[:real].sum())
        if truncated:
            warnings.warn(
                f"{truncated} input(s) longer than {self.max_input_length} "
                "pieces were truncated before translation",
                stacklevel=2,
            )
        return results

    def export(self, path):
        """Writes a SavedModel whose `serving_default` maps strings to strings.

        Signature: `inputs` (B,) string -> `outputs` (B,) string, `truncated`
        (B,) bool. Tokenizers (SentencePiece protos) travel inside.
        """
        import tensorflow as tf

        # A plain `tf.Module` root that tracks the model's variables, not the
        # model: saving a tracked Keras model would also trace its default
        # `call` signature with every dimension unknown, which the recipes
        # do not need and which not every model supports.
        root = tf.Module()
        root.model_variables = [
            getattr(v, "value", v) for v in self.model.variables
        ]
        root.source_tokenizer = self.source_tokenizer
        root.target_tokenizer = self.target_tokenizer
        root.serve = tf.function(
            self._translate_strings,
            input_signature=[tf.TensorSpec([None], tf.string, name="inputs")],
        )
        signature = root.serve.get_concrete_function()
        tf.saved_model.save(root, path, signatures={"serving_default": signature})
        return path
