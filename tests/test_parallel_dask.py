"""rnnbp.parallel.dask_backend: feature extraction and fold-style tasks on a Dask LocalCluster equal the serial run.

One LocalCluster (2 worker processes x 1 thread, on 127.0.0.1 only, no dashboard) serves the
whole module; the tests that need it are skipped, with the reason, where dask/distributed
are not installed (pip install rnnbp[dask]).
"""
import os
import socket
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnbp.data import FeatureConfig, extract_features
from rnnbp.parallel import dask_backend


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed", reason="dask/distributed not installed: pip install rnnbp[dask]")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None)
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def wavs(tmp_path_factory):
    """Six short synthetic recordings of different lengths, one at 16 kHz (resampled to 8 kHz on reading)."""
    import soundfile

    folder = tmp_path_factory.mktemp("wavs")
    rng = np.random.default_rng(0)
    paths = []
    for i, (seconds, sr) in enumerate([(0.3, 8000), (0.5, 8000), (0.12, 8000), (0.8, 8000), (0.4, 16000),
                                       (0.25, 8000)]):
        t = np.arange(int(seconds * sr)) / sr
        y = 0.3 * np.sin(2 * np.pi * (200 + 150 * i) * t) + 0.05 * rng.standard_normal(len(t))
        path = folder / f"{i}_synthetic_{i}.wav"
        soundfile.write(path, y.astype(np.float32), sr, subtype="PCM_16")
        paths.append(path)
    return paths


def _real_fsdd(n: int = 40) -> list[Path]:
    root = os.environ.get("RNNBP_DATA")
    folder = Path(root or "") / "fsdd" / "recordings"
    if not root or not folder.is_dir():
        pytest.skip("RNNBP_DATA is not set or holds no fsdd/recordings (e.g. RNNBP_DATA=../shared/data)")
    return sorted(folder.glob("*.wav"))[::60][:n]  # every digit and speaker appear among them


def _assert_same(parallel, serial):
    assert np.array_equal(parallel.offsets, serial.offsets)
    assert parallel.frames.dtype == serial.frames.dtype == np.float32
    assert np.array_equal(parallel.frames, serial.frames)  # exactly, not approximately


def _ran_on_workers(client) -> bool:
    """True when some worker process has imported the feature module, i.e. ran an extraction task."""
    return any(client.run(lambda: "rnnbp.data.features" in sys.modules).values())


# ------------------------------------------------------------- features
@pytest.mark.parametrize("config", [FeatureConfig(), FeatureConfig(kind="logmel", deltas=1, utterance_norm="meanvar")],
                         ids=["mfcc", "logmel-meanvar"])
def test_features_on_local_cluster_equal_serial(cluster, wavs, config):
    serial = extract_features(wavs, config, n_jobs=1, progressbar=False)
    with dask_backend(cluster.scheduler_address) as client:  # the "tcp://..." path
        parallel = extract_features(wavs, config, n_jobs=1, progressbar=False)
        assert _ran_on_workers(client)
    _assert_same(parallel, serial)
    assert len(parallel) == len(wavs) and parallel.n_features == config.n_features


def test_real_fsdd_features_on_local_cluster_equal_serial(cluster, tmp_path):
    paths = _real_fsdd()
    serial = extract_features(paths, n_jobs=1, progressbar=False)
    with dask_backend(cluster.scheduler_address):
        parallel = extract_features(paths, n_jobs=-1, progressbar=True, cache_dir=tmp_path)
    _assert_same(parallel, serial)
    _assert_same(extract_features(paths, progressbar=False, cache_dir=tmp_path), serial)  # the cache it wrote


def test_audio_error_on_a_worker_names_the_file(cluster, wavs, tmp_path):
    from rnnbp.data import AudioFileError

    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot audio at all")
    with dask_backend(cluster.scheduler_address):
        with pytest.raises(AudioFileError, match="broken.wav"):
            extract_features([*wavs[:2], bad], progressbar=False)


