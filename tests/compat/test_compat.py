"""PyTorch programs run unchanged on rnnbp (``python -m rnnbp.torch``), and agree with PyTorch.

The programs beside this file are plain PyTorch scripts in the style of the official examples;
none of them mentions rnnbp:

- ``word_lm/``: a word language model (main.py, model.py, data.py) with tied weights,
  ``repackage_hidden``, a hand-written SGD step through ``p.data``, clipping, learning-rate annealing,
  the whole model saved with ``torch.save`` and reloaded, an LSTM/GRU/RNN_TANH or Transformer core;
  and its sampler (generate.py), which loads the saved model and writes text.
- ``sine/train.py``: two ``nn.LSTMCell`` stepped by hand over sine waves, trained with L-BFGS.
- ``classifier/main.py``: an LSTM/GRU sequence classifier with BatchNorm1d, a DataLoader, Adadelta,
  StepLR and per-epoch checkpoints it can resume from.
- ``ports/``: seven scripts users brought when porting (seq2seq with attention, a packed
  bidirectional LSTM classifier, an LSTM forecaster, a tied-weight char LSTM with hooks, a CTC
  biGRU resumed from a checkpoint, a sequence VAE, a multi-task GRU with a ModuleDict of heads),
  kept as they were written, and one with custom autograd Functions; four once stopped on
  something missing (``~`` on masks, ``bincount``, ``HuberLoss``, ``einsum``, forward hooks, ...).

Each test runs a program in a subprocess, in a temporary directory, on tiny synthetic data:
under ``python -m rnnbp.torch`` it must finish and learn (its logged losses fall); where PyTorch
is installed it also runs under PyTorch from the same initial weights (written by the PyTorch run
with ``--save-init``, read by the rnnbp run with ``--init``) in float64, and every logged loss must
agree to 1e-9 (relative). The last tests give the runner bad input and check the one-line error.
"""
from __future__ import annotations
import importlib.util

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WORD_LM = HERE / "word_lm"
SINE = HERE / "sine" / "train.py"
CLASSIFIER = HERE / "classifier" / "main.py"
PROGRAMS = sorted(p for p in HERE.rglob("*.py") if not p.name.startswith("test_"))
RTOL = 1e-9  # float64 loss trajectories, rnnbp against PyTorch

# One BLAS/OpenMP thread per process: the machines that run these tests have few cores, and PyTorch
# with its default thread count is ~5x slower on these tiny problems.
_THREADS = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def run(script: Path, args, cwd: Path, framework: str = "rnnbp", expect_ok: bool = True, timeout: float = 120):
    """Run ``script args`` in ``cwd`` under rnnbp's stand-in (``framework="rnnbp"``) or real PyTorch.

    Returns the CompletedProcess; if ``expect_ok``, a non-zero exit fails the test with stderr's tail.
    """
    if framework == "rnnbp":
        command = [sys.executable, "-m", "rnnbp.torch", str(script), *map(str, args)]
    else:
        command = [sys.executable, str(script), *map(str, args)]
    env = {**os.environ, **_THREADS, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if expect_ok and proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-25:])
        pytest.fail(f"{framework}: {script.relative_to(HERE)} {' '.join(map(str, args))} exited with "
                    f"{proc.returncode}:\n{tail}")
    return proc


def read_log(path: Path) -> dict:
    with open(path) as f:
        return json.load(f)


def assert_trajectories_agree(ours: dict, theirs: dict, rtol: float = RTOL) -> None:
    """Every logged series (train losses per step, validation/test losses, ...) equal to ``rtol``."""
    assert ours.keys() == theirs.keys()
    for key in theirs:
        a = np.atleast_1d(np.asarray(ours[key], dtype=np.float64))
        b = np.atleast_1d(np.asarray(theirs[key], dtype=np.float64))
        assert a.shape == b.shape, f"{key}: rnnbp logged {a.shape[0]} values, PyTorch {b.shape[0]}"
        np.testing.assert_allclose(a, b, rtol=rtol, atol=0, err_msg=f"{key}: rnnbp vs PyTorch")


def compare_with_torch(script: Path, args, cwd: Path) -> tuple[dict, dict]:
    """Run ``script`` in float64 under PyTorch (writing its initial weights) and under rnnbp from
    those weights; return both logs (rnnbp's, PyTorch's) after checking they agree."""
    pytest.importorskip("torch")
    cwd.mkdir(parents=True, exist_ok=True)
    run(script, [*args, "--double", "--save-init", "init.npz", "--log", "torch.json"], cwd, framework="torch")
    run(script, [*args, "--double", "--init", "init.npz", "--log", "rnnbp.json"], cwd)
    ours, theirs = read_log(cwd / "rnnbp.json"), read_log(cwd / "torch.json")
    assert_trajectories_agree(ours, theirs)
    return ours, theirs


