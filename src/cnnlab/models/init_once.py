"""Each weight initialized once while a model is built.

PyTorch's layers initialize themselves as they are built (a Linear draws kaiming_uniform_ weights,
a BatchNorm fills ones), and most families then initialize them again their own way (VGG draws
normal(0, 0.01) weights for its classifier, ResNet kaiming_normal_ convolutions): the first draw is
thrown away. For VGG-16 that is 0.45 of its 1.1 s build, for the zoo as a whole 11 of 20 s.

`InitOnce` holds back every whole-tensor fill (uniform_, normal_, zero_, fill_, ...) while the
model is built. A later fill of the same tensor replaces the one held; any other use of the tensor
(an in-place update such as trunc_normal_'s erfinv_, a copy, a read) first runs what is held for it
and all that was asked for before it. When the build ends, what is still held runs in the order it
was asked for. A tensor ends as it would have: only draws that nothing could ever see are skipped.
A family that initializes nothing again draws exactly the numbers it drew before; one that does
draws its own from an earlier point of the random stream.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

# Whole-tensor fills: the tensor's values afterwards do not depend on its values before. The
# tensor's own methods, and torch.nn.init's functions (which reach this mode whole, by name).
FILLS = {"uniform_", "normal_", "zero_", "fill_", "bernoulli_", "exponential_", "geometric_", "log_normal_",
         "cauchy_", "random_",
         "trunc_normal_", "constant_", "ones_", "zeros_", "eye_", "dirac_", "xavier_uniform_", "xavier_normal_",
         "kaiming_uniform_", "kaiming_normal_", "orthogonal_", "sparse_"}
# Reading a tensor's shape, dtype or place reads none of its values.
# (`__get__` is a property: .shape, .dtype, .device, and views such as .data, whose own uses are
# caught as uses of the storage they share.)
METADATA = {"size", "dim", "ndimension", "numel", "nelement", "stride", "storage_offset", "is_contiguous",
            "element_size", "is_floating_point", "is_complex", "get_device", "__get__", "requires_grad_",
            "__len__", "__hash__"}
# Views share their tensor's storage and read none of it (torch.nn.init measures a convolution's fan
# through weight[0][0]); a later use of the view is a use of that storage.
VIEWS = {"__getitem__", "select", "narrow", "view", "view_as", "t", "transpose", "permute", "unsqueeze", "squeeze",
         "expand", "detach", "as_strided"}


def _storage_key(tensor: torch.Tensor) -> int | None:
    if tensor.is_meta or tensor.layout != torch.strided:
        return None
    try:
        return tensor.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):  # tensor subclasses without a plain storage
        return None


def _covers_its_storage(tensor: torch.Tensor) -> bool:
    return (tensor.storage_offset() == 0 and tensor.is_contiguous()
            and tensor.numel() * tensor.element_size() == tensor.untyped_storage().nbytes())


class InitOnce(TorchFunctionMode):
    """Hold back each tensor's fills until the build ends or the tensor is used; see the module."""

    def __init__(self) -> None:
        super().__init__()
        self.held: dict[int, tuple[int, Callable[[], Any]]] = {}  # storage -> (order asked, the fill)
        self.asked = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in METADATA or (name in VIEWS and _basic_view(args, kwargs)):
            return func(*args, **kwargs)
        # torch.nn.init's functions arrive with the tensor as a keyword
        target = args[0] if args else kwargs.get("tensor")
        target = target if isinstance(target, torch.Tensor) else None
        key = _storage_key(target) if target is not None else None
        others = _tensors_in(args[1:], {k: v for k, v in kwargs.items() if k != "tensor" or args})
        if name in FILLS and key is not None and _covers_its_storage(target) and not others:
            self.held[key] = (self.asked, lambda: func(*args, **kwargs))  # replaces a fill held before
            self.asked += 1
            return target
        for tensor in _tensors_in(args, kwargs):
            self._run_held(_storage_key(tensor))
        return func(*args, **kwargs)

    def _run_held(self, key: int | None) -> None:
        """Make the draw held for `key`, and every draw asked for before it: the random stream is
        drawn in the order it was asked for, less the draws that were replaced."""
        if key is None or key not in self.held:
            return
        until = self.held[key][0]
        due = sorted((order, storage) for storage, (order, _) in self.held.items() if order <= until)
        with torch.no_grad():
            for _, storage in due:
                self.held.pop(storage)[1]()

    def __exit__(self, exc_type, exc_value, traceback):
        result = super().__exit__(exc_type, exc_value, traceback)
        if exc_type is None:
            with torch.no_grad():
                for _, fill in sorted(self.held.values(), key=lambda held: held[0]):
                    fill()
        self.held.clear()
        return result


def _basic_view(args, kwargs) -> bool:
    """A view op whose arguments are sizes, dims, ints and slices: no indexing by tensors or lists,
    which copies."""
    return not kwargs and all(isinstance(leaf, (int, slice, type(None), type(Ellipsis), torch.Size))
                              for argument in args[1:] for leaf in (argument if isinstance(argument, tuple) else (argument,)))


def _tensors_in(args, kwargs) -> list[torch.Tensor]:
    return [leaf for leaf in tree_leaves((args, kwargs)) if isinstance(leaf, torch.Tensor)]
