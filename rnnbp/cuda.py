"""``rnnbp.cuda``: what PyTorch scripts ask about CUDA, answered for a CPU-only library.

``is_available()`` is False and ``device_count()`` 0, so the usual
``device = "cuda" if torch.cuda.is_available() else "cpu"`` picks the CPU; seeding calls are
accepted and do nothing (there is no CUDA generator). Anything that needs a GPU raises
``DeviceError`` ("rnnbp runs on the CPU").
"""
from __future__ import annotations

from .autograd.device import refuse_cuda


def is_available() -> bool:
    return False


def device_count() -> int:
    return 0


def is_initialized() -> bool:
    return False


def manual_seed(seed: int) -> None:
    """Accepted and ignored: there is no CUDA generator to seed."""


def manual_seed_all(seed: int) -> None:
    """Accepted and ignored: there is no CUDA generator to seed."""


def synchronize(device=None) -> None:
    """Nothing to wait for on the CPU."""


def empty_cache() -> None:
    """Nothing to free on the CPU."""


def current_device() -> int:
    raise refuse_cuda("torch.cuda.current_device()")


def set_device(device) -> None:
    raise refuse_cuda("torch.cuda.set_device()")


def get_device_name(device=None) -> str:
    raise refuse_cuda("torch.cuda.get_device_name()")
