"""Strings in, strings out: a translator and its SavedModel export.

TensorFlow only. `Translator` wraps a kzoo encoder-decoder (`GRUTranslator`
or `TransformerSeq2Seq`) with its source and target tokenizers, in one
`tf.function` from a batch of strings to a batch of strings: tokenize,
truncate (or refuse) too-long inputs, pad, decode, strip special tokens,
detokenize. Decoding runs the samplers of `kzoo.models.generation` over the
model's step functions (`kzoo.export.decoding`): greedy, or for both models
beam search with `beam_size` beams ranked by the GNMT length penalty
`length_penalty` (`BeamSampler`, the same as `model.generate`'s); the
SavedModel does not depend on the Python signature of `model.generate`. The same function is what `export` writes as
the SavedModel's `serving_default` signature, so what a recipe scores is
what is served:

    saved_model_cli run --dir saved_models/gru_translator/saved_model \
        --tag_set serve --signature_def serving_default \
        --input_exprs 'inputs=["Good morning."]'

`export_translator(model, path, source_tokenizer, target_tokenizer,
**options)` does both steps in one call.

Behaviour at the edges: an empty (or whitespace-only) input gives an empty
output; an input longer than `max_input_length` pieces is truncated, with a
warning on stderr (and the `truncated` output set), or, with
`truncate=False`, fails with an error that names the limit; characters the
source vocabulary does not know (another script) become the unknown piece,
which does not crash.
"""

import sys
import warnings

from kzoo.data.translation import BOS_ID, EOS_ID, PAD_ID
from kzoo.export import decoding

MIN_PADDED_LENGTH = 8  # inputs are padded to 8, 16, 32, ... pieces: few shapes


