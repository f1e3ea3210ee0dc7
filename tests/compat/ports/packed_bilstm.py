# Bidirectional 2-layer LSTM classifier over variable-length sequences.
import copy
import numpy as np
import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

D, H, C = 5, 12, 3
gen = np.random.default_rng(7)

def make_data(n, rng):
    lens = rng.integers(4, 15, size=n)
    T = int(lens.max())
    x = np.zeros((n, T, D)); y = np.zeros(n, dtype=np.int64)
    for i, L in enumerate(lens):
        c = rng.integers(0, C)
        base = rng.normal(size=(L, D)) * 0.5
        base[:, c] += np.linspace(0, 2, L)      # class = which channel trends upward
        x[i, :L] = base; y[i] = c
    return (torch.tensor(x, dtype=torch.float64), torch.from_numpy(lens), torch.from_numpy(y))

class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(D, H, num_layers=2, bidirectional=True, batch_first=True)
        self.norm = nn.LayerNorm(2 * H)
        self.head = nn.Sequential(nn.Linear(2 * H, H), nn.Tanh(), nn.Linear(H, C))
    def forward(self, x, lengths):
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, (h_n, c_n) = self.lstm(packed)
        out, out_lens = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))
        mask = (torch.arange(x.size(1)).unsqueeze(0) < out_lens.unsqueeze(1)).unsqueeze(-1)
        pooled = (out * mask).sum(dim=1) / out_lens.unsqueeze(1).to(out.dtype)
        last = torch.cat([h_n[-2], h_n[-1]], dim=-1)      # final layer fwd+bwd
        return self.head(self.norm(pooled + 0.5 * last))

model = Classifier().double()
r = np.random.default_rng(1)
sd = {k: torch.from_numpy(r.normal(scale=0.2, size=tuple(v.shape))) for k, v in model.state_dict().items()}
sd["norm.weight"] = torch.ones(2 * H, dtype=torch.float64); sd["norm.bias"] = torch.zeros(2 * H, dtype=torch.float64)
missing = model.load_state_dict(sd)
print("load result", missing)
print("n params", sum(p.numel() for p in model.parameters() if p.requires_grad))

Xtr, Ltr, Ytr = make_data(96, gen)
Xva, Lva, Yva = make_data(48, gen)
opt = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=1e-2)
EPOCHS = 12
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=EPOCHS, eta_min=1e-4)
crit = nn.CrossEntropyLoss(label_smoothing=0.1)
perm_rng = np.random.default_rng(3)

def evaluate(m, X, L, Y):
    m.eval()
    with torch.no_grad():
        logits = m(X, L)
        loss = nn.functional.cross_entropy(logits, Y).item()
        pred = logits.argmax(1)
        acc = (pred == Y).float().mean().item()
        conf = torch.bincount(Y * C + pred, minlength=C * C).reshape(C, C)
    return loss, acc, conf

best, best_loss, bad, patience = None, float("inf"), 0, 3
for epoch in range(EPOCHS):
    model.train()
    perm = torch.from_numpy(perm_rng.permutation(len(Ytr)))
    running = 0.0
    for i in range(0, len(perm), 32):
        idx = perm[i:i + 32]
        logits = model(Xtr[idx], Ltr[idx])
        loss = crit(logits, Ytr[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        running += loss.item() * idx.numel()
    sched.step()
    vl, va, _ = evaluate(model, Xva, Lva, Yva)
    print(f"epoch {epoch:2d} lr {sched.get_last_lr()[0]:.6f} train {running / len(perm):.12f} val {vl:.12f} acc {va:.4f}")
    if vl < best_loss - 1e-4:
        best_loss, bad = vl, 0
        best = copy.deepcopy(model.state_dict())
    else:
        bad += 1
        if bad >= patience:
            print("early stop at", epoch)
            break

model.load_state_dict(best)
vl, va, conf = evaluate(model, Xva, Lva, Yva)
print(f"best val {vl:.12f} acc {va:.4f}")
print("confusion\n", conf)
per_class = conf.diag().double() / conf.sum(1).clamp(min=1).double()
print("per-class recall", [round(v, 6) for v in per_class.tolist()])
# scatter_add_ alternative for class counts
counts = torch.zeros(C, dtype=torch.long).scatter_add_(0, Yva, torch.ones_like(Yva))
print("class counts", counts.tolist())
# check padded positions of the output are zero and the packed path equals per-sequence runs
with torch.no_grad():
    packed = pack_padded_sequence(Xva[:4], Lva[:4], batch_first=True, enforce_sorted=False)
    out, lens = model.lstm(packed)[0], None
    out, lens = pad_packed_sequence(out, batch_first=True)
    print("batch_sizes", packed.batch_sizes.tolist()[:6], "lens", lens.tolist(), "out shape", tuple(out.shape))
    single = model.lstm(Xva[:1, : int(Lva[0])])[0]
    print("max |packed - single|", (out[0, : int(Lva[0])] - single[0]).abs().max().item() < 1e-12)
    print("pad zeros", out[1, int(lens[1]):].abs().sum().item() if lens[1] < out.shape[1] else 0.0)
print("sched state", {k: v for k, v in sched.state_dict().items() if k in ("last_epoch", "T_max", "eta_min")})
