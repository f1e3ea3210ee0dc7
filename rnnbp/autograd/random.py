"""The one default random generator; ``manual_seed`` reseeds it.

Everything random in rnnbp (initialisation, dropout, shuffling) takes an
optional ``np.random.Generator`` and otherwise draws from this one, so a single
``rnnbp.manual_seed(seed)`` makes a run reproducible.
"""
from __future__ import annotations

import contextlib

import numpy as np

_default = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the default generator and return it."""
    global _default
    _default = np.random.default_rng(seed)
    return _default


def default_generator() -> np.random.Generator:
    """The generator used where no ``generator`` argument is given."""
    return _default


def get_generator(generator: np.random.Generator | None) -> np.random.Generator:
    """``generator``, or the default one when it is None; anything else is refused with its type."""
    if generator is None:
        return _default
    if not isinstance(generator, np.random.Generator):
        raise TypeError(f"generator must be a numpy.random.Generator (e.g. np.random.default_rng(seed)) or None, "
                        f"got {type(generator).__name__}")
    return generator


# torch.Generator().initial_seed(): the seed of every new Generator until manual_seed.
DEFAULT_GENERATOR_SEED = 67280421310721


class Generator(np.random.Generator):
    """``torch.Generator``: a NumPy generator that can be reseeded in place with ``manual_seed``.

    ``rnnbp.Generator().manual_seed(42)`` is what PyTorch scripts pass as ``generator=`` (to
    ``random_split``, ``DataLoader``, ``randn``); being an ``np.random.Generator``, it is accepted
    everywhere rnnbp takes one.
    """

    def __init__(self, device="cpu"):
        from .device import as_device

        as_device(device)
        # As torch.Generator(): a new generator starts from one fixed default seed (so it is
        # reproducible without manual_seed), and initial_seed() tells the seed used.
        super().__init__(np.random.PCG64(DEFAULT_GENERATOR_SEED))
        self._seed = DEFAULT_GENERATOR_SEED

    def manual_seed(self, seed: int) -> "Generator":
        """Restart the stream from ``seed``; returns self."""
        self.bit_generator.state = np.random.PCG64(int(seed)).state
        self._seed = int(seed)
        return self

    def initial_seed(self):
        return self._seed

    def get_state(self) -> dict:
        return self.bit_generator.state

    def set_state(self, state: dict) -> "Generator":
        self.bit_generator.state = state
        return self


# ----------------------------------------------------------------- saving and restoring the state
# get_rng_state() packs the default generator's PCG64 state into these little-endian fields; the
# uint8 Tensor is what PyTorch hands back too, so scripts can torch.save it or keep it in a checkpoint.
_STATE_FIELDS = (("state", 16), ("inc", 16), ("has_uint32", 1), ("uinteger", 4))
RNG_STATE_BYTES = sum(width for _, width in _STATE_FIELDS)  # 37


def get_rng_state():
    """``torch.get_rng_state``: the default generator's state as a uint8 Tensor of 37 bytes.

    Why: to replay a stretch of random draws (dropout masks, samples) later, or save it in a
    checkpoint. The bytes are NumPy's PCG64 state (128-bit ``state`` and ``inc``, the buffered
    32-bit half-word): a different layout and length from PyTorch's 5056-byte Mersenne-Twister
    state, so the two cannot be exchanged; :func:`set_rng_state` restores it exactly.

    Returns: Tensor [shape=(37,), dtype=uint8], a copy (changing it changes nothing).
    """
    from .tensor import Tensor

    state = _default.bit_generator.state
    if state.get("bit_generator") != "PCG64":  # pragma: no cover - manual_seed always makes a PCG64
        raise TypeError(f"get_rng_state: the default generator is {state.get('bit_generator')}, expected PCG64")
    values = {"state": state["state"]["state"], "inc": state["state"]["inc"],
              "has_uint32": state["has_uint32"], "uinteger": state["uinteger"]}
    raw = b"".join(int(values[name]).to_bytes(width, "little") for name, width in _STATE_FIELDS)
    return Tensor(np.frombuffer(raw, dtype=np.uint8).copy())


def set_rng_state(new_state) -> None:
    """``torch.set_rng_state``: put the default generator back to a state :func:`get_rng_state` returned.

    The draws that follow are the ones that followed the saved state. The generator object itself
    is kept (its state is overwritten), so references to it see the restored stream.

    Args:
        new_state : Tensor or np.ndarray [shape=(37,), dtype=uint8], from ``get_rng_state()``.
    """
    from .tensor import Tensor

    data = new_state._data if isinstance(new_state, Tensor) else new_state
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.shape != (RNG_STATE_BYTES,):
        got = (f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray)
               else type(new_state).__name__)
        hint = (" (a state saved by PyTorch, 5056 bytes, cannot be used: rnnbp's generator is NumPy's PCG64)"
                if isinstance(data, np.ndarray) and data.size == 5056 else "")
        raise TypeError(f"set_rng_state: expected the uint8 Tensor of shape ({RNG_STATE_BYTES},) that "
                        f"get_rng_state() returns, got {got}{hint}")
    raw, values, start = data.tobytes(), {}, 0
    for name, width in _STATE_FIELDS:
        values[name] = int.from_bytes(raw[start:start + width], "little")
        start += width
    if not values["inc"] & 1 or values["has_uint32"] > 1:
        raise ValueError("set_rng_state: these bytes are not a generator state from get_rng_state() "
                         "(PCG64's increment must be odd and has_uint32 0 or 1)")
    _default.bit_generator.state = {
        "bit_generator": "PCG64", "state": {"state": values["state"], "inc": values["inc"]},
        "has_uint32": values["has_uint32"], "uinteger": values["uinteger"],
    }


@contextlib.contextmanager
def fork_rng(devices=None, enabled: bool = True, _caller: str = "fork_rng", _devices_kw: str = "devices",
             device_type: str = "cuda"):
    """``torch.random.fork_rng``: a block whose random draws leave the default generator as it was.

    On exit (normal or by an exception) the state saved on entry is restored, so the code after
    the block draws what it would have drawn without it; ``manual_seed`` inside reseeds only the
    block. ``enabled=False`` makes it a no-op. ``devices`` lists accelerator devices whose
    generators PyTorch also forks: rnnbp runs on the CPU, so only None or an empty list is accepted.
    """
    if devices is not None and len(list(devices)) > 0:
        from .device import DeviceError

        raise DeviceError(f"{_caller}: rnnbp runs on the CPU and has no {device_type} device generators to fork; "
                          f"pass {_devices_kw}=None or [], got {list(devices)}")
    if not enabled:
        yield
        return
    saved = get_rng_state()
    try:
        yield
    finally:
        set_rng_state(saved)