class Translator:
    """Translates batches of strings with a model and two tokenizers.

    Args:
        model: a `GRUTranslator` or a `TransformerSeq2Seq`.
        source_tokenizer: strings -> int ids with `tokenize`: a
            `kzoo.data.tokenizers.FrozenSentencePiece` (core TF ops: the
            SavedModel then loads anywhere, `saved_model_cli` included) or a
            keras-hub tokenizer (its tensorflow-text op must be imported
            before loading the SavedModel).
        target_tokenizer: the same kind, with `detokenize`.
        max_input_length: source pieces kept (at most the Transformer's
            `max_sequence_length`).
        max_output_length: pieces generated at most (end token included).
        beam_size: 1 for greedy decoding, else beam search with this many
            beams (both models).
        length_penalty: GNMT length penalty alpha of the beam search
            (`kzoo.models.generation.BeamSampler`, both models): hypotheses
            ranked by `log p / ((5 + n) / 6) ** alpha`; unused when
            `beam_size=1`.
        truncate: True: longer inputs are cut to `max_input_length` pieces
            (warning, `truncated` output); False: they raise an error.
        start_token_id: the decoder's first input (SentencePiece BOS).
        end_token_id: ends a translation (SentencePiece EOS).
        jit_compile: compile the decoding loop with XLA (once per padded
            input shape); "auto": for the GRU without cuDNN kernels.

    Attributes:
        decoding: a dict of what decoding really does (`beam_size`,
            `length_penalty`, None for greedy, `search`), for metrics
            files.

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
    ...     FrozenSentencePiece(target), max_output_length=4, beam_size=2)
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
        truncate=True,
        start_token_id=BOS_ID,
        end_token_id=EOS_ID,
        jit_compile="auto",
    ):
        import tensorflow as tf

        from kzoo.utils.validation import check_positive_int

        decoding.check_tensorflow("Translator")
        self.model = model
        self.source_tokenizer = source_tokenizer
        self.target_tokenizer = target_tokenizer
        self.max_input_length = check_positive_int("max_input_length", max_input_length)
        self.max_output_length = check_positive_int(
            "max_output_length", max_output_length
        )
        self.beam_size = check_positive_int("beam_size", beam_size)
        if isinstance(length_penalty, bool) or not isinstance(length_penalty, (int, float)) \
                or length_penalty < 0:
            raise ValueError(
                f"`length_penalty` must be a number >= 0; received {length_penalty!r}"
            )
        self.length_penalty = float(length_penalty)
        if not isinstance(truncate, bool):
            raise ValueError(f"`truncate` must be True or False; received {truncate!r}")
        self.truncate = truncate
        self.start_token_id = int(start_token_id)
        self.end_token_id = int(end_token_id)
        limit = getattr(model, "max_sequence_length", None)
        if limit is not None and self.max_input_length > limit:
            raise ValueError(
                f"`max_input_length` must be <= the model's max_sequence_length "
                f"({limit}); received {self.max_input_length}"
            )
        self.decoder = decoding.seq2seq_decoder(
            model, max_length=self.max_output_length,
            start_token_id=self.start_token_id, end_token_id=self.end_token_id,
            beam_size=self.beam_size, length_penalty=self.length_penalty,
        )
        if jit_compile == "auto":
            # XLA per padded shape: 1.5x faster GRU decoding on CPU; cuDNN
            # kernels cannot be compiled (keras-team/keras#18456).
            jit_compile = self.decoder.jit_compile_default
        if not isinstance(jit_compile, bool):
            raise ValueError(
                f"`jit_compile` must be True, False or 'auto'; received {jit_compile!r}"
            )
        self.jit_compile = jit_compile
        self._decode = (
            tf.function(self.decoder.generate, jit_compile=True)
            if jit_compile else self.decoder.generate
        )
        self.decoding = {**self.decoder.describe(), "max_output_length":
                         self.max_output_length, "max_input_length": self.max_input_length,
                         "truncate": self.truncate, "jit_compile": self.jit_compile}
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
        checks = []
        if self.truncate:
            def warn():
                tf.print(
                    "WARNING: kzoo Translator:", num_truncated,
                    "input(s) longer than", self.max_input_length,
                    "pieces truncated to", self.max_input_length,
                    output_stream=sys.stderr,
                )
                return tf.constant(0)

            tf.cond(num_truncated > 0, warn, lambda: tf.constant(0))
        else:
            checks.append(tf.debugging.Assert(
                tf.equal(num_truncated, 0),
                [too_long_message(self.max_input_length), tf.reduce_max(lengths)],
                name="input_too_long",
            ))
        with tf.control_dependencies(checks):
            pieces = pieces[:, : self.max_input_length]
        longest = tf.cast(tf.reduce_max(pieces.row_lengths()), tf.int32)
        # Pad to the next power of two (at least 8, at most the maximum), so
        # that shapes repeat across batches.
        width = tf.cast(MIN_PADDED_LENGTH, tf.int32)
        width = tf.while_loop(lambda w: w < longest, lambda w: w * 2, [width])[0]
        width = tf.minimum(width, self.max_input_length)  # >= longest
        batch = tf.shape(inputs)[0]
        token_ids = pieces.to_tensor(default_value=PAD_ID, shape=[batch, width])  # (B, S)
        padding_mask = tf.not_equal(token_ids, PAD_ID)  # (B, S)
        generated = self._decode(token_ids, padding_mask)  # (B, L)
        generated = tf.convert_to_tensor(generated)
        special = tf.constant([PAD_ID, self.start_token_id, self.end_token_id])
        keep = tf.logical_not(
            tf.reduce_any(tf.equal(generated[..., None], special[None, None, :]), axis=-1)
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
                # Same batch size every call (empty strings are cheap).
                batch = batch + [""] * (batch_size - real)
            try:
                out = self.translate_strings(tf.constant(batch, tf.string))
            except tf.errors.InvalidArgumentError as error:
                if "input_too_long" not in str(error) and \
                        too_long_message(self.max_input_length) not in str(error):
                    raise
                raise ValueError(
                    f"{too_long_message(self.max_input_length)}: "
                    f"{_longest(self.source_tokenizer, batch)} pieces"
                ) from None
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
        (B,) bool. Tokenizers (SentencePiece protos) and the decoding
        options travel inside.
        """
        return save_string_function(
            path, self._translate_strings, self.model,
            trackables={"source_tokenizer": self.source_tokenizer,
                        "target_tokenizer": self.target_tokenizer},
            variables=self.decoder.variables,
        )


def export_translator(model, path, source_tokenizer, target_tokenizer, **options):
    """Writes `model` with its tokenizers as a strings -> strings SavedModel.

    `options` are `Translator`'s (`max_input_length`, `max_output_length`,
    `beam_size`, `length_penalty`, `truncate`, token ids). Returns the
    `Translator`, whose `decoding` describes what was exported.
    """
    translator = Translator(model, source_tokenizer, target_tokenizer, **options)
    translator.export(path)
    return translator


def too_long_message(limit):
    return f"an input is longer than max_input_length={limit} pieces and truncate=False"


def _longest(tokenizer, batch):
    import tensorflow as tf

    return int(tf.reduce_max(tokenizer.tokenize(tf.constant(batch)).row_lengths()))


def save_string_function(path, fn, model, trackables=None, variables=()):
    """Saves `fn` ((B,) strings -> dict) as the `serving_default` signature.

    A plain `tf.Module` root tracks the model's variables, not the model:
    saving a tracked Keras model would also trace its default `call`
    signature with every dimension unknown, which the exports do not need
    and which not every model supports.
    """
    import tensorflow as tf

    root = tf.Module()
    root.model_variables = [getattr(v, "value", v) for v in model.variables]
    root.decoding_variables = [getattr(v, "value", v) for v in variables]
    for name, value in (trackables or {}).items():
        setattr(root, name, value)
    root.serve = tf.function(
        fn, input_signature=[tf.TensorSpec([None], tf.string, name="inputs")]
    )
    signature = root.serve.get_concrete_function()
    tf.saved_model.save(root, path, signatures={"serving_default": signature})
    return path
