"""rnnbp standing in for PyTorch: ``python -m rnnbp.torch script.py`` runs a PyTorch program unchanged.

After :func:`install`, ``import torch`` (and ``import torch.nn as nn``, ``from torch.optim.lr_scheduler
import StepLR``, ``import torch.utils.data``, ...) gives rnnbp's modules under PyTorch's names, the
way ``python -m cudf.pandas`` stands in for pandas. The import system never reaches a real PyTorch
while the stand-in is installed: a ``torch`` module or attribute that rnnbp does not have raises
:class:`NotInRnnbpError` (or :class:`ModuleNotInRnnbpError`) naming it, instead of silently loading PyTorch.

Each ``torch.*`` module is a thin proxy (:class:`StandInModule`) over one rnnbp module (see
``MODULES``); attribute look-ups go straight to rnnbp's objects, so ``isinstance(x, torch.Tensor)``,
``class Net(torch.nn.Module)`` and ``torch.float32 is rnnbp.float32`` all hold.
"""
from __future__ import annotations

import dis
import importlib
import importlib.abc
import importlib.util
import re
import sys
import types

from .. import __version__ as _rnnbp_version

__all__ = [
    "install", "uninstall", "is_installed", "NotInRnnbpError", "ModuleNotInRnnbpError", "ImportNotInRnnbpError",
    "MODULES",
]

# torch module name -> the rnnbp module that stands in for it.
MODULES = {
    "torch": "rnnbp",
    "torch.nn": "rnnbp.nn",
    "torch.nn.functional": "rnnbp.nn.functional",
    "torch.nn.init": "rnnbp.nn.init",
    "torch.nn.parameter": "rnnbp.nn.parameter",
    "torch.nn.utils": "rnnbp.nn.utils",
    "torch.nn.utils.rnn": "rnnbp.nn.utils.rnn",
    "torch.nn.utils.clip_grad": "rnnbp.nn.utils.clip_grad",
    "torch.nn.modules": "rnnbp.nn",
    "torch.optim": "rnnbp.optim",
    "torch.optim.optimizer": "rnnbp.optim.optimizer",
    "torch.optim.lr_scheduler": "rnnbp.optim.lr_scheduler",
    "torch.utils": "rnnbp.utils",
    "torch.utils.data": "rnnbp.utils.data",
    "torch.utils.hooks": "rnnbp.autograd.hooks",
    "torch.autograd": "rnnbp.autograd",
    "torch.autograd.function": "rnnbp.autograd.custom_function",
    "torch.linalg": "rnnbp.linalg",
    "torch.random": "rnnbp.autograd.random",
    "torch.serialization": "rnnbp.serialization",
    "torch.cuda": "rnnbp.cuda",
    "torch.backends": "rnnbp.backends",
    "torch.backends.mps": "rnnbp.backends.mps",
    "torch.backends.cudnn": "rnnbp.backends.cudnn",
    "torch.accelerator": "rnnbp.accelerator",
    "torch.onnx": "rnnbp.onnx",
    "torch.distributed": "rnnbp.distributed",
    "torch.utils.data.distributed": "rnnbp.distributed",
    "torch.distributions": "rnnbp.distributions",
    "torch.distributions.distribution": "rnnbp.distributions.distribution",
    "torch.distributions.constraints": "rnnbp.distributions.constraints",
    "torch.distributions.utils": "rnnbp.distributions.utils",
    "torch.distributions.kl": "rnnbp.distributions.kl",
    "torch.distributions.categorical": "rnnbp.distributions.categorical",
    "torch.distributions.one_hot_categorical": "rnnbp.distributions.one_hot_categorical",
    "torch.distributions.bernoulli": "rnnbp.distributions.bernoulli",
    "torch.distributions.normal": "rnnbp.distributions.normal",
    "torch.distributions.uniform": "rnnbp.distributions.uniform",
    "torch.distributions.independent": "rnnbp.distributions.independent",
}
# Files scripts name classes by (torch.nn.modules.rnn.LSTM, torch.optim.adam.Adam, ...): all of
# them resolve in the package that exports the classes.
_MODULE_FILES = {
    "torch.nn.modules": (
        "module", "linear", "rnn", "sparse", "container", "activation", "dropout", "loss", "normalization",
        "batchnorm", "transformer", "conv", "flatten", "pooling",
    ),
    "torch.optim": ("sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta", "adamax", "nadam", "radam", "lbfgs"),
    "torch.utils.data": ("dataset", "dataloader", "sampler"),
}
for _package, _files in _MODULE_FILES.items():
    for _file in _files:
        MODULES[f"{_package}.{_file}"] = MODULES[_package]
del _package, _files, _file

_README = "the README's 'PyTorch programs on rnnbp' lists what is covered"

class TorchVersion(str):
    """``torch.__version__``: a str that orders as a version against strings and tuples, as
    PyTorch's ``TorchVersion`` does (``torch.__version__ >= "2.2"``, ``>= (2, 2)``); the release
    part decides, the local label (``+rnnbp...``) is left out of the order."""

    @staticmethod
    def _release(value) -> tuple:
        if isinstance(value, tuple):
            return tuple(int(v) for v in value)
        match = re.match(r"\s*v?(\d+(?:\.\d+)*)", str(value))
        if match is None:
            raise TypeError(f"cannot compare torch.__version__ with {value!r}")
        return tuple(int(v) for v in match.group(1).split("."))

    def _pair(self, other) -> tuple[tuple, tuple]:
        a, b = self._release(self), self._release(other)
        width = max(len(a), len(b))
        return a + (0,) * (width - len(a)), b + (0,) * (width - len(b))

    def __lt__(self, other):
        a, b = self._pair(other)
        return a < b

    def __le__(self, other):
        a, b = self._pair(other)
        return a <= b

    def __gt__(self, other):
        a, b = self._pair(other)
        return a > b

    def __ge__(self, other):
        a, b = self._pair(other)
        return a >= b

    __hash__ = str.__hash__


