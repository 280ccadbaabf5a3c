"""Helpers shared by the suites; no framework import at module level."""

import importlib


class Unavailable(Exception):
    """A component has not landed in kzoo yet, or an artefact is missing:
    recorded as status `unavailable` with this message, not as an error."""


def make_config(suite, series, x, x_label, group, reference=False, **params):
    """One configuration: a point `x` of a `series`; ratios compare it with the
    reference series' point of the same `group` and `x`."""
    return {
        "suite": suite,
        "name": f"{series}/{x_label}={x}",
        "series": series,
        "x": x,
        "x_label": x_label,
        "group": group,
        "reference": bool(reference),
        **params,
    }


def doubling(start, stop):
    sizes, n = [], start
    while n <= stop:
        sizes.append(n)
        n *= 2
    return sizes


def kzoo_component(*names):
    """The first of `names` found in `kzoo`, `kzoo.layers` or `kzoo.models`.

    Raises:
        Unavailable: none of them exists yet.
    """
    import kzoo

    places = [kzoo, getattr(kzoo, "layers", None), getattr(kzoo, "models", None)]
    for name in names:
        for place in places:
            if place is not None and hasattr(place, name):
                return getattr(place, name)
    raise Unavailable(
        f"kzoo has no {' / '.join(names)} yet (not exported by kzoo, "
        "kzoo.layers or kzoo.models)"
    )


def optional_module(name):
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise Unavailable(f"{name} cannot be imported: {e}") from e


def fmt_time(seconds):
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def fmt_fraction(x):
    if x is None:
        return "-"
    return f"{100 * x:.1f}%" if x >= 0.001 else f"{100 * x:.2f}%"


def fmt_num(x, digits=3):
    if x is None:
        return "-"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def transformer_layer_flops(seq_len, hidden_dim, intermediate_dim):
    """Forward matmul FLOPs of one Transformer encoder layer on one sequence
    (2 FLOPs per multiply-add; T = seq_len, D = hidden_dim, F =
    intermediate_dim; heads do not change the count):

        query, key, value projections   3 * 2 T D D
        scores Q K^T (all heads)        2 T T D
        probabilities times V           2 T T D
        output projection               2 T D D
        feed-forward, two matmuls       2 * 2 T D F
        total                           8 T D^2 + 4 T^2 D + 4 T D F

    Softmax, layer norms, biases and activations are O(T D + N T^2) and left
    out, as in the usual "model FLOPs" accounting (Kaplan et al. 2020;
    Chowdhery et al. 2022, appendix B).
    """
    t, d, f = seq_len, hidden_dim, intermediate_dim
    return 8 * t * d * d + 4 * t * t * d + 4 * t * d * f


def fraction_of_peak(record, peak_gflops):
    """`derived.model_gflops_per_s` over the float32 matmul peak (GFLOP/s)."""
    derived = record.get("derived") or {}
    achieved = derived.get("model_gflops_per_s")
    if achieved is None or not peak_gflops:
        return None
    return achieved / peak_gflops
