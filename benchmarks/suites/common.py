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


def fmt_num(x, digits=3):
    if x is None:
        return "-"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"
