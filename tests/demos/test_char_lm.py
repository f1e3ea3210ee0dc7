"""demos/char_lm.py: the --quick run learns, saves, reloads and samples; its pieces on their own."""
import importlib.util
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

import rnnbp
from rnnbp import optim

from demo_loader import load_demo

REPO = Path(__file__).resolve().parents[2]
demo = load_demo("char_lm.py")


def _data_root():
    """The data root holding tinyshakespeare/input.txt: $RNNBP_DATA, else ../shared/data, else datasets/."""
    candidates = [os.environ.get("RNNBP_DATA"), REPO.parent / "shared" / "data", REPO / "datasets"]
    for root in candidates:
        if root and (Path(root) / "tinyshakespeare" / "input.txt").is_file():
            return str(root)
    pytest.skip("tiny-shakespeare not found (set RNNBP_DATA to a folder holding tinyshakespeare/input.txt)")


def _leaves(state):
    return [t for s in state for t in _leaves(s)] if isinstance(state, (tuple, list)) else [state]


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_quick_run_learns_saves_reloads_and_samples(tmp_path, cell):
    out = tmp_path / "char_lm.npz"
    result = demo.main(["--quick", "--cell", cell, "--no-progress", "--data", _data_root(), "--out", str(out)])
    # 60 updates of a 64-unit GRU or LSTM already beat predicting each character by its frequency.
    assert result["val_loss"] < result["unigram_loss"] - 0.3 < math.log(65)
    assert result["val_bpc"] == pytest.approx(result["val_loss"] / math.log(2))
    assert result["updates"] == demo.QUICK["max_updates"]
    assert result["reloaded_identical"]
    run_dir = out.with_suffix("")
    flow = [json.loads(line)["update"] for line in (run_dir / "grad_flow.jsonl").read_text().splitlines()]
    assert flow == [u for u in range(result["updates"]) if u & (u - 1) == 0]  # GradFlowFile's default: 0, 1, 2, 4, ...
    if importlib.util.find_spec("matplotlib") is not None:
        assert str(run_dir / "gradient_flow.png") in result["pictures"]

    model, vocab, cfg = demo.load_model(out)
    assert vocab == result["vocab"] and (cfg.cell, cfg.hidden) == (cell, demo.QUICK["hidden"])
    x = vocab.encode("First Citizen:\nBefore we proceed")[:, None]
    trained = result["model"].eval()
    with rnnbp.no_grad():
        (a, ha), (b, hb) = trained(x), model(x)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    for s, t in zip(_leaves(ha), _leaves(hb), strict=True):   # h, and c for an LSTM
        np.testing.assert_array_equal(s.numpy(), t.numpy())

    text = result["sample"]
    assert text.startswith(cfg.prompt) and len(text) == len(cfg.prompt) + demo.QUICK["sample_chars"]
    assert set(text) <= set(vocab.chars)

    again = demo.main(["sample", "--load", str(out), "--prompt", "KING", "--chars", "30", "--seed", "3"])["sample"]
    assert len(again) == 34 and again.startswith("KING")
    assert again == demo.sample(model, vocab, "KING", 30, 0.8, np.random.default_rng(3))


def test_sample_greedy_is_deterministic_and_checks_arguments():
    rnnbp.manual_seed(0)
    vocab = rnnbp.data.CharVocab("abc ")
    model = demo.CharRNN(len(vocab), demo.Config(cell="gru", embed=4, hidden=8, layers=1, dropout=0.0))
    greedy = demo.sample(model, vocab, "ab", 12, temperature=0.0)
    assert greedy == demo.sample(model, vocab, "ab", 12, temperature=0.0) and len(greedy) == 14
    with pytest.raises(ValueError, match="prompt"):
        demo.sample(model, vocab, "", 5)
    with pytest.raises(ValueError, match="temperature"):
        demo.sample(model, vocab, "a", 5, temperature=-1.0)


@pytest.mark.parametrize("n,batch,burn_in", [(10, 3, 2), (12, 4, 0), (7, 7, 5), (5, 8, 1)])
def test_evaluation_windows_score_every_character_once_from_its_past(n, batch, burn_in):
    ids = np.arange(100)
    start = 50
    x, y, mask = demo.evaluation_windows(ids, start, start + n, batch, burn_in)
    assert x.shape == y.shape == mask.shape and x.shape[1] == batch
    np.testing.assert_array_equal(x, y - 1)                     # each input is the character before its target
    np.testing.assert_array_equal(np.diff(y, axis=0)[np.diff(y, axis=0) != 0], 1)  # columns read forward
    assert sorted(y[mask > 0].tolist()) == list(range(start, start + n))
    assert not mask[:burn_in].any()                              # the burn-in scores nothing
    with pytest.raises(ValueError, match="burn_in"):
        demo.evaluation_windows(ids, 3, 10, 2, burn_in=3)


def test_budget_cosine_warms_up_decays_and_ends_by_updates_or_time():
    opt = optim.SGD([rnnbp.nn.Parameter(np.zeros(1, dtype=np.float32))], lr=1.0)
    schedule = demo.BudgetCosineLR(opt, warmup=4, total_updates=20, min_ratio=0.1)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(20):
        schedule.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[0] == pytest.approx(0.2)                          # warm-up: (0 + 1) / (4 + 1) of the peak
    assert all(a < b for a, b in zip(lrs[:4], lrs[1:5]))        # rising through the warm-up
    assert lrs[10] == pytest.approx(0.55) and lrs[20] == pytest.approx(0.1)  # half way down; the floor
    assert schedule.progress() == 1.0
    assert all(b <= a for a, b in zip(lrs[4:], lrs[5:]))        # no rise after the warm-up

    timed = demo.BudgetCosineLR(opt, warmup=0, total_updates=10**6, seconds=100.0)
    state = timed.state_dict()
    state["spent"] = 100.0                                       # as if resumed with the budget used up
    timed.load_state_dict(state)
    assert timed.progress() == 1.0
    timed.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
