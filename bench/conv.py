"""LeNet-5's convolution and pooling layers at batch 64, float32: forward, input gradient and
weight gradient, each as its own compiled program, against PyTorch's CPU kernels.

    .venv/bin/python bench/conv.py [--rounds 7]          # symdiff's programs
    /path/to/venv-with-torch/bin/python bench/conv.py    # PyTorch's, same shapes (no symdiff there)

The script times whichever of the two libraries it can import (both, if one interpreter has
both). conv1 is 1→6 channels, 5x5, padding 2, on 28x28; conv2 6→16, 5x5, on 14x14; the pools
are 2x2 max and average pools of conv1's output. Median microseconds per call; OMP_NUM_THREADS
applies to symdiff, torch.set_num_threads to PyTorch (both default to the core count).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

N = 64
LAYERS = {  # name: (input shape, weight shape, padding)
    "conv1 1->6 5x5 p2 28x28": ((N, 1, 28, 28), (6, 1, 5, 5), 2),
    "conv2 6->16 5x5 14x14": ((N, 6, 14, 14), (16, 6, 5, 5), 0),
}
POOL_INPUT = (N, 6, 28, 28)


def _per_call(fn, rounds) -> float:
    fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 0.05:
        fn()
        n += 1
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - start) / n)
    return float(np.median(times)) * 1e6


def _symdiff_cases():
    import symdiff as sd

    rng = np.random.default_rng(0)
    out = {}
    for name, (xs, ws, p) in LAYERS.items():
        X, W = sd.tensor("X", xs, "float32"), sd.tensor("W", ws, "float32")
        y = sd.conv2d(X, W, padding=p)
        C = sd.tensor("C", y.shape, "float32")
        gx, gw = sd.grad(sd.sum(y * C), [X, W])
        x, w, c = (rng.standard_normal(s).astype(np.float32) for s in (xs, ws, y.shape))
        fwd, dx, dw = (sd.compile(e, [X, W, C]) for e in (y, gx, gw))
        out[f"{name} forward"] = lambda f=fwd, a=(x, w, c): f(*a)
        out[f"{name} input grad"] = lambda f=dx, a=(x, w, c): f(*a)
        out[f"{name} weight grad"] = lambda f=dw, a=(x, w, c): f(*a)
    X = sd.tensor("X", POOL_INPUT, "float32")
    x = rng.standard_normal(POOL_INPUT).astype(np.float32)
    for kind in ("max", "avg"):
        y = getattr(sd, f"{kind}_pool2d")(X, 2)
        C = sd.tensor("C", y.shape, "float32")
        (gx,) = sd.grad(sd.sum(y * C), [X])
        c = rng.standard_normal(y.shape).astype(np.float32)
        fwd, back = sd.compile(y, [X, C]), sd.compile(gx, [X, C])
        out[f"{kind}_pool2d 2x2 forward"] = lambda f=fwd, a=(x, c): f(*a)
        out[f"{kind}_pool2d 2x2 backward"] = lambda f=back, a=(x, c): f(*a)
    return out


def _torch_cases():
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    out = {}
    for name, (xs, ws, p) in LAYERS.items():
        x, w = torch.randn(xs, generator=g), torch.randn(ws, generator=g)
        c = torch.randn(F.conv2d(x, w, padding=p).shape, generator=g)

        def back(mask, x=x, w=w, c=c, p=p):
            return torch.ops.aten.convolution_backward(c, x, w, None, [1, 1], [p, p], [1, 1], False, [0, 0], 1, mask)

        out[f"{name} forward"] = lambda x=x, w=w, p=p: F.conv2d(x, w, padding=p)
        out[f"{name} input grad"] = lambda b=back: b([True, False, False])
        out[f"{name} weight grad"] = lambda b=back: b([False, True, False])
    x = torch.randn(POOL_INPUT, generator=g)
    for kind in ("max", "avg"):
        fn = getattr(F, f"{kind}_pool2d")
        xr = x.clone().requires_grad_(True)
        y = fn(xr, 2)
        c = torch.randn(y.shape, generator=g)
        out[f"{kind}_pool2d 2x2 forward"] = lambda fn=fn: fn(x, 2)
        out[f"{kind}_pool2d 2x2 backward"] = lambda y=y, xr=xr, c=c: torch.autograd.grad(y, xr, c, retain_graph=True)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    for label, make in (("symdiff", _symdiff_cases), ("torch", _torch_cases)):
        try:
            cases = make()
        except ImportError:
            continue
        for name, fn in cases.items():
            print(f"{label:8s} {name:36s} {_per_call(fn, args.rounds):10.1f} us")


if __name__ == "__main__":
    main()
