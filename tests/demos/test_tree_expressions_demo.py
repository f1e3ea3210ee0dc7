"""demos/tree_expressions.py: the --quick run learns, reports each depth; batching changes no logit; bad args stop."""
import math

import numpy as np
import pytest

from rnnbp.data import expression_set
from rnnbp.structure import Tree, TreeBatch

from demo_loader import load_demo


@pytest.fixture(scope="module")
def demo():
    return load_demo("tree_expressions.py")


@pytest.fixture(scope="module")
def quick(demo):
    return demo.main(["--quick", "--quiet"])


def test_quick_run_trains_both_models_and_scores_every_depth(demo, quick):
    cfg, runs, splits = quick["config"], quick["runs"], quick["splits"]
    assert list(runs) == ["tree", "lstm"]
    updates = cfg.epochs * math.ceil(cfg.train_size / cfg.batch_size)
    for kind, r in runs.items():
        assert r["updates"] == updates, kind                      # the same updates for both
        assert len(r["losses"]) == cfg.epochs and r["losses"][-1] < r["losses"][0], (kind, r["losses"])
        assert set(r["val"]["by_depth"]) == {1, 2, 3, 4} and set(r["test"]) == set(cfg.test_depths)
        # The reported overall accuracy is the mean over the depths (equal counts per depth).
        assert r["val"]["acc"] == pytest.approx(np.mean(list(r["val"]["by_depth"].values())))
    assert all(np.all(s.depths == d) and len(s) == cfg.test_size for d, s in splits.test.items())
    base = quick["baseline"]
    assert base["value"] == splits.train.majority()[0]
    assert base["val"]["acc"] == pytest.approx(np.mean(splits.val.values == base["value"]))
    table = demo.results_table(runs, base, cfg).splitlines()
    assert table[1].split() == ["model", "params", "updates", "seconds", "val", "d=1", "d=2", "d=3", "d=4", "|",
                                "d=5", "d=6"]
    tree_row = next(line.split() for line in table if line.startswith("Tree-LSTM"))
    assert tree_row[4:] == [f"{100 * runs['tree']['val']['acc']:.1f}"] + \
        [f"{100 * a:.1f}" for a in runs["tree"]["val"]["by_depth"].values()] + ["|"] + \
        [f"{100 * runs['tree']['test'][d]['acc']:.1f}" for d in (5, 6)]


def test_quick_tree_lstm_is_well_above_chance(quick):
    """500 updates take the Tree-LSTM well above the 10 % of chance and of the majority answer on validation
    expressions it never saw (29 % when written; 200 of them, so one standard error is about 3 points)."""
    tree = quick["runs"]["tree"]
    assert tree["val"]["acc"] > 0.2 and tree["val"]["acc"] > 2 * quick["baseline"]["val"]["acc"]


def test_a_batch_gives_each_expression_the_logits_it_gets_alone(demo):
    """Trees of different shapes share TreeBatch levels, sequences share padding: neither changes a logit."""
    cfg = demo.quick_config()
    data = expression_set(6, (0, 5), np.random.default_rng(0))
    for kind in ("tree", "lstm"):
        model = demo.build_model(kind, cfg)
        reader = demo.Reader(kind, data)
        together = demo.logits_of(model, reader, batch=6)
        alone = np.concatenate([demo.logits_of(model, demo.Reader(kind, data.subset([i])), batch=1)
                                for i in range(len(data))])
        np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-6, err_msg=kind)


def test_node_ids_follow_the_token_vocabulary(demo):
    reader = demo.Reader("tree", expression_set(5, 3, np.random.default_rng(0)))
    for tree, ids in zip(reader.trees, reader.ids):
        assert [demo.EXPRESSION_TOKENS[i] for i in ids] == [str(v) for v in tree.values]
    batch = TreeBatch([Tree.from_nested(("*", ("-", 3, 4), 7), labelled=True)])
    assert [demo.NODE_ID[v] for v in batch.values] == [3, 4, 11, 7, 12]


@pytest.mark.parametrize("argv, message", [
    (["--lr", "0"], "--lr must be positive"),
    (["--train-depth", "4", "2"], "LOW must not exceed HIGH"),
    (["--test-depths", "5", "5"], "must be distinct"),
    (["--epochs", "0"], "must be a positive integer"),
    (["--models", "gru"], "invalid choice"),
])
def test_bad_arguments_stop_with_a_message(demo, argv, message, capsys):
    with pytest.raises(SystemExit):
        demo.main(argv)
    assert message in capsys.readouterr().err
