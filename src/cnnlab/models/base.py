"""The interface every cnnlab model has (timm's, minus its factories).

    features = model.forward_features(x)      # the last feature map
    logits = model.forward_head(features)     # pooling + classifier
    model.reset_classifier(10)                # a new head for new classes
    model.feature_info                        # channels and reduction of each stage

`forward` also turns PyTorch's shape errors from deep inside a network into one message that
names the sizes the network accepts.
"""

from __future__ import annotations

import threading

import torch
from torch import nn

from cnnlab.errors import InputShapeError
from cnnlab.meta import meta_copy


class CnnModel(nn.Module):
    """Base class of the zoo: one interface over every family.

    Subclasses set `num_classes`, `in_chans`, `num_features` (width of the pre-logits vector),
    `default_input_size` and `feature_info`, and implement the three methods below.
    """

    num_classes: int
    in_chans: int
    num_features: int
    default_input_size: tuple[int, int, int]
    feature_info: list[dict]
    model_name: str = ""
    paper: str = ""  # create_model sets these three from the registry
    description: str = ""

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        raise NotImplementedError

    def get_classifier(self) -> nn.Module:
        raise NotImplementedError

    def reset_classifier(self, num_classes: int) -> None:
        raise NotImplementedError

    def forward(self, x: torch.Tensor):
        check_input_rank_and_channels(self, x)
        try:
            return self._forward(x)
        except RuntimeError as error:
            explain_input_size_error(self, x, error)
            raise

    def _forward(self, x: torch.Tensor):
        """The computation; nets with auxiliary heads (GoogLeNet, Inception v3) override it."""
        return self.forward_head(self.forward_features(x))

    def _repr_html_(self) -> str:
        """In a notebook: the model's card (paper, input, parameters, stages), its module tree
        folded below; the terminal keeps PyTorch's repr."""
        from cnnlab.models.card import card_html

        return card_html(self, self.paper, self.description)


class PooledLinearNet(CnnModel):
    """A net that ends in global average pooling, optional dropout and one Linear (`fc`).

    Subclasses own `avgpool` (or override `global_pool`), `fc` (or set `classifier_name`) and,
    if they use one before the classifier, a `dropout` module.
    """

    classifier_name = "fc"

    def global_pool(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.avgpool(x), 1)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.global_pool(x)
        dropout = getattr(self, "dropout", None)
        if isinstance(dropout, nn.Module):
            x = dropout(x)
        return x if pre_logits else self.get_classifier()(x)

    def get_classifier(self) -> nn.Module:
        return getattr(self, self.classifier_name)

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        setattr(self, self.classifier_name, nn.Linear(self.num_features, num_classes))


