"""The ``mlp_train`` stage's spec: its fields, their validation against the registry the
pipeline is loaded with, its schema; ``run`` trains (``plugins.mlp.training``, which resumes
from ``plugins.mlp.checkpoint`` and records ``plugins.mlp.history``).

A plugin named by a field (activation, loss, init, optimizer and schedule kinds, layers) is
looked up in the registry ``load_pipeline`` was given (pydantic's validation context,
``pipeline.spec.registry_of``), never in another one. What the training does, step by step, is
in ``plugins.mlp.training``'s docstring. Label smoothing, class weights and the L1 penalty change
the training objective only: the validation loss is the plain loss against the true labels, and
the reported train loss leaves out the L1 term.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Mapping

from pydantic import (BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, SerializeAsAny,
                      ValidationError, ValidationInfo, WithJsonSchema, field_validator,
                      model_serializer, model_validator)
from pydantic_core import PydanticCustomError

from pipeline.errors import PluginError
from pipeline.lazy import lazy_attributes
from pipeline.registry import Registry, default_registry, unknown_name_message
from pipeline.spec import Seed, StageContext, StageSpec, registry_of
from plugins.mlp import layers as layer_plugins
from plugins.mlp.layers.base import Layer
from plugins.mlp.optim import SGD, Optimizer
from plugins.mlp.schedules import Constant, Schedule

__all__ = ["Checkpoint", "EarlyStopping", "Epoch", "History", "MLPTrain"]  # as before the split

#: Names kept importable from here (as before the split), imported on first use: validating a
#: pipeline needs only the spec, not the training loop, the checkpoint or the history.
__getattr__ = lazy_attributes(__name__, {"Checkpoint": "plugins.mlp.checkpoint",
                                         "Epoch": "plugins.mlp.history",
                                         "History": "plugins.mlp.history"})


def _plugin_error(message: str) -> PydanticCustomError:
    """A validation error pydantic reports with the field's path, beside every other problem."""
    return PydanticCustomError("plugin", "{message}", {"message": message})


def _check_name(group: str, what: str, name: str, info: ValidationInfo) -> str:
    """``name`` if it is registered in ``group`` of the registry being validated against and
    loads (passing the group's type check), else a validation error listing the installed
    names and the closest one."""
    registry = registry_of(info)
    if name not in registry.names(group):
        raise _plugin_error(unknown_name_message(what, name, registry.names(group)))
    try:
        registry.load(group, name)
    except PluginError as exc:
        raise _plugin_error(str(exc)) from None
    return name


