"""Shared autoregressive generation: one contract for every generative model.

The contract (modelled on keras-hub's `CausalLM.generate`), on
`TransformerLM`, `SparseTransformerLM`, `ReformerLM`, `TransformerXLLM`,
`TransformerSeq2Seq` and `GRUTranslator`:

    generate(inputs, max_length=None, sampler="greedy", stop_token_ids=None,
             padding_token_id=0, ...)

- `inputs` is a dict named like the model's own inputs: for a language
  model `{"token_ids": (B, P) int, "padding_mask": (B, P) bool}` (right
  padded prompts; a bare (B, P) array is shorthand for an unpadded prompt);
  for an encoder-decoder `{"encoder_token_ids": (B, S) int,
  "encoder_padding_mask": (B, S) bool}`, plus `start_token_id=` (default
  `DEFAULT_START_TOKEN_ID`, kzoo's BOS id).
- `max_length` is the total length of each output row: the prompt (for a
  seq2seq model, the start token) included. `None` is a per-model default
  that each docstring states (the model's longest sequence).
- `sampler`: "greedy", "top_k", "top_p", "random", "beam" (this module's
  `BeamSampler(num_beams=4, length_penalty=0.6)`), or a sampler object (a
  `keras_hub.samplers.Sampler`, or `BeamSampler(...)` for other beam sizes
  and length penalties).
- `stop_token_ids`: a tuple of ids, or None. Generation stops once every row
  has produced one; every token after a row's first generated stop token is
  `padding_token_id`. Prompt tokens never count as stops and are never
  replaced.
- Returns a NumPy int32 array (B, max_length) on every backend. It begins
  with the prompt (LMs) or with the start token (seq2seq: both translators
  include it; drop column 0 to get the translation). Inside a `tf.function`
  trace (how `kzoo.export.translator` serves a translator) the encoder-
  decoders return the traced tensor instead.
- Bad input: an empty batch gives an empty (0, max_length) result; a
  zero-length prompt or source raises; ids outside the vocabulary raise a
  `ValueError` that names the input (`check_token_id_range`).

Implementation: every model supplies a `next(prompt, cache, index) ->
(logits (B, V), None, cache)` function (keras-hub's sampler protocol: the
logits predict position `index`); the sampler runs the loop. Models with a
cache (TransformerLM, TransformerSeq2Seq, GRUTranslator's recurrent state)
cost O(1) layer calls per token; `forward_next` recomputes the full forward
pass every step, O(max_length) per token (ReformerLM, SparseTransformerLM:
no cache, correctness first). The whole decode is compiled once per input
shape (`cached_generate_function`), except TransformerXLLM, whose memory
grows in shape over the first steps: it runs the same sampler loop eagerly
(`python_loop`), one model call per token.

Letters: B batch, K beams, L max_length, V vocabulary.
"""

import contextlib
import numbers

import keras
import keras_hub
import numpy as np
from keras import ops

from kzoo.backend.checks import is_concrete
from kzoo.backend.compile import compiled_function
from kzoo.utils.validation import check_integer_dtype
from kzoo.utils.validation import check_non_negative_int
from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import check_rank
from kzoo.utils.validation import check_token_id_range

DEFAULT_START_TOKEN_ID = 2  # kzoo.data.translation.BOS_ID
_NEG = -1e9  # log-probability of an impossible hypothesis, finite in float32
SAMPLERS = ("greedy", "top_k", "top_p", "random", "beam")


def gnmt_length_penalty(length, alpha):
    """`((5 + length) / 6) ** alpha`, from "Google's Neural Machine
    Translation System" (Wu et al., 2016)."""
    return ops.power((5.0 + ops.cast(length, "float32")) / 6.0, alpha)


