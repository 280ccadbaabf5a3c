"""Tests of kzoo.training: TokenCount, exact resume with BackupAndRestore and
ResumableEarlyStopping, and the TensorBoard callbacks (TensorFlow only)."""

import glob
import os

import keras
import numpy as np
import pytest

from kzoo.training import (
    ResumableEarlyStopping,
    TokenCount,
    make_backup_callback,
    resumed_epoch,
    resumed_step,
)


def test_token_count_sums_sample_weights():
    metric = TokenCount()
    y = np.zeros((2, 4), "int32")
    w = np.array([[1, 1, 1, 0], [1, 0, 0, 0]], "float32")
    metric.update_state(y, y, sample_weight=w)
    assert float(metric.result()) == 4.0
    metric.update_state(y, y, sample_weight=w)
    assert float(metric.result()) == 8.0
    metric.update_state(y, y)  # no weights: every position counts
    assert float(metric.result()) == 16.0
    metric.reset_state()
    assert float(metric.result()) == 0.0
    assert TokenCount.from_config(metric.get_config()).name == "tokens"


def test_token_count_result_is_a_snapshot():
    # Keras keeps the epoch's training logs while it evaluates; a result that
    # aliased the variable would then report the validation count.
    metric = TokenCount()
    y = np.zeros((1, 3), "int32")
    metric.update_state(y, y)
    result = metric.result()
    metric.reset_state()
    metric.update_state(y[:, :1], y[:, :1])
    assert float(result) == 3.0
    assert float(metric.result()) == 1.0


def _tiny_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    return model


def test_resumable_early_stopping_survives_a_restart(tmp_path):
    state = str(tmp_path / "es")
    losses = [1.0, 0.5, 0.7, 0.6, 0.9]  # best at epoch 1; patience 3 -> stop at 4

    # Reference: Keras' own EarlyStopping, uninterrupted.
    model = _tiny_model()
    reference = keras.callbacks.EarlyStopping(patience=3, restore_best_weights=True)
    reference.set_model(model)
    reference.on_train_begin()
    snapshots = []
    for epoch, loss in enumerate(losses):
        model.set_weights([np.full(w.shape, epoch, "float32") for w in model.get_weights()])
        snapshots.append(model.get_weights())
        reference.on_epoch_end(epoch, {"val_loss": loss})
        if model.stop_training:
            break
    reference.on_train_end()
    expected_weights = model.get_weights()

    # Resumable: killed after epoch 2, a fresh callback and model go on.
    model = _tiny_model()
    first = ResumableEarlyStopping(state, patience=3, restore_best_weights=True)
    first.set_model(model)
    first.on_train_begin()
    for epoch in range(3):
        model.set_weights(snapshots[epoch])
        first.on_epoch_end(epoch, {"val_loss": losses[epoch]})
    assert os.path.exists(os.path.join(state, "best_weights.npz"))
    model = _tiny_model()  # the process died; the weights are gone
    second = ResumableEarlyStopping(state, patience=3, restore_best_weights=True)
    second.set_model(model)
    second.on_train_begin()
    assert (second.wait, second.best, second.best_epoch) == (1, 0.5, 1)
    for epoch in range(3, len(losses)):
        model.set_weights(snapshots[epoch])
        second.on_epoch_end(epoch, {"val_loss": losses[epoch]})
        if model.stop_training:
            break
    assert second.stopped_epoch == reference.stopped_epoch == 4
    assert second.best == reference.best and second.best_epoch == reference.best_epoch
    second.on_train_end()
    for a, b in zip(model.get_weights(), expected_weights):
        np.testing.assert_array_equal(a, b)  # the epoch-1 weights
    assert not os.path.exists(state)


def test_resumable_early_stopping_needs_a_directory():
    with pytest.raises(ValueError, match="state_dir"):
        ResumableEarlyStopping("")


class _Interrupt(RuntimeError):
    pass


class _StopAt(keras.callbacks.Callback):
    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch, logs=None):
        if int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)) >= self.step:
            raise _Interrupt()


def _stream(skip):
    """A deterministic endless stream: batch k depends only on k."""
    tf = pytest.importorskip("tensorflow")

    def batch(k):
        x = tf.sin(tf.cast(tf.range(12), tf.float32)[None] * tf.cast(k + 1, tf.float32))
        x = tf.reshape(x, (4, 3))
        return x, tf.reduce_sum(x, axis=1, keepdims=True) * tf.constant([[1.0, -1.0]])

    return tf.data.Dataset.range(skip, 10**9).map(batch)