def test_the_programs_are_plain_pytorch():
    """The programs import torch and never rnnbp: the runner alone must make them work."""
    assert {p.relative_to(HERE).as_posix() for p in PROGRAMS} >= {
        "word_lm/main.py", "word_lm/model.py", "word_lm/data.py", "word_lm/generate.py",
        "sine/train.py", "classifier/main.py",
    }
    for program in PROGRAMS:
        text = program.read_text()
        assert "rnnbp" not in text, f"{program.relative_to(HERE)} mentions rnnbp"
        assert "import torch" in text, f"{program.relative_to(HERE)} does not import torch"


# ----------------------------------------------------------------------------------- word LM
def write_corpus(path: Path, seed: int = 0, vocab: int = 24, lines=(60, 12, 12)) -> None:
    """train/valid/test.txt of a tiny language: each word is followed by one of two words."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(vocab)]
    successors = rng.integers(0, vocab, size=(vocab, 2))
    path.mkdir(parents=True, exist_ok=True)
    for name, count in zip(("train", "valid", "test"), lines):
        with open(path / f"{name}.txt", "w") as f:
            for _ in range(count):
                word, out = rng.integers(vocab), []
                for _ in range(rng.integers(5, 12)):
                    out.append(words[word])
                    word = successors[word, rng.integers(2)]
                f.write(" ".join(out) + "\n")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus")
    write_corpus(path)
    return path


LM_SIZES = ["--emsize", 16, "--nhid", 16, "--bptt", 10, "--batch_size", 4, "--log-interval", 1000]
# Settings under which each core visibly learns in a few epochs of the tiny corpus.
LM_RUNS = {
    "LSTM": ["--model", "LSTM", "--nlayers", 1, "--lr", 10, "--epochs", 4, "--tied"],
    "GRU": ["--model", "GRU", "--nlayers", 2, "--lr", 5, "--epochs", 3, "--dropout", 0.2],
    "RNN_TANH": ["--model", "RNN_TANH", "--nlayers", 2, "--lr", 5, "--epochs", 3, "--dropout", 0.2],
    "Transformer": ["--model", "Transformer", "--nlayers", 2, "--lr", 5, "--epochs", 3, "--dropout", 0.1],
}


@pytest.fixture(scope="module")
def trained_lm(corpus, tmp_path_factory):
    """model type -> (run directory, log) of main.py trained under rnnbp in float32, run once."""
    cache = {}

    def get(model_type: str):
        if model_type not in cache:
            cwd = tmp_path_factory.mktemp(f"lm_{model_type}")
            run(WORD_LM / "main.py", ["--data", corpus, *LM_SIZES, *LM_RUNS[model_type], "--log", "log.json"], cwd)
            cache[model_type] = cwd, read_log(cwd / "log.json")
        return cache[model_type]

    return get


@pytest.mark.parametrize("model_type", list(LM_RUNS))
def test_word_lm_trains_under_rnnbp(trained_lm, model_type):
    cwd, log = trained_lm(model_type)
    epochs = LM_RUNS[model_type][LM_RUNS[model_type].index("--epochs") + 1]
    assert len(log["valid"]) == len(log["lr"]) == epochs
    assert all(np.isfinite(log["train"])) and np.isfinite(log["test"])
    steps = len(log["train"]) // epochs
    assert np.mean(log["train"][-steps:]) < np.mean(log["train"][:steps]) - 0.1, log["train"]
    assert log["valid"][-1] < log["valid"][0], log["valid"]
    # main.py reloaded the best model it saved (torch.save(model)) to compute the test loss.
    assert (cwd / "model.pt").stat().st_size > 0
    assert log["test"] < np.log(25)  # better than guessing among the 25 tokens


@pytest.mark.parametrize("model_type", ["LSTM", "Transformer"])
def test_generate_samples_text_from_the_saved_model(trained_lm, corpus, model_type):
    """generate.py loads main.py's saved model (torch.load(f, weights_only=False)) and samples with
    torch.multinomial: the text uses the corpus' words and, the model having learnt which word
    follows which, mostly continues with pairs seen in training (chance: ~10%)."""
    cwd, _ = trained_lm(model_type)
    proc = run(WORD_LM / "generate.py", ["--data", corpus, "--checkpoint", "model.pt", "--words", 200, "--accel",
                                         "--outf", "sample.txt", "--log", "sample.json"], cwd)
    assert "Sampling on cpu" in proc.stdout  # torch.accelerator.is_available() is False
    words = (cwd / "sample.txt").read_text().split()
    vocabulary = {"<eos>"} | set((corpus / "train.txt").read_text().split()) \
        | set((corpus / "valid.txt").read_text().split()) | set((corpus / "test.txt").read_text().split())
    assert len(words) == 200 and set(words) <= vocabulary
    ids = read_log(cwd / "sample.json")["ids"]
    assert len(ids) == 200 and all(0 <= i < len(vocabulary) for i in ids)
    seen = set()
    for line in (corpus / "train.txt").read_text().splitlines():
        tokens = line.split() + ["<eos>"]
        seen |= set(zip(tokens[:-1], tokens[1:]))
    chance = len(seen) / len(vocabulary) ** 2
    pairs = list(zip(words[:-1], words[1:]))
    assert sum(p in seen for p in pairs) / len(pairs) > 3 * chance


@pytest.mark.parametrize("model_type", ["LSTM", "GRU", "RNN_TANH", "Transformer"])
def test_word_lm_matches_torch(corpus, tmp_path, model_type):
    args = ["--data", corpus, *LM_SIZES, "--model", model_type, "--nlayers", 2, "--dropout", 0]
    if model_type == "LSTM":  # tied weights; lr 20 makes validation stall, so the lr is annealed
        args += ["--tied", "--lr", 20, "--epochs", 5]
    else:
        args += ["--lr", 5, "--epochs", 2]
    ours, _ = compare_with_torch(WORD_LM / "main.py", args, tmp_path)
    assert len(ours["train"]) > 20
    if model_type == "LSTM":
        assert ours["lr"][-1] < ours["lr"][0], "the annealing branch did not run"


# -------------------------------------------------------------------------------------- sine
SINE_SIZES = ["--steps", 2, "--hidden", 12, "--waves", 10, "--length", 40, "--future", 10]


def test_sine_trains_under_rnnbp(tmp_path):
    run(SINE, [*SINE_SIZES, "--log", "log.json"], tmp_path)
    log = read_log(tmp_path / "log.json")
    assert len(log["step"]) == len(log["test"]) == 2
    assert len(log["train"]) > 2  # L-BFGS called the closure many times per step
    assert log["train"][-1] < 0.1 * log["train"][0], log["train"]
    assert log["test"][-1] < log["test"][0]


@pytest.mark.parametrize("line_search", ["", "strong_wolfe"])
def test_sine_matches_torch(tmp_path, line_search):
    # Few L-BFGS iterations: its curvature pairs amplify round-off, so long runs drift apart
    # (1e-16 at the start, 1e-10 after 40 closures) in either framework against itself reordered.
    ours, _ = compare_with_torch(SINE, [*SINE_SIZES, "--max-iter", 8, "--line-search", line_search], tmp_path)
    assert len(ours["train"]) >= 10


# -------------------------------------------------------------------------------- classifier
CLASSIFIER_SIZES = ["--hidden", 16, "--train-size", 256, "--test-size", 128, "--batch-size", 32, "--length", 12,
                    "--test-batch-size", 64, "--lr", 20, "--gamma", 0.8, "--log-interval", 1000]


def test_classifier_trains_under_rnnbp(tmp_path):
    """Shuffled batches, dropout, BatchNorm1d in train and eval mode, float32."""
    run(CLASSIFIER, [*CLASSIFIER_SIZES, "--epochs", 4, "--log", "log.json"], tmp_path)
    log = read_log(tmp_path / "log.json")
    assert len(log["test"]) == 4 and len(log["train"]) == 4 * 8
    assert log["lr"] == pytest.approx([20, 16, 12.8, 10.24])  # StepLR
    assert log["test"][-1] < log["test"][0] - 0.1, log["test"]
    assert np.mean(log["train"][-8:]) < np.mean(log["train"][:8]) - 0.1
    assert log["accuracy"][-1] > 0.35  # four classes
    assert (tmp_path / "checkpoint.pt").stat().st_size > 0


def test_classifier_resumed_from_a_checkpoint_equals_a_straight_run(tmp_path):
    """torch.save({'model': ..., 'optimizer': ..., 'scheduler': ..., 'epoch': ...}) then torch.load
    and load_state_dict: epochs 3-4 after resuming are exactly those of an uninterrupted run."""
    args = [*CLASSIFIER_SIZES, "--no-shuffle", "--dropout", 0, 0]
    run(CLASSIFIER, [*args, "--epochs", 4, "--checkpoint", "straight.pt", "--log", "straight.json"], tmp_path)
    run(CLASSIFIER, [*args, "--epochs", 2, "--checkpoint", "ck.pt", "--log", "first.json"], tmp_path)
    proc = run(CLASSIFIER, [*args, "--epochs", 4, "--checkpoint", "ck.pt", "--resume", "ck.pt",
                            "--log", "rest.json"], tmp_path)
    assert "Resumed from ck.pt at epoch 3" in proc.stdout
    straight, first, rest = (read_log(tmp_path / f"{n}.json") for n in ("straight", "first", "rest"))
    for key in straight:
        assert straight[key] == first[key] + rest[key], key


@pytest.mark.parametrize("rnn", ["LSTM", "GRU"])
def test_classifier_matches_torch(tmp_path, rnn):
    ours, _ = compare_with_torch(CLASSIFIER, [*CLASSIFIER_SIZES, "--rnn", rnn, "--epochs", 3, "--no-shuffle",
                                              "--dropout", 0, 0], tmp_path)
    assert len(ours["train"]) == 3 * 8


# -------------------------------------------------------- scripts a new user brought, unchanged
PORTS = HERE / "ports"
_NUMBER = r"-?\d+\.\d+(?:e[-+]?\d+)?"


def _printed_numbers(out: str) -> np.ndarray:
    """The numbers a script printed, leaving out tensor reprs (printed to 8 digits here, 4 in PyTorch)."""
    import re

    lines = [line for line in out.splitlines() if "tensor(" not in line and "dtype=" not in line]
    return np.array([float(v) for v in re.findall(_NUMBER, "\n".join(lines))])


_SLOW = pytest.mark.slow  # each port also runs in the slow set; two stay in the default run (time budget)


@pytest.mark.parametrize("script", ["seq2seq_attention.py", "custom_function.py"] + [
    pytest.param(name, marks=_SLOW) for name in ("packed_bilstm.py", "forecaster.py", "char_lm_tied.py", "ctc_bigru.py",
                                                 "sequence_vae.py", "multitask_gru.py")])
def test_ported_script_runs_unchanged_and_matches_torch(script, tmp_path):
    """Scripts written by users porting to rnnbp (a GRU seq2seq with attention and a checkpoint round
    trip; a packed bidirectional LSTM classifier with early stopping; an LSTM forecaster with
    proj_size; a tied-weight char LSTM with gradient accumulation, parameter groups and forward hooks;
    a biGRU CTC model resumed from a checkpoint; a sequence VAE): each runs unchanged, and every
    number it prints equals PyTorch's."""
    ours = run(PORTS / script, [], tmp_path).stdout
    assert _printed_numbers(ours).size, "the script printed no numbers"
    pytest.importorskip("torch")
    theirs = run(PORTS / script, [], tmp_path, framework="torch").stdout
    a, b = _printed_numbers(ours), _printed_numbers(theirs)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------- state_dict values are Tensors
