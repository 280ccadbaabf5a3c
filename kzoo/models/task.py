"""The base of kzoo models that put a head on a backbone.

As keras-hub's `Task` (`keras_hub/src/models/task.py`): a task names the
class of backbone it takes (`backbone_cls`), holds it as `backbone` and
serialises it once, nested in its config; `from_config` rebuilds it first.
kzoo's constructors and configs call the backbone `encoder`, the word of
its papers, so `encoder` is kept as the argument, the config key and an
alias of `backbone`. A task has its backbone's sizes: `from_size` builds
`backbone_cls.from_size(size, ...)` and puts the head on it.
"""

import inspect

import keras

from kzoo.models.backbone import check_data_arguments
from kzoo.models.backbone import register_family
from kzoo.models.backbone import size_config


class Task(keras.Model):
    """Base class of kzoo heads on a backbone: checks, config, sizes.

    Subclasses set `backbone_cls`, check their argument with
    `check_backbone(encoder)`, set `self.backbone = encoder` before
    building their functional graph, and add their own arguments to
    `get_config` with `{**super().get_config(), ...}`.

    Class attributes:
        backbone_cls: the `Backbone` subclass the task takes; a task with
            one is registered with its backbone's sizes.
        DATA_ARGUMENTS: the task's own arguments that a size leaves to the
            caller (e.g. `num_classes`), with example values; the
            backbone's are `backbone_cls.DATA_ARGUMENTS`.

    Example:

    >>> import kzoo
    >>> clf = kzoo.BertClassifier.from_size("nano", vocabulary_size=100, num_classes=3)
    >>> clf.backbone is clf.encoder, clf.backbone.hidden_dim, clf.num_classes
    (True, 64, 3)
    >>> sorted(clf.get_config())
    ['dropout', 'dtype', 'encoder', 'name', 'num_classes', 'pooling', 'trainable']
    """

    backbone_cls = None
    backbone_hint = ""  # added to the error for a wrong backbone
    DATA_ARGUMENTS = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("backbone_cls") is not None:
            cls.SIZES = cls.backbone_cls.SIZES
            cls.SIZES_SOURCE = cls.backbone_cls.SIZES_SOURCE
            register_family(cls)

    @classmethod
    def data_arguments(cls):
        """Example values of everything `from_size` needs besides the size:
        the backbone's data arguments and the task's own."""
        return {**cls.backbone_cls.data_arguments(), **cls.DATA_ARGUMENTS}

    @classmethod
    def check_backbone(cls, encoder):
        """Returns `encoder` if it is a `backbone_cls`; raises otherwise."""
        if not isinstance(encoder, cls.backbone_cls):
            raise ValueError(
                f"`encoder` must be a kzoo {cls.backbone_cls.__name__}"
                f"{cls.backbone_hint}; received {type(encoder).__name__}"
            )
        return encoder

    @property
    def encoder(self):
        """The backbone, by kzoo's name for it."""
        return self.backbone

    @classmethod
    def size_config(cls, size):
        """Constructor arguments of the backbone's named size."""
        return size_config(cls, size)

    @classmethod
    def from_size(cls, size, **kwargs):
        """The task on a `backbone_cls.from_size(size, ...)`.

        Keyword arguments of the task's own constructor (e.g. `num_classes`,
        `dropout`) go to the task, all others (e.g. `vocabulary_size`) to
        the backbone; `dtype` goes to both. To set an argument that both
        take for the backbone only, build the backbone and pass it.
        """
        own = set(inspect.signature(cls.__init__).parameters) - {"self", "encoder", "kwargs"}
        task_args = {k: v for k, v in kwargs.items() if k in own}
        backbone_args = {k: v for k, v in kwargs.items() if k not in own}
        if "dtype" in kwargs:
            backbone_args["dtype"] = kwargs["dtype"]
        cls.size_config(size)  # an unknown size is named with the task's class
        check_data_arguments(cls, size, {**task_args, "encoder": None})
        return cls(cls.backbone_cls.from_size(size, **backbone_args), **task_args)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "encoder": keras.saving.serialize_keras_object(self.backbone),
        }

    @classmethod
    def from_config(cls, config):
        """keras-hub's nested pattern; a `dtype` given to the task reaches the
        backbone, so that `from_config({..., "dtype": policy})` is all mixed."""
        config = dict(config)
        encoder = config.pop("encoder")
        if isinstance(encoder, dict):
            if config.get("dtype") is not None:
                encoder = {
                    **encoder, "config": {**encoder["config"], "dtype": config["dtype"]}
                }
            encoder = keras.saving.deserialize_keras_object(encoder)
        return cls(encoder=encoder, **config)
