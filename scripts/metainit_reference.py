"""MetaInit (Dauphin & Schoenholz 2019) in PyTorch, with exact double backward: the
cross-check for sigprop's `metainit`, which takes the same slope by finite differences.

The network is sigprop's MLP: `depth` square layers of `width`, zero biases, Xavier-normal
weights, the activation after every layer, and the cross-entropy head (LeCun-normal,
10 classes, random labels) on Gaussian inputs. Each step draws a batch, takes the gradient
quotient GQ = mean |(g - Hg) / (g + eps sign g) - 1| over every parameter, its slope in each
weight tensor's log-norm, and moves the log-norm by signSGD with momentum (sigprop's
variant; `--reference-norm` steps the norm itself by lr, as the authors' code does).

Prints GQ before and after, each tensor's scale over its draw, and the per-layer change of
Var(z) and Var(dL/dz) measured on a fresh batch (exp of the mean log ratio last/first over
depth - 1 layers), the numbers `sigprop run --loss cross-entropy --init metainit` reports.

    python3 scripts/metainit_reference.py --activation sigmoid --depth 30 --width 256
"""
import argparse
import math

import torch
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--activation", default="sigmoid")
p.add_argument("--depth", type=int, default=30)
p.add_argument("--width", type=int, default=256)
p.add_argument("--batch", type=int, default=128)
p.add_argument("--steps", type=int, default=100)
p.add_argument("--lr", type=float, default=0.01)
p.add_argument("--momentum", type=float, default=0.9)
p.add_argument("--eps", type=float, default=1e-5)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--reference-norm", action="store_true")
a = p.parse_args()
torch.manual_seed(a.seed)
act = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}[a.activation]
D, W, B = a.depth, a.width, a.batch
Ws = [torch.randn(W, W) * math.sqrt(2.0 / (W + W)) for _ in range(D)]
head = torch.randn(W, 10) / math.sqrt(W)
bs = [torch.zeros(W) for _ in range(D)]
base = [w.clone() for w in Ws + [head]]


def forward(mats, biases, x, keep=None):
    h = x
    for l in range(D):
        z = h @ mats[l] + biases[l]
        if keep is not None:
            z.retain_grad()
            keep.append(z)
        h = act(z)
    return h @ mats[D]


def loss_of(mats, biases, x, y):
    return F.cross_entropy(forward(mats, biases, x), y)


def gq(mats, biases, x, y):
    params = mats + biases
    g = torch.autograd.grad(loss_of(mats, biases, x, y), params, create_graph=True)
    hg = torch.autograd.grad(sum((t * t).sum() / 2 for t in g), params, create_graph=True)
    total = sum(
        ((t - h) / (t + a.eps * (2 * (t >= 0).float() - 1).detach()) - 1).abs().sum()
        for t, h in zip(g, hg)
    )
    return total / sum(t.numel() for t in params)


def batch():
    return torch.randn(B, W), torch.randint(0, 10, (B,))


def measure(mats):
    x, y = batch()
    zs = []
    m = [t.clone().requires_grad_(True) for t in mats]
    loss_of_keep = F.cross_entropy(forward(m, bs, x, keep=zs), y)
    loss_of_keep.backward()
    fv = [z.var().item() for z in zs]
    bv = [z.grad.var().item() for z in zs]
    return (fv[-1] / fv[0]) ** (1 / (D - 1)), (bv[0] / bv[-1]) ** (1 / (D - 1))


mats = Ws + [head]
logs = [0.0] * len(mats)
vel = [0.0] * len(mats)
x0, y0 = batch()


def scaled():
    return [t * math.exp(l) for t, l in zip(base, logs)]


def gq_at(mats, x, y):
    m = [t.clone().requires_grad_(True) for t in mats]
    b = [t.clone().requires_grad_(True) for t in bs]
    return gq(m, b, x, y).item()


before = gq_at(scaled(), x0, y0)
print("base: fwd, bwd per layer", measure(scaled()))
for step in range(a.steps):
    x, y = batch()
    m = [t.clone().requires_grad_(True) for t in scaled()]
    b = [t.clone().requires_grad_(True) for t in bs]
    q = gq(m, b, x, y)
    grads = torch.autograd.grad(q, m)
    for j, (t, g) in enumerate(zip(m, grads)):
        s = torch.sign((t.detach() * g).sum()).item()
        vel[j] = a.momentum * vel[j] - a.lr * s
        if a.reference_norm:
            n = base[j].norm().item() * math.exp(logs[j])
            logs[j] = math.log(max(n + vel[j], 1e-12) / base[j].norm().item())
        else:
            logs[j] += vel[j]
print("GQ", before, "->", gq_at(scaled(), x0, y0))
print("scales", [round(math.exp(l), 3) for l in logs])
print("metainit: fwd, bwd per layer", measure(scaled()))
