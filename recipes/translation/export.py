"""The strings-to-strings translator (`kzoo.export`) and the artefacts."""

import os

import common


def make_translator(model, config, data):
    """Strings -> strings with core-TF-op tokenizers (loads in saved_model_cli).

    The same `kzoo.export.Translator` for both translators, so `--beam_size`
    means K beams and `--length_penalty` the GNMT alpha for both
    (`kzoo.models.generation.BeamSampler`; the translator's `decoding` is
    written to metrics.json).
    `FrozenSentencePiece` stores the SentencePiece segmentation of every
    source word of the corpus (the tokenizer applied to words; no target
    text involved), so its ids equal the tensorflow-text tokenizer's on the
    corpus, and new words get a valid character-level fallback.
    """
    from kzoo.data.tokenizers import FrozenSentencePiece, corpus_words
    from kzoo.export import Translator

    words = corpus_words(s for part in data.split for s, _ in part)
    return Translator(
        model,
        FrozenSentencePiece(data.source_tokenizer, words),
        FrozenSentencePiece(data.target_tokenizer),
        max_input_length=config.max_length,
        max_output_length=config.max_output_length,
        beam_size=config.beam_size,
        length_penalty=config.length_penalty,
    )


def save_artefacts(
    model, config, size, translator, metrics, output_dir, data, samples=()
):
    """model.keras, saved_model/ (strings -> strings), config.json,
    metrics.json and test_translations.tsv (source, model, reference)."""
    with open(os.path.join(output_dir, "test_translations.tsv"), "w") as f:
        for row in samples:
            f.write("\t".join(x.replace("\t", " ") for x in row) + "\n")
    model.save(os.path.join(output_dir, "model.keras"))
    for side, tokenizer in (("source", data.source_tokenizer), ("target", data.target_tokenizer)):
        with open(os.path.join(output_dir, f"{side}.spm"), "wb") as f:
            f.write(tokenizer.proto)
    saved_model = os.path.join(output_dir, "saved_model")
    translator.export(saved_model)
    common.write_run(output_dir, config, metrics, size=size)
    return saved_model
