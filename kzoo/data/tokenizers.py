"""A SentencePiece tokenizer frozen into core TensorFlow ops, for serving.

TensorFlow only. SentencePiece runs in TensorFlow through a tensorflow-text
custom op (`SentencepieceOp`), which a SavedModel can only be loaded with
after `import tensorflow_text`: plain `saved_model_cli run` or TF Serving
fail with "Op type not registered 'SentencepieceOp'". `FrozenSentencePiece`
gives the same ids with core ops only (string split, hash tables, gather):

- encoding: SentencePiece (with its default `split_by_whitespace`) never
  lets a piece cross a space, so a sentence's pieces are the concatenation
  of its words' pieces. The tokenizer's segmentation of every word of a
  given word list (the corpus) is stored in a hash table; a word that is not
  in the list falls back to `▁` plus one piece per character (`<unk>` for a
  character the vocabulary lacks), a valid but longer segmentation;
- decoding: gather the pieces' strings, join, turn `▁` into spaces: what
  SentencePiece's decoder does for a vocabulary without byte pieces.

Input normalization is whitespace collapsing only (SentencePiece's NFKC
step is a tensorflow-text op too): text that NFKC would change takes the
fallback path for the words concerned.
"""

import tensorflow as tf

UNKNOWN_TEXT = " \u2047 "  # what SentencePiece decodes <unk> to


class FrozenSentencePiece(tf.Module):
    """SentencePiece ids with core TensorFlow ops only (see the module doc).

    Args:
        tokenizer: a trained `keras_hub.tokenizers.SentencePieceTokenizer`.
        words: the whitespace-separated words whose segmentation is stored
            (e.g. every word of the corpus' source side). Empty for a
            tokenizer that only decodes.
        unk_id: id of `<unk>`.

    Example:

    >>> import tensorflow as tf
    >>> from kzoo.data.tokenizers import FrozenSentencePiece
    >>> from kzoo.data.translation import train_sentence_piece
    >>> tokenizer = train_sentence_piece(["Good morning.", "Good night."], 30)
    >>> frozen = FrozenSentencePiece(tokenizer, {"Good", "morning."})
    >>> ids = frozen.tokenize(tf.constant(["Good morning."]))
    >>> ids.to_list() == tokenizer(["Good morning."])  # the same pieces
    True
    >>> frozen.detokenize(ids).numpy().tolist()
    [b'Good morning.']
    """

    def __init__(self, tokenizer, words=(), unk_id=1):
        super().__init__()
        size = int(tokenizer.vocabulary_size())
        pieces = [tokenizer.id_to_token(i) for i in range(size)]
        self.vocabulary_size = size
        self.unk_id = int(unk_id)
        words = sorted({w for w in words if w})
        segmentations = []
        if words:
            ids = tokenizer(tf.constant(words))
            ids = ids.to_list() if hasattr(ids, "to_list") else ids
            segmentations = [" ".join(str(int(i)) for i in row) for row in ids]
        text_pieces = list(pieces)
        for special in ("<pad>", "<s>", "</s>"):
            if special in text_pieces:
                text_pieces[text_pieces.index(special)] = ""
        text_pieces[self.unk_id] = UNKNOWN_TEXT
        self._pieces = tf.constant(text_pieces, tf.string)
        self._word_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(words or [""], tf.string),
                tf.constant(segmentations or [""], tf.string),
            ),
            default_value="",
        )
        single = [(p, i) for i, p in enumerate(pieces) if len(p) == 1 and i > 3]
        self._char_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant([p for p, _ in single], tf.string),
                tf.constant([i for _, i in single], tf.int32),
            ),
            default_value=self.unk_id,
        )
        space = pieces.index("\u2581") if "\u2581" in pieces else self.unk_id
        self._space_id = tf.constant(space, tf.int32)

    def tokenize(self, strings):
        """(B,) strings -> ragged int32 ids (B, None)."""
        strings = tf.strings.strip(tf.strings.regex_replace(strings, r"\s+", " "))
        words = tf.strings.split(strings)  # (B, W) ragged, no empty words
        flat = words.flat_values  # (N,)
        stored = self._word_table.lookup(flat)  # (N,) "12 7 5" or ""
        chars = tf.strings.unicode_split(flat, "UTF-8")  # (N, C) ragged
        char_ids = tf.ragged.map_flat_values(self._char_table.lookup, chars)
        fallback = tf.concat(
            [tf.fill([tf.shape(flat)[0], 1], self._space_id), char_ids], axis=1
        )
        fallback = tf.strings.reduce_join(
            tf.strings.as_string(fallback), axis=1, separator=" "
        )  # (N,)
        joined = tf.where(tf.equal(stored, ""), fallback, stored)
        ids = tf.strings.to_number(tf.strings.split(joined, sep=" "), tf.int32)
        return words.with_flat_values(ids).merge_dims(1, 2)  # (B, P)

    def __call__(self, strings):
        return self.tokenize(strings)

    def detokenize(self, ids):
        """Ragged or dense int ids (B, None) -> (B,) strings."""
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(tf.convert_to_tensor(ids))
        ids = tf.clip_by_value(tf.cast(ids, tf.int32), 0, self.vocabulary_size - 1)
        text = tf.strings.reduce_join(
            tf.ragged.map_flat_values(tf.gather, self._pieces, ids), axis=1
        )
        text = tf.strings.regex_replace(text, "\u2581", " ")
        text = tf.strings.regex_replace(text, " +", " ")
        return tf.strings.strip(text)


def corpus_words(sentences):
    """The set of whitespace-separated words in `sentences`."""
    return {w for s in sentences for w in s.split()}


