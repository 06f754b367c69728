"""The symdiff command line end to end."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from symdiff.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_eval_parses_shows_the_graph_and_evaluates(capsys):
    code, out, _ = run(capsys, "eval", "sin(x)*exp(y) + x**2", "x=1", "y=2")
    assert code == 0
    assert "expression   sin(x)*exp(y) + x**2" in out
    assert "4 in the shared graph" in out or "operations" in out
    assert "value        7.2176763124" in out


def test_eval_with_json_arrays_makes_tensors(capsys):
    code, out, _ = run(capsys, "eval", "sum(X*X)", "X=[[1,2],[3,4]]")
    assert code == 0 and "value        30." in out


def test_grad_prints_formulas_and_values(capsys):
    code, out, _ = run(capsys, "grad", "x*y + sin(x)", "--wrt", "x", "y", "--at", "x=0", "y=3")
    assert code == 0
    assert "∂f/∂x" in out and "∂f/∂y = x" in out
    assert "∂f/∂x at the point = 4." in out


def test_compare_prints_the_table_and_writes_a_plot(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "modes.png"
    code, out, _ = run(capsys, "compare", "sin(x)*exp(y) + x**2", "--wrt", "x", "y", "--at", "x=0.3", "y=-0.7",
                       "--plot", str(png))
    assert code == 0
    assert "| reverse |" in out and "| forward |" in out and "| numeric |" in out
    assert png.stat().st_size > 5000


@pytest.mark.parametrize("argv,message", [
    (["eval", "__import__('os')"], "parse error"),
    (["eval", "x + y", "x=1"], "no value for y"),
    (["grad", "x*y", "--wrt", "z", "--at", "x=1"], "do not appear in the expression"),
    (["eval", "x", "x=abc"], None),
])
def test_bad_input_is_a_clear_error_not_a_traceback(capsys, argv, message):
    if message is None:
        with pytest.raises(SystemExit, match="must be a number or a JSON list"):
            main(argv)
        return
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err and "Traceback" not in err


def test_the_console_script_is_installed():
    beside = Path(sys.executable).parent / "symdiff"
    exe = str(beside) if beside.exists() else shutil.which("symdiff")
    assert exe is not None, "pip should have installed the symdiff console script"
    done = subprocess.run([exe, "eval", "x*2", "x=21"], capture_output=True, text=True, check=True)
    assert "value        42." in done.stdout


@pytest.mark.parametrize("argv,message", [
    (["grad", "1/0 + x", "--wrt", "x"], "division by zero"),
    (["grad", "10**400 + x", "--wrt", "x"], "does not fit int64"),
    (["grad", "1" * 5000 + " + x", "--wrt", "x"], "too many digits"),
    (["grad", "1e400 + x", "--wrt", "x"], "overflows float64"),
    (["grad", "9**9**9*x", "--wrt", "x", "--mode", "symbolic"], "overflows"),
    (["eval", "9**9**9 + x", "x=1"], "overflows"),
    (["eval", "x", "x=" + "[" * 5000 + "1" + "]" * 5000], "must be a number or a JSON list"),
    (["grad", "x*y", "--wrt", "x", "--shape", "x=m,,n"], "--shape"),
    (["grad", "sum(A)", "--wrt", "A", "--shape", "A=2,3", "--at", "A=[1,2]"], "shape"),
    (["eval", "sum(A @ v)", "--shape", "A=2,3", "v=2"], "matmul"),
])
def test_every_user_mistake_is_one_line_and_a_nonzero_exit(capsys, argv, message):
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse and the NAME=VALUE checks exit this way
        code, err = stop.code, str(stop.code) + capsys.readouterr().err
    else:
        err = capsys.readouterr().err
    assert code not in (0, None)
    assert message in err and err.startswith("symdiff: error: ") and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 3  # a parse error adds the text and a caret


def test_a_user_error_from_the_console_script_has_no_traceback():
    done = subprocess.run([sys.executable, "-m", "symdiff.cli", "grad", "1/0 + x", "--wrt", "x"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("symdiff: error: parse error at column 1: division by zero")


def test_output_into_a_closed_pipe_ends_quietly():
    # a graph table far longer than a pipe's buffer, read one line at a time like `| head -1`
    expr = " + ".join(f"x{i}" for i in range(3000))
    child = subprocess.Popen([sys.executable, "-m", "symdiff.cli", "eval", expr, "x0=1"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    child.stdout.readline()
    child.stdout.close()
    err = child.stderr.read()
    child.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipeError" not in err
    assert err == ""


def test_equal_derivatives_keep_their_own_labels(capsys):
    code, out, _ = run(capsys, "grad", "x+y", "--wrt", "x", "y")
    assert code == 0
    assert out.splitlines()[1:] == ["∂f/∂x = 1", "∂f/∂y = 1"]
    code, out, _ = run(capsys, "grad", "x+y", "--wrt", "x", "y", "--latex")
    assert "\\frac{\\partial f}{\\partial x} &= 1" in out and "\\frac{\\partial f}{\\partial y} &= 1" in out


def test_shapes_declared_on_the_command_line(capsys):
    code, out, _ = run(capsys, "grad", "sum(tanh(A @ v))", "--wrt", "v", "--shape", "A=m,n", "v=n")
    assert code == 0 and "∂f/∂v = Aᵀ·(1 − tanh(A·v)²)" in out
    code, out, _ = run(capsys, "grad", "sum(A @ v)", "--wrt", "v", "--shape", "A=m,n", "v=n",
                       "--at", "A=[[1,2],[3,4],[5,6]]", "v=[1,1]")
    assert code == 0 and "∂f/∂v at the point = [ 9. 12.]" in out
    code, out, _ = run(capsys, "eval", "sum(A @ v)", "--shape", "A=2,2", "v=2", "--at", "A=[[1,2],[3,4]]",
                       "v=[1,1]")
    assert code == 0 and "value        10." in out
    code, out, _ = run(capsys, "compare", "sum(tanh(A @ v))", "--wrt", "v", "--shape", "A=m,n", "v=n",
                       "--at", "A=[[1,2],[3,4]]", "v=[0.1,0.2]")
    assert code == 0 and "| reverse |" in out


def test_eval_takes_at_like_grad_and_compare(capsys):
    code, out, _ = run(capsys, "eval", "x*y", "--at", "x=6", "y=7")
    assert code == 0 and "value        42." in out
    code, out, _ = run(capsys, "eval", "x*y", "x=6", "--at", "y=7")
    assert code == 0 and "value        42." in out


def test_a_very_long_error_message_is_cut(capsys):
    expr = " + ".join(f"x{i}" for i in range(3000))
    code, _, err = run(capsys, "eval", expr, "x0=1")
    assert code == 2 and "no value for x1" in err and "more characters)" in err and len(err) < 2200


def test_bugs_keep_their_traceback_and_traceback_shows_one_for_user_errors(monkeypatch):
    from symdiff import cli
    from symdiff.parser import ParseError

    with pytest.raises(ParseError, match="division by zero"):
        main(["--traceback", "grad", "1/0 + x", "--wrt", "x"])

    def broken(args):
        raise AttributeError("a bug, not a user's mistake")

    monkeypatch.setitem(cli.COMMANDS, "eval", (broken, "broken"))
    with pytest.raises(AttributeError, match="a bug"):
        main(["eval", "x", "x=1"])
