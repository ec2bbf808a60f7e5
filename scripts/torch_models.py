"""PyTorch models exported to ONNX for sigprop's `--model` (issue 31), with the numbers the
tests compare against (tests never need PyTorch):

- `experiments/models/vit_blocks.onnx`: a pre-LN transformer block stack (width 32, 4 heads,
  8 tokens, 2 blocks, attention written out as MatMul/Softmax, a GELU MLP of ratio 4);
- `experiments/models/resnet_small.onnx`: a residual CNN on 3 x 8 x 8 images with batch
  normalization (a stem convolution, two residual blocks of two 3x3 convolutions each
  followed by BatchNorm, max pooling, a global average, a Linear head of 10); its running
  statistics are those of 20 training-mode passes on N(0, 1) batches;
- `experiments/models/digits_cnn.onnx`: a small CNN trained on the UCI digits
  (experiments/data/digits.csv, 1 x 8 x 8 pixels, 300 Adam steps): the pretrained body of
  the transfer-learning suite;
- `experiments/models/tiny_lm.onnx`: a causal language model on token ids (an `nn.Embedding`
  of 64 tokens by 32 features plus a learned position table of 8 tokens, two pre-LN blocks
  whose attention masks future keys with `masked_fill` (ONNX `Where`), a final LayerNorm
  and a Linear head of 64 logits per token);
- `experiments/models/written_out.onnx`: LayerNorm, the exact GELU and SiLU written out as
  elementwise operators (ReduceMean, Pow, Sqrt, Erf, Sigmoid, Mul) and a softmax, for the
  test of the file's own weights.

Each is exported with a symbolic batch (dynamo exporter, opset 20; the CNNs without the
exporter's optimizer, which would fold their BatchNorm into the convolutions) and its
PyTorch default initialization (the trained weights for the digits). Next to each,
`<name>.io.json` holds an input of 4 samples and PyTorch's output on it in evaluation mode
(the model's own weights and running statistics: `sigprop --init model --bn-stats model`
must give the same output).

`crates/cli/tests/fixtures/torch_models.json` holds, for each model and for He-normal and
Xavier-normal weights with zero biases (LayerNorm gains 1, biases 0; the language model's
token and position tables N(0, 1), as sigprop draws tables under a fan-scaled rule), the
mean over 32 seeds of every Linear/Conv output's population variance (sigprop's per-site
`preact_var`, the sites in the order they run) and its standard error, on N(0, 1) inputs
(token ids uniform on the vocabulary) of batch 16.

    python3 scripts/torch_models.py           # a few seconds on 2 cores; needs torch, onnx, onnxscript
    python3 scripts/torch_models.py tiny_lm   # only the models named (the others' files untouched)
"""
import json
import math
import pathlib
import sys

import torch
import torch.nn as nn

torch.set_num_threads(2)
ROOT = pathlib.Path(__file__).resolve().parent.parent
MODELS = ROOT / "experiments/models"
FIXTURE = ROOT / "crates/cli/tests/fixtures/torch_models.json"
SEEDS, BATCH = 32, 16


