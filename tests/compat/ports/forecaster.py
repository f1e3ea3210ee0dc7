# LSTM time-series forecaster: windows from a synthetic signal, then autoregressive rollout.
import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import TensorDataset, DataLoader

rng = np.random.default_rng(42)
T_total, W, HORIZON = 400, 24, 12
t = np.arange(T_total)
series = np.sin(2 * np.pi * t / 37) + 0.5 * np.sin(2 * np.pi * t / 11) + 0.1 * rng.normal(size=T_total)
exog = np.cos(2 * np.pi * t / 37)[:, None]
feats = np.concatenate([series[:, None], exog], axis=1)          # (T, 2)

full = torch.from_numpy(feats)                                      # float64
mean, std = full[:300].mean(0, keepdim=True), full[:300].std(0, keepdim=True)
full = (full - mean) / std
idx = torch.arange(T_total - W - 1)
windows = torch.stack([full[i:i + W] for i in idx.tolist()])        # (N, W, 2)
targets = torch.stack([full[i + 1:i + W + 1, 0] for i in idx.tolist()])  # next-step target per position
n_train = int(0.75 * windows.shape[0])
train_dl = DataLoader(TensorDataset(windows[:n_train], targets[:n_train]), batch_size=32, shuffle=False)
val_dl = DataLoader(TensorDataset(windows[n_train:], targets[n_train:]), batch_size=64, shuffle=False)
print("windows", tuple(windows.shape), "batches", len(train_dl), "val batches", len(val_dl))

class Forecaster(nn.Module):
    def __init__(self, d_in=2, hidden=20, proj=8):
        super().__init__()
        self.lstm = nn.LSTM(d_in, hidden, num_layers=1, batch_first=True, proj_size=proj)
        self.head = nn.Linear(proj, 1)
        self.w_mix = nn.Parameter(torch.zeros(proj, proj, dtype=torch.float64))
    def forward(self, x, state=None):
        out, state = self.lstm(x, state)                              # (B, T, proj)
        out = out + torch.einsum("btp,pq->btq", out, self.w_mix)
        return self.head(out).squeeze(-1), state

model = Forecaster().double()
r = np.random.default_rng(5)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(r.normal(scale=0.15, size=p.shape)))
print({k: tuple(v.shape) for k, v in model.state_dict().items()})

opt = torch.optim.RMSprop(model.parameters(), lr=3e-3, alpha=0.9)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.7)
huber = nn.HuberLoss(delta=0.5)
mse = nn.MSELoss()
# weight later steps more (warm-up region down-weighted), built with cumsum/flip
ramp = torch.ones(W, dtype=torch.float64).cumsum(0) / W
weights = torch.where(ramp > 0.25, ramp, torch.zeros_like(ramp)).flip(0).flip(0)

for epoch in range(8):
    model.train()
    tot, nb = 0.0, 0
    for xb, yb in train_dl:
        pred, _ = model(xb)
        loss = huber(pred * weights, yb * weights) + 0.1 * mse(pred[:, -1], yb[:, -1])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_value_(model.parameters(), clip_value=0.5)
        opt.step()
        tot += loss.item() * xb.shape[0]; nb += xb.shape[0]
    sched.step()
    model.eval()
    with torch.no_grad():
        se, n = 0.0, 0
        for xb, yb in val_dl:
            pred, _ = model(xb)
            se += ((pred[:, -1] - yb[:, -1]) ** 2).sum().item(); n += yb.shape[0]
    print(f"epoch {epoch} lr {sched.get_last_lr()[0]:.6f} train {tot / nb:.12f} val_rmse {(se / n) ** 0.5:.12f}")

# autoregressive rollout with an LSTMCell copy of the trained weights? use the layer step by step
model.eval()
with torch.no_grad():
    ctx = full[300 - W:300].unsqueeze(0)                               # (1, W, 2)
    pred, state = model(ctx)
    nxt = pred[:, -1:]
    outs = []
    for k in range(HORIZON):
        ex = full[300 + k, 1].view(1, 1)
        step_in = torch.cat([nxt.unsqueeze(-1), ex.unsqueeze(-1)], dim=-1)   # (1, 1, 2)
        y, state = model(step_in, state)
        outs.append(y[:, -1])
        nxt = y[:, -1:]
    roll = torch.stack(outs, dim=1).squeeze(0)
    truth = full[301:301 + HORIZON, 0]
    err = (roll - truth).abs()
    print("rollout", [round(v, 8) for v in roll.tolist()])
    print(f"rollout mae {err.mean():.10f} max {err.max().item():.10f} argmax {err.argmax().item()}")
    h, c = state
    print("state shapes", tuple(h.shape), tuple(c.shape), f"h norm {h.norm():.10f}")
    # casual tensor ops
    lagged = torch.roll(truth, shifts=1, dims=0)
    naive = (truth - lagged)[1:].abs().mean()
    print(f"naive mae {naive.item():.10f}, skill {1 - err.mean().item() / naive.item():.6f}")
    big = err.masked_fill(err < err.median(), 0.0)
    print("nonzero big", int((big > 0).sum()), "cum err", err.cumsum(0)[-1].item())
    grid = roll.unsqueeze(0).expand(3, -1) * torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64).unsqueeze(1)
    print("grid", tuple(grid.shape), grid[:, :2].tolist())
    print("denorm first 3", (roll[:3] * std[0, 0] + mean[0, 0]).tolist())
