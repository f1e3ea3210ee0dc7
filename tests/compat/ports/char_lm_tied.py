# Character-level LSTM language model with tied weights, gradient accumulation, per-group AdamW,
# model.apply initialisation, a buffer, forward hooks and top-k sampling.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

rng = np.random.default_rng(0)
text = "the quick brown fox jumps over the lazy dog. " * 6
chars = sorted(set(text))
stoi = {c: i for i, c in enumerate(chars)}
itos = {i: c for c, i in stoi.items()}
V = len(chars)
data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
print(f"vocab {V}, corpus {data.numel()} chars, dtype {data.dtype}")

class CharLM(nn.Module):
    def __init__(self, V, H):
        super().__init__()
        self.encoder = nn.Embedding(V, H)
        self.rnn = nn.LSTM(H, H, num_layers=2, batch_first=True)
        self.norm = nn.LayerNorm(H)
        self.decoder = nn.Linear(H, V)
        self.decoder.weight = self.encoder.weight          # weight tying
        self.register_buffer("step_count", torch.zeros((), dtype=torch.long))

    def forward(self, x, state=None):
        emb = self.encoder(x)
        out, state = self.rnn(emb, state)
        out = self.norm(out)
        return self.decoder(out), state

H = 16
model = CharLM(V, H).double()

# hash(name) is randomised per process; use a stable seed instead
def init_fn(m):
    for name, p in m.named_parameters(recurse=False):
        seed = sum(ord(c) for c in type(m).__name__ + name) + p.numel()
        vals = np.random.default_rng(seed).uniform(-0.1, 0.1, tuple(p.shape))
        with torch.no_grad():
            p.copy_(torch.from_numpy(vals))
    if isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)

model.apply(init_fn)
print("tied:", model.decoder.weight is model.encoder.weight,
      "n params", sum(p.numel() for p in model.parameters()))

norms = {}
def hook(mod, inp, out):
    t = out[0] if isinstance(out, tuple) else out
    norms[type(mod).__name__] = t.detach().norm().item()
h1 = model.rnn.register_forward_hook(hook)
h2 = model.norm.register_forward_hook(hook)

decay, no_decay = [], []
for n, p in model.named_parameters():
    (no_decay if n.endswith("bias") or "norm" in n else decay).append(p)
print("groups:", len(decay), len(no_decay))
opt = torch.optim.AdamW([
    {"params": decay, "weight_decay": 0.01, "lr": 3e-3},
    {"params": no_decay, "weight_decay": 0.0, "lr": 5e-3},
])

B, T = 4, 12
def get_batch(step, micro):
    r = np.random.default_rng(100 * step + micro)
    starts = r.integers(0, data.numel() - T - 1, size=B)
    x = torch.stack([data[s:s + T] for s in starts])
    y = torch.stack([data[s + 1:s + T + 1] for s in starts])
    return x, y

accum = 2
for step in range(8):
    opt.zero_grad()
    total = 0.0
    for micro in range(accum):
        x, y = get_batch(step, micro)
        logits, _ = model(x)
        loss = F.cross_entropy(logits.view(-1, V), y.view(-1)) / accum
        loss.backward()
        total += loss.item()
    gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    model.step_count += 1
    vec = torch.nn.utils.parameters_to_vector(model.parameters())
    print(f"step {step} loss {total:.10f} gnorm {gn.item():.10f} |theta| {vec.norm().item():.10f} "
          f"lstm_norm {norms['LSTM']:.10f} ln_norm {norms['LayerNorm']:.10f}")
print("step_count buffer:", model.step_count.item(), "buffers:", [n for n, _ in model.named_buffers()])
h1.remove(); h2.remove()

@torch.no_grad()
def sample(prompt, n, temperature=0.8, top_k=5):
    model.eval()
    x = torch.tensor([[stoi[c] for c in prompt]])
    logits, state = model(x)
    logits = logits[:, -1, :]
    draws = np.random.default_rng(7).uniform(size=n)
    out = []
    for i in range(n):
        scaled = logits / temperature
        v, _ = torch.topk(scaled, top_k)
        scaled[scaled < v[:, [-1]]] = -float("inf")
        probs = F.softmax(scaled, dim=-1)
        cdf = torch.cumsum(probs, dim=-1)
        idx = int((cdf[0] < draws[i]).sum().item())
        idx = min(idx, V - 1)
        out.append(itos[idx])
        logits, state = model(torch.tensor([[idx]]), state)
        logits = logits[:, -1, :]
    model.train()
    return prompt + "".join(out)

print("sample:", repr(sample("the ", 30)))
vec = torch.nn.utils.parameters_to_vector(model.parameters())
torch.nn.utils.vector_to_parameters(vec * 1.0, model.parameters())
print("vec numel", vec.numel(), "sum", f"{vec.sum().item():.12f}")
