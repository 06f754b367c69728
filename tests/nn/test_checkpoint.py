"""Atomic writes: output paths checked up front, temporaries of killed saves cleaned up."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from symdiff.nn import checkpoint
from symdiff.nn.data import ArrayDataset, DataLoader

from symdiff import nn

ARRAYS = {"format": np.array(checkpoint.FORMAT), "version": np.array(checkpoint.VERSION)}

KILLED_MIDWAY = textwrap.dedent("""
    import sys, time
    from symdiff.nn import checkpoint

    def write(f):
        f.write(b"half a checkpoint")
        f.flush()
        print("writing", flush=True)
        time.sleep(120)

    checkpoint.write_atomically(sys.argv[1], write)
""")


def _killed_save(target):
    """The pid of a process SIGKILLed while it wrote ``target`` (reaped, so no longer running)."""
    child = subprocess.Popen([sys.executable, "-c", KILLED_MIDWAY, str(target)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "writing\n"
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    return child.pid


def test_the_next_save_removes_what_a_killed_save_left(tmp_path):
    target = tmp_path / "ck.npz"
    dead = _killed_save(target)
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(f".ck.npz.tmp-{dead}-"), left
    # temporaries that are not this target's stale ones stay: a running writer's (this process), another
    # target's, and names of other programs
    kept = [f".ck.npz.tmp-{os.getpid()}-abcdefgh", f".other.npz.tmp-{dead}-abcdefgh", ".tmp-x1y2z3w4.npz",
            f"ck.npz.tmp-{dead}-abcdefgh", f".ck.npz.tmp-{dead}-abcdefgh.bak"]
    for name in kept:
        (tmp_path / name).write_bytes(b"")
    checkpoint.write(target, ARRAYS)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["ck.npz", *kept])
    assert sorted(checkpoint.read(target)) == ["format", "version"]


def test_a_trainer_save_after_a_kill_leaves_only_the_checkpoint(tmp_path, blobs):
    target = tmp_path / "run.npz"
    _killed_save(target)
    model = nn.Linear(6, 3)
    trainer = nn.Trainer(model, nn.SoftmaxLoss(), nn.optim.SGD(model.parameters(), lr=0.1), backend="numpy",
                         progress=False)
    trainer.fit(DataLoader(ArrayDataset(*blobs), batch_size=60), epochs=1, checkpoint_path=target)
    assert os.listdir(tmp_path) == ["run.npz"]


def test_output_paths_are_refused_before_writing(tmp_path):
    (tmp_path / "file").write_text("x")
    os.mkfifo(tmp_path / "fifo")  # like /dev/null: renaming a file over it would replace it
    cases = [(tmp_path, IsADirectoryError, f"{tmp_path} is a directory, not a file name"),
             (tmp_path / "no" / "ck.npz", FileNotFoundError, f"the folder {tmp_path / 'no'} does not exist"),
             (tmp_path / "file" / "ck.npz", NotADirectoryError, f"{tmp_path / 'file'} is not a folder"),
             (tmp_path / "fifo", OSError, f"{tmp_path / 'fifo'} exists and is not a regular file")]
    for path, error, message in cases:
        with pytest.raises(error, match=message):
            checkpoint.write(path, ARRAYS)
    assert sorted(os.listdir(tmp_path)) == ["fifo", "file"]
    assert not (tmp_path / "fifo").is_file()


def test_fit_checks_its_output_paths_before_training(tmp_path, blobs):
    model = nn.Linear(6, 3)
    trainer = nn.Trainer(model, nn.SoftmaxLoss(), nn.optim.SGD(model.parameters(), lr=0.1), backend="numpy",
                         progress=False)
    loader = DataLoader(ArrayDataset(*blobs), batch_size=60)
    with pytest.raises(IsADirectoryError, match="checkpoint_path: .* is a directory"):
        trainer.fit(loader, checkpoint_path=tmp_path)
    with pytest.raises(FileNotFoundError, match="plot: .*the folder .* does not exist"):
        trainer.fit(loader, plot=tmp_path / "no" / "curve.png")
    assert trainer.global_step == 0 and trainer.history["loss"] == []
