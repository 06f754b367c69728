"""Cold compile time and code size of a 2-layer LSTM training step (issue 16), each layer one
sd.scan (the default) or, with --unroll, the unrolled graph of T steps.

    .venv/bin/python bench/lstm_compile.py T [--unroll]

LSTM(64 -> 256, 2 layers) over T steps, a Linear(256, 64) head, softmax cross-entropy, the
gradients of every parameter; an empty program cache; batch 32.
"""
import os, tempfile, time, sys
os.environ["SYMDIFF_CACHE_DIR"] = tempfile.mkdtemp()
import numpy as np
import symdiff as sd, symdiff.lowering
from symdiff import nn
T = int(sys.argv[1])
UNROLL = "--unroll" in sys.argv[2:]
t0 = time.perf_counter()
lstm = nn.LSTM(64, 256, num_layers=2, unroll=UNROLL)
head = nn.Linear(256, 64)
X = sd.tensor("X", (T, "B", 64), "float32"); y = sd.tensor("y", (T, "B"), "int64")
out, _ = lstm(X)
logits = head(out.reshape((T * X.shape[1], 256)))
loss = sd.softmax_cross_entropy(logits, y.reshape((T * X.shape[1],)))
leaves = [p.leaf for p in lstm.parameters()] + [p.leaf for p in head.parameters()]
grads = sd.grad(loss, leaves)
t1 = time.perf_counter()
p = sd.compile([loss, *grads], [X, y, *leaves])
vals = [q.data for q in lstm.parameters()] + [q.data for q in head.parameters()]
r = p(np.random.rand(T, 32, 64).astype(np.float32), np.random.randint(0, 64, (T, 32)), *vals)
t2 = time.perf_counter()
t3 = time.perf_counter(); p(np.random.rand(T, 32, 64).astype(np.float32), np.random.randint(0, 64, (T, 32)), *vals); t4 = time.perf_counter()
print(f"T={T} {'unrolled' if UNROLL else 'scan'}: graph {t1-t0:.2f} s, compile+first call {t2-t1:.2f} s, kernels {p.stats['kernels']}, C++ {len(p.source):,} bytes, step {1e3*(t4-t3):.1f} ms, loss {float(r[0]):.4f}")