class Block(nn.Module):
    """Pre-LN: x + o(attention(ln1(x))), then x + fc2(gelu(fc1(ln2(x))))."""

    def __init__(self, d, heads, causal_tokens=0):
        super().__init__()
        self.heads = heads
        # Causal: the future keys' scores at -inf (a constant mask, ONNX Where).
        self.causal = causal_tokens > 0
        if self.causal:
            mask = torch.triu(torch.ones(causal_tokens, causal_tokens, dtype=torch.bool), 1)
            self.register_buffer("mask", mask)
        self.ln1 = nn.LayerNorm(d)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.ln2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)

    def forward(self, x):
        b, t, d = x.shape
        h = self.heads
        dh = d // h
        u = self.ln1(x)
        q = self.q(u).reshape(b, t, h, dh).transpose(1, 2)
        k = self.k(u).reshape(b, t, h, dh).transpose(1, 2)
        v = self.v(u).reshape(b, t, h, dh).transpose(1, 2)
        s = q @ k.transpose(-1, -2) / math.sqrt(dh)
        if self.causal:
            s = s.masked_fill(self.mask, float("-inf"))
        a = torch.softmax(s, dim=-1)
        o = (a @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.o(o)
        return x + self.fc2(nn.functional.gelu(self.fc1(self.ln2(x))))


class Residual(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c1 = nn.Conv2d(c, c, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(c)
        self.c2 = nn.Conv2d(c, c, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        return x + self.bn2(self.c2(torch.relu(self.bn1(self.c1(x)))))


class ResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.blocks = nn.Sequential(Residual(8), Residual(8))
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        x = self.blocks(torch.relu(self.bn(self.stem(x))))
        x = self.pool(x).mean((2, 3))
        return self.head(x)


class DigitsCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(16)
        self.c2 = nn.Conv2d(16, 16, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.c3 = nn.Conv2d(16, 32, 3, padding=1)
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        x = torch.relu(self.c2(torch.relu(self.bn(self.c1(x)))))
        x = torch.relu(self.c3(self.pool(x)))
        return self.head(x.mean((2, 3)))


def digits():
    rows = (ROOT / "experiments/data/digits.csv").read_text().splitlines()[1:]
    values = [[float(v) for v in r.split(",")] for r in rows]
    x = torch.tensor([v[:64] for v in values]).reshape(-1, 1, 8, 8)
    y = torch.tensor([int(v[64]) for v in values])
    return x, y


def trained_digits_cnn():
    torch.manual_seed(0)
    m = DigitsCnn()
    x, y = digits()
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for step in range(300):
        idx = torch.randint(0, len(x), (128,))
        loss = nn.functional.cross_entropy(m(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    with torch.no_grad():
        acc = (m(x).argmax(1) == y).float().mean().item()
    print(f"digits_cnn: training accuracy {acc:.3f}")
    return m


class WrittenOut(nn.Module):
    """LayerNorm as ReduceMean, Sub, Pow, Sqrt, Div; the exact GELU through Erf; SiLU as
    Sigmoid times Mul; a softmax over features: the elementwise operators of the ONNX
    front end, on [8 tokens, 16 features]."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.fc2 = nn.Linear(32, 16)
        self.gain = nn.Parameter(torch.rand(16) + 0.5)

    def forward(self, x):
        mean = x.mean(-1, keepdim=True)
        var = (x - mean).pow(2).mean(-1, keepdim=True)
        u = (x - mean) / torch.sqrt(var + 1e-5) * self.gain
        h = self.fc1(u)
        h = 0.5 * h * (1.0 + torch.erf(h / math.sqrt(2.0)))
        h = self.fc2(h)
        h = h * torch.sigmoid(h)
        return torch.softmax(h, dim=-1) + x


class CumSum(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x).cumsum(1)


def vit():
    return nn.Sequential(Block(32, 4), Block(32, 4))


class TinyLM(nn.Module):
    """Token ids [batch, 8] -> logits [batch, 8, 64]."""

    def __init__(self, vocab=64, d=32, tokens=8):
        super().__init__()
        self.tokens = nn.Embedding(vocab, d)
        self.positions = nn.Parameter(torch.randn(tokens, d) * 0.02)
        self.blocks = nn.Sequential(Block(d, 4, tokens), Block(d, 4, tokens))
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)

    def forward(self, ids):
        return self.head(self.ln(self.blocks(self.tokens(ids) + self.positions)))


# A sample's shape, and the vocabulary where the input is token ids.
MODELS_OF = {
    "vit_blocks": (vit, (8, 32), None),
    "resnet_small": (ResNet, (3, 8, 8), None),
    "tiny_lm": (TinyLM, (8,), 64),
}


def draw(batch, sample, vocab):
    if vocab:
        return torch.randint(0, vocab, (batch, *sample))
    return torch.randn(batch, *sample)


def export(name, m, sample, optimize=True, vocab=None):
    x = draw(4, sample, vocab)
    path = MODELS / f"{name}.onnx"
    torch.onnx.export(
        m,
        (x,),
        str(path),
        dynamo=True,
        optimize=optimize,
        opset_version=20,
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        external_data=False,
    )
    with torch.no_grad():
        y = m(x)
    io = {
        "input_shape": list(x.shape),
        "input": x.flatten().float().tolist(),
        "output_shape": list(y.shape),
        "output": y.flatten().tolist(),
    }
    (MODELS / f"{name}.io.json").write_text(json.dumps(io) + "\n")


def reinit(m, init):
    for mod in m.modules():
        if isinstance(mod, (nn.Linear, nn.Conv2d)):
            if init == "he-normal":
                nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
            else:
                nn.init.xavier_normal_(mod.weight)
            nn.init.zeros_(mod.bias)
        elif isinstance(mod, (nn.LayerNorm, nn.BatchNorm2d)):
            nn.init.ones_(mod.weight)
            nn.init.zeros_(mod.bias)
        elif isinstance(mod, nn.Embedding):
            nn.init.normal_(mod.weight)
        if isinstance(mod, TinyLM):
            nn.init.normal_(mod.positions)


def site_variances(make, sample, init, vocab):
    per_seed = []
    for seed in range(SEEDS):
        torch.manual_seed(1000 + seed)
        m = make()
        reinit(m, init)
        got = []
        hooks = [
            mod.register_forward_hook(lambda _m, _i, out: got.append(out.var(unbiased=False).item()))
            for mod in m.modules()
            if isinstance(mod, (nn.Linear, nn.Conv2d))
        ]
        with torch.no_grad():
            m(draw(BATCH, sample, vocab))
        for h in hooks:
            h.remove()
        per_seed.append(got)
    sites = len(per_seed[0])
    mean = [sum(s[i] for s in per_seed) / SEEDS for i in range(sites)]
    se = [
        math.sqrt(sum((s[i] - mean[i]) ** 2 for s in per_seed) / (SEEDS - 1) / SEEDS)
        for i in range(sites)
    ]
    return {"mean": mean, "se": se}


def main(only):
    """Export the models named in `only` (all where it is empty)."""
    MODELS.mkdir(parents=True, exist_ok=True)
    fixture = {"seeds": SEEDS, "batch": BATCH, "models": {}}
    if only and FIXTURE.exists():
        fixture = json.loads(FIXTURE.read_text())
    wanted = lambda name: not only or name in only
    for name, (make, sample, vocab) in MODELS_OF.items():
        if not wanted(name):
            continue
        torch.manual_seed(0)
        m = make()
        with torch.no_grad():
            for _ in range(20):
                m(draw(16, sample, vocab))
        export(name, m.eval(), sample, optimize=name != "resnet_small", vocab=vocab)
        fixture["models"][name] = {
            init: site_variances(make, sample, init, vocab)
            for init in ["he-normal", "xavier-normal"]
        }
    FIXTURE.write_text(json.dumps(fixture, indent=1) + "\n")
    if wanted("digits_cnn"):
        export("digits_cnn", trained_digits_cnn(), (1, 8, 8), optimize=False)
    if wanted("written_out"):
        torch.manual_seed(0)
        export("written_out", WrittenOut().eval(), (8, 16), optimize=False)
    if only:
        return
    # An operator sigprop does not read, for the refusal test.
    torch.onnx.export(
        CumSum(),
        (torch.randn(2, 4),),
        str(ROOT / "crates/cli/tests/fixtures/cumsum.onnx"),
        dynamo=True,
        opset_version=20,
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        external_data=False,
    )


if __name__ == "__main__":
    main(set(sys.argv[1:]))
