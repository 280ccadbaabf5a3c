"""Masked-LM pretraining of a small BERT on plain text, one command.

    python recipes/pretrain_bert.py                    # tiny BERT on Austen
    python recipes/pretrain_bert.py --size mini --text_dir my_txt_folder
    python recipes/pretrain_bert.py --smoke            # seconds; saved_models_smoke/, runs/*_smoke
    python recipes/pretrain_bert.py --distribute mirrored|multi_worker

Reads top to bottom: config -> strategy -> checks -> text -> WordPiece
vocabulary -> packed sequences -> masked-LM tf.data (15%, 80/10/10) ->
`BertMaskedLM` on a `BertEncoder` of a named size -> AdamW with linear
warm-up and decay -> fit with checkpoints every `steps_per_epoch` steps
(`BackupAndRestore`, written by the chief only; a killed run resumes where
its last checkpoint was) and TensorBoard (loss, masked-token accuracy,
learning rate, tokens/s, a profiler trace) -> validation -> export of the
encoder, vocabulary, config and metrics to `<output_dir>/bert_<size>/`.

BERT: Devlin et al., "BERT: Pre-training of Deep Bidirectional Transformers
for Language Understanding", 2019.
"""

import dataclasses
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bert_common as bert  # noqa: E402
import common  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

import kzoo  # noqa: E402
from kzoo.models.bert import BERT_SIZES  # noqa: E402
from kzoo.data.masked_lm import mlm_dataset, pack_sequences  # noqa: E402
from kzoo.data.text_corpus import (  # noqa: E402
    hash_split,
    load_austen,
    load_text_folder,
    split_paragraphs,
)
from kzoo.training import resumed_step  # noqa: E402
from kzoo.training.distribute import (  # noqa: E402
    STRATEGIES,
    ChiefBackupAndRestore,
    build_before_fit,
    get_strategy,
    is_chief,
)


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    size: str = "tiny"  # a row of kzoo.models.bert.BERT_SIZES
    text_dir: str = ""  # "" = the shipped Austen novels; else a .txt folder
    max_paragraphs: int = 0  # 0 = all; else the first N (smoke runs)
    validation_fraction: float = 0.02
    vocabulary_size: int = 4000
    vocabulary_file: str = ""  # "" = learn one from the training text
    sequence_length: int = 128  # pretraining length
    max_sequence_length: int = 512  # learned positions (fine-tuning may use more)
    mask_selection_length: int = 24  # most masked positions per sequence
    batch_size: int = 32  # global, over all replicas
    steps: int = 600
    steps_per_epoch: int = 100  # one checkpoint (and validation) per epoch
    learning_rate: float = 1e-3
    warmup_fraction: float = 0.1
    weight_decay: float = 0.01
    dropout: float = 0.1
    mixed_precision: str = "none"  # none | mixed_float16 | mixed_bfloat16
    jit_compile: bool = False
    distribute: str = "none"  # none | mirrored | multi_worker (TF_CONFIG)
    seed: int = 1
    log_every: int = 10
    profile_batch: str = "20,25"  # "" = no profiler trace
    output_dir: str = "saved_models"  # export goes to <output_dir>/bert_<size> (--smoke: saved_models_smoke)
    run_dir: str = ""  # checkpoints + TensorBoard; "" = runs/pretrain_bert_<size> (--smoke: ..._smoke)
    verbose: int = 2
    stop_after_steps: int = 0  # TEST ONLY: exit abruptly after N steps


SMOKE = dict(
    size="tiny", max_paragraphs=120, vocabulary_size=300, sequence_length=32,
    mask_selection_length=6, batch_size=8, steps=6, steps_per_epoch=3,
    log_every=2, profile_batch="", validation_fraction=0.1,
)

# Fields that define the model and its data: a checkpoint written under other
# values cannot be resumed.
SIGNATURE = ("size", "vocabulary_size", "sequence_length",
             "max_sequence_length",
             "text_dir", "max_paragraphs", "validation_fraction", "dropout")


