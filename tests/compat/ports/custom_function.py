# Custom autograd Functions as PyTorch programs write them: a clipped-gradient straight-through
# estimator, a scaled multiply with two outputs and a non-tensor argument, used inside an LSTM model.
import numpy as np
import torch
from torch.autograd import Function


class StraightThroughSign(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sign(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


class ScaledProduct(Function):
    @staticmethod
    def forward(ctx, a, b, scale):
        ctx.scale = scale
        ctx.save_for_backward(a, b)
        return a * b * scale, a + b

    @staticmethod
    def backward(ctx, grad_prod, grad_sum):
        a, b = ctx.saved_tensors
        ga = grad_prod * b * ctx.scale + grad_sum if ctx.needs_input_grad[0] else None
        gb = grad_prod * a * ctx.scale + grad_sum if ctx.needs_input_grad[1] else None
        return ga, gb, None


rng = np.random.default_rng(0)
lstm = torch.nn.LSTM(3, 4).double()
with torch.no_grad():
    for p in lstm.parameters():
        p.copy_(torch.from_numpy(rng.normal(0, 0.4, tuple(p.shape))))
x = torch.from_numpy(rng.normal(size=(5, 2, 3)))
w = torch.from_numpy(rng.normal(size=(4,))).requires_grad_()
out, _ = lstm(x)
prod, total = ScaledProduct.apply(out, w, 0.5)
loss = (StraightThroughSign.apply(prod * 3.0) * total).sum()
loss.backward()
print(f"loss {loss.item():.12f}")
print("w grad", [round(v, 12) for v in w.grad.tolist()])
print("lstm grad norm", round(sum(float((p.grad ** 2).sum()) for p in lstm.parameters()) ** 0.5, 12))
