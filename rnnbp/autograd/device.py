"""``rnnbp.device``: the CPU, the one device rnnbp runs on, under PyTorch's name.

Scripts written for PyTorch pick a device (``torch.device("cuda" if
torch.cuda.is_available() else "cpu")``) and move tensors and modules with ``.to(device)``;
on rnnbp ``cuda.is_available()`` is False, so they pick the CPU and run. A request for any
other device (``"cuda"``, ``"mps"``, ``.cuda()``) raises :class:`DeviceError` at once, rather
than running somewhere the script did not ask for.
"""
from __future__ import annotations


class DeviceError(RuntimeError):
    """A tensor or module was asked to live on a device other than the CPU."""


def _refuse(what: str) -> DeviceError:
    return DeviceError(
        f"rnnbp runs on the CPU: {what} is not available. Use 'cpu' "
        "(e.g. device = rnnbp.device('cpu'); rnnbp.cuda.is_available() is False)"
    )


class device:
    """The CPU as a device object: ``device('cpu')``, ``device('cpu', 0)``, ``device('cpu:0')``.

    Compares equal to another CPU device and to the string ``'cpu'``; ``str()`` gives ``'cpu'``.
    """

    __slots__ = ("type", "index")

    def __init__(self, type="cpu", index: int | None = None):
        if isinstance(type, device):
            type, index = type.type, type.index if index is None else index
        if isinstance(type, int) and not isinstance(type, bool):  # torch.device(0) means cuda:0
            raise _refuse(f"device {type} (a CUDA ordinal)")
        if not isinstance(type, str):
            raise TypeError(f"device: expected a string such as 'cpu', got {type!r}")
        name, _, ordinal = type.partition(":")
        if name != "cpu":
            raise _refuse(f"device {type!r}")
        if ordinal:
            index = int(ordinal)
        self.type = "cpu"
        self.index = index

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            try:
                other = device(other)
            except (DeviceError, TypeError, ValueError):
                return False
        return isinstance(other, device) and other.type == self.type

    def __hash__(self) -> int:
        return hash(self.type)

    def __repr__(self) -> str:
        return "device(type='cpu')" if self.index is None else f"device(type='cpu', index={self.index})"

    def __str__(self) -> str:
        return "cpu" if self.index is None else f"cpu:{self.index}"


CPU = device("cpu")

# PyTorch's device type names: a string argument of ``.to()`` that starts with one of these is a
# device (and anything but the CPU is refused); any other string is read as a dtype.
DEVICE_TYPES = frozenset({
    "cpu", "cuda", "mps", "xla", "xpu", "hip", "ipu", "hpu", "mtia", "meta", "lazy", "vulkan", "mkldnn",
    "opengl", "opencl", "ideep", "ve", "fpga", "maia", "privateuseone",
})


def as_device(spec) -> device:
    """``spec`` (None, a string, an int or a device) as a CPU device; any other raises DeviceError."""
    if spec is None:
        return CPU
    return spec if isinstance(spec, device) else device(spec)


def refuse_cuda(what: str = ".cuda()") -> DeviceError:
    """The error ``.cuda()`` and CUDA-only calls raise."""
    return _refuse(what)
