"""rnnbp.torch, the stand-in for PyTorch: install/uninstall, what ``torch.*`` resolves to, how a
missing name is refused, and the ``python -m rnnbp.torch`` command line.

(These tests live under tests/compat rather than tests/torch: a ``tests/torch`` folder on pytest's
``pythonpath`` would make ``import torch`` find a namespace package where PyTorch is not installed.)
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import rnnbp
import rnnbp.torch as standin
from rnnbp.torch import ImportNotInRnnbpError, ModuleNotInRnnbpError, NotInRnnbpError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def torch():
    """The stand-in installed for one test (and removed after it, restoring any real torch)."""
    standin.install()
    try:
        import torch as t
        yield t
    finally:
        standin.uninstall()


def test_torch_names_resolve_to_rnnbp_objects(torch):
    import torch.nn as nn
    import torch.nn.functional as F
    from torch.optim.lr_scheduler import StepLR
    from torch.utils.data import DataLoader

    assert nn.LSTM is rnnbp.nn.LSTM and F.log_softmax is rnnbp.nn.functional.log_softmax
    assert StepLR is rnnbp.optim.lr_scheduler.StepLR and DataLoader is rnnbp.utils.data.DataLoader
    assert torch.nn.modules.rnn.LSTM is rnnbp.nn.LSTM  # module paths scripts name classes by
    assert torch.float32 is rnnbp.float32
    # torch.Tensor is the legacy constructor (autograd/legacy.py), yet the class of every tensor to scripts
    assert torch.Tensor == rnnbp.Tensor and issubclass(torch.Tensor, rnnbp.Tensor)
    assert isinstance(torch.zeros(2), torch.Tensor)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 3)

    assert isinstance(Net(), rnnbp.nn.Module) and len(list(Net().parameters())) == 2


def test_torch_distributed_is_rnnbps_mpi_group(torch):
    """A script's world of one (no mpiexec): rank 0 of 1, rnnbp's sampler, and gloo refused by name."""
    import torch.distributed as dist
    from torch.utils.data.distributed import DistributedSampler

    assert DistributedSampler is rnnbp.distributed.DistributedSampler
    assert (dist.get_rank(), dist.get_world_size()) == (0, 1)
    with pytest.raises(ValueError, match="'gloo' is not available"):
        dist.init_process_group("gloo")


def test_a_missing_attribute_is_named_and_is_an_attribute_error(torch):
    assert not hasattr(torch.nn, "Bilinear")  # probing with hasattr/getattr(..., None) still works
    assert getattr(torch, "compile", None) is None
    with pytest.raises(NotInRnnbpError, match=r"^rnnbp does not have torch\.nn\.Bilinear \(") as info:
        torch.nn.Bilinear(2, 3, 4)
    assert isinstance(info.value, AttributeError) and info.value.name == "torch.nn.Bilinear"
    with pytest.raises(NotInRnnbpError, match=r"rnnbp does not have torch\.__file__"):
        torch.__file__


def test_torch_version_names_the_release_rnnbp_follows(torch):
    """Scripts print and compare ``torch.__version__``: the PyTorch release the parity tests check,
    rnnbp's own version as the local label."""
    import rnnbp
    from packaging.version import Version

    version = Version(torch.__version__)
    assert version.release == (2, 13, 0) and version.local == f"rnnbp{rnnbp.__version__}"


@pytest.mark.parametrize("statement, name", [
    ("from torch.nn import Bilinear", "torch.nn.Bilinear"),
    ("from torch.optim.lr_scheduler import StepLR, NoSuchLR", "torch.optim.lr_scheduler.NoSuchLR"),
    ("from torch import NoSuchThing", "torch.NoSuchThing"),
])
def test_from_import_of_a_missing_name_is_named(torch, statement, name):
    """Python would report a bare "cannot import name ... (unknown location)"; the stand-in names it."""
    with pytest.raises(ImportNotInRnnbpError, match=rf"^rnnbp does not have {name} \(") as info:
        exec(statement, {})
    assert isinstance(info.value, ImportError)


def test_a_missing_module_is_named(torch):
    with pytest.raises(ModuleNotInRnnbpError, match=r"^rnnbp does not have torch\.jit \(") as info:
        import torch.jit  # noqa: F401
    assert isinstance(info.value, ModuleNotFoundError) and info.value.name == "torch.jit"


def test_a_module_rnnbp_has_not_written_imports_and_refuses_every_use(torch, monkeypatch):
    monkeypatch.setitem(standin.MODULES, "torch.futurething", "rnnbp._no_such_module")
    import torch.futurething as ft

    with pytest.raises(NotInRnnbpError, match=r"torch\.futurething\.run"):
        ft.run()


def test_uninstall_restores_the_torch_that_was_imported_before():
    before = {n: m for n, m in sys.modules.items() if n == "torch" or n.startswith("torch.")}
    standin.install()
    try:
        assert standin.is_installed()
        import torch

        assert isinstance(torch, standin.StandInModule)
        standin.install()  # a second install is a no-op
    finally:
        standin.uninstall()
    assert not standin.is_installed()
    after = {n: m for n, m in sys.modules.items() if n == "torch" or n.startswith("torch.")}
    assert after.keys() == before.keys() and all(after[n] is before[n] for n in before)


# ------------------------------------------------------------------------------ command line
def run(args, cwd, timeout: float = 60):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "rnnbp.torch", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_the_runner_passes_argv_and_runs_the_script_as_main(tmp_path):
    (tmp_path / "helper.py").write_text("VALUE = 7\n")
    (tmp_path / "script.py").write_text(textwrap.dedent("""\
        import sys
        import torch
        import helper  # from the script's folder, as when python runs it
        if __name__ == "__main__":
            print(sys.argv[1:], helper.VALUE, type(torch.ones(1)).__module__)
    """))
    proc = run(["script.py", "--lr", "0.1"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['--lr', '0.1'] 7 rnnbp.autograd.tensor"


def test_the_runner_runs_a_module_with_dash_m(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "train.py").write_text("import sys, torch.nn as nn\nprint(sys.argv[1:], nn.GRU.__module__)\n")
    proc = run(["-m", "pkg.train", "--epochs", "2"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['--epochs', '2'] rnnbp.nn.recurrent.layers"


@pytest.mark.parametrize("args, code, text", [
    ([], 2, "usage: python -m rnnbp.torch script.py"),
    (["--help"], 0, "usage: python -m rnnbp.torch script.py"),
    (["missing.py"], 1, "rnnbp.torch: no such script: missing.py"),
    (["-m"], 1, "usage: python -m rnnbp.torch"),
])
def test_the_runner_explains_its_usage(tmp_path, args, code, text):
    proc = run(args, tmp_path)
    assert proc.returncode == code
    assert text in proc.stdout + proc.stderr


def test_torch_version_orders_as_a_version(torch):
    assert torch.__version__ >= "2.2" and torch.__version__ >= (2, 2) and torch.__version__ < "2.14"
    assert not torch.__version__ >= "2.13.1" and isinstance(torch.__version__, str)
