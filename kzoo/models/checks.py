"""Input and size checks shared by every kzoo model.

`validate_token_inputs` checks a dict of model inputs (ranks, integer ids,
mask shapes) before the graph runs; `check_model_sizes` the sizes every
Transformer model takes. Errors name the input or argument, the value
received and what would be right. Value checks of token ids (range) are
`kzoo.utils.validation.check_token_id_range` (eager) and
`guard_token_ids` (traced).
"""

from kzoo.utils.validation import check_divisible
from kzoo.utils.validation import check_integer_dtype
from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import check_rank
from kzoo.utils.validation import check_same_dims
from kzoo.utils.validation import static_shape


def validate_token_inputs(inputs, id_names, mask_pairs=()):
    """Checks a dict of model inputs before the graph runs.

    `id_names` must hold rank-2 integer ids; each `(mask, ids)` pair in
    `mask_pairs` must have the shape of its ids. Errors name the input.
    """
    if not isinstance(inputs, dict):
        raise ValueError(
            f"inputs must be a dict with keys {list(id_names)}; received "
            f"{type(inputs).__name__}"
        )
    for name in id_names:
        if name not in inputs:
            raise ValueError(f"inputs miss `{name}`; received keys {sorted(inputs)}")
        check_rank(name, static_shape(inputs[name]), 2, "(batch, length)")
        check_integer_dtype(name, inputs[name])
    for mask_name, ids_name in mask_pairs:
        if inputs.get(mask_name) is not None:
            check_same_dims(
                mask_name,
                static_shape(inputs[mask_name]),
                static_shape(inputs[ids_name]),
                f"the shape of `{ids_name}`",
            )


def check_model_sizes(vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim):
    check_positive_int("vocabulary_size", vocabulary_size)
    check_positive_int("num_layers", num_layers)
    check_positive_int("num_heads", num_heads)
    check_positive_int("hidden_dim", hidden_dim)
    check_positive_int("intermediate_dim", intermediate_dim)
    check_divisible("hidden_dim", hidden_dim, "num_heads", num_heads)