class EarlyStopping(BaseModel):
    """Stop when ``monitor`` has not improved by at least ``min_delta`` for ``patience`` epochs;
    the best epoch's weights are restored at the end (``restore_best``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    monitor: Literal["val_loss", "val_accuracy"] = "val_loss"
    patience: int = Field(default=3, ge=0, description="Epochs without improvement tolerated.")
    min_delta: float = Field(default=0.0, ge=0, description="Smallest change that counts.")
    restore_best: bool = True

    def improved(self, value: float, best: float | None) -> bool:
        if best is None:
            return True
        if self.monitor == "val_loss":
            return value < best - self.min_delta
        return value > best + self.min_delta


def _from_registry(group: str, what: str, base: type, value: Any, example: str,
                   info: ValidationInfo) -> Any:
    """``{kind: name, ...}`` -> the registered class for ``kind`` in ``group``, validated; its own
    field errors come out under ``<field>.<its field>``; a bad kind under ``<field>.kind``."""
    if isinstance(value, base):
        return value
    if not isinstance(value, Mapping):
        raise _plugin_error(f"expected a mapping such as {example}")
    registry = registry_of(info)
    kind = value.get("kind")
    if kind not in registry.names(group):
        message = (unknown_name_message(what, str(kind), registry.names(group))
                   if "kind" in value else f"missing; installed: {', '.join(registry.names(group))}")
        raise ValidationError.from_exception_data(what, [  # reported at <field>.kind
            {"type": _plugin_error(message), "loc": ("kind",), "input": kind}])
    try:
        cls = registry.load(group, kind)
    except PluginError as exc:
        raise _plugin_error(str(exc)) from None
    return cls.model_validate(value)  # its errors keep their paths: optimizer.lr


def _layers(entries: list[Any], registry: Registry) -> list[Layer]:
    """Each entry as a ``Layer``; every problem of every entry reported at once, at
    ``<index>[.<field>]`` (pydantic prefixes ``layers``)."""
    resolved, problems = [], []
    for index, entry in enumerate(entries):
        try:
            resolved.append(layer_plugins.resolve(entry, registry))
        except ValidationError as exc:  # the layer's own fields
            problems += [{"type": _plugin_error(e["msg"]), "loc": (index, *e["loc"]),
                          "input": e["input"]} for e in exc.errors()]
        except (ValueError, PluginError) as exc:  # an unknown kind, fields on an activation
            at = (index, "kind") if isinstance(entry, Mapping) and "kind" in entry else (index,)
            problems.append({"type": _plugin_error(str(exc)), "loc": at, "input": entry})
    if problems:
        raise ValidationError.from_exception_data("layers", problems)
    return resolved


#: What an editor may check of a ``layers:`` list (each kind's own fields are checked on load).
_LAYERS_SCHEMA = {"anyOf": [{"type": "null"}, {"type": "array", "items": {"anyOf": [
    {"type": "string", "description": "an activation's name, e.g. relu"},
    {"type": "object", "required": ["kind"], "properties": {"kind": {"type": "string"}},
     "description": "a registered layer, e.g. {kind: dense, units: 256}"}]}}]}


class MLPTrain(StageSpec):
    """Train a multilayer perceptron on the ``train`` split (mini-batch, seeded, reproducible)."""

    kind: Literal["mlp_train"] = "mlp_train"
    #: What a search ranks by (``history.json``, the last epoch): validation accuracy first.
    metric_directions = {"val_accuracy": "max", "val_loss": "min", "train_accuracy": "max",
                         "train_loss": "min"}
    hidden: list[PositiveInt] = [256, 128]
    activation: str = "relu"
    loss: str = "cross_entropy"
    init: str = "he_normal"
    optimizer: SerializeAsAny[Optimizer] = SGD(lr=0.01)
    schedule: SerializeAsAny[Schedule] = Constant()
    batch_size: PositiveInt = 128
    epochs: PositiveInt = 10
    dropout: float = Field(default=0.0, ge=0, lt=1,
                           description="Probability of dropping each hidden unit while training.")
    layers: Annotated[SerializeAsAny[list[Layer]] | None, WithJsonSchema(_LAYERS_SCHEMA)] = Field(
        default=None, description="The stack before the output layer, e.g. [{kind: dense, units: "
                                  "256}, {kind: batch_norm}, relu]; instead of hidden, activation "
                                  "and dropout (their short form).")
    diagnostics: bool = Field(default=True, description="Record per-layer gradient and weight "
                                                        "norms, update ratios and dead units.")
    label_smoothing: float = Field(default=0.0, ge=0, lt=1,
                                   description="Mix this much of the uniform distribution into "
                                               "the one-hot training targets.")
    l1: float = Field(default=0.0, ge=0,
                      description="L1 penalty: adds l1 * sum(|W|) over the dense layers' weights "
                                  "(not biases) to each batch's mean loss, so l1 * sign(W) to "
                                  "their gradient. Reported losses are the data loss, without it.")
    decay_biases: bool = Field(default=True,
                               description="Let the optimizer's weight_decay act on the biases "
                                           "too (PyTorch's default); false decays the dense "
                                           "layers' weights only.")
    class_weight: Literal["balanced"] | list[PositiveFloat] | None = Field(
        default=None,
        description="Weight each sample's loss by its class's weight, as PyTorch's "
                    "cross_entropy(weight=...): 'balanced' (n / (k * count) on the train split, "
                    "scikit-learn's formula) or one weight per class. The loss must support it.")
    ema: float | None = Field(
        default=None, gt=0, lt=1,
        description="Average the weights (and batch norm's running statistics) over the steps: "
                    "after each one average = ema * average + (1 - ema) * weights, as PyTorch's "
                    "AveragedModel with get_ema_multi_avg_fn; validation, early stopping and the "
                    "saved model use the average. e.g. 0.999; off by default.")
    early_stopping: EarlyStopping | None = None
    dtype: Literal["float32", "float64"] = "float32"
    seed: Seed | None = None
    shuffle: bool = True

    inputs = ("data",)
    optional_inputs = ("augmentation", "normalizer")  # fresh distortions, drawn in pixel space
    outputs = ("model", "history")

    @field_validator("activation")
    @classmethod
    def _activation_is_registered(cls, name: str, info: ValidationInfo) -> str:
        return _check_name("activations", "activation", name, info)

    @field_validator("layers", mode="before")
    @classmethod
    def _layers_from_registry(cls, value: Any, info: ValidationInfo) -> Any:
        """Each entry -> a ``Layer``; a problem is reported at ``layers.<i>[.<field>]``."""
        if value is None:
            return None
        if not isinstance(value, (list, tuple)):
            raise _plugin_error("expected a list such as [{kind: dense, units: 256}, relu]")
        return _layers(list(value), registry_of(info))

    @model_validator(mode="after")
    def _one_form_of_the_stack(self) -> "MLPTrain":
        short = sorted({"hidden", "activation", "dropout"} & self.model_fields_set)
        if self.layers is not None and short:
            raise ValueError(f"give either layers or {', '.join(short)} (the short form of the "
                             f"same stack), not both")
        return self

    @model_serializer(mode="wrap")
    def _dump_one_form(self, handler: Any) -> dict[str, Any]:
        """Only the form the stack was given in (so a dump validates again)."""
        data = handler(self)
        for name in ("hidden", "activation", "dropout") if self.layers is not None else ("layers",):
            data.pop(name, None)
        return data

    @field_validator("loss")
    @classmethod
    def _loss_is_registered(cls, name: str, info: ValidationInfo) -> str:
        return _check_name("losses", "loss", name, info)

    @field_validator("class_weight")
    @classmethod
    def _loss_supports_weights(cls, value: Any, info: ValidationInfo) -> Any:
        name = info.data.get("loss")  # absent when the loss itself did not validate
        if value is not None and name is not None:
            loss = registry_of(info).load("losses", name)
            if not callable(getattr(loss, "weighted", None)):
                raise _plugin_error(f"loss {name!r} does not support class weights (it has no "
                                    f"weighted(output, target, weight, smoothing)); use "
                                    f"cross_entropy or drop class_weight")
        return value

    @field_validator("init")
    @classmethod
    def _init_is_registered(cls, name: str, info: ValidationInfo) -> str:
        return _check_name("initializers", "initializer", name, info)

    @field_validator("optimizer", mode="before")
    @classmethod
    def _optimizer_from_registry(cls, value: Any, info: ValidationInfo) -> Any:
        """``{kind: sgd, lr: 0.01}`` -> the registered optimiser class for ``kind``, validated."""
        return _from_registry("optimizers", "optimizer", Optimizer, value,
                              "{kind: sgd, lr: 0.01}", info)

    @field_validator("schedule", mode="before")
    @classmethod
    def _schedule_from_registry(cls, value: Any, info: ValidationInfo) -> Any:
        """``{kind: cosine}`` -> the registered schedule class for ``kind``, validated."""
        return _from_registry("schedules", "schedule", Schedule, value, "{kind: cosine}", info)

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        """pydantic's schema with the installed activations, losses, initializers (enums),
        optimizers and schedules (one variant per kind): see ``plugins.mlp.schema``."""
        from plugins.mlp.schema import fill_in_installed

        json_schema = handler(core_schema)
        fill_in_installed(handler.resolve_ref_schema(json_schema)["properties"],
                          default_registry())
        return json_schema

    def code_modules(self) -> list[str]:
        """The modules of the activation, loss, initializer, optimizer and schedule it uses by
        name: a third party's activation is part of what this stage computes."""
        registry = default_registry()
        chosen = [("losses", self.loss), ("initializers", self.init),
                  ("optimizers", self.optimizer.kind), ("schedules", self.schedule.kind)]
        for layer in self.layers if self.layers is not None else [self.activation]:
            kind = getattr(layer, "kind", layer)
            chosen.append(("layers" if kind in registry.names("layers") else "activations", kind))
        return sorted({registry.entry(group, name).target.partition(":")[0]
                       for group, name in chosen})

    def run(self, inputs: Mapping[str, Any], context: StageContext) -> dict[str, Any]:
        """Train the network (``plugins.mlp.training.train``, imported here: validating a
        pipeline never needs it). A bad ``NNPIPE_KERNELS`` is refused before any work."""
        from plugins.mlp import fused
        from plugins.mlp.training import train

        fused.chosen()
        return train(self, inputs, context)
