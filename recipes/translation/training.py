"""Compile and fit with exact resume; what the training run measured."""

import math
import os
import time

import common
import keras

from kzoo.data import translation
from kzoo.training import TokenCount
from translation.config import bucket_boundaries, profile_batch
from translation.data import make_dataset


def compile_model(model, config, total_steps):
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        decay_steps=max(1, total_steps - config.warmup_steps),
        alpha=0.05,
        warmup_target=config.learning_rate,
        warmup_steps=config.warmup_steps,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=schedule, clipnorm=config.clipnorm),
        loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, reduction="mean_with_sample_weight"
        ),
        weighted_metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            TokenCount(name="tokens"),
        ],
        jit_compile=config.jit_compile,
    )


def train(model, config, data, run_dir, extra_callbacks=()):
    """Fits with exact resume; returns a dict of training measurements.

    One Keras "epoch" is a period of `steps_per_period` steps over an endless
    deterministic stream of shuffled epochs; validation, early stopping and
    the backup happen at the end of each period. A restarted run resumes at
    the last backup and reads the stream from the same batch on.
    """
    from kzoo.training.clock import TrainingClock
    from kzoo.training.tensorboard import TrainingScalars

    boundaries = bucket_boundaries(config)
    batches_per_epoch = translation.count_batches(
        data.split.train, config.batch_size, data.source_tokenizer,
        data.target_tokenizer, max_source_length=config.max_length,
        max_target_length=config.max_length, bucket_boundaries=boundaries,
    )
    total_steps = config.epochs * batches_per_epoch
    periods = math.ceil(total_steps / config.steps_per_period)
    compile_model(model, config, total_steps)
    backup_dir = os.path.join(run_dir, "backup")
    start_step = common.resume.resumed_step(backup_dir, config.steps_per_period)
    if start_step:
        print(f"resuming from the backup in {backup_dir} at step {start_step}")
    train_stream = make_dataset(
        config, data, data.split.train, shuffle_seed=config.seed, skip_batches=start_step
    )
    validation = make_dataset(config, data, data.split.validation)
    log_dir = os.path.join(run_dir, "tensorboard")
    clock = TrainingClock(
        os.path.join(run_dir, "clock.json"),
        initial_epoch=start_step // config.steps_per_period,
    )
    callbacks = [
        clock,  # before the backup, so a backed-up period is on the clock
        common.resume.ResumableEarlyStopping(
            os.path.join(run_dir, "early_stopping"),
            monitor="val_loss",
            patience=config.patience,
            restore_best_weights=True,
        ),
        common.resume.make_backup_callback(backup_dir),
        keras.callbacks.TensorBoard(
            log_dir, update_freq=config.log_every,
            profile_batch=profile_batch(config), write_graph=False,
        ),
        TrainingScalars(log_dir, update_freq=config.log_every, batch_size=config.batch_size),
        *extra_callbacks,
    ]
    if config.stop_after_steps:
        callbacks.append(common.StopAfterSteps(config.stop_after_steps))
    print(
        f"training: {batches_per_epoch} batches a pass, at most {config.epochs} "
        f"passes = {total_steps} steps in {periods} periods of "
        f"{config.steps_per_period}"
    )
    start = time.perf_counter()
    history = model.fit(
        train_stream,
        steps_per_epoch=config.steps_per_period,
        epochs=periods,
        validation_data=validation,
        callbacks=callbacks,
        shuffle=False,  # the stream is shuffled, deterministically
        verbose=config.verbose,
    )
    seconds = time.perf_counter() - start
    val_losses = history.history.get("val_loss", [])
    steps_run = len(history.history.get("loss", [])) * config.steps_per_period
    overall = clock.summary()  # across restarts
    overall_losses = [
        r["val_loss"] for r in clock.records if r["val_loss"] is not None
    ]
    return {
        "train_seconds": seconds,
        "train_seconds_all_runs": overall.get("total_seconds"),
        "seconds_to_best_val_loss": overall.get("seconds_to_best"),
        "val_loss_by_period": [r["val_loss"] for r in clock.records],
        "steps_this_run": steps_run,
        "resumed_from_step": start_step,
        "batches_per_epoch": batches_per_epoch,
        "periods_run": len(val_losses),  # this run
        # Best over all runs (a resumed run's history has only its periods).
        "best_val_loss": (
            min(v for v in overall_losses) if overall_losses else None
        ),
        "best_period": overall.get("best_epoch"),
        "train_sentences_per_second": steps_run * config.batch_size / seconds,
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
    }


def describe_training(training):
    """One line: steps, time (this run and all runs), best validation loss."""
    line = (
        f"trained {training['steps_this_run']} steps in "
        f"{training['train_seconds']:.0f} s "
        f"({training['train_sentences_per_second']:.0f} sentences/s)"
    )
    if training["resumed_from_step"]:
        line += (
            f" after resuming at step {training['resumed_from_step']}; "
            f"{training['train_seconds_all_runs']:.0f} s over all runs"
        )
    if training["best_val_loss"] is not None:
        line += (
            f"; best validation loss {training['best_val_loss']:.3f} after "
            f"{training['seconds_to_best_val_loss']:.0f} s (period "
            f"{training['best_period']})"
        )
    return line