# ``torch.__version__`` under the stand-in: the PyTorch release whose behaviour rnnbp's parity tests
# check, with rnnbp's own version as the local label (PEP 440).
TORCH_VERSION = TorchVersion(f"2.13.0+rnnbp{_rnnbp_version}")


def _message(name: str) -> str:
    return f"rnnbp does not have {name} (running on rnnbp's PyTorch stand-in; {_README})"


class NotInRnnbpError(AttributeError):
    """A ``torch`` attribute that rnnbp does not have (raised instead of using PyTorch's)."""

    def __init__(self, name: str):
        super().__init__(_message(name), name=name)


class ModuleNotInRnnbpError(ModuleNotFoundError):
    """A ``torch`` module that rnnbp does not have (raised instead of importing PyTorch's)."""

    def __init__(self, name: str):
        super().__init__(_message(name), name=name)


class ImportNotInRnnbpError(ImportError):
    """``from torch.<module> import <name>`` of a name rnnbp does not have.

    Python turns an AttributeError met by ``from m import x`` into a bare "cannot import name"; this
    error reaches the program instead, naming what is missing.
    """

    def __init__(self, module: str, name: str):
        super().__init__(_message(f"{module}.{name}"), name=module)


_IMPORT_FROM = dis.opmap["IMPORT_FROM"]


def _caller_is_import_from() -> bool:
    """Whether the frame that asked for the attribute is executing ``from ... import name``.

    ``__getattr__`` is then called by the IMPORT_FROM instruction itself, so the frame two above
    this one (above ``StandInModule.__getattr__``) stands on that opcode.
    """
    try:
        frame = sys._getframe(2)
        return frame.f_code.co_code[frame.f_lasti] == _IMPORT_FROM
    except (AttributeError, IndexError, ValueError):  # another Python: fall back to AttributeError
        return False


class StandInModule(types.ModuleType):
    """``torch.<name>`` as a view of one rnnbp module: attribute reads go to it, misses raise clearly."""

    def __init__(self, name: str, target: types.ModuleType | None):
        super().__init__(name)
        self.__path__ = []  # a package, so that ``import torch.x.y`` asks the finder for more
        self.__dict__["_target"] = target

    def __getattr__(self, attr: str):
        full = f"{self.__name__}.{attr}"
        if full == "torch.__version__":  # scripts print or compare it: the release rnnbp is checked against
            return TORCH_VERSION
        if full == "torch.autograd.Function":  # PyTorch's protocol (Tensors, save_for_backward), not rnnbp's arrays
            from ..autograd.custom_function import Function

            return Function
        if full == "torch.Tensor":  # the legacy constructor (float32 data or sizes) that is also the tensor class
            from ..autograd.legacy import LegacyTensor

            return LegacyTensor
        if attr.startswith("__") and attr.endswith("__"):  # __file__ and the like: not rnnbp's to answer
            raise NotInRnnbpError(full)
        if full in MODULES:  # torch.nn.modules.rnn works without an import, as torch imports them all
            return importlib.import_module(full)
        target = self.__dict__["_target"]
        if target is not None:
            try:
                return getattr(target, attr)
            except AttributeError:
                pass
        if _caller_is_import_from():
            raise ImportNotInRnnbpError(self.__name__, attr)
        raise NotInRnnbpError(full)

    def __dir__(self):
        target = self.__dict__["_target"]
        return sorted(set(super().__dir__()) | set(dir(target) if target is not None else ()))

    def __repr__(self) -> str:
        target = self.__dict__["_target"]
        return f"<module {self.__name__!r} (rnnbp stand-in for {getattr(target, '__name__', 'nothing')})>"


class _StandInFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers every ``torch`` import with a :class:`StandInModule`, or refuses it by name."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "torch" and not fullname.startswith("torch."):
            return None
        if fullname not in MODULES:
            raise ModuleNotInRnnbpError(fullname)
        return importlib.util.spec_from_loader(fullname, self, is_package=True)

    def create_module(self, spec):
        try:
            target = importlib.import_module(MODULES[spec.name])
        except ModuleNotFoundError as exc:
            if not (exc.name or "").startswith("rnnbp"):
                raise
            target = None  # a torch module whose rnnbp counterpart is missing: importable, every use refused
        return StandInModule(spec.name, target)

    def exec_module(self, module):
        pass


_finder = _StandInFinder()
_saved: dict = {}


def is_installed() -> bool:
    return _finder in sys.meta_path


def install() -> None:
    """Make ``import torch`` (and every ``torch.*`` import) give rnnbp from now on in this process.

    Call it before the program imports torch. A real PyTorch imported earlier is set aside (its
    modules leave ``sys.modules`` until :func:`uninstall`), so later imports cannot mix the two.
    """
    if is_installed():
        return
    for name in [n for n in sys.modules if n == "torch" or n.startswith("torch.")]:
        _saved[name] = sys.modules.pop(name)
    sys.meta_path.insert(0, _finder)


def uninstall() -> None:
    """Undo :func:`install`: drop the stand-in modules and restore whatever ``torch`` was there before."""
    if not is_installed():
        return
    sys.meta_path.remove(_finder)
    for name in [n for n in sys.modules if n == "torch" or n.startswith("torch.")]:
        del sys.modules[name]
    sys.modules.update(_saved)
    _saved.clear()
