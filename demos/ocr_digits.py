"""Character recognition with static backpropagation: an MLP on 8x8 handwritten digits.

    python demos/ocr_digits.py              # full run (well under a minute)
    python demos/ocr_digits.py --quick      # a few epochs, for smoke tests

Trains a 64-512-256-10 ReLU MLP with dropout, label smoothing and AdamW under a
cosine learning-rate schedule on scikit-learn's bundled digits (offline), on
pixels standardised with the training set's statistics. It keeps the weights of
the epoch with the best validation accuracy, stops early when validation stops
improving, and reports the test accuracy on a fixed, seeded 80/20 split. The
best model and the standardisation are saved with ``rnnbp.save`` (.npz, no pickle).
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import rnnbp
from rnnbp import nn, optim
from rnnbp.data import batches, load_ocr_digits
from rnnbp.nn import functional as F


@dataclass
class Config:
    hidden: tuple = (512, 256)   # hidden layer widths
    dropout: float = 0.5         # dropout after each hidden layer
    label_smoothing: float = 0.1
    lr: float = 1e-3             # AdamW peak learning rate, annealed to 0 by a cosine over max_epochs
    weight_decay: float = 1e-4   # AdamW decoupled weight decay
    batch_size: int = 32
    max_epochs: int = 100
    patience: int = 30           # epochs without a better validation accuracy before stopping
    seed: int = 0               # seeds the data split, the initialisation and the batch order
    out: str = "runs/ocr_digits.npz"


def build_model(cfg: Config) -> nn.Module:
    layers, width = [], 64
    for h in cfg.hidden:
        layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(cfg.dropout)]
        width = h
    layers.append(nn.Linear(width, 10))
    return nn.Sequential(*layers)


class Standardize:
    """Per-pixel (x - mean) / (std + 0.1) with training-set statistics; the 0.1 tames
    the near-constant border pixels."""

    def __init__(self, x_train: np.ndarray):
        self.mean = x_train.mean(axis=0)
        self.scale = (x_train.std(axis=0) + 0.1).astype(np.float32)

    def __call__(self, x: np.ndarray) -> rnnbp.Tensor:
        return rnnbp.Tensor((x - self.mean) / self.scale)


@rnnbp.no_grad()
def accuracy(model: nn.Module, x: rnnbp.Tensor, y: np.ndarray) -> float:
    was_training = model.training
    model.eval()
    pred = model(x).argmax(dim=1).numpy()
    model.train(was_training)
    return float((pred == y).mean())


def train(cfg: Config, log=print) -> dict:
    rnnbp.manual_seed(cfg.seed)
    data = load_ocr_digits(seed=cfg.seed)
    standardize = Standardize(data.x_train)
    x_val, x_test = standardize(data.x_val), standardize(data.x_test)
    model = build_model(cfg)
    opt = optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    schedule = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.max_epochs)
    best = {"val_acc": -1.0, "epoch": 0, "state": None}
    start = time.perf_counter()
    for epoch in range(1, cfg.max_epochs + 1):
        losses = []
        for xb, yb in batches(data.x_train, data.y_train, batch_size=cfg.batch_size):
            opt.zero_grad()
            loss = F.cross_entropy(model(standardize(xb)), yb, label_smoothing=cfg.label_smoothing)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        schedule.step()
        val_acc = accuracy(model, x_val, data.y_val)
        # Ties go to the later epoch: same validation accuracy at a lower learning rate.
        improved = val_acc >= best["val_acc"]
        if improved:
            best.update(val_acc=val_acc, epoch=epoch, state={k: v.clone() for k, v in model.state_dict().items()})
        log(f"epoch {epoch:3d}  train loss {np.mean(losses):.4f}  val acc {100 * val_acc:6.2f} %"
            f"{'  *' if improved else ''}")
        if epoch - best["epoch"] >= cfg.patience:
            log(f"early stop: no better validation accuracy for {cfg.patience} epochs")
            break
    model.load_state_dict(best["state"])
    test_acc = accuracy(model, x_test, data.y_test)
    seconds = time.perf_counter() - start
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rnnbp.save({"model": model.state_dict(), "mean": standardize.mean, "scale": standardize.scale,
                "config": {k: list(v) if isinstance(v, tuple) else v for k, v in vars(cfg).items()},
                "epoch": best["epoch"], "val_acc": best["val_acc"],
                "test_acc": test_acc}, out)
    log(f"best epoch {best['epoch']}  val acc {100 * best['val_acc']:.2f} %  "
        f"test acc {100 * test_acc:.2f} % ({len(data.y_test)} images)  in {seconds:.1f} s; saved {out}")
    return {"test_acc": test_acc, "val_acc": best["val_acc"], "epoch": best["epoch"], "seconds": seconds,
            "model": model}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description="MLP on 8x8 handwritten digits (static backprop).")
    parser.add_argument("--epochs", type=int, default=Config.max_epochs, help="maximum epochs")
    parser.add_argument("--patience", type=int, default=Config.patience)
    parser.add_argument("--lr", type=float, default=Config.lr)
    parser.add_argument("--seed", type=int, default=Config.seed)
    parser.add_argument("--out", default=Config.out, help="where to save the best model (.npz)")
    parser.add_argument("--quick", action="store_true", help="3 epochs, for smoke tests")
    args = parser.parse_args(argv)
    cfg = Config(max_epochs=3 if args.quick else args.epochs, patience=args.patience, lr=args.lr,
                 seed=args.seed, out=args.out)
    return train(cfg)


if __name__ == "__main__":
    main(sys.argv[1:])
