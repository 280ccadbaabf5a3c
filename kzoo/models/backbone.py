"""The base of every kzoo model, and the registry of named sizes.

`Backbone.get_config` supplies `name`, `trainable` and `dtype` once, as
keras-hub's `Backbone` does (`keras_hub/src/models/backbone.py`); a model's
own `get_config` starts from `super().get_config()` and adds its arguments,
and `from_config` calls the constructor with them.

A family declares its named sizes in a class attribute `SIZES`, a table of
constructor arguments per size (nanoGPT's table of GPT-2 sizes, keras-hub's
presets without the download), and `SIZES_SOURCE`, where the numbers come
from. `Model.from_size(size, **overrides)` builds one; the arguments a size
leaves to the caller are those of the data (vocabulary, classes), listed
with the values the paper's data gives in `DATA_ARGUMENTS`, which
`python -m kzoo` uses to count parameters. Every class that declares a
table is registered, by class name, for `list_models()` and
`list_sizes(name)`.
"""

import inspect

import keras

_FAMILIES = {}


def register_family(cls):
    """Adds a model class with a `SIZES` table to the registry; returns it."""
    _FAMILIES[cls.__name__] = cls
    return cls


def list_models():
    """Names of the registered model families, sorted."""
    return sorted(_FAMILIES)


def get_model(name):
    """The registered model class called `name`."""
    if name not in _FAMILIES:
        raise ValueError(
            f"`name` must be one of the kzoo model families {list_models()}; "
            f"received {name!r}"
        )
    return _FAMILIES[name]


def list_sizes(name):
    """Names of the sizes of the family `name`, in table order (small first)."""
    return list(get_model(name).SIZES)


def size_config(cls, size):
    """A copy of the constructor arguments of `cls`'s size `size`; an unknown
    size raises an error naming the family, the size and the valid ones."""
    if size not in cls.SIZES:
        raise ValueError(
            f"{cls.__name__} has no size {size!r}; `size` must be one of "
            f"{list(cls.SIZES)}"
        )
    return dict(cls.SIZES[size])


def check_data_arguments(cls, size, config):
    """Raises when `config` misses a required argument of `cls`'s constructor
    (a size leaves the data's arguments, such as the vocabulary, to the
    caller)."""
    missing = [
        name
        for name, parameter in inspect.signature(cls.__init__).parameters.items()
        if parameter.default is inspect.Parameter.empty
        and parameter.kind is parameter.POSITIONAL_OR_KEYWORD
        and name != "self"
        and name not in config
    ]
    if missing:
        raise ValueError(
            f"{cls.__name__}.from_size({size!r}) needs {missing}: a size sets "
            "the architecture and leaves the data's arguments to the caller "
            f"(e.g. {cls.data_arguments()})"
        )


class Backbone(keras.Model):
    """Base class of kzoo models: config plumbing and named sizes.

    Subclasses build a functional graph in `__init__`, pass `dtype` and
    `**kwargs` to `super().__init__(inputs=..., outputs=..., dtype=dtype,
    **kwargs)`, and write `get_config` as `{**super().get_config(),
    <their arguments>}`.

    Class attributes:
        SIZES: size name -> constructor arguments, smallest first; a family
            with a table is registered for `kzoo.models.list_models()`.
        SIZES_SOURCE: where the table's numbers come from.
        DATA_ARGUMENTS: the constructor arguments a size leaves to the
            caller, with the values of the paper's data (for parameter
            counts in `python -m kzoo list --params`).

    Example:

    >>> import kzoo
    >>> lm = kzoo.TransformerLM.from_size("tiny", vocabulary_size=100)
    >>> lm.num_layers, lm.hidden_dim, lm.get_config()["name"] == lm.name
    (2, 64, True)
    >>> kzoo.list_sizes("TransformerLM")
    ['tiny', 'small', 'medium', 'large', 'xl']
    """

    SIZES = {}
    SIZES_SOURCE = ""
    DATA_ARGUMENTS = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("SIZES"):
            register_family(cls)

    @classmethod
    def size_config(cls, size):
        """Constructor arguments of the named size (without the data's)."""
        return size_config(cls, size)

    @classmethod
    def data_arguments(cls):
        """Example values of the arguments a size leaves to the caller."""
        return dict(cls.DATA_ARGUMENTS)

    @classmethod
    def from_size(cls, size, **kwargs):
        """A model of the named size; `kwargs` add the data's arguments
        (e.g. `vocabulary_size`) and override the table (e.g. `dropout`)."""
        config = {**cls.size_config(size), **kwargs}
        check_data_arguments(cls, size, config)
        return cls(**config)

    def get_config(self):
        # Not chained to `keras.Model.get_config`: a functional model's config
        # is its graph, which the constructors of kzoo models do not take.
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
