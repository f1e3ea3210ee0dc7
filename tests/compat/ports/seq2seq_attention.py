# GRU encoder-decoder with dot-product attention: reverse a sequence of tokens.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

PAD, BOS, EOS = 0, 1, 2
V, E, H = 12, 8, 16
rng = np.random.default_rng(0)

def make_batch(n, rng):
    lens = rng.integers(3, 7, size=n)
    T = int(lens.max())
    src = np.zeros((n, T), dtype=np.int64)
    tgt_in = np.zeros((n, T + 1), dtype=np.int64)
    tgt_out = np.zeros((n, T + 1), dtype=np.int64)
    for i, L in enumerate(lens):
        s = rng.integers(3, V, size=L)
        src[i, :L] = s
        r = s[::-1]
        tgt_in[i, 0] = BOS; tgt_in[i, 1:L + 1] = r
        tgt_out[i, :L] = r; tgt_out[i, L] = EOS
    return torch.from_numpy(src), torch.from_numpy(tgt_in), torch.from_numpy(tgt_out)

class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(V, E, padding_idx=PAD)
        self.rnn = nn.GRU(E, H, batch_first=True)
    def forward(self, src):
        out, h = self.rnn(self.emb(src))
        return out, h

class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(V, E, padding_idx=PAD)
        self.rnn = nn.GRU(E, H, batch_first=True)
        self.out = nn.Linear(2 * H, V)
    def forward(self, tgt_in, h, enc_out, src_mask):
        dec, h = self.rnn(self.emb(tgt_in), h)               # (B, T', H)
        scores = torch.bmm(dec, enc_out.transpose(1, 2))      # (B, T', T)
        scores = scores.masked_fill(~src_mask.unsqueeze(1), float("-inf"))
        attn = F.softmax(scores, dim=-1)
        ctx = torch.bmm(attn, enc_out)
        return self.out(torch.cat([dec, ctx], dim=-1)), h, attn

class Seq2Seq(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = Encoder(); self.dec = Decoder()
    def forward(self, src, tgt_in):
        enc_out, h = self.enc(src)
        logits, _, _ = self.dec(tgt_in, h, enc_out, src != PAD)
        return logits

    @torch.no_grad()
    def greedy(self, src, max_len=8):
        enc_out, h = self.enc(src)
        mask = src != PAD
        tok = torch.full((src.size(0), 1), BOS, dtype=torch.long)
        outs = []
        for _ in range(max_len):
            logits, h, _ = self.dec(tok, h, enc_out, mask)
            tok = logits.argmax(dim=-1)
            outs.append(tok)
        return torch.cat(outs, dim=1)

def init_det(model):
    r = np.random.default_rng(123)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(r.uniform(-0.3, 0.3, size=tuple(p.shape))))
        model.enc.emb.weight[PAD].zero_(); model.dec.emb.weight[PAD].zero_()

model = Seq2Seq().double()
init_det(model)
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=1)
crit = nn.CrossEntropyLoss(ignore_index=PAD)
val = make_batch(32, np.random.default_rng(99))

for epoch in range(6):
    model.train()
    tot, ntok = 0.0, 0
    for step in range(10):
        src, tin, tout = make_batch(16, rng)
        logits = model(src, tin)
        loss = crit(logits.reshape(-1, V), tout.reshape(-1))
        opt.zero_grad()
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        opt.step()
        n = int((tout != PAD).sum())
        tot += loss.item() * n; ntok += n
    model.eval()
    with torch.no_grad():
        vl = crit(model(val[0], val[1]).flatten(0, 1), val[2].flatten()).item()
    sched.step(vl)
    print(f"epoch {epoch} train {tot / ntok:.12f} val {vl:.12f} gn {gn.item():.10f} lr {opt.param_groups[0]['lr']:.5f}")

ckpt = {"epoch": 6, "model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(), "val": vl}
torch.save(ckpt, "seq2seq_ckpt.pt")
loaded = torch.load("seq2seq_ckpt.pt")
fresh = Seq2Seq().double()
fresh.load_state_dict(loaded["model"])
opt2 = torch.optim.Adam(fresh.parameters(), lr=1e-2)
opt2.load_state_dict(loaded["opt"])
print("loaded epoch", loaded["epoch"], "val", f"{loaded['val']:.12f}", "lr", opt2.param_groups[0]["lr"])
fresh.eval()
pred = fresh.greedy(val[0][:4])
print("pred", pred.tolist())
print("gold", val[2][:4].tolist())
logits = fresh(val[0], val[1])
probs, idx = logits.softmax(-1).topk(2, dim=-1)
print("top2 probs[0,:3]", probs[0, :3].tolist())
print("top2 idx[0,:3]", idx[0, :3].tolist())
mask = val[2] != PAD
acc = ((logits.argmax(-1) == val[2]) & mask).sum().item() / mask.sum().item()
print(f"token acc {acc:.6f}")
_, _, attn = fresh.dec(val[1][:2], fresh.enc(val[0][:2])[1], fresh.enc(val[0][:2])[0], val[0][:2] != PAD)
print("attn row sums", attn.sum(-1)[0].tolist()[:3], "attn[0,0]", [round(a, 10) for a in attn[0, 0].tolist()])
print("final sched", {k: v for k, v in sched.state_dict().items() if k in ("best", "num_bad_epochs", "_last_lr")})
