"""The metrics file across resumes, checkpoint contents, resume checks, the progress bar, argument checks."""
import csv
import json
import subprocess
import sys
import time

import numpy as np
import pytest

import rnnbp
from rnnbp.train import Callback, Trainer


class StopAt(Callback):
    def __init__(self, epoch, batch):
        self.epoch, self.batch = epoch, batch

    def on_batch_end(self, trainer, batch_index, metrics):
        if trainer.epoch + 1 == self.epoch and batch_index == self.batch:
            trainer.request_stop()


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_jsonl_metrics_file_has_one_line_per_epoch_across_resumes(tmp_path, mlp):
    path = tmp_path / "metrics.jsonl"
    mlp(tmp_path, metrics_file=path).fit(2)
    (tmp_path / "after2.npz").write_bytes((tmp_path / "last.npz").read_bytes())
    mlp(tmp_path, metrics_file=path, callbacks=[StopAt(3, 1)]).fit(4, resume=True)  # stops in epoch 3
    assert [r["epoch"] for r in read_jsonl(path)] == [1, 2]
    history = mlp(tmp_path, metrics_file=path).fit(4, resume=True)
    records = read_jsonl(path)
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    assert records == json.loads(json.dumps(history))
    assert {"epoch", "loss", "val_loss", "lr", "time", "updates"} <= set(records[0])
    # Resuming from an older checkpoint rewrites the file to that checkpoint's epochs first.
    mlp(tmp_path, metrics_file=path).fit(3, resume=tmp_path / "after2.npz")
    assert [r["epoch"] for r in read_jsonl(path)] == [1, 2, 3]
    # A fresh run starts the file afresh.
    mlp(tmp_path / "fresh", metrics_file=path).fit(1)
    assert [r["epoch"] for r in read_jsonl(path)] == [1]


def test_csv_metrics_file(tmp_path, mlp):
    path = tmp_path / "metrics.csv"
    mlp(tmp_path, metrics_file=path, callbacks=[StopAt(2, 0)]).fit(3)
    history = mlp(tmp_path, metrics_file=path).fit(3, resume=True)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert [float(r["loss"]) for r in rows] == [h["loss"] for h in history]  # floats written exactly


def test_checkpoint_contents(tmp_path, mlp):
    trainer = mlp(tmp_path, callbacks=[StopAt(2, 1)])
    trainer.fit(3)
    saved = rnnbp.load(tmp_path / "last.npz")
    assert set(saved) == {"format", "version", "model", "optimizer", "scheduler", "stateful", "rng", "loop",
                          "monitor", "history", "optimizer_class"}
    assert saved["format"] == "rnnbp-trainer"
    assert saved["rng"] == rnnbp.autograd.random.default_generator().bit_generator.state
    assert saved["rng"]["state"]["state"] > 2 ** 64  # a 128-bit int, kept exact
    loop = saved["loop"]
    assert (loop["seed"], loop["epoch"], loop["position"], loop["updates"]) == (0, 1, 2, 7)
    assert loop["count"] == 16.0 and set(loop["sums"]) == {"loss"}
    assert saved["scheduler"]["last_epoch"] == 1 and saved["optimizer"]["state"][0]["step"] == 7
    assert [h["epoch"] for h in saved["history"]] == [1]


def test_resume_true_without_a_checkpoint_starts_afresh(tmp_path, mlp, same_run):
    messages = []
    a = mlp(tmp_path / "a", log=messages.append)
    a.fit(1, resume=True)
    assert "starting from scratch" in messages[0]
    b = mlp(tmp_path / "b")
    b.fit(1)
    same_run(a, b)
    with pytest.raises(FileNotFoundError):
        mlp(tmp_path / "c").fit(1, resume=tmp_path / "c" / "missing.npz")
    with pytest.raises(ValueError, match="resume=True needs checkpoint_dir"):
        mlp().fit(1, resume=True)


def test_resume_refuses_a_checkpoint_that_does_not_fit(tmp_path, mlp):
    mlp(tmp_path).fit(1)
    with pytest.raises(ValueError, match=r"seed=0, this Trainer has seed=1 .*has no scheduler"):
        mlp(tmp_path, seed=1, scheduler=None).fit(2, resume=True)
    with pytest.raises(ValueError, match=r"stateful \['extra'\] in this Trainer"):
        mlp(tmp_path, stateful={"extra": np.random.default_rng(0)}).fit(2, resume=True)
    with pytest.raises(ValueError, match="watches 'loss'"):
        mlp(tmp_path, monitor="loss").fit(2, resume=True)


def test_a_generator_in_stateful_is_saved_and_restored(tmp_path, mlp):
    g = np.random.default_rng(5)
    trainer = mlp(tmp_path, stateful={"g": g})
    trainer.fit(1)
    expected = g.random(3)
    g2 = np.random.default_rng(99)
    mlp(tmp_path, stateful={"g": g2}).fit(1, resume=True)
    np.testing.assert_array_equal(g2.random(3), expected)


