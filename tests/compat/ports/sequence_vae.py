# Recurrent VAE: LSTM encoder, reparameterisation with given noise, teacher-forced LSTM decoder,
# KL + MSE, Adam(amsgrad) and centered RMSprop, eval and free-running generation.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

rng = np.random.default_rng(3)
N, T, D, H, Z = 16, 20, 3, 24, 4
t = np.linspace(0, 2 * np.pi, T)
phase = rng.uniform(0, 2 * np.pi, size=(N, 1))
freq = rng.uniform(0.5, 2.0, size=(N, 1))
X = np.stack([np.sin(freq * t + phase), np.cos(freq * t + phase), 0.1 * rng.normal(size=(N, T))], -1)
data = torch.tensor(X, dtype=torch.float64)                      # (N, T, D)
assert isinstance(data, torch.Tensor) and data.dim() == 3
print(f"data {tuple(data.shape)} numel={data.numel()} contiguous={data.is_contiguous()}")

class SeqVAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.LSTM(D, H, batch_first=True, bidirectional=True)
        self.to_stats = nn.Linear(2 * H, 2 * Z)
        self.z_to_h = nn.Linear(Z, 2 * H)
        self.dec = nn.LSTM(D + Z, H, batch_first=True)
        self.out = nn.Linear(H, D)

    def encode(self, x):
        _, (h, _) = self.enc(x)                                  # h: (2, N, H)
        h = h.permute(1, 0, 2).contiguous().view(x.size(0), -1)  # (N, 2H)
        mu, logvar = torch.chunk(self.to_stats(h), 2, dim=-1)
        return mu, logvar.clamp(min=-8.0, max=8.0)

    def decode(self, z, x):
        h0, c0 = torch.split(torch.tanh(self.z_to_h(z)), H, dim=-1)
        state = (h0.unsqueeze(0).contiguous(), c0.unsqueeze(0).contiguous())
        prev = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)   # teacher forcing
        zt = z.unsqueeze(1).expand(-1, x.size(1), -1)
        y, _ = self.dec(torch.cat([prev, zt], dim=-1), state)
        return self.out(y)

    def forward(self, x, eps):
        mu, logvar = self.encode(x)
        z = mu + eps * torch.exp(0.5 * logvar)
        return self.decode(z, x), mu, logvar

model = SeqVAE().double()
with torch.no_grad():
    r = np.random.default_rng(11)
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(r.normal(0, 0.15, size=tuple(p.shape))))

def loss_fn(recon, x, mu, logvar, beta):
    rec = F.mse_loss(recon, x, reduction="sum") / x.size(0)
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / x.size(0)
    return rec + beta * kld, rec, kld

opt = torch.optim.Adam(model.parameters(), lr=5e-3, amsgrad=True)
opt2 = torch.optim.RMSprop([model.out.weight], lr=1e-4, alpha=0.9, momentum=0.5, centered=True)
noise = np.random.default_rng(5).normal(size=(40, N, Z))
idx = torch.arange(N)
for step in range(12):
    model.train()
    batch_idx = torch.stack([idx[(step * 4 + k) % N] for k in range(8)])
    x = data[batch_idx]
    eps = torch.from_numpy(noise[step, :8])
    beta = min(1.0, step / 6)
    recon, mu, logvar = model(x, eps)
    loss, rec, kld = loss_fn(recon, x, mu, logvar, beta)
    opt.zero_grad(); opt2.zero_grad()
    loss.backward()
    opt.step(); opt2.step()
    if step % 3 == 0:
        print(f"step {step:2d} loss {loss.item():.12f} rec {rec.item():.12f} kld {kld.item():.12f}")

model.eval()
with torch.no_grad():
    recon, mu, logvar = model(data, torch.zeros(N, Z, dtype=torch.float64))
    loss, rec, kld = loss_fn(recon, data, mu, logvar, 1.0)
    print(f"eval loss {loss.item():.12f} rec {rec.item():.12f} kld {kld.item():.12f}")
    print("mu[0]:", mu[0])
    err = (recon - data).pow(2).mean(dim=(1, 2))
    worst = torch.argmax(err).item()
    print(f"worst seq {worst} err {err[worst]:.10f} requires_grad={recon.requires_grad}")
    # generate from the prior with a fixed noise, free-running decoder
    z = torch.from_numpy(noise[30, :2])
    h0, c0 = torch.split(torch.tanh(model.z_to_h(z)), H, dim=-1)
    state = (h0[None].contiguous(), c0[None].contiguous())
    prev = torch.zeros(2, 1, D, dtype=torch.float64)
    outs = []
    for _ in range(T):
        y, state = model.dec(torch.cat([prev, z[:, None, :]], -1), state)
        prev = model.out(y)
        outs.append(prev)
    gen = torch.cat(outs, dim=1)
    pt = gen.permute(2, 0, 1)
    print("gen", tuple(gen.shape), "permuted contiguous:", pt.is_contiguous(),
          f"mean {gen.mean().item():.12f} max {gen.max().item():.12f}")
    print("norms per dim", [round(v, 10) for v in gen.norm(dim=(0, 1)).tolist()])
model.train()
print("training mode:", model.training, model.enc.training)
total = sum(p.numel() for p in model.parameters() if p.requires_grad)
print(f"params {total}, loss tensor: {loss}")
