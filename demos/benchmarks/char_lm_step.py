"""Benchmark: the char-LM training step in characters per second, public API only, so that it runs on any revision.

The model of ``demos/char_lm.py``'s defaults: Embedding 65 x 64 -> 2-layer GRU (H=384, dropout 0.1)
-> Linear, B=64 streams x k1=64 characters, AdamW, gradient-norm clipping at 1, the state carried
from step to step; random ids (a step's time does not depend on the text). Prints one JSON line
with the median over the timed steps. Compare revisions in alternating processes, one thread each:

    git worktree add /tmp/old REV
    for i in 1 2; do
      (cd /tmp && OPENBLAS_NUM_THREADS=1 PYTHONPATH=/tmp/old python /path/to/char_lm_step.py 15)
      OPENBLAS_NUM_THREADS=1 python demos/benchmarks/char_lm_step.py 15
    done
"""
import json
import sys
import time

import numpy as np

import rnnbp
from rnnbp import nn, optim
from rnnbp.nn import functional as F

V, E, H, B, K = 65, 64, 384, 64, 64


def main(steps: int = 20) -> dict:
    rnnbp.manual_seed(0)
    emb, rnn, head = nn.Embedding(V, E), nn.GRU(E, H, 2, dropout=0.1), nn.Linear(H, V)
    params = list(emb.parameters()) + list(rnn.parameters()) + list(head.parameters())
    opt = optim.AdamW(params, lr=3e-3, weight_decay=0.0)
    rng = np.random.default_rng(0)
    state = [None]

    def step():
        ids = rng.integers(0, V, (K + 1, B))
        out, h = rnn(emb(rnnbp.tensor(ids[:-1])), state[0])
        loss = F.cross_entropy(head(out).reshape(-1, V), ids[1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        state[0] = h.detach()

    for _ in range(5):
        step()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    median = float(np.median(times))
    result = {"chars_per_s": B * K / median, "ms": 1e3 * median}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