# ---------------------------------------------------------------- folds
def test_fold_tasks_on_local_cluster_equal_serial(cluster):
    """Cross-validation-like tasks (train a small GRU classifier per fold) give bit-identical results."""
    from joblib import Parallel, delayed

    def fold(k: int):  # local: cloudpickle ships it by value to the workers
        import rnnbp
        from rnnbp import nn, optim
        from rnnbp.nn import functional as F

        rng = np.random.default_rng(k)
        x = rnnbp.Tensor(rng.standard_normal((7, 16, 3)).astype(np.float32))  # (T, N, F)
        y = rng.integers(0, 4, 16)
        rnnbp.manual_seed(k)
        gru, head = nn.GRU(3, 8), nn.Linear(8, 4)
        opt = optim.Adam([*gru.parameters(), *head.parameters()], lr=1e-2)
        for _ in range(5):
            out, _ = gru(x)
            loss = F.cross_entropy(head(out[-1]), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return k, loss.item(), {name: p.numpy().copy() for name, p in gru.named_parameters()}

    serial = [fold(k) for k in range(4)]
    with dask_backend(cluster.scheduler_address) as client:
        parallel = Parallel(n_jobs=-1, return_as="generator")(delayed(fold)(k) for k in range(4))
        parallel = list(parallel)
        assert any(client.run(lambda: "rnnbp.nn" in sys.modules).values())
    assert [k for k, _, _ in parallel] == [0, 1, 2, 3]  # in submission order
    for (_, loss_s, params_s), (_, loss_p, params_p) in zip(serial, parallel):
        assert loss_p == loss_s
        assert params_p.keys() == params_s.keys()
        for name in params_s:
            assert np.array_equal(params_p[name], params_s[name]), name


# ------------------------------------------------- the context manager
def test_client_is_used_as_given_and_left_open(cluster, wavs):
    distributed = pytest.importorskip("distributed")
    with distributed.Client(cluster, set_as_default=False) as client:
        with dask_backend(client) as got:
            assert got is client
            extract_features(wavs[:2], progressbar=False)
        assert client.status == "running"


def test_none_changes_nothing(wavs):
    with dask_backend(None) as client:
        assert client is None
        feats = extract_features(wavs[:2], n_jobs=1, progressbar=False)
    assert len(feats) == 2


def test_unreachable_scheduler_names_the_address():
    pytest.importorskip("distributed", reason="dask/distributed not installed: pip install rnnbp[dask]")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    with pytest.raises(OSError, match=f"no Dask scheduler answers at '{address}'"):
        with dask_backend(address, timeout=1):
            pass


@pytest.mark.parametrize("kwargs, match", [(dict(address=3), "address must be"), (dict(address=""), "address must be"),
                                           (dict(n_workers=0), "n_workers must be"),
                                           (dict(threads_per_worker=1.5), "threads_per_worker must be")])
def test_bad_arguments(kwargs, match):
    pytest.importorskip("distributed", reason="dask/distributed not installed: pip install rnnbp[dask]")
    with pytest.raises((TypeError, ValueError), match=match):
        with dask_backend(**kwargs):
            pass


def test_missing_distributed_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed now raises ImportError
    with pytest.raises(ImportError, match=r"pip install rnnbp\[dask\]"):
        with dask_backend("local"):
            pass


# ----------------------------------------------------------- the demo
@pytest.mark.slow
def test_spoken_digits_demo_with_dask_equals_serial(cluster, tmp_path):
    """demos/spoken_digits.py --dask ADDRESS: features and all six held-out speakers on the cluster, same numbers."""
    from demo_loader import load_demo

    root = os.environ.get("RNNBP_DATA")
    if not root or len(list((Path(root) / "fsdd" / "recordings").glob("*.wav"))) < 3000:
        pytest.skip("RNNBP_DATA does not hold the 3,000 FSDD recordings (e.g. RNNBP_DATA=../shared/data)")
    demo = load_demo("spoken_digits.py")
    args = ["--quick", "--speaker", "all", "--epochs", "1", "--no-progress", "--data", root]
    results = {}
    for name, extra in (("serial", []), ("dask", ["--dask", cluster.scheduler_address])):
        results[name] = demo.main([*args, *extra, "--cache", str(tmp_path / name / "cache"),
                                   "--out", str(tmp_path / name / "model.npz")])
    serial, dask = results["serial"], results["dask"]
    assert dask["test_acc"] == serial["test_acc"]
    assert [r["speaker"] for r in dask["speakers"]] == [r["speaker"] for r in serial["speakers"]] and \
        len(serial["speakers"]) == 6
    for s, d in zip(serial["speakers"], dask["speakers"]):
        assert d["acc"] == s["acc"] and np.array_equal(d["confusion"], s["confusion"]), s["speaker"]
    for speaker in serial["speakers"]:  # the workers wrote each run's checkpoint where the serial run does
        assert (tmp_path / "dask" / f"speaker_{speaker['speaker']}" / "best.npz").is_file()
