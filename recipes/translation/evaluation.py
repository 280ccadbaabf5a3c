"""Scores: test loss, BLEU and chrF (sacrebleu, detokenized; overall, per
origin and for the copy-the-source baseline), inference speed, samples, and
the TensorBoard callback with sample translations and attention maps."""

import os
import time

import keras
import numpy as np

from kzoo.data import translation
from translation.data import make_dataset


def bleu_chrf(hypotheses, references):
    import sacrebleu

    return (
        round(sacrebleu.metrics.BLEU().corpus_score(hypotheses, [references]).score, 2),
        round(sacrebleu.metrics.CHRF().corpus_score(hypotheses, [references]).score, 2),
    )


def score(model, config, data, translator):
    """Test loss, BLEU and chrF (sacrebleu, detokenized), inference speed,
    and BLEU / chrF per origin next to the copy-the-source baseline (the
    source sentence as the "translation": what names, numbers and
    untranslated words alone score)."""
    import sacrebleu

    test = data.split.test
    test_origins = data.origins.test if data.origins else ["corpus"] * len(test)
    if config.eval_max_sentences:
        test = test[: config.eval_max_sentences]
        test_origins = test_origins[: config.eval_max_sentences]
    test_results = model.evaluate(
        make_dataset(config, data, test), return_dict=True, verbose=0
    )
    sources = [s for s, _ in test]
    references = [t for _, t in test]
    translator(sources[:2])  # trace and compile once, outside the timing
    start = time.perf_counter()
    hypotheses = translator(sources)
    seconds = time.perf_counter() - start
    bleu_metric, chrf_metric = sacrebleu.metrics.BLEU(), sacrebleu.metrics.CHRF()
    bleu = bleu_metric.corpus_score(hypotheses, [references])
    chrf = chrf_metric.corpus_score(hypotheses, [references])
    copy_bleu, copy_chrf = bleu_chrf(sources, references)
    by_origin = {}
    for origin in sorted(set(test_origins)):
        rows = [i for i, o in enumerate(test_origins) if o == origin]
        hyp = [hypotheses[i] for i in rows]
        ref = [references[i] for i in rows]
        src = [sources[i] for i in rows]
        o_bleu, o_chrf = bleu_chrf(hyp, ref)
        c_bleu, c_chrf = bleu_chrf(src, ref)
        by_origin[origin] = {
            "sentences": len(rows), "bleu": o_bleu, "chrf": o_chrf,
            "copy_source_bleu": c_bleu, "copy_source_chrf": c_chrf,
        }
    return {
        "test_loss": float(test_results["loss"]),
        "test_token_accuracy": float(test_results["accuracy"]),
        "test_sentences": len(test),
        "bleu": round(bleu.score, 2),
        "chrf": round(chrf.score, 2),
        "bleu_signature": bleu_metric.get_signature().format(),
        "chrf_signature": chrf_metric.get_signature().format(),
        "copy_source_bleu": copy_bleu,
        "copy_source_chrf": copy_chrf,
        "by_origin": by_origin,
        "inference_sentences_per_second": len(test) / seconds,
        "beam_size": translator.decoding["beam_size"],
        "decoding": translator.decoding,
    }, list(zip(sources, hypotheses, references))


def print_samples(samples, count):
    print("sample translations (test split):")
    for source, hypothesis, reference in samples[:count]:
        print(f"  source:     {source}")
        print(f"  model:      {hypothesis}")
        print(f"  reference:  {reference}")


def tensorboard_samples(config, data, translator, attention_fn, run_dir):
    """The callback that writes sample translations and attention maps."""
    from kzoo.training.tensorboard import TranslationSamples

    samples = data.split.validation[: config.num_samples]
    return TranslationSamples(
        os.path.join(run_dir, "tensorboard"),
        [s for s, _ in samples],
        translate_fn=lambda sentences: translator(sentences),
        attention_fn=attention_fn,
        references=[t for _, t in samples],
        every_n_epochs=config.samples_every,
    )


def attention_maps(model, config, data, translator):
    """(source pieces, output pieces, weights (T, S)) for each sentence.

    Uses the model's `attention_weights(inputs)`, teacher-forced on the
    translator's output; `None` for models without it.
    """
    if not hasattr(model, "attention_weights"):
        return None

    def fn(sentences):
        maps = []
        # The translator's compiled greedy decoding, then one teacher-forced
        # pass on its output for the weights (no per-shape recompilation).
        outputs = translator(sentences)
        for sentence, output in zip(sentences, outputs):
            ids = np.asarray(data.source_tokenizer(sentence), "int32")
            ids = ids[: config.max_length][None, :]  # (1, S)
            out = np.asarray(data.target_tokenizer(output), "int32")
            out = out[: config.max_output_length - 1]
            decoder = np.concatenate([[translation.BOS_ID], out]).astype("int32")
            weights = model.attention_weights({
                "encoder_token_ids": ids,
                "encoder_padding_mask": ids > 0,
                "decoder_token_ids": decoder[None, :],
                "decoder_padding_mask": np.ones((1, len(decoder)), bool),
            })  # (1, T, S)
            to_pieces = lambda tokenizer, xs: [  # noqa: E731
                tokenizer.id_to_token(int(x)) for x in xs
            ]
            maps.append((
                to_pieces(data.source_tokenizer, ids[0]),
                to_pieces(data.target_tokenizer, list(out) + [translation.EOS_ID]),
                np.asarray(keras.ops.convert_to_numpy(weights))[0],
            ))
        return maps

    return fn
