"""Multi-task GRU: sequence classification + regression with running input normalisation."""
import io
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

rng = np.random.RandomState(0)
N, T, D, K = 160, 15, 4, 3

x_np = rng.randn(N, T, D) * np.array([1.0, 3.0, 0.5, 2.0]) + np.array([0.5, -1.0, 2.0, 0.0])
cls_np = (x_np[:, :, 0].mean(1) > 0.5).astype(np.int64) + (x_np[:, -3:, 1].mean(1) > -1.0).astype(np.int64)
reg_np = x_np[:, :, 3].cumsum(1)[:, -1] * 0.1 + 0.3 * x_np[:, 0, 2]
X = torch.tensor(x_np, dtype=torch.float64)
Y_cls = torch.tensor(cls_np)
Y_reg = torch.tensor(reg_np, dtype=torch.float64)


class RunningNorm(nn.Module):
    def __init__(self, dim, momentum=0.1, eps=1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.register_buffer("running_mean", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("running_var", torch.ones(dim, dtype=torch.float64))
        self.register_buffer("num_batches", torch.tensor(0, dtype=torch.long))

    def forward(self, x):
        if self.training:
            with torch.no_grad():
                flat = x.reshape(-1, x.shape[-1])
                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * flat.mean(0))
                self.running_var.mul_(1 - self.momentum).add_(self.momentum * flat.var(0, unbiased=True))
                self.num_batches += 1
        return (x - self.running_mean) / torch.sqrt(self.running_var + self.eps)


class MultiTaskGRU(nn.Module):
    def __init__(self, d_in, hidden=20):
        super().__init__()
        self.norm = RunningNorm(d_in)
        self.gru = nn.GRU(d_in, hidden, num_layers=2, batch_first=True)
        self.heads = nn.ModuleDict({
            "cls": nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, K)),
            "reg": nn.Linear(hidden, 1),
        })

    def forward(self, x):
        out, h_n = self.gru(self.norm(x))
        feat = h_n[-1]
        return {name: head(feat) for name, head in self.heads.items()}


model = MultiTaskGRU(D).double()
init = np.random.RandomState(7)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(init.uniform(-0.25, 0.25, size=tuple(p.shape))))

head_params = [p for n, p in model.named_parameters() if n.startswith("heads.")]
body_params = [p for n, p in model.named_parameters() if not n.startswith("heads.")]
opt = torch.optim.Adam([{"params": body_params, "lr": 5e-3},
                        {"params": head_params, "lr": 1e-2, "weight_decay": 1e-4}])
weights = {"cls": 1.0, "reg": 0.5}

train_idx, val_idx = np.arange(128), np.arange(128, N)
for epoch in range(6):
    model.train()
    for i in range(0, len(train_idx), 32):
        idx = torch.from_numpy(train_idx[i:i + 32])
        out = model(X[idx])
        losses = {"cls": F.cross_entropy(out["cls"], Y_cls[idx]),
                  "reg": F.mse_loss(out["reg"].squeeze(-1), Y_reg[idx])}
        loss = sum(weights[k] * v for k, v in losses.items())
        opt.zero_grad()
        loss.backward()
        gnorm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in model.parameters()]))
        gnorm_body = torch.norm(torch.cat([p.grad.flatten() for p in body_params]), p=2)
        opt.step()
    model.eval()
    with torch.no_grad():
        out = model(X[val_idx])
        acc = (out["cls"].argmax(1) == Y_cls[val_idx]).double().mean()
        mae = (out["reg"].squeeze(-1) - Y_reg[val_idx]).abs().mean()
    print(f"epoch {epoch} loss {loss.item():.12f} cls {losses['cls'].item():.12f} reg {losses['reg'].item():.12f} "
          f"gnorm {gnorm.item():.12f} body {gnorm_body.item():.12f} acc {acc.item():.4f} mae {mae.item():.12f}")

print("running_mean", [round(v, 10) for v in model.norm.running_mean.tolist()])
print("running_var", [round(v, 10) for v in model.norm.running_var.tolist()], "batches", int(model.norm.num_batches))
print("lrs", [g["lr"] for g in opt.param_groups], "keys", sorted(model.state_dict().keys())[:5])

buf = io.BytesIO()
torch.save({"model": model.state_dict(), "optim": opt.state_dict()}, buf)
buf.seek(0)
ckpt = torch.load(buf)
fresh = MultiTaskGRU(D).double()
result = fresh.load_state_dict(ckpt["model"], strict=True)
print("missing", result.missing_keys, "unexpected", result.unexpected_keys)
opt2 = torch.optim.Adam([{"params": [p for n, p in fresh.named_parameters() if not n.startswith("heads.")], "lr": 5e-3},
                         {"params": [p for n, p in fresh.named_parameters() if n.startswith("heads.")], "lr": 1e-2,
                          "weight_decay": 1e-4}])
opt2.load_state_dict(ckpt["optim"])
fresh.eval()
with torch.no_grad():
    a, b = model(X[val_idx]), fresh(X[val_idx])
print("roundtrip max diff", max((a[k] - b[k]).abs().max().item() for k in a))
print("num_batches restored", fresh.norm.num_batches.item(), fresh.norm.num_batches.dtype)
bad = dict(ckpt["model"])
bad.pop("norm.running_var")
try:
    fresh.load_state_dict(bad, strict=True)
except RuntimeError as e:
    print("strict error:", str(e).splitlines()[0][:70])