def _fit(tmp_path, stop_at=None):
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8, activation="tanh"),
                              keras.layers.Dropout(0.3), keras.layers.Dense(2)])
    schedule = keras.optimizers.schedules.CosineDecay(0.0, 12, warmup_target=0.05, warmup_steps=3)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="mse")
    backup = str(tmp_path / "backup")
    period = 4
    start = resumed_step(backup, period)
    callbacks = [make_backup_callback(backup)]
    if stop_at:
        callbacks.append(_StopAt(stop_at))
    history = model.fit(_stream(start), steps_per_epoch=period, epochs=4,
                        callbacks=callbacks, shuffle=False, verbose=0)
    return model, history, start


def test_backup_resume_equals_uninterrupted_run(tmp_path):
    """Periods of 4 steps; killed at step 6 (mid period 2); resumed at step 4."""
    reference, ref_history, _ = _fit(tmp_path / "a")
    with pytest.raises(_Interrupt):
        _fit(tmp_path / "b", stop_at=6)
    assert resumed_epoch(str(tmp_path / "b" / "backup")) == 1
    resumed, history, start = _fit(tmp_path / "b")
    assert start == 4
    assert len(history.history["loss"]) == 3  # periods 2..4 only
    np.testing.assert_allclose(history.history["loss"], ref_history.history["loss"][1:],
                               rtol=1e-6)
    for a, b in zip(resumed.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert int(resumed.optimizer.iterations) == 16
    assert not os.path.exists(tmp_path / "b" / "backup")  # deleted when done


def _events(log_dir):
    tf = pytest.importorskip("tensorflow")
    values = {}
    for path in sorted(glob.glob(os.path.join(log_dir, "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                values.setdefault(value.tag, []).append(
                    (event.step, tf.make_ndarray(value.tensor))
                )
    return values


@pytest.mark.tf_only
def test_training_scalars_log_learning_rate_and_throughput(tmp_path):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.summary logging runs on the TensorFlow backend")
    tf = pytest.importorskip("tensorflow")
    from kzoo.training.tensorboard import TrainingScalars

    # Each batch: 2 rows x 5 positions with 3 + 4 = 7 real tokens.
    x = np.random.default_rng(0).normal(size=(8, 5, 3)).astype("float32")
    y = np.zeros((8, 5), "int32")
    w = np.tile(np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0]], "float32"), (4, 1))
    model = keras.Sequential([keras.Input((5, 3)), keras.layers.Dense(4)])
    schedule = keras.optimizers.schedules.PolynomialDecay(0.1, 4, end_learning_rate=0.02)
    model.compile(keras.optimizers.SGD(schedule),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  weighted_metrics=[TokenCount()])
    log_dir = str(tmp_path)
    model.fit(tf.data.Dataset.from_tensor_slices((x, y, w)).batch(2), epochs=1, verbose=0,
              callbacks=[TrainingScalars(log_dir, update_freq=2, batch_size=2)])
    events = _events(os.path.join(log_dir, "train"))
    lr = [(s, float(v)) for s, v in events["learning_rate"]]
    assert [s for s, _ in lr] == [2, 4]
    np.testing.assert_allclose([v for _, v in lr], [float(schedule(s)) for s, _ in lr], rtol=1e-6)
    tokens = [float(v) for _, v in events["tokens_per_second"]]
    steps = [float(v) for _, v in events["steps_per_second"]]
    sentences = [float(v) for _, v in events["sentences_per_second"]]
    # Same window and clock: tokens/s / steps/s = 7 tokens a step, 2 sentences a step.
    np.testing.assert_allclose(np.divide(tokens, steps), [7.0, 7.0], rtol=1e-5)
    np.testing.assert_allclose(np.divide(sentences, steps), [2.0, 2.0], rtol=1e-6)


@pytest.mark.tf_only
def test_translation_samples_write_text_and_heat_maps(tmp_path):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.summary logging runs on the TensorFlow backend")
    tf = pytest.importorskip("tensorflow")
    from kzoo.training.tensorboard import TranslationSamples, attention_figure_png

    weights = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1]], "float32")
    callback = TranslationSamples(
        str(tmp_path), ["Good morning."],
        translate_fn=lambda xs: [s.upper() for s in xs],
        attention_fn=lambda xs: [(["▁Good", "▁morning", "."], ["▁Guten", "▁Morgen"], weights)],
        references=["Guten Morgen."],
    )
    assert callback.write(step=7) == ["GOOD MORNING."]
    events = _events(os.path.join(str(tmp_path), "samples"))
    (step, text), = events["translations"]
    assert step == 7
    assert "| Good morning. | GOOD MORNING. | Guten Morgen. |" in text.item().decode()
    (_, image), = events["attention/0"]
    width, height = int(image[0]), int(image[1])
    decoded = tf.image.decode_png(image[2]).numpy()
    assert decoded.shape[:2] == (height, width) and decoded.std() > 0
    png = attention_figure_png(weights, ["a", "b", "c"], ["x", "y"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="references"):
        TranslationSamples(str(tmp_path), ["a"], str, references=["x", "y"])
