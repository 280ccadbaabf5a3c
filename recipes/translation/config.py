"""The config fields every translation recipe has, their checks and set-up."""

import dataclasses
import os

import common
import keras

from kzoo.data import translation


@dataclasses.dataclass(frozen=True)
class TranslationConfig:
    """Fields every translation recipe has; recipes add their model's."""

    # data
    # "en-de" = the shipped Debian corpus (148,125 pairs); "ding" = the shipped
    # Ding dictionary sentences (17,884); anything else = a TSV path.
    corpus: str = "en-de"  # en-de (shipped Debian corpus) | ding (Ding sentences) | a TSV path
    origins: str = ""  # en-de only: comma-separated origins to keep, "" = all
    strict: bool = False  # a bad line in --corpus is an error, not a skip
    reverse: bool = False  # translate column 2 -> column 1
    max_pairs: int = 0  # 0 = all; else the first N pairs of the hash order
    validation_fraction: float = 0.05
    test_fraction: float = 0.05
    # SentencePiece pieces per language. Small on purpose: on 16k pairs,
    # 2,000 pieces beat 4,000 (BLEU 2.86 vs 2.03 for the default GRU; small
    # vocabularies suit low-resource NMT, Sennrich & Zhang 2019).
    vocabulary_size: int = 2000
    max_length: int = 48  # pieces kept per side (decoder: incl. BOS/EOS)
    bucket_boundaries: str = "12,16,24,32,48"  # padded lengths of the buckets
    # optimisation
    batch_size: int = 64
    epochs: int = 12  # passes over the training split (at most)
    learning_rate: float = 2e-3
    warmup_steps: int = 200
    clipnorm: float = 1.0
    steps_per_period: int = 250  # validation, early stopping and checkpoint
    patience: int = 3  # periods without a better validation loss
    seed: int = 1
    mixed_precision: str = "none"  # none | mixed_float16 | mixed_bfloat16
    jit_compile: bool = False
    # evaluation and export
    beam_size: int = 1  # 1 = greedy; K > 1 = beam search with K beams (both models)
    length_penalty: float = 0.6  # GNMT alpha of the beam search (both translators)
    max_output_length: int = 48  # pieces generated at most (end token included)
    eval_max_sentences: int = 0  # 0 = the whole test split
    num_samples: int = 5  # sample translations printed and written to TensorBoard
    samples_every: int = 1  # periods between TensorBoard samples
    # logging and output
    log_every: int = 50
    profile_batch: str = "30,35"  # "" = no profiler trace
    output_dir: str = ""
    run_dir: str = ""
    verbose: int = 2
    stop_after_steps: int = 0  # TEST ONLY: raise after N steps (resume tests)


def check_config(config):
    """Errors that name the flag, the value received and what would be right."""
    if config.mixed_precision not in common.MIXED_PRECISION:
        raise ValueError(
            f"--mixed_precision must be one of {common.MIXED_PRECISION}; received "
            f"{config.mixed_precision!r}"
        )
    for name in ("batch_size", "epochs", "steps_per_period", "vocabulary_size",
                 "max_length", "max_output_length", "beam_size", "log_every"):
        if getattr(config, name) <= 0:
            raise ValueError(
                f"--{name} must be a positive integer; received {getattr(config, name)}"
            )
    boundaries = bucket_boundaries(config)
    if boundaries[-1] < config.max_length:
        raise ValueError(
            f"--bucket_boundaries must end at or above --max_length "
            f"({config.max_length}); received {config.bucket_boundaries!r}"
        )
    if config.corpus not in ("",) + translation.CORPORA and not os.path.isfile(config.corpus):
        raise ValueError(
            f"--corpus must be one of {translation.CORPORA} or an existing TSV "
            f"file; received {config.corpus!r}"
        )
    if config.origins:
        if config.corpus not in ("", "en-de"):
            raise ValueError(
                "--origins selects parts of --corpus en-de only; received "
                f"--origins {config.origins!r} with --corpus {config.corpus!r}"
            )
        translation.check_origins(origins(config))
    if getattr(config, "use_cudnn", False) is True and config.jit_compile:
        raise ValueError(
            "--use_cudnn and --jit_compile cannot be combined: cuDNN kernels "
            "cannot be compiled with XLA (keras-team/keras#18456); received both"
        )


def origins(config):
    """--origins as a tuple, or None for all."""
    names = tuple(o.strip() for o in config.origins.split(",") if o.strip())
    return names or None


def bucket_boundaries(config):
    try:
        values = tuple(int(b) for b in config.bucket_boundaries.split(",") if b.strip())
    except ValueError:
        values = ()
    if not values or list(values) != sorted(set(values)) or values[0] <= 0:
        raise ValueError(
            "--bucket_boundaries must be increasing positive integers separated "
            f"by commas, e.g. '12,16,24,32,48'; received {config.bucket_boundaries!r}"
        )
    return values


def profile_batch(config):
    if not config.profile_batch:
        return 0
    first, last = (int(x) for x in config.profile_batch.split(","))
    return (first, last)


def setup(config):
    """Seeds, dtype policy and output folders; returns (output_dir, run_dir)."""
    if keras.backend.backend() != "tensorflow":
        raise SystemExit(
            "the translation recipes need the TensorFlow backend (tf.data, "
            f"SavedModel export); received KERAS_BACKEND={keras.backend.backend()}"
        )
    check_config(config)
    keras.backend.clear_session()  # fresh layer names: backups load by name
    keras.utils.set_random_seed(config.seed)
    common.set_precision(config.mixed_precision)
    os.makedirs(config.output_dir, exist_ok=True)
    os.makedirs(config.run_dir, exist_ok=True)
    return config.output_dir, config.run_dir