class AuxHeadNet(PooledLinearNet):
    """A PooledLinearNet with auxiliary classifiers on intermediate maps (GoogLeNet, Inception v3).

    With `aux_logits` set, a model in training mode returns `aux_outputs(logits, aux)` (a named
    tuple; the losses of the auxiliary heads are weighted 0.3 by the training loop); in eval mode,
    and always without `aux_logits`, it returns the logits alone. Subclasses implement
    `features_and_aux(x, with_aux)` -> (features, [auxiliary logits in order of depth]).
    """

    aux_logits: bool = False

    def features_and_aux(self, x: torch.Tensor, with_aux: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        raise NotImplementedError

    def aux_outputs(self, logits: torch.Tensor, aux: list[torch.Tensor]) -> tuple:
        raise NotImplementedError

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features_and_aux(x, with_aux=False)[0]

    def _forward(self, x: torch.Tensor):
        with_aux = self.aux_logits and self.training
        features, aux = self.features_and_aux(x, with_aux)
        logits = self.forward_head(features)
        return self.aux_outputs(logits, aux) if with_aux else logits


class MLPHeadNet(CnnModel):
    """A net whose `classifier` is a Sequential of fully-connected layers after a flatten
    (AlexNet, ZFNet, VGG); `avgpool`, when present, runs first."""

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        pool = getattr(self, "avgpool", None)
        x = torch.flatten(pool(x) if pool is not None else x, 1)
        return self.classifier[:-1](x) if pre_logits else self.classifier(x)

    def get_classifier(self) -> nn.Module:
        return self.classifier[-1]

    def reset_classifier(self, num_classes: int) -> None:
        from cnnlab.layers import replace_last_linear

        self.num_classes = num_classes
        replace_last_linear(self.classifier, num_classes)


def image_side(input_size: int | tuple[int, ...] | list[int]) -> tuple[int, int]:
    """(height, width) from a side, (H, W) or (C, H, W): the input a flatten-head net is built for."""
    if isinstance(input_size, int):
        return input_size, input_size
    values = tuple(int(v) for v in input_size)
    if len(values) not in (1, 2, 3) or min(values) < 1:
        raise InputShapeError(f"input_size {input_size!r} must be a side, (H, W) or (C, H, W) of positive numbers")
    return (values[-1], values[-1]) if len(values) == 1 else values[-2:]


def stage_info(module: str, num_chs: int, reduction: int) -> dict:
    """One entry of `feature_info`, in timm's keys."""
    return {"module": module, "num_chs": num_chs, "reduction": reduction}


def check_input_rank_and_channels(model: CnnModel, x: torch.Tensor) -> None:
    if x.dim() != 4:
        raise InputShapeError(
            f"{_display_name(model)} takes a batch of images shaped (N, C, H, W); got a tensor of "
            f"shape {tuple(x.shape)}" + ("; add a batch dimension with x.unsqueeze(0)" if x.dim() == 3 else "")
        )
    if x.shape[1] != model.in_chans:
        raise InputShapeError(
            f"{_display_name(model)} was built for {model.in_chans} input channel(s) but got "
            f"{x.shape[1]}; build it with in_chans={x.shape[1]} "
            f"(e.g. create_model({_display_name(model)!r}, in_chans={x.shape[1]}))"
        )


_probing = threading.local()


def explain_input_size_error(model: CnnModel, x: torch.Tensor, error: RuntimeError) -> None:
    """Raise an InputShapeError naming the accepted sizes when `x`'s height/width caused `error`.

    The sizes are found by running a copy of the network on the `meta` device (shapes only, no
    memory, no arithmetic), so this costs milliseconds even for VGG. Returns quietly when the
    size is not the cause, leaving the caller to re-raise the original error.
    """
    if getattr(_probing, "active", False):
        return
    refusal = size_refusal(model, int(x.shape[-2]), int(x.shape[-1]))
    if refusal is not None:
        raise refusal from None


def size_refusal(model: CnnModel, height: int, width: int) -> InputShapeError | None:
    """The InputShapeError for a height x width input that `model` cannot take, naming the sizes it
    accepts and how to get there; None when it takes that input (or does not take its designed
    size either, so the size is not the cause). A net whose builder sizes its flattened classifier
    to the input (`model.sized_to_input`, set by create_model) is told to be built for it."""
    designed = model.default_input_size[-1]
    probe = _MetaProbe(model)
    if probe.runs(height, width) or not probe.runs(designed, designed):
        return None
    smallest, largest = probe.smallest_side(designed), probe.largest_side(designed)

    name = _display_name(model)
    got = f"{height}x{width}"
    if largest is not None:
        accepted = (
            f"only {smallest}x{smallest}" if smallest == largest
            else f"square inputs from {smallest}x{smallest} to {largest}x{largest}"
        )
        if not getattr(model, "sized_to_input", False):
            return InputShapeError(
                f"input {got} does not fit {name}: it takes {accepted} (its flattened classifier fixes the size; "
                f"designed for {designed}x{designed}); resize the images to {designed}x{designed}")
        return InputShapeError(
            f"input {got} does not fit {name}: it takes {accepted} (its flattened classifier "
            f"fixes the size; designed for {designed}x{designed}); resize the images to "
            f"{designed}x{designed}, or build the classifier for {got}: create_model({name!r}, "
            f"input_size=({model.in_chans}, {height}, {width})), --input {model.in_chans}x{height}x{width} on the command line"
        )
    return InputShapeError(
        f"input {got} is too small for {name}: the smallest input it accepts is "
        f"{smallest}x{smallest} (designed for {designed}x{designed}); resize or pad the images"
    )


def accepted_input_sizes(model: CnnModel) -> tuple[int, int | None]:
    """(smallest, largest) square input side the network accepts; largest is None when unbounded.

    Found on the `meta` device, so it costs milliseconds and no memory.
    """
    designed = model.default_input_size[-1]
    probe = _MetaProbe(model)
    return probe.smallest_side(designed), probe.largest_side(designed)


class _MetaProbe:
    """A data-free copy of a model on the `meta` device, to try input sizes on."""

    def __init__(self, model: nn.Module) -> None:
        self.model = meta_copy(model, shapes_only_batchnorm=True).eval()
        self.in_chans = model.in_chans

    def runs(self, height: int, width: int) -> bool:
        probe = torch.empty(2, self.in_chans, height, width, device="meta")
        _probing.active = True
        try:
            with torch.no_grad():
                self.model(probe)
        except (RuntimeError, ValueError, IndexError, InputShapeError):
            return False
        finally:
            _probing.active = False
        return True

    def smallest_side(self, designed: int) -> int:
        low, high = 1, designed  # high always runs
        while low < high:
            middle = (low + high) // 2
            if self.runs(middle, middle):
                high = middle
            else:
                low = middle + 1
        return high

    def largest_side(self, designed: int) -> int | None:
        """None when the network takes inputs of any larger size (global pooling)."""
        ceiling = 4 * designed
        if self.runs(ceiling, ceiling):
            return None
        low, high = designed, ceiling  # low runs, high does not
        while high - low > 1:
            middle = (low + high) // 2
            if self.runs(middle, middle):
                low = middle
            else:
                high = middle
        return low


def _display_name(model: nn.Module) -> str:
    return getattr(model, "model_name", "") or type(model).__name__
