"""Data-parallel training over MPI: ``mpiexec -n 2 python mpi_programs.py`` against one process.

One launch of two ranks runs every program of ``mpi_programs.py``; the tests compare what it
wrote with the same programs run here as one process (a world of one) with whole batches.
Skipped where mpi4py or mpiexec is missing (``pip install 'rnnbp[mpi]'`` brings both).
"""
import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rnnbp
import rnnbp.distributed as dist
from rnnbp.distributed import launch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TOL = 1e-10


def _programs():
    spec = importlib.util.spec_from_file_location("mpi_programs", HERE / "mpi_programs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _skip_reason():
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py is not installed (pip install 'rnnbp[mpi]')"
    if dist.find_mpiexec() is None:
        return "no mpiexec beside this Python or on PATH (pip install mpich)"
    return None


needs_mpi = pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason()))


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """Run every program on 2 ranks once; what rank 0 saved, its checkpoints and both ranks' output."""
    out = tmp_path_factory.mktemp("mpi") / "out.npz"
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    command = [dist.find_mpiexec(), "-n", "2", sys.executable, str(HERE / "mpi_programs.py"), str(out)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"mpiexec -n 2 did not finish in 180 s (a rank waiting in a collective?)\n{stdout}\n{stderr}")
    assert proc.returncode == 0, f"mpiexec -n 2 failed ({proc.returncode}):\n{stdout}\n{stderr}"
    saved = np.load(out)
    return {"info": json.loads(str(saved["info"])), "arrays": {k: saved[k] for k in saved.files if k != "info"},
            "checkpoints": out.parent / "checkpoints", "stdout": stdout}


def _same_weights(saved, prefix, weights):
    assert sorted(k for k in saved if k.startswith(prefix)) == sorted(prefix + k for k in weights)
    for k, v in weights.items():
        np.testing.assert_allclose(saved[prefix + k], v, rtol=0, atol=TOL, err_msg=k)


@needs_mpi
def test_two_ranks_with_half_batches_train_as_one_process_with_whole_batches(two_ranks):
    """Trainer + DataLoader(DistributedSampler) + average_gradients, clipping and Adam, in float64."""
    assert two_ranks["info"]["world"] == 2
    weights, history = _programs().mlp_run()
    _same_weights(two_ranks["arrays"], "mlp/", weights)
    for mine, theirs in zip(history, two_ranks["info"]["mlp_history"], strict=True):
        assert abs(mine["loss"] - theirs["loss"]) < TOL  # the logged loss is the mean over both ranks' items


@needs_mpi
def test_tbptt_stream_stops_together_checkpoints_on_rank0_only_and_resumes_exactly(two_ranks, tmp_path):
    """TBPTT under the Trainer: a stop asked on rank 1 only stops both ranks at the same batch; only rank 0
    writes checkpoints, metrics and log lines; a resume (rank 0 reads, the others get it) ends where one
    process with all the streams ends."""
    programs = _programs()
    info, root = two_ranks["info"], two_ranks["checkpoints"]
    assert info["stopped_at"] == [0, 3]
    assert sorted(p.name for p in root.iterdir()) == ["rank0"]  # rank 1 wrote nothing, made no folder
    assert sorted(p.name for p in (root / "rank0").iterdir()) == ["best.npz", "last.npz", "metrics.jsonl"]
    assert two_ranks["stdout"].count("epoch 2/2") == 1 and two_ranks["stdout"].count("resumed from") == 1
    assert len((root / "rank0" / "metrics.jsonl").read_text().splitlines()) == 2
    ranks = rnnbp.load(root / "rank0" / "last.npz")["ranks"]  # each rank's own stream carry and generator
    assert len(ranks) == 2 and ranks[0]["stateful"]["stream"]["carry"]["history"].shape[1] == 2

    weights, history, stopped_at = programs.stream_run(tmp_path)  # one process: stopped by its only rank
    assert list(stopped_at) == info["stopped_at"]
    _same_weights(two_ranks["arrays"], "stream/", weights)
    for mine, theirs in zip(history, info["stream_history"], strict=True):
        assert abs(mine["loss"] - theirs["loss"]) < TOL and abs(mine["val_loss"] - theirs["val_loss"]) < TOL


@needs_mpi
def test_uneven_batches_raise_on_every_rank_instead_of_hanging(two_ranks):
    for message in two_ranks["info"]["uneven"]:
        assert "1 of 2 ranks have a batch" in message and "DistributedSampler" in message


@needs_mpi
def test_a_two_rank_checkpoint_with_stream_carries_does_not_load_into_one_process(two_ranks):
    trainer = _programs().stream_trainer()
    with pytest.raises(ValueError, match=r"written by 2 rank\(s\) and this run has 1.*mpiexec -n 2"):
        trainer.load_state_dict(rnnbp.load(two_ranks["checkpoints"] / "rank0" / "last.npz"))


# ------------------------------------------------------------- without MPI
def test_a_world_of_one_changes_nothing_and_loads_no_mpi(monkeypatch):
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    had_mpi = "mpi4py" in sys.modules
    dist.init_process_group()
    try:
        assert (dist.is_initialized(), dist.active(), dist.get_rank(), dist.get_world_size()) == (True, False, 0, 1)
        assert had_mpi or "mpi4py" not in sys.modules
        p = rnnbp.nn.Parameter(rnnbp.ones(3))
        p._grad = np.array([1.0, 2.0, 3.0])
        assert dist.average_gradients([p], weight=4) == 4.0 and p._grad.tolist() == [1.0, 2.0, 3.0]
        assert dist.from_rank0(lambda: 5) == 5 and dist.allgather("x") == ["x"]
        slots = [None]
        dist.all_gather_object(slots, "x")
        assert slots == ["x"]
        with pytest.raises(ValueError, match="all_gather_object: expected a list with one slot per rank"):
            dist.all_gather_object([], "x")
        with pytest.raises(RuntimeError, match="twice"):
            dist.init_process_group()
    finally:
        dist.destroy_process_group()
    assert not dist.is_initialized()
    with pytest.raises(ValueError, match="backend 'nccl' is not available"):
        dist.init_process_group("nccl")


def test_launched_by_mpiexec_without_init_process_group_warns(monkeypatch):
    monkeypatch.setenv("PMI_SIZE", "2")
    model = rnnbp.nn.Linear(1, 1)
    opt = rnnbp.optim.SGD(model.parameters(), lr=0.1)
    trainer = rnnbp.train.Trainer(model, opt, lambda b: {"loss": 0.0}, lambda e, g: [0], progress=False, log=None)
    with pytest.warns(RuntimeWarning, match="init_process_group\\(\\) was not called"):
        trainer.fit(1)


def test_the_launcher_names_the_mpiexec_it_would_run(capsys):
    code = launch.main(["--print-mpiexec"])
    found = dist.find_mpiexec()
    assert capsys.readouterr().out.strip() == (found or "no mpiexec found") and code == (0 if found else 1)
