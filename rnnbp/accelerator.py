"""``rnnbp.accelerator``: PyTorch 2.6+'s device-agnostic checks; rnnbp has no accelerator."""
from __future__ import annotations


def is_available() -> bool:
    return False


def current_accelerator(check_available: bool = False):
    """None: there is no accelerator, so ``torch.accelerator.current_accelerator() or 'cpu'`` gives the CPU."""
    return None


def device_count() -> int:
    return 0
