"""TensorBoard logging that Keras' `TensorBoard` callback does not do.

TensorFlow only (it writes with `tf.summary`); the recipes that use it run on
the TensorFlow backend. Use it beside `keras.callbacks.TensorBoard`, which
logs the losses and metrics, the weights and a profiler trace
(`profile_batch=(first, last)`):

- `TrainingScalars`: learning rate, tokens/second and sentences/second every
  `update_freq` steps;
- `TranslationSamples`: at the end of each epoch, translations of a fixed set
  of sentences as text and attention weights as heat-map images.

Both are model-agnostic: `TranslationSamples` takes plain functions.
"""

import io
import os
import time

import keras
import numpy as np


def _writer(log_dir, name):
    import tensorflow as tf

    return tf.summary.create_file_writer(os.path.join(log_dir, name))


def current_learning_rate(optimizer):
    """The learning rate the optimizer uses at its current step, as a float."""
    lr = optimizer.learning_rate
    if callable(lr) and not hasattr(lr, "numpy"):
        lr = lr(optimizer.iterations)
    return float(keras.ops.convert_to_numpy(lr))


class TrainingScalars(keras.callbacks.Callback):
    """Writes learning rate and throughput as TensorBoard scalars.

    Tokens/second needs the `kzoo.training.TokenCount` metric compiled into
    the model (its per-epoch running total is in the batch logs under
    `token_metric`); without it only steps/second and the learning rate are
    written. The x axis is the optimizer's step, so a resumed run continues
    the curves where they stopped.

    Args:
        log_dir: TensorBoard log directory (scalars go to `log_dir/train`).
        update_freq: write every `update_freq` steps.
        batch_size: sentences per batch, for sentences/second (optional).
        token_metric: name of the `TokenCount` metric in the logs.
    """

    def __init__(self, log_dir, update_freq=50, batch_size=None, token_metric="tokens"):
        super().__init__()
        if not isinstance(update_freq, int) or update_freq <= 0:
            raise ValueError(
                f"`update_freq` must be a positive integer; received {update_freq!r}"
            )
        self.log_dir = log_dir
        self.update_freq = update_freq
        self.batch_size = batch_size
        self.token_metric = token_metric
        self._writer = None

    def on_train_begin(self, logs=None):
        self._writer = _writer(self.log_dir, "train")

    def on_epoch_begin(self, epoch, logs=None):
        self._window_start = time.perf_counter()
        self._window_steps = 0
        self._window_tokens = 0.0

    def on_train_batch_end(self, batch, logs=None):
        import tensorflow as tf

        self._window_steps += 1
        if self._window_steps < self.update_freq:
            return
        elapsed = max(time.perf_counter() - self._window_start, 1e-9)
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        with self._writer.as_default(step=step):
            tf.summary.scalar(
                "learning_rate", current_learning_rate(self.model.optimizer)
            )
            tf.summary.scalar("steps_per_second", self._window_steps / elapsed)
            if self.batch_size:
                tf.summary.scalar(
                    "sentences_per_second",
                    self._window_steps * self.batch_size / elapsed,
                )
            if logs and self.token_metric in logs:
                total = float(logs[self.token_metric])  # running epoch total
                tf.summary.scalar(
                    "tokens_per_second", (total - self._window_tokens) / elapsed
                )
                self._window_tokens = total
        self._window_start = time.perf_counter()
        self._window_steps = 0

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.flush()


def attention_figure_png(weights, source_tokens, target_tokens, title=""):
    """Renders one (T, S) attention matrix as a PNG heat map (bytes)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    weights = np.asarray(weights, dtype=np.float32)
    height = max(2.5, 0.3 * len(target_tokens) + 1.2)
    width = max(3.0, 0.3 * len(source_tokens) + 1.5)
    fig, ax = plt.subplots(figsize=(width, height), dpi=80)
    ax.imshow(weights, cmap="viridis", vmin=0.0, aspect="auto")
    ax.set_xticks(range(len(source_tokens)))
    ax.set_xticklabels(source_tokens, rotation=90, fontsize=8)
    ax.set_yticks(range(len(target_tokens)))
    ax.set_yticklabels(target_tokens, fontsize=8)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


class TranslationSamples(keras.callbacks.Callback):
    """Writes sample translations (text) and attention heat maps (images).

    Args:
        log_dir: TensorBoard log directory (summaries go to `log_dir/samples`).
        sources: the sentences to translate, a short list of strings.
        translate_fn: `list[str] -> list[str]`, the current model's
            translations.
        attention_fn: optional `list[str] -> list[(source_tokens,
            output_tokens, weights (T, S))]` for the heat maps.
        references: optional reference translations shown beside them.
        every_n_epochs: how often to write.
    """

    def __init__(
        self,
        log_dir,
        sources,
        translate_fn,
        attention_fn=None,
        references=None,
        every_n_epochs=1,
    ):
        super().__init__()
        if not sources:
            raise ValueError("`sources` must hold at least one sentence; received none")
        if references is not None and len(references) != len(sources):
            raise ValueError(
                "`references` must have one entry per source; received "
                f"{len(references)} references for {len(sources)} sources"
            )
        self.log_dir = log_dir
        self.sources = list(sources)
        self.translate_fn = translate_fn
        self.attention_fn = attention_fn
        self.references = references
        self.every_n_epochs = every_n_epochs
        self._writer = None

    def write(self, step):
        import tensorflow as tf

        if self._writer is None:
            self._writer = _writer(self.log_dir, "samples")
        translations = self.translate_fn(self.sources)
        rows = ["| source | translation | reference |", "| --- | --- | --- |"]
        for i, (source, output) in enumerate(zip(self.sources, translations)):
            reference = self.references[i] if self.references else ""
            rows.append(f"| {source} | {output} | {reference} |")
        with self._writer.as_default(step=step):
            tf.summary.text("translations", "\n".join(rows))
            if self.attention_fn is not None:
                images = []
                for src_tokens, out_tokens, weights in self.attention_fn(self.sources):
                    png = attention_figure_png(weights, src_tokens, out_tokens)
                    images.append(tf.image.decode_png(png, channels=3))
                for i, image in enumerate(images):
                    tf.summary.image(f"attention/{i}", image[None], step=step)
        self._writer.flush()
        return translations

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs:
            return
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        self.write(step)