def test_save_init_under_rnnbp(tmp_path):
    """--save-init writes ``{k: t.detach().cpu().numpy() for k, t in model.state_dict().items()}``."""
    run(SINE, [*SINE_SIZES, "--steps", 1, "--save-init", "init.npz"], tmp_path)
    saved = np.load(tmp_path / "init.npz")
    assert sorted(saved.files)[0] == "linear.bias"
    assert all(saved[k].dtype == np.float32 and saved[k].size > 0 for k in saved.files)  # float32 without --double


# -------------------------------------------------------------------------------- bad input
def last_line(proc) -> str:
    assert proc.returncode != 0, f"the program should have failed; stdout:\n{proc.stdout}"
    return proc.stderr.strip().splitlines()[-1]


def run_snippet(tmp_path: Path, code: str, *args):
    script = tmp_path / "snippet.py"
    script.write_text(code)
    return run(script, args, tmp_path, expect_ok=False)


def test_the_runner_never_loads_the_real_torch(tmp_path):
    proc = run_snippet(tmp_path, (
        "import sys, torch, torch.nn as nn\n"
        "from torch.optim.lr_scheduler import StepLR\n"
        "import torch.utils.data\n"
        "print(type(torch.zeros(1)).__module__, nn.LSTM.__module__, StepLR.__module__)\n"
        "print(getattr(sys.modules['torch'], '__file__', None))\n"
    ))
    assert proc.returncode == 0, proc.stderr
    modules, torch_file = proc.stdout.split("\n")[:2]
    assert all(m.startswith("rnnbp.") for m in modules.split()), modules
    assert torch_file == "None"