class BeamSampler(keras_hub.samplers.Sampler):
    """Beam search with GNMT length normalisation.

    Hypotheses are ranked, at every step and for the final choice, by
    `log p / ((5 + n) / 6) ** length_penalty` (Wu et al., 2016), n the
    number of generated tokens (a stop token included, prompt tokens not).
    `length_penalty=0` is plain beam search on log p; larger values favour
    longer outputs. Unlike `keras_hub.samplers.BeamSampler`, a beam that has
    produced a stop token is finished: it continues only with padding, at no
    cost, and keeps its length; prompt positions are forced, at no cost.

    Args:
        num_beams: K; 1 equals greedy decoding.
        length_penalty: alpha >= 0.
        temperature: divides the logits.
    """

    def __init__(self, num_beams=4, length_penalty=0.6, **kwargs):
        super().__init__(**kwargs)
        self.num_beams = check_positive_int("num_beams", num_beams)
        if (isinstance(length_penalty, bool) or not isinstance(length_penalty, numbers.Real)
                or length_penalty < 0):
            raise ValueError(
                f"`length_penalty` must be a number >= 0; received {length_penalty!r}"
            )
        self.length_penalty = float(length_penalty)

    def __call__(
        self, next, prompt, cache=None, index=0, mask=None, stop_token_ids=None,
        hidden_states=None, model=None, padding_token_id=0,
    ):
        k, alpha = self.num_beams, self.length_penalty
        batch, max_length = ops.shape(prompt)[0], ops.shape(prompt)[1]
        index = ops.cast(index, "int32")
        mask = ops.zeros_like(prompt, "bool") if mask is None else ops.cast(mask, "bool")
        has_cache = cache is not None
        cache = cache if has_cache else ()
        stops = None if stop_token_ids is None else ops.convert_to_tensor(
            list(stop_token_ids), prompt.dtype)

        def repeat(x):  # (B, ...) -> (B*K, ...), beam j of example b at b*K + j
            return ops.repeat(x, k, axis=0)

        def gather(x, beam):  # (B*K, ...) rows picked by beam (B, K)
            x = ops.reshape(x, (-1, k) + tuple(ops.shape(x)[1:]))
            idx = beam
            for axis in range(2, len(x.shape)):
                idx = ops.expand_dims(idx, axis)
            return ops.reshape(ops.take_along_axis(x, idx, axis=1),
                               (-1,) + tuple(ops.shape(x)[2:]))

        prompt, mask = repeat(prompt), repeat(mask)
        cache = keras.tree.map_structure(repeat, cache)
        scores = ops.reshape(ops.tile(
            ops.where(ops.arange(k) == 0, 0.0, _NEG)[None, :], (batch, 1)), (-1,))  # (B*K,)
        lengths = ops.zeros_like(scores, "int32")
        finished = ops.zeros_like(scores, "bool")

        def cond(prompt, cache, index, scores, lengths, finished):
            return ops.logical_not(ops.all(finished))

        def body(prompt, cache, index, scores, lengths, finished):
            logits, _, cache = next(prompt, cache, index)
            log_probs = ops.log_softmax(ops.cast(logits, "float32") / self.temperature, -1)
            vocab = ops.shape(log_probs)[-1]
            ids = ops.arange(vocab, dtype=prompt.dtype)[None, :]  # (1, V)
            forced = ops.take(mask, index, axis=1)  # (B*K,) a prompt position
            forced_token = ops.take(prompt, index, axis=1)  # (B*K,)
            only = lambda token: ops.where(ops.equal(ids, token[:, None]), 0.0, _NEG)  # (B*K, V)
            log_probs = ops.where(forced[:, None], only(forced_token), log_probs)
            pad = ops.full_like(forced_token, padding_token_id)
            log_probs = ops.where(finished[:, None], only(pad), log_probs)
            total = scores[:, None] + log_probs  # (B*K, V)
            new_lengths = lengths + ops.cast(
                ops.logical_not(ops.logical_or(finished, forced)), "int32")
            ranked = total / gnmt_length_penalty(new_lengths, alpha)[:, None]
            _, top = ops.top_k(ops.reshape(ranked, (-1, k * vocab)), k)  # (B, K)
            beam = top // vocab  # which beam each winner extends
            token = ops.cast(ops.reshape(top % vocab, (-1,)), prompt.dtype)  # (B*K,)
            scores = ops.take_along_axis(ops.reshape(total, (-1, k * vocab)), top, 1)
            scores = ops.reshape(scores, (-1,))
            lengths = gather(new_lengths, beam)
            was_finished = gather(finished, beam)
            prompt = gather(prompt, beam)
            if has_cache:
                cache = keras.tree.map_structure(lambda x: gather(x, beam), cache)
            token = ops.where(forced, forced_token, token)
            if stops is not None:
                is_stop = ops.any(ops.equal(token[:, None], stops[None, :]), axis=-1)
                finished = ops.logical_or(
                    was_finished, ops.logical_and(is_stop, ops.logical_not(forced)))
            else:
                finished = was_finished
            prompt = ops.slice_update(prompt, [0, index], token[:, None])
            return prompt, cache, index + 1, scores, lengths, finished

        prompt, _, _, scores, lengths, _ = self.run_loop(
            cond, body, loop_vars=(prompt, cache, index, scores, lengths, finished),
            maximum_iterations=max_length - index, model=model,
        )
        normalized = ops.reshape(scores / gnmt_length_penalty(lengths, alpha), (-1, k))
        best = ops.argmax(normalized, axis=-1)[:, None, None]  # (B, 1, 1)
        prompt = ops.reshape(prompt, (-1, k, max_length))
        return ops.take_along_axis(prompt, ops.cast(best, "int32"), axis=1)[:, 0]

    def get_config(self):
        config = super().get_config()
        config.update({"num_beams": self.num_beams, "length_penalty": self.length_penalty})
        return config


