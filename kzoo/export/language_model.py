"""Prompt in, continuation out: a language model and its SavedModel export.

TensorFlow only. `TextGenerator` wraps a `TransformerLM` with its
tokenizer in one `tf.function` from a batch of prompts to a batch of
continuations: tokenize, truncate (keeping the last pieces) or refuse
too-long prompts, right-pad to `max_length`, decode with a sampler over
the model's `call_with_cache` (`kzoo.export.decoding`, the same loop and
samplers as `TransformerLM.generate`), cut at the end token, detokenize
what follows the prompt. `export` writes that function as the SavedModel's
`serving_default` signature (`inputs` (B,) string -> `outputs` (B,)
string, `truncated` (B,) bool); `export_text_generator` does both.

Decoding: `sampler="greedy"` (default), `"top_k"`, `"top_p"`, `"random"`
(with `seed`; the sampler's seed state is saved with the model, so repeated
calls draw new samples) or a `keras_hub.samplers.Sampler`; `beam_size > 1`
is beam search with kzoo's `BeamSampler(num_beams=beam_size,
length_penalty)` (GNMT length penalty, as `generate(sampler="beam")`).
"""

import warnings

from kzoo.export import decoding
from kzoo.export.translator import save_string_function


class TextGenerator:
    """Continues batches of prompts with a language model and a tokenizer.

    Args:
        model: a `TransformerLM`.
        tokenizer: strings -> int ids with `tokenize` and `detokenize` (a
            `kzoo.data.tokenizers.FrozenSentencePiece` for core TF ops only).
        max_length: prompt plus continuation, in pieces (at most the model's
            `max_sequence_length` for learned positions).
        max_prompt_length: pieces of prompt kept; defaults to
            `max_length - 1` (`- 2` with `start_token_id`), so that at
            least one piece is generated.
        sampler: "greedy", "top_k", "top_p", "random" or a keras-hub
            sampler.
        beam_size: beam search with this many beams when > 1
            (`kzoo.models.generation.BeamSampler`).
        length_penalty: GNMT length penalty alpha of that beam search.
        seed: seed of a sampling sampler.
        truncate: True: a longer prompt keeps its last `max_prompt_length`
            pieces (warning, `truncated` output); False: it raises an error.
        start_token_id: prepended to every prompt when not None (needed for
            empty prompts; generation continues from the last prompt piece).
        end_token_id: ends a continuation; None: generate to `max_length`.

    Example:

    >>> from kzoo import TransformerLM
    >>> from kzoo.data.tokenizers import FrozenSentencePiece, corpus_words
    >>> from kzoo.data.translation import train_sentence_piece
    >>> from kzoo.export.language_model import TextGenerator
    >>> text = ["It is a truth universally acknowledged.", "She was happy."]
    >>> tokenizer = train_sentence_piece(text, 40)
    >>> lm = TransformerLM(tokenizer.vocabulary_size(), 1, 2, 16, 32,
    ...                    max_sequence_length=16)
    >>> generator = TextGenerator(lm, FrozenSentencePiece(tokenizer, corpus_words(text)),
    ...                           max_length=12, start_token_id=2, end_token_id=3)
    >>> continuations = generator(["It is", ""])  # untrained: any pieces
    >>> all(isinstance(c, str) for c in continuations)
    True
    """

    def __init__(
        self,
        model,
        tokenizer,
        max_length=64,
        max_prompt_length=None,
        sampler="greedy",
        beam_size=1,
        length_penalty=0.6,
        seed=None,
        truncate=True,
        start_token_id=None,
        end_token_id=None,
    ):
        import tensorflow as tf

        from kzoo.models import TransformerLM
        from kzoo.utils.validation import check_positive_int

        decoding.check_tensorflow("TextGenerator")
        if not isinstance(model, TransformerLM):
            raise ValueError(
                f"TextGenerator exports TransformerLM; received {type(model).__name__}"
            )
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = check_positive_int("max_length", max_length)
        if self.max_length < 2:
            raise ValueError(f"`max_length` must be >= 2; received {max_length}")
        reserved = 0 if start_token_id is None else 1
        if max_prompt_length is None:
            max_prompt_length = self.max_length - 1 - reserved
        check_positive_int("max_prompt_length", max_prompt_length)
        if max_prompt_length + reserved >= self.max_length:
            raise ValueError(
                "`max_prompt_length` (plus 1 for `start_token_id`) must be < "
                f"`max_length` ({self.max_length}); received {max_prompt_length}"
            )
        self.max_prompt_length = max_prompt_length
        if not isinstance(truncate, bool):
            raise ValueError(f"`truncate` must be True or False; received {truncate!r}")
        self.truncate = truncate
        self.start_token_id = None if start_token_id is None else int(start_token_id)
        self.end_token_id = None if end_token_id is None else int(end_token_id)
        self.beam_size = check_positive_int("beam_size", beam_size)
        if isinstance(length_penalty, bool) or not isinstance(length_penalty, (int, float)) \
                or length_penalty < 0:
            raise ValueError(
                f"`length_penalty` must be a number >= 0; received {length_penalty!r}"
            )
        self.decoder = decoding.TransformerLMDecoder(
            model, self.max_length, self.end_token_id, sampler, self.beam_size, seed,
            length_penalty,
        )
        self.decoding = {**self.decoder.describe(), "max_prompt_length":
                         self.max_prompt_length, "truncate": self.truncate}
        self.generate_strings = tf.function(
            self._generate_strings,
            input_signature=[tf.TensorSpec([None], tf.string, name="inputs")],
        )

    def _generate_strings(self, inputs):
        """(B,) prompts -> {"outputs": (B,) continuations, "truncated": (B,)}."""
        import tensorflow as tf

        pieces = tf.cast(self.tokenizer.tokenize(inputs), tf.int32)  # (B, None)
        lengths = pieces.row_lengths()
        truncated = lengths > self.max_prompt_length
        num_truncated = tf.reduce_sum(tf.cast(truncated, tf.int32))
        checks = [tf.debugging.Assert(
            tf.reduce_all(lengths > 0) if self.start_token_id is None else True,
            [EMPTY_PROMPT], name="empty_prompt",
        )]
        if not self.truncate:
            checks.append(tf.debugging.Assert(
                tf.equal(num_truncated, 0),
                [prompt_too_long_message(self.max_prompt_length), tf.reduce_max(lengths)],
                name="prompt_too_long",
            ))
        with tf.control_dependencies(checks):
            # The last pieces of a long prompt: the continuation follows them.
            start = tf.maximum(lengths - self.max_prompt_length, 0)
            pieces = tf.RaggedTensor.from_row_lengths(
                tf.gather(pieces.flat_values, _ragged_range(pieces.row_starts() + start,
                                                            lengths - start)),
                lengths - start,
            )
        if self.start_token_id is not None:
            batch = tf.shape(inputs)[0]
            starts = tf.fill([batch, 1], self.start_token_id)
            pieces = tf.concat([tf.RaggedTensor.from_tensor(starts), pieces], axis=1)
        prompt_lengths = pieces.row_lengths()  # (B,) >= 1
        batch = tf.shape(inputs)[0]
        prompt = pieces.to_tensor(default_value=0, shape=[batch, self.max_length])  # (B, L)
        prompt_mask = tf.sequence_mask(prompt_lengths, self.max_length)  # (B, L)
        generated = tf.convert_to_tensor(self.decoder.generate(prompt, prompt_mask))
        after_prompt = tf.logical_not(prompt_mask)
        keep = tf.logical_and(after_prompt, tf.not_equal(generated, 0))
        if self.end_token_id is not None:
            keep = tf.logical_and(keep, tf.not_equal(generated, self.end_token_id))
        text = self.tokenizer.detokenize(tf.ragged.boolean_mask(generated, keep))
        return {"outputs": text, "truncated": truncated}

    def __call__(self, prompts, batch_size=64):
        """Continues a list of prompts; returns a list of strings."""
        import tensorflow as tf

        prompts = [str(p) for p in prompts]
        results, truncated = [], 0
        for first in range(0, len(prompts), batch_size):
            batch = prompts[first : first + batch_size]
            try:
                out = self.generate_strings(tf.constant(batch, tf.string))
            except tf.errors.InvalidArgumentError as error:
                message = str(error)
                for known in (EMPTY_PROMPT, prompt_too_long_message(self.max_prompt_length)):
                    if known in message:
                        raise ValueError(known) from None
                raise
            results.extend(t.decode("utf-8") for t in out["outputs"].numpy())
            truncated += int(out["truncated"].numpy().sum())
        if truncated:
            warnings.warn(
                f"{truncated} prompt(s) longer than {self.max_prompt_length} pieces "
                "were cut to their last pieces",
                stacklevel=2,
            )
        return results

    def export(self, path):
        """Writes a SavedModel whose `serving_default` continues prompts."""
        return save_string_function(
            path, self._generate_strings, self.model,
            trackables={"tokenizer": self.tokenizer}, variables=self.decoder.variables,
        )


def export_text_generator(model, path, tokenizer, **options):
    """Writes `model` with its tokenizer as a prompts -> continuations
    SavedModel; `options` are `TextGenerator`'s. Returns the generator."""
    generator = TextGenerator(model, tokenizer, **options)
    generator.export(path)
    return generator


EMPTY_PROMPT = (
    "every prompt needs at least one piece (generation continues from it); "
    "received an empty prompt: pass start_token_id to allow empty prompts"
)


def prompt_too_long_message(limit):
    return f"a prompt is longer than max_prompt_length={limit} pieces and truncate=False"


def _ragged_range(starts, lengths):
    import tensorflow as tf

    return tf.ragged.range(starts, starts + lengths).flat_values