@pytest.mark.parametrize("request_", [".cuda()", "torch.device('cuda')", "model.to('cuda:0')"])
def test_a_cuda_request_is_refused(tmp_path, request_):
    code = {
        ".cuda()": "import torch\nx = torch.zeros(2, 3).cuda()\n",
        "torch.device('cuda')": "import torch\ndevice = torch.device('cuda')\nx = torch.zeros(2).to(device)\n",
        "model.to('cuda:0')": "import torch.nn as nn\nmodel = nn.LSTM(2, 3).to('cuda:0')\n",
    }[request_]
    line = last_line(run_snippet(tmp_path, code))
    assert line.startswith("rnnbp.autograd.device.DeviceError: rnnbp runs on the CPU"), line
    assert "cuda" in line.split("CPU", 1)[1]


def test_the_word_lm_asked_for_cuda_says_rnnbp_runs_on_the_cpu(corpus, tmp_path):
    proc = run(WORD_LM / "main.py", ["--data", corpus, *LM_SIZES, "--cuda"], tmp_path, expect_ok=False)
    assert "rnnbp runs on the CPU: device 'cuda' is not available" in last_line(proc)


def test_the_word_lm_onnx_export_names_the_model_it_cannot_convert(corpus, tmp_path):
    """Training and testing finish; the export names the class whose own forward rnnbp.onnx cannot read."""
    args = ["--data", corpus, *LM_SIZES, "--epochs", 1, "--max-batches", 2, "--log", "log.json"]
    proc = run(WORD_LM / "main.py", [*args, "--onnx-export", "model.onnx"], tmp_path, expect_ok=False)
    assert (tmp_path / "log.json").exists() and not (tmp_path / "model.onnx").exists()
    line = last_line(proc)
    if importlib.util.find_spec("onnx") is None:
        assert line.startswith("ImportError: rnnbp.onnx.export needs the onnx package"), line
    else:
        assert line.startswith("rnnbp.onnx.errors.UnsupportedModuleError: rnnbp.onnx.export: no ONNX conversion "
                               "for the model itself (model.RNNModel)"), line