def check_config(config):
    common.check_choice("size", config.size, BERT_SIZES)
    common.check_choice("distribute", config.distribute, STRATEGIES)
    common.check_positive(config, "vocabulary_size", "sequence_length",
                          "mask_selection_length", "batch_size", "steps",
                          "steps_per_epoch", "learning_rate", "log_every")
    bert.check_sequence_length(
        config.sequence_length, config.max_sequence_length,
        f"the encoder (--max_sequence_length)")
    if config.steps % config.steps_per_epoch:
        raise ValueError(
            f"--steps ({config.steps}) must be a multiple of --steps_per_epoch "
            f"({config.steps_per_epoch})")


def check_run_dir(run_dir, config, vocabulary):
    """A checkpoint in `run_dir` must come from the same model and data."""
    path = os.path.join(run_dir, "run_config.json")
    if not os.path.exists(path):
        return
    previous = common.read_json(path)
    changed = {k: (previous["config"].get(k), getattr(config, k))
               for k in SIGNATURE if previous["config"].get(k) != getattr(config, k)}
    if changed:
        detail = ", ".join(f"{k}: checkpoint {a!r}, received {b!r}"
                           for k, (a, b) in changed.items())
        raise ValueError(
            f"the checkpoint in {run_dir} is from a different run ({detail}); "
            "pass the same flags to resume, or another --run_dir to start over")
    if previous["vocabulary_sha256"] != bert.vocabulary_sha256(vocabulary):
        raise ValueError(
            f"the vocabulary does not match the checkpoint in {run_dir} (it was "
            f"trained with {os.path.join(run_dir, 'vocab.txt')}); use that file")


def load_paragraphs(config):
    texts = (load_text_folder(config.text_dir) if config.text_dir
             else load_austen())
    paragraphs = [p for name in sorted(texts)
                  for p in split_paragraphs(texts[name], min_words=2)]
    if config.max_paragraphs:
        paragraphs = paragraphs[: config.max_paragraphs]
    return hash_split(paragraphs, config.validation_fraction)