def test_progress_bar_and_epoch_lines(tmp_path, mlp, capsys):
    trainer = mlp(tmp_path, progress=True, log=print)
    step = trainer.train_step
    trainer.train_step = lambda batch: (time.sleep(0.03), step(batch))[1]  # past tqdm's 0.1 s refresh interval
    trainer.fit(2)
    out, err = capsys.readouterr()
    assert "epoch 1/2" in err and "items/s" in err and "loss=" in err
    lines = out.splitlines()
    assert lines[0].startswith("epoch 1/2  loss ") and "val_loss" in lines[0] and lines[0].endswith("*")
    mlp(tmp_path / "quiet").fit(2)
    assert capsys.readouterr() == ("", "")


def test_count_weights_the_epoch_mean_and_empty_batches_are_skipped():
    model = rnnbp.nn.Linear(1, 1)
    opt = rnnbp.optim.SGD(model.parameters(), lr=0.0)
    steps = iter([{"loss": 1.0, "count": 3}, {"loss": float("nan"), "count": 0}, {"loss": 5.0, "count": 1, "acc": 1}])
    trainer = Trainer(model, opt, lambda b: next(steps), lambda e, g: range(3), progress=False, log=None)
    (logs,) = trainer.fit(1)
    assert logs["loss"] == 2.0 and logs["acc"] == 1.0 and logs["updates"] == 3


@pytest.mark.parametrize("kwargs, error, match", [
    ({"batches": [1, 2]}, TypeError, "batches must be callable"),
    ({"scheduler_step": "batch"}, ValueError, "scheduler_step must be 'epoch' or 'update'"),
    ({"patience": 0}, ValueError, "patience must be a positive integer"),
    ({"mode": "best"}, ValueError, "mode must be 'min' or 'max'"),
    ({"seed": -1}, ValueError, "Trainer: seed must be an integer >= 0, got -1"),
    ({"stateful": {"x": object()}}, TypeError, "stateful must map"),
    ({"checkpoint_every": 0}, ValueError, "checkpoint_every"),
])
def test_bad_arguments_are_named(kwargs, error, match):
    model = rnnbp.nn.Linear(1, 1)
    opt = rnnbp.optim.SGD(model.parameters(), lr=0.1)
    args = {"batches": lambda e, g: [], **kwargs}
    batches = args.pop("batches")
    with pytest.raises(error, match=match):
        Trainer(model, opt, lambda b: {"loss": 0.0}, batches, **args)


@pytest.mark.parametrize("returned, error, match", [
    (1.0, TypeError, "must return a dict"),
    ({"acc": 1.0}, ValueError, "must return a 'loss' entry"),
    ({"loss": 1.0, "lr": 0.1}, ValueError, r"returned \['lr'\]"),
    ({"loss": 1.0, "count": -1}, ValueError, "'count' must be a finite number >= 0"),
    ({"loss": 1.0, "updates": 1.5}, ValueError, "Trainer: train_step's 'updates' must be an integer, got 1.5"),
    ({"loss": np.ones(2)}, TypeError, r"\['loss'\] must be a number, got an array of shape \(2,\)"),
])
def test_bad_train_step_results_are_named(returned, error, match):
    model = rnnbp.nn.Linear(1, 1)
    opt = rnnbp.optim.SGD(model.parameters(), lr=0.1)
    trainer = Trainer(model, opt, lambda b: returned, lambda e, g: [0], progress=False, log=None)
    with pytest.raises(error, match=match):
        trainer.fit(1)


def test_resume_notices_fewer_batches_than_the_checkpoint_skipped(tmp_path, mlp):
    mlp(tmp_path, callbacks=[StopAt(1, 3)]).fit(2)
    trainer = mlp(tmp_path)
    full = trainer.batches
    trainer.batches = lambda epoch, g: list(full(epoch, g))[:1]
    with pytest.raises(ValueError, match="yields only 1 batches"):
        trainer.fit(2, resume=True)


def test_import_rnnbp_does_not_import_tqdm():
    code = "import sys, rnnbp; assert rnnbp.train.Trainer; sys.exit('tqdm' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_csv_metrics_file_writes_numpy_scalars_as_numbers(tmp_path):
    """A callback's np.float64 / np.float32 / np.int64 must read back as numbers, not as 'np.float64(0.5)'."""
    import numpy as np

    from rnnbp.train.metrics_file import MetricsFile

    path = tmp_path / "metrics.csv"
    record = {"epoch": np.int64(1), "loss": np.float64(0.1 + 0.2), "acc": np.float32(0.75), "nan": np.float64("nan")}
    MetricsFile(str(path)).sync([record])
    with open(path, newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row == {"epoch": "1", "loss": repr(0.1 + 0.2), "acc": "0.75", "nan": "nan"}
    assert float(row["loss"]) == 0.1 + 0.2
