"""Shared autoregressive generation: samplers, a compiled step per input
shape, and end-token handling. Used by TransformerSeq2Seq and TransformerLM;
any model with a `next(prompt, cache, index) -> (logits, None, cache)`
function can reuse it (the GRU translator's cache is its recurrent state).

Letters: B batch, L max_length, V vocabulary.
"""

import keras
import keras_hub
from keras import ops

from kzoo.backend.compile import compiled_function
from kzoo.utils.validation import check_positive_int


def get_sampler(sampler):
    """"greedy" | "top_k" | "beam" | a `keras_hub.samplers.Sampler`."""
    if isinstance(sampler, keras_hub.samplers.Sampler):
        return sampler
    if sampler not in ("greedy", "top_k", "beam", "random", "top_p"):
        raise ValueError(
            "`sampler` must be 'greedy', 'top_k', 'beam', 'top_p', 'random' or a "
            f"keras_hub.samplers.Sampler; received {sampler!r}"
        )
    return keras_hub.samplers.get(sampler)


def compile_step(model, step_fn, sampler):
    """Compiles `step_fn(inputs) -> token_ids` once; the compiled function
    is then reused for every call, retracing only for a new input shape."""
    return compiled_function(
        step_fn,
        read_variables=model.trainable_variables + model.non_trainable_variables,
        state_variables=sampler.variables,
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


def cached_generate_function(model, key, sampler, build_step):
    """The compiled function for `key` on `model`, built on first use.

    `build_step(sampler)` returns the Python step function. The model
    attribute `generate_trace_count` counts Python executions of step
    functions (i.e. traces), so tests can check that nothing retraces.
    """
    cache = function_cache(model)
    if key not in cache:
        step = build_step(sampler)

        def counted(inputs):
            model.__dict__["generate_trace_count"] = (
                model.__dict__.get("generate_trace_count", 0) + 1
            )
            return step(inputs)

        # Keep the sampler alive with the function (its id is in the key).
        cache[key] = (compile_step(model, counted, sampler), sampler)
    return cache[key][0]


def sampler_key(sampler):
    if isinstance(sampler, str):
        return sampler
    return (type(sampler).__name__, id(sampler))


def resolve_sampler(model, sampler):
    """Strings map to one sampler object per model, so keys stay stable."""
    if isinstance(sampler, str):
        samplers = model.__dict__.setdefault("_kzoo_samplers", {})
        if sampler not in samplers:
            samplers[sampler] = get_sampler(sampler)
        return samplers[sampler]
    return get_sampler(sampler)


def mask_after_end(token_ids, end_token_id, prompt_mask, padding_token_id=0):
    """Replaces tokens after the first generated `end_token_id` by padding.

    token_ids (B, L) int; prompt_mask (B, L) bool, True for prompt tokens
    (never treated as an end or replaced).
    """
    if end_token_id is None:
        return token_ids
    is_end = ops.logical_and(
        ops.equal(token_ids, end_token_id), ops.logical_not(prompt_mask)
    )
    ends_before = ops.cumsum(ops.cast(is_end, "int32"), axis=1) - ops.cast(is_end, "int32")
    after = ops.logical_and(ends_before > 0, ops.logical_not(prompt_mask))
    return ops.where(after, ops.cast(padding_token_id, token_ids.dtype), token_ids)


def check_generate_args(max_length, end_token_id):
    check_positive_int("max_length", max_length)
    if end_token_id is not None and (isinstance(end_token_id, bool) or not isinstance(end_token_id, int)):
        raise ValueError(f"`end_token_id` must be an int or None; received {end_token_id!r}")
