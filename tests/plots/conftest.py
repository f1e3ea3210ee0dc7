"""A short run in a temporary folder, as a Trainer with a TBPTT engine leaves it, for the picture tests.

An LSTM reads a stream of random +-1 values and says, at every step, whether the value three
steps back was positive (TBPTT k1 = 4, k2 = 10: the first six steps of each window only pass
gradient back). The folder gets ``metrics.jsonl`` (Trainer), ``grad_flow.jsonl``
(:class:`rnnbp.train.GradFlowFile`) and ``model.npz`` with the validation confusion matrix.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import rnnbp
from rnnbp import nn, optim
from rnnbp.bptt import TBPTT, sequence_cross_entropy
from rnnbp.train import StreamCarry, Trainer

LAG, ROWS, STEPS, BATCHES = 3, 16, 20, 3


class Tagger(nn.Module):
    """LSTM cells on the tape (no compiled kernel to wait for) -> linear: (L, N, 1) -> logits (L, N, 2), state."""

    def __init__(self, hidden: int = 8):
        super().__init__()
        self.rnn = nn.Recurrent(nn.LSTMCell, 1, hidden)
        self.head = nn.Linear(hidden, 2)

    def forward(self, x, hx=None):
        out, hx = self.rnn(x, hx)
        return self.head(out), hx


def _stream(generator: np.random.Generator, length: int) -> tuple[np.ndarray, np.ndarray]:
    x = generator.choice([-1.0, 1.0], size=(length + LAG, ROWS, 1)).astype(np.float32)
    y = (x[:-LAG, :, 0] > 0).astype(np.int64)  # y[t] says whether x[t - LAG] was positive
    return x[LAG:], y


@dataclass
class TinyRun:
    folder: Path
    history: list
    updates: list          # every rnnbp.bptt.Update of the run (those in grad_flow.jsonl with norms)
    confusion: np.ndarray  # (2, 2) on the validation stream


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> TinyRun:
    from rnnbp.train import GradFlowFile

    folder = tmp_path_factory.mktemp("runs") / "tiny"
    rnnbp.manual_seed(0)
    model = Tagger()
    opt = optim.Adam(model.parameters(), lr=3e-2)
    updates, grad_flow = [], GradFlowFile(folder / "grad_flow.jsonl", every=3)

    def on_update(engine, update):
        updates.append(update)
        grad_flow(engine, update)

    engine = TBPTT(model, sequence_cross_entropy, opt, k1=4, k2=10, diagnostics=grad_flow.wanted,
                   on_update=on_update)
    carry = StreamCarry()
    x_val, y_val = _stream(np.random.default_rng(99), 40)

    def batches(epoch, generator):
        x, y = _stream(generator, BATCHES * STEPS)
        return [(i == 0, x[i * STEPS:(i + 1) * STEPS], y[i * STEPS:(i + 1) * STEPS]) for i in range(BATCHES)]

    def train_step(batch):
        first, x, y = batch
        if first:
            carry.reset()
        result = engine.run(x, y, carry=carry.carry)
        carry.carry = result.carry
        return {"loss": result.loss, "count": result.count, "updates": len(result.updates)}

    def predictions():
        logits, _ = model(rnnbp.Tensor(x_val))
        return logits.numpy().argmax(axis=-1)[LAG:], y_val[LAG:]  # the first steps cannot know

    def evaluate():
        pred, y = predictions()
        return {"loss": engine.evaluate(x_val, y_val).loss, "acc": float((pred == y).mean())}

    trainer = Trainer(model, opt, train_step, batches, evaluate=evaluate, checkpoint_dir=folder,
                      metrics_file=folder / "metrics.jsonl", stateful={"stream": carry}, progress=False, log=None)
    trainer.fit(6)
    with rnnbp.no_grad():
        pred, y = predictions()
    confusion = np.zeros((2, 2), dtype=np.int64)
    np.add.at(confusion, (y.ravel(), pred.ravel()), 1)
    rnnbp.save({"model": model.state_dict(), "confusion": confusion}, folder / "model.npz")
    return TinyRun(folder, trainer.history, updates, confusion)


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def check_png():
    """``check(path, min_px=200)``: the file is a PNG that matplotlib reads, of a plausible size, not blank."""
    def check(path, min_px: int = 200) -> np.ndarray:
        import matplotlib.image

        path = Path(path)
        assert path.is_file(), f"{path} was not written"
        assert path.stat().st_size > 1000, f"{path} is only {path.stat().st_size} bytes"
        assert path.read_bytes()[:8] == PNG_MAGIC, f"{path} does not start with the PNG signature"
        image = matplotlib.image.imread(path)
        assert image.ndim == 3 and image.shape[2] in (3, 4), image.shape
        assert min_px <= image.shape[0] <= 3000 and min_px <= image.shape[1] <= 3000, image.shape
        assert image[..., :3].std() > 0.01, f"{path} is blank"
        return image
    return check


@pytest.fixture
def capture_figure(monkeypatch):
    """Keep the Figure each picture function saves (``captured[-1]``), to look at its axes."""
    import rnnbp.plot.confusion
    import rnnbp.plot.grad_flow
    import rnnbp.plot.training_curves
    from rnnbp.plot import figures

    captured = []

    def save(fig, out_png, dpi=100):
        captured.append(fig)
        return figures.save(fig, out_png, dpi)

    for module in (rnnbp.plot.confusion, rnnbp.plot.grad_flow, rnnbp.plot.training_curves):
        monkeypatch.setattr(module, "save", save)
    return captured