LOAD_A_NET = """\
import sys
import torch
import torch.nn as nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 3)

torch.save(Net(), 'net.pt')
if sys.argv[1:] == ['allowed']:
    with torch.serialization.safe_globals([Net]):
        net = torch.load('net.pt')
    print(type(net).__name__, tuple(net.fc.weight.shape))
else:
    torch.load('net.pt')
"""


def test_loading_a_module_whose_class_is_not_allowed(tmp_path):
    line = last_line(run_snippet(tmp_path, LOAD_A_NET))
    assert line.startswith("rnnbp.serialization.errors.UnsafeGlobalError: load: net.pt:"), line
    assert "__main__.Net is not allowed" in line and "safe_globals([Net])" in line
    allowed = run_snippet(tmp_path, LOAD_A_NET, "allowed")
    assert allowed.returncode == 0 and allowed.stdout.strip() == "Net (3, 2)", allowed.stderr


def test_loading_the_word_lm_without_weights_only_false_names_its_class(trained_lm, tmp_path):
    cwd, _ = trained_lm("LSTM")
    proc = run_snippet(cwd, f"import sys\nsys.path.insert(0, {str(WORD_LM)!r})\nimport torch\n"
                            "torch.load('model.pt')\n")
    line = last_line(proc)
    assert "UnsafeGlobalError" in line and "model.RNNModel is not allowed" in line, line


@pytest.mark.parametrize("what", ["state_dict", "module"])
def test_loading_a_pytorch_pickle_is_refused(tmp_path, what):
    torch = pytest.importorskip("torch")
    layer = torch.nn.Linear(2, 2)
    torch.save(layer.state_dict() if what == "state_dict" else layer, tmp_path / "real.pt")
    line = last_line(run_snippet(tmp_path, "import torch\nsd = torch.load('real.pt', map_location='cpu')\n"))
    assert line.startswith("rnnbp.serialization.errors.CheckpointError: load: real.pt was written by "
                           "PyTorch's torch.save"), line
    assert "cannot read it" in line


@pytest.mark.parametrize("code, name", [
    ("import torch.nn as nn\nlayer = nn.Bilinear(2, 3, 4)\n", "torch.nn.Bilinear"),
    ("import torch\nf = torch.compile\n", "torch.compile"),
    ("import torch.jit\n", "torch.jit"),
])
def test_an_unsupported_torch_name_is_named(tmp_path, code, name):
    line = last_line(run_snippet(tmp_path, code))
    assert f"rnnbp does not have {name} " in line, line
    assert line.split(":", 1)[0] in ("rnnbp.torch.NotInRnnbpError", "rnnbp.torch.ModuleNotInRnnbpError"), line
