# Stacked biGRU with CTC loss, greedy decoding, LambdaLR warmup, clipping, and a checkpoint resumed
# for one more epoch.
import os
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.lr_scheduler import LambdaLR

rng = np.random.default_rng(1)
F_DIM, C, H = 10, 6, 12          # features, classes incl. blank 0, hidden
N, T_MAX = 5, 30

# synthetic "utterances": each label emits a few frames of a class-specific pattern
protos = rng.normal(size=(C, F_DIM))
feats = np.zeros((T_MAX, N, F_DIM))
in_lens, targets, tgt_lens = [], [], []
for n in range(N):
    L = int(rng.integers(2, 5))
    lab = rng.integers(1, C, size=L)
    t = 0
    for l in lab:
        d = int(rng.integers(3, 6))
        feats[t:t + d, n] = protos[l] + 0.3 * rng.normal(size=(d, F_DIM))
        t += d + 1
    feats[t:, n] = 0.0
    in_lens.append(t); targets.extend(lab.tolist()); tgt_lens.append(L)
x = torch.from_numpy(feats)                                # (T, N, F) float64
input_lengths = torch.tensor(in_lens, dtype=torch.long)
target_lengths = torch.tensor(tgt_lens, dtype=torch.long)
targets = torch.tensor(targets, dtype=torch.long)          # concatenated 1-D targets
print("x", tuple(x.shape), x.dtype, "in_lens", input_lengths.tolist(), "tgt", targets.tolist())

class Acoustic(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(F_DIM, H, num_layers=2, bidirectional=True)
        self.proj = nn.Linear(2 * H, C)

    def forward(self, x):
        out, _ = self.rnn(x)                               # (T, N, 2H)
        return F.log_softmax(self.proj(out), dim=-1)       # (T, N, C)

def build():
    m = Acoustic().double()
    r = np.random.default_rng(42)
    with torch.no_grad():
        for name, p in m.named_parameters():
            p.copy_(torch.tensor(r.uniform(-0.3, 0.3, size=tuple(p.shape)), dtype=torch.float64))
    return m

model = build()
ctc = nn.CTCLoss(blank=0, zero_infinity=True)
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
warmup = 4
sched = LambdaLR(opt, lr_lambda=lambda s: min(1.0, (s + 1) / warmup))

def greedy_decode(logp, lens):
    best = logp.argmax(dim=-1).t()                         # (N, T)
    hyps = []
    for n in range(best.size(0)):
        seq, prev = [], None
        for k in best[n, : lens[n]].tolist():
            if k != prev and k != 0:
                seq.append(k)
            prev = k
        hyps.append(seq)
    return hyps

def train_epoch(epoch, steps=5):
    model.train()
    for s in range(steps):
        opt.zero_grad()
        logp = model(x)
        loss = ctc(logp, targets, input_lengths, target_lengths)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=5.0)
        opt.step()
        sched.step()
        print(f"epoch {epoch} step {s} loss {loss.item():.12f} gn {float(gn):.12f} lr {sched.get_last_lr()[0]:.6f}")
    return loss.item()

for epoch in range(2):
    train_epoch(epoch)

ckpt = "ctc_ckpt.pt"
torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(), "epoch": 2}, ckpt)

# reference: continue in memory
ref = train_epoch(2)
ref_params = [p.detach().clone() for p in model.parameters()]

# resume from checkpoint into fresh objects
model = build()
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
sched = LambdaLR(opt, lr_lambda=lambda s: min(1.0, (s + 1) / warmup))
state = torch.load(ckpt)
model.load_state_dict(state["model"])
opt.load_state_dict(state["optimizer"])
sched.load_state_dict(state["scheduler"])
start = state["epoch"]
res = train_epoch(start)
diff = max((a - b).abs().max().item() for a, b in zip(ref_params, model.parameters()))
print(f"resume loss equal: {ref == res}  max param diff {diff:.3e}")

model.eval()
with torch.no_grad():
    logp = model(x)
    per_utt = F.ctc_loss(logp, targets, input_lengths, target_lengths, blank=0, reduction="none")
print("per-utterance loss", [f"{v:.10f}" for v in per_utt.tolist()])
hyps = greedy_decode(logp, input_lengths)
refs = torch.split(targets, target_lengths.tolist())
for h, r in zip(hyps, refs):
    print("hyp", h, "ref", r.tolist())
os.remove(ckpt)