def main(argv=None):
    config, size = common.parse_config(PretrainConfig, argv, {"smoke": SMOKE},
                                       __doc__.splitlines()[0])
    check_config(config)
    # MultiWorkerMirroredStrategy must exist before any other TF op runs.
    strategy = get_strategy(config.distribute)
    chief = is_chief()
    run_dir = config.run_dir or os.path.join(
        "runs", f"pretrain_bert_{config.size}" + ("_smoke" if size == "smoke" else ""))
    export_dir = os.path.join(config.output_dir, f"bert_{config.size}")
    keras.utils.set_random_seed(config.seed)

    # Text and vocabulary. A resumed run reuses the vocabulary it started with.
    train_text, val_text = load_paragraphs(config)
    run_vocab = os.path.join(run_dir, "vocab.txt")
    if config.vocabulary_file:
        vocabulary = bert.load_vocabulary(config.vocabulary_file)
    elif os.path.exists(os.path.join(run_dir, "run_config.json")):
        vocabulary = bert.load_vocabulary(run_vocab)
    else:
        start = time.perf_counter()
        vocabulary = bert.train_vocabulary(train_text, config.vocabulary_size)
        print(f"WordPiece vocabulary: {len(vocabulary)} tokens in "
              f"{time.perf_counter() - start:.0f}s")
    check_run_dir(run_dir, config, vocabulary)  # before anything is written
    if chief:
        os.makedirs(run_dir, exist_ok=True)
        bert.save_vocabulary(run_vocab, vocabulary)
        common.write_json(os.path.join(run_dir, "run_config.json"), {
            "config": dataclasses.asdict(config),
            "vocabulary_sha256": bert.vocabulary_sha256(vocabulary)})

    # Packed sequences and masked-LM batches (masks drawn afresh each pass).
    tokenizer = bert.make_tokenizer(vocabulary)
    packed = {}
    for split, texts in (("train", train_text), ("validation", val_text)):
        ids = tokenizer(texts)
        packed[split] = pack_sequences(
            [np.asarray(t) for t in ids], config.sequence_length,
            bert.CLS, bert.SEP, bert.PAD)
    print(f"sequences of {config.sequence_length}: train {len(packed['train'])}, "
          f"validation {len(packed['validation'])}")
    masking = dict(
        vocabulary_size=len(vocabulary), mask_token_id=bert.MASK,
        special_token_ids=[bert.PAD, bert.CLS, bert.SEP],
        mask_selection_length=config.mask_selection_length,
        # Keras' fit under a strategy cannot reduce a bool batch; see mlm_dataset.
        padding_mask_dtype="bool" if config.distribute == "none" else "int32")
    backup_dir = os.path.join(run_dir, "backup")
    done = resumed_step(backup_dir, config.steps_per_epoch)
    train_ds = mlm_dataset(packed["train"], config.batch_size, shuffle=True,
                           repeat=True, seed=config.seed, **masking).skip(done)
    val_batch = min(config.batch_size, len(packed["validation"]))
    val_ds = mlm_dataset(packed["validation"], val_batch, shuffle=False,
                         **masking)

    # Model, optimizer, loss.
    common.set_precision(config.mixed_precision)
    with strategy.scope():
        encoder = kzoo.BertEncoder.from_size(
            config.size, vocabulary_size=len(vocabulary),
            max_sequence_length=config.max_sequence_length, dropout=config.dropout)
        model = kzoo.BertMaskedLM(encoder)
        schedule = bert.WarmupLinearDecay(
            config.learning_rate, int(config.warmup_fraction * config.steps),
            config.steps)
        optimizer = keras.optimizers.AdamW(
            schedule, weight_decay=config.weight_decay, clipnorm=1.0)
        optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
        model.compile(
            optimizer=common.wrap_optimizer(optimizer, config.mixed_precision),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(
                name="masked_accuracy")],
            jit_compile=config.jit_compile,
        )
        # Built now, on a real batch: see build_before_fit.
        build_before_fit(model, next(iter(val_ds)))
    print(f"BertEncoder {config.size}: {bert.count_parameters(encoder):,} "
          f"parameters; {strategy.num_replicas_in_sync} replica(s); resuming "
          f"at step {done}" if done else "")

    callbacks = [ChiefBackupAndRestore(backup_dir)]
    tokens_per_step = config.batch_size * config.sequence_length
    throughput = common.Throughput(
        tokens_per_step, os.path.join(run_dir, "logs") if chief else None,
        config.log_every)
    callbacks.append(throughput)
    if chief:
        profile = (tuple(int(b) for b in config.profile_batch.split(","))
                   if config.profile_batch else 0)
        callbacks.append(keras.callbacks.TensorBoard(
            os.path.join(run_dir, "logs"), update_freq=config.log_every,
            profile_batch=profile))
    if config.stop_after_steps:
        callbacks.append(common.CrashAfterSteps(config.stop_after_steps))

    start = time.perf_counter()
    history = model.fit(
        train_ds, epochs=config.steps // config.steps_per_epoch,
        steps_per_epoch=config.steps_per_epoch, validation_data=val_ds,
        callbacks=callbacks, verbose=config.verbose)
    train_seconds = time.perf_counter() - start
    val = model.evaluate(val_ds, return_dict=True, verbose=0)

    metrics = {
        "validation_loss": val["loss"],
        "validation_masked_accuracy": val["masked_accuracy"],
        "train_loss_last_epoch": history.history["loss"][-1] if history.history else None,
        "train_masked_accuracy_last_epoch": (
            history.history["masked_accuracy"][-1] if history.history else None),
        "tokens_per_second": throughput.tokens_per_second,
        "train_seconds_this_process": train_seconds,
        "steps": config.steps,
        "resumed_at_step": done,
        "optimizer_steps": int(keras.ops.convert_to_numpy(optimizer.iterations)),
        "parameters_encoder": bert.count_parameters(encoder),
        "replicas": strategy.num_replicas_in_sync,
        "jit_compile": config.jit_compile,
        "mixed_precision": config.mixed_precision,
        "vocabulary_size": len(vocabulary),
        "train_sequences": len(packed["train"]),
    }
    print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                   for k, v in metrics.items()))
    if chief:
        bert.export_pretrained(export_dir, encoder, vocabulary, config, metrics)
        print(f"exported to {export_dir}")
    return metrics


if __name__ == "__main__":
    main()
