"""`symdiff train --model lenet|resnet9`: images reshaped to (N, 1, H, W), augmentation,
the step decay of the learning rate, and checkpoints that resume all of it.

Most runs use the reference evaluator (--backend numpy), which is fast enough on digits;
one runs the compiled cpu step."""

import re
import subprocess
import sys

import pytest

from symdiff import cli, nn


def _train(capsys, *args):
    """(exit code, stdout, stderr) of `symdiff train --dataset digits --no-progress ...`."""
    code = cli.main(["train", "--dataset", "digits", "--no-progress", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _epochs(out):
    """{epoch: (train accuracy, test accuracy, lr)} from the per-epoch lines."""
    line = re.compile(r"epoch +(\d+) .* accuracy ([\d.]+) .* test accuracy ([\d.]+) .* lr ([\d.e-]+)$")
    return {int(m[1]): (float(m[2]), float(m[3]), float(m[4])) for m in map(line.match, out.splitlines()) if m}


def test_lenet_with_batchnorm_augmentation_and_step_decay_resumes(tmp_path, digits, capsys):
    ck = tmp_path / "lenet.npz"
    code, out, err = _train(capsys, "--model", "lenet", "--batchnorm", "--epochs", "2", "--augment",
                            "--lr-step", "1", "--lr-gamma", "0.5", "--backend", "numpy", "--checkpoint", str(ck))
    assert code == 0, err
    assert "LeNet5(" in out and "BatchNorm2d(16)" in out and "Linear(64, 120)" in out  # 8x8: 16·2·2 features
    assert "MultiStepLR(milestones=[1], gamma=0.5)" in out and "augment    shift=2 (each epoch)" in out
    rows = _epochs(out)
    assert [lr for _, _, lr in rows.values()] == [0.05, 0.025]
    losses = [float(line.split()[3]) for line in out.splitlines() if line.startswith("epoch ")]
    assert losses[1] < losses[0] and rows[2][1] > 0.25, out  # it learns (chance is 0.1; 2-pixel shifts of 8x8
    # images are a hard task for two epochs)
    trainer = nn.Trainer.load(ck)
    assert isinstance(trainer.model, nn.LeNet5) and trainer.settings == {"augment": "shift=2"}
    assert trainer.epoch == 2 and trainer.optimizer.lr == pytest.approx(0.025)
    # resuming takes model, schedule and augmentation from the file, and refuses other values
    for args, message in [(["--no-batchnorm"], "--no-batchnorm conflicts with the checkpoint"),
                          (["--augment", "flip"], "--augment flip conflicts"),
                          (["--lr-step", "3"], "which was trained with lr-step 1"),
                          (["--model", "resnet9"], "--model resnet9 conflicts")]:
        code, _, err = _train(capsys, "--resume", str(ck), "--backend", "numpy", *args)
        assert code == 2 and message in err, err
    code, out, err = _train(capsys, "--resume", str(ck), "--epochs", "1", "--backend", "numpy", "--augment",
                            "shift", "--lr-step", "1", "--checkpoint", str(ck))
    assert code == 0, err
    assert list(_epochs(out)) == [3] and _epochs(out)[3][2] == 0.025
    assert nn.Trainer.load(ck).epoch == 3


def test_resnet9_on_digits_and_an_mlp_with_shifts(digits, capsys):
    # --holdout 0.9 trains on 180 images: the point is that every stage's shape fits 8x8
    code, out, err = _train(capsys, "--model", "resnet9", "--epochs", "1", "--holdout", "0.9", "--backend",
                            "numpy", "--batch", "32")
    assert code == 0, err
    assert "ResNet9(" in out and "Conv2d(1, 16, 3, 1, padding=1, bias=False)" in out and "180 training" in out
    code, out, err = _train(capsys, "--model", "mlp", "--hidden", "16", "--epochs", "1", "--augment", "shift=1",
                            "--backend", "numpy")
    assert code == 0 and "augment    shift=1" in out, err


def test_lenet_compiled_on_digits(digits, capsys, tmp_path):
    ck = tmp_path / "ck.npz"
    code, out, err = _train(capsys, "--model", "lenet", "--batchnorm", "--epochs", "2", "--lr", "0.1",
                            "--checkpoint", str(ck), "--print-step")
    assert code == 0, err
    assert "conv2d(X, W₁" in out and "max_pool2d" in out and "lr·" in out  # the printed step
    assert _epochs(out)[2][1] > 0.5, out
    code, out, err = _train(capsys, "--resume", str(ck), "--epochs", "1")
    assert code == 0 and list(_epochs(out)) == [3], err


@pytest.mark.parametrize("args, message", [
    (["--lr-gamma", "0.5"], "--lr-gamma applies with --lr-step"),
    (["--lr-step", "2", "--lr-gamma", "0"], "--lr-gamma must be a finite number > 0, got 0.0"),
    (["--model", "mlp", "--batchnorm"], "--batchnorm applies to --model lenet, not mlp"),
    (["--model", "resnet9", "--no-batchnorm"], "--no-batchnorm applies to --model lenet, not resnet9"),
])
def test_bad_cnn_arguments_are_one_clear_line(args, message, digits, capsys):
    code, out, err = _train(capsys, "--epochs", "1", *args)
    assert code == 2 and err.startswith("symdiff train: error: ") and message in err, err
    assert "Traceback" not in err and "epoch" not in out


@pytest.mark.parametrize("args, message", [
    (["--augment", "rotate"], "'rotate' is not an augmentation"),
    (["--lr-step", "8,3"], "epochs must be increasing numbers >= 1"),
    (["--lr-step", "x"], "is not a comma list of epoch numbers"),
])
def test_malformed_values_are_refused_by_the_parser(args, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--dataset", "digits", *args])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_help_documents_the_issue_recipe():
    result = subprocess.run([sys.executable, "-m", "symdiff.cli", "train", "--help"], capture_output=True,
                            text=True, check=True)
    text = " ".join(result.stdout.split())
    for part in ("--model lenet --batchnorm --dataset mnist-sample --augment shift=2", "--lr-step 8 --lr-gamma 0.1",
                 "--test idx:../shared/data/mnist", "{softmax,mlp,lenet,resnet9}", "wrong for digits"):
        assert part in text, part
