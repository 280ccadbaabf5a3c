"""kzoo's command line: the model families and their named sizes.

    python -m kzoo list [--params] [FAMILY ...]
    python -m kzoo show MODEL SIZE [--params]

`list` prints every registered family (or the ones named) with its sizes
and where their numbers come from; `show` prints the constructor arguments
of one size, with the data's arguments (vocabulary, classes) at the values
the paper's data gives (`Model.DATA_ARGUMENTS`). Nothing is built unless
`--params` is given: then each size is built, one at a time, and its
parameter count printed (the large sizes take a while and their memory).
"""

import argparse
import inspect
import json
import sys


def _ordered(cls, values):
    """`values` in the order of `cls.__init__`'s parameters, then the rest."""
    names = [n for n in inspect.signature(cls.__init__).parameters if n in values]
    return {**{n: values[n] for n in names}, **values}


def _defaults(cls):
    return {
        name: parameter.default
        for name, parameter in inspect.signature(cls.__init__).parameters.items()
        if parameter.kind is parameter.POSITIONAL_OR_KEYWORD
        and parameter.default is not inspect.Parameter.empty
        and name != "dtype"
    }


def size_arguments(cls, size):
    """All constructor arguments of `cls.from_size(size, **data)`, without
    building it; a task's backbone is nested under `encoder`."""
    from kzoo.models.task import Task

    if issubclass(cls, Task):
        backbone = cls.backbone_cls
        encoder = {"class_name": backbone.__name__, "config": size_arguments(backbone, size)}
        return _ordered(cls, {"encoder": encoder, **_defaults(cls), **cls.DATA_ARGUMENTS})
    return _ordered(cls, {**_defaults(cls), **cls.data_arguments(), **cls.size_config(size)})


def count_params(cls, size):
    return cls.from_size(size, **cls.data_arguments()).count_params()


def _list(names, params):
    from kzoo.models.backbone import get_model
    from kzoo.models.backbone import list_models

    for name in names or list_models():
        cls = get_model(name)
        print(f"{name}: {cls.SIZES_SOURCE}")
        for size in cls.SIZES:
            dims = ", ".join(f"{k}={v}" for k, v in cls.size_config(size).items())
            count = f"  {count_params(cls, size):,} params" if params else ""
            print(f"  {size:<8}{dims}{count}", flush=True)


def _show(name, size, params):
    from kzoo.models.backbone import get_model

    cls = get_model(name)
    arguments = size_arguments(cls, size)
    print(f"{name} {size!r} ({cls.SIZES_SOURCE})")
    print(json.dumps(arguments, indent=2, default=str))
    if params:
        print(f"{count_params(cls, size):,} params")


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m kzoo", description="kzoo model families and sizes"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="families, sizes (and parameters)")
    listing.add_argument("families", nargs="*", help="only these families")
    listing.add_argument("--params", action="store_true",
                         help="build each size and print its parameter count")
    show = commands.add_parser("show", help="the constructor arguments of one size")
    show.add_argument("model")
    show.add_argument("size")
    show.add_argument("--params", action="store_true",
                      help="build it and print its parameter count")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            _list(args.families, args.params)
        else:
            _show(args.model, args.size, args.params)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