def get_sampler(sampler):
    """A sampler name (`SAMPLERS`) or object -> a sampler object."""
    if isinstance(sampler, keras_hub.samplers.Sampler):
        return sampler
    if sampler not in SAMPLERS:
        raise ValueError(
            "`sampler` must be 'greedy', 'top_k', 'top_p', 'random', 'beam' or a "
            f"keras_hub.samplers.Sampler (e.g. kzoo's BeamSampler); received {sampler!r}"
        )
    if sampler == "beam":
        return BeamSampler()
    return keras_hub.samplers.get(sampler)


def sample(sampler, next, prompt, mask, cache, index, stop_token_ids, padding_token_id,
           model=None):
    """Runs `sampler` from `index` on the (B, L) buffer `prompt`, then pads
    every row after its first generated stop token. mask (B, L) bool: True
    for prompt tokens (kept)."""
    kwargs = {"padding_token_id": padding_token_id} if isinstance(sampler, BeamSampler) else {}
    out = sampler(
        next, prompt, cache=cache, index=index, mask=mask,
        stop_token_ids=None if stop_token_ids is None else list(stop_token_ids),
        model=model, **kwargs,
    )
    return mask_after_end(out, stop_token_ids, mask, padding_token_id)


def forward_next(model, max_length, multiple_of=1):
    """A `next` that reruns `model({"token_ids", "padding_mask"})` on the
    whole (B, L) buffer every step (O(L) per token; for models with no
    cache). Positions >= `index` are masked; the buffer is padded to a
    multiple of `multiple_of` (ReformerLM's bucket size)."""
    length = -(-max_length // multiple_of) * multiple_of

    def next(prompt, cache, index):
        ids = ops.pad(prompt, [[0, 0], [0, length - max_length]])  # (B, L')
        mask = ops.broadcast_to(ops.arange(length)[None, :] < index, ops.shape(ids))
        logits = model({"token_ids": ids, "padding_mask": mask}, training=False)
        return ops.take(logits, index - 1, axis=1), None, cache  # (B, V)

    return next


@contextlib.contextmanager
def python_loop(sampler):
    """Within the block `sampler` runs its loop in Python, eagerly (for a
    cache whose shape changes from step to step, like TransformerXLLM's
    memory). The sampler's own code is unchanged; only `run_loop` is."""

    def run_loop(cond, body, model=None, loop_vars=None, maximum_iterations=None):
        for _ in range(int(ops.convert_to_numpy(maximum_iterations))):
            if not bool(ops.convert_to_numpy(cond(*loop_vars))):
                break
            loop_vars = body(*loop_vars)
        return loop_vars

    sampler.run_loop = run_loop  # an instance attribute shadows the method
    try:
        yield sampler
    finally:
        del sampler.run_loop


# -- inputs -----------------------------------------------------------------


def check_stop_token_ids(stop_token_ids, vocabulary_size):
    """None or a tuple of ids in [0, vocabulary_size) -> None or a tuple."""
    if stop_token_ids is None:
        return None
    if isinstance(stop_token_ids, numbers.Integral) and not isinstance(stop_token_ids, bool):
        stop_token_ids = (stop_token_ids,)
    ok = isinstance(stop_token_ids, (tuple, list)) and all(
        isinstance(t, numbers.Integral) and not isinstance(t, bool)
        and 0 <= t < vocabulary_size for t in stop_token_ids)
    if not ok or not stop_token_ids:
        raise ValueError(
            f"`stop_token_ids` must be None or a non-empty tuple of ids in [0, "
            f"{vocabulary_size}); received {stop_token_ids!r}"
        )
    return tuple(int(t) for t in stop_token_ids)


def resolve_max_length(max_length, default, limit=None, limit_name="max_sequence_length"):
    """`max_length` (None: `default`), checked against `limit`."""
    max_length = default if max_length is None else max_length
    check_positive_int("max_length", max_length)
    if limit is not None and max_length > limit:
        raise ValueError(
            f"`max_length` must be <= {limit_name} ({limit}); received {max_length}"
        )
    return int(max_length)


def prompt_length(inputs):
    """The (padded) prompt length P of LM `inputs`, before any checks."""
    ids = inputs.get("token_ids") if isinstance(inputs, dict) else inputs
    shape = getattr(ids, "shape", None) or np.shape(ids)
    return shape[1] if len(shape) == 2 else None


def prompt_inputs(inputs, max_length, vocabulary_size, padding_token_id=0):
    """LM prompts -> NumPy (token_ids (B, L) int32, padding_mask (B, L) bool),
    right padded to `max_length`. A (0, L) pair for an empty batch."""
    from kzoo.models.checks import validate_token_inputs

    if not isinstance(inputs, dict):
        check_rank("token_ids", getattr(inputs, "shape", None) or np.shape(inputs), 2,
                   "(batch, length)")
        inputs = {"token_ids": inputs}
    validate_token_inputs(inputs, ["token_ids"], [("padding_mask", "token_ids")])
    check_token_id_range("token_ids", inputs["token_ids"], vocabulary_size)
    token_ids = np.asarray(ops.convert_to_numpy(inputs["token_ids"])).astype("int32")
    mask = inputs.get("padding_mask")
    mask = np.ones_like(token_ids, bool) if mask is None else np.asarray(
        ops.convert_to_numpy(mask)).astype(bool)
    if token_ids.shape[1] > max_length:
        raise ValueError(
            f"`max_length` ({max_length}) must be >= the prompt length {token_ids.shape[1]}"
        )
    if token_ids.shape[0] == 0:  # an empty batch: an empty result
        return np.zeros((0, max_length), "int32"), np.zeros((0, max_length), bool)
    if token_ids.shape[1] == 0 or not mask[:, 0].all():
        rows = [] if token_ids.shape[1] == 0 else np.flatnonzero(~mask[:, 0]).tolist()
        raise ValueError(
            "every prompt needs at least one token, at position 0 (generation "
            "continues from it; use a start token for an empty prompt); received "
            + ("prompts of length 0" if token_ids.shape[1] == 0
               else f"no token at position 0 in row(s) {rows}")
        )
    pad = ((0, 0), (0, max_length - token_ids.shape[1]))
    token_ids = np.pad(np.where(mask, token_ids, padding_token_id), pad,
                       constant_values=padding_token_id)
    return token_ids, np.pad(mask, pad, constant_values=False)


def encoder_inputs(inputs, vocabulary_size):
    """Seq2seq `inputs` -> (encoder_token_ids (B, S) int32, encoder_padding_mask
    (B, S) bool): NumPy when concrete, tensors when traced."""
    from kzoo.models.checks import validate_token_inputs

    validate_token_inputs(inputs, ["encoder_token_ids"],
                          [("encoder_padding_mask", "encoder_token_ids")])
    check_integer_dtype("encoder_token_ids", inputs["encoder_token_ids"])
    check_token_id_range("encoder_token_ids", inputs["encoder_token_ids"], vocabulary_size)
    ids, mask = inputs["encoder_token_ids"], inputs.get("encoder_padding_mask")
    if is_concrete(ids):
        ids = np.asarray(ops.convert_to_numpy(ids)).astype("int32")
        mask = np.ones_like(ids, bool) if mask is None else np.asarray(
            ops.convert_to_numpy(mask)).astype(bool)
        if ids.shape[1] == 0 and ids.shape[0] > 0:
            raise ValueError(
                "`encoder_token_ids` must have at least one position (pad an empty "
                "source to length 1 with a False `encoder_padding_mask`); received "
                f"shape {tuple(ids.shape)}"
            )
        return ids, mask
    ids = ops.cast(ids, "int32")
    mask = ops.ones_like(ids, "bool") if mask is None else ops.cast(mask, "bool")
    return ids, mask


def decoder_prompt(batch_size, max_length, start_token_id, padding_token_id=0):
    """The seq2seq buffer: (B, L) ids, the start token then padding, and its
    (B, L) mask, True at the start token only."""
    prompt = ops.concatenate(
        [ops.full((batch_size, 1), start_token_id, "int32"),
         ops.full((batch_size, max_length - 1), padding_token_id, "int32")], axis=1)
    mask = ops.concatenate(
        [ops.ones((batch_size, 1), "bool"), ops.zeros((batch_size, max_length - 1), "bool")],
        axis=1)
    return prompt, mask


def generate_seq2seq(model, inputs, *, max_length, start_token_id, sampler, stop_token_ids,
                     padding_token_id, source_vocabulary_size, target_vocabulary_size,
                     decoder, jit_compile=False):
    """The whole seq2seq `generate`; `decoder(encoder_token_ids,
    encoder_padding_mask, max_length) -> (next, cache)` is the model's."""
    check_non_negative_int("start_token_id", start_token_id)
    if start_token_id >= target_vocabulary_size:
        raise ValueError(
            f"`start_token_id` must be < the target vocabulary size "
            f"({target_vocabulary_size}); received {start_token_id}"
        )
    check_non_negative_int("padding_token_id", padding_token_id)
    stop_token_ids = check_stop_token_ids(stop_token_ids, target_vocabulary_size)
    ids, mask = encoder_inputs(inputs, source_vocabulary_size)
    if isinstance(ids, np.ndarray) and ids.shape[0] == 0:
        return np.zeros((0, max_length), "int32")  # an empty batch: an empty result
    sampler_obj = resolve_sampler(model, sampler)
    key = ("seq2seq", sampler_key(sampler), max_length, start_token_id, stop_token_ids,
           padding_token_id)

    def build_step(sampler_obj):
        def step(inputs):
            enc_ids, enc_mask = inputs["encoder_token_ids"], inputs["encoder_padding_mask"]
            next, cache = decoder(enc_ids, enc_mask, max_length)
            prompt, prompt_mask = decoder_prompt(
                ops.shape(enc_ids)[0], max_length, start_token_id, padding_token_id)
            return sample(sampler_obj, next, prompt, prompt_mask, cache, 1, stop_token_ids,
                          padding_token_id, model)

        return step

    fn = cached_generate_function(model, key, sampler_obj, build_step, jit_compile)
    return to_numpy(fn({"encoder_token_ids": ids, "encoder_padding_mask": mask}))


def generate_causal(model, inputs, *, max_length, sampler, stop_token_ids, padding_token_id,
                    vocabulary_size, decoder):
    """The whole compiled LM `generate`; `decoder(batch_size, max_length) ->
    (next, cache)` is the model's."""
    check_non_negative_int("padding_token_id", padding_token_id)
    stop_token_ids = check_stop_token_ids(stop_token_ids, vocabulary_size)
    token_ids, mask = prompt_inputs(inputs, max_length, vocabulary_size, padding_token_id)
    if token_ids.shape[0] == 0:
        return token_ids
    sampler_obj = resolve_sampler(model, sampler)
    key = ("causal", sampler_key(sampler), max_length, stop_token_ids, padding_token_id)

    def build_step(sampler_obj):
        def step(inputs):
            prompt, prompt_mask = inputs["token_ids"], inputs["padding_mask"]
            next, cache = decoder(ops.shape(prompt)[0], max_length)
            return sample(sampler_obj, next, prompt, prompt_mask, cache, 1, stop_token_ids,
                          padding_token_id, model)

        return step

    fn = cached_generate_function(model, key, sampler_obj, build_step)
    return to_numpy(fn({"token_ids": token_ids, "padding_mask": mask}))


def to_numpy(x):
    """NumPy, except inside a trace (a `tf.function` around `generate`)."""
    return ops.convert_to_numpy(x) if is_concrete(x) else x


# -- compiled functions -----------------------------------------------------


def compile_step(model, step_fn, sampler, jit_compile=False):
    """Compiles `step_fn(inputs) -> token_ids` once; the compiled function
    is then reused for every call, retracing only for a new input shape."""
    return compiled_function(
        step_fn,
        read_variables=model.trainable_variables + model.non_trainable_variables,
        state_variables=sampler.variables,
        jit_compile=jit_compile,
    )


def function_cache(model):
    """The dict of compiled generate functions of `model`, created on use.

    It lives in the instance `__dict__`, written past `__setattr__`, so
    neither Keras nor TensorFlow tracks it: a tracked dict with tuple keys
    and `tf.function` values would make `model.export()` and SavedModel
    saving fail after a first `generate` (a non-string key), and compiled
    functions are not state to save. Saving, loading and exporting
    therefore work in any order with `generate`.
    """
    return model.__dict__.setdefault("_kzoo_generate_functions", {})


def count_trace(model):
    """Adds one to `model.generate_trace_count` (Python runs of a step
    function, i.e. traces), so tests can check that nothing retraces."""
    model.__dict__["generate_trace_count"] = model.__dict__.get("generate_trace_count", 0) + 1


def cached_generate_function(model, key, sampler, build_step, jit_compile=False):
    """The compiled function for `key` on `model`, built on first use.

    `build_step(sampler)` returns the Python step function.
    """
    cache = function_cache(model)
    if key not in cache:
        step = build_step(sampler)

        def counted(inputs):
            count_trace(model)
            return step(inputs)

        # Keep the sampler alive with the function (its id may be in the key).
        cache[key] = (compile_step(model, counted, sampler, jit_compile), sampler)
    return cache[key][0]


def sampler_key(sampler):
    """A cache key: the name, or the class and config of a sampler without
    state (equal samplers share a compiled function), else its identity."""
    if isinstance(sampler, str):
        return sampler
    if not sampler.variables:
        config = tuple(sorted((k, repr(v)) for k, v in sampler.get_config().items()))
        return (type(sampler).__name__, config)
    return (type(sampler).__name__, id(sampler))


def resolve_sampler(model, sampler):
    """Strings map to one sampler object per model, so keys stay stable."""
    if isinstance(sampler, str):
        samplers = model.__dict__.setdefault("_kzoo_samplers", {})
        if sampler not in samplers:
            samplers[sampler] = get_sampler(sampler)
        return samplers[sampler]
    return get_sampler(sampler)


def mask_after_end(token_ids, stop_token_ids, prompt_mask, padding_token_id=0):
    """Replaces tokens after the first generated stop token by padding.

    token_ids (B, L) int; stop_token_ids a tuple or None; prompt_mask (B, L)
    bool, True for prompt tokens (never treated as a stop or replaced).
    """
    if stop_token_ids is None:
        return token_ids
    stops = ops.convert_to_tensor(list(stop_token_ids), token_ids.dtype)
    is_end = ops.logical_and(
        ops.any(ops.equal(ops.expand_dims(token_ids, -1), stops), axis=-1),
        ops.logical_not(prompt_mask),
    )
    ends_before = ops.cumsum(ops.cast(is_end, "int32"), axis=1) - ops.cast(is_end, "int32")
    after = ops.logical_and(ends_before > 0, ops.logical_not(prompt_mask))
    return ops.where(after, ops.cast(padding_token_id, token_ids.dtype), token_ids)
