"""Hash-consing, leaves and constants, dtypes and shapes, and their errors."""

import numpy as np
import pytest
import sympy

import symdiff as sd
from symdiff.shapes import ShapeError


def test_identical_nodes_are_one_object():
    x, y = sd.symbols("x y")
    assert (x * y) is (x * y)
    assert sd.sin(x * y + 1) is sd.sin(x * y + 1)
    assert sd.sum(sd.tensor("X", (2, 3)), axis=0) is sd.sum(sd.tensor("X", (2, 3)), axis=0)
    assert sd.sum(sd.tensor("X", (2, 3)), axis=0) is not sd.sum(sd.tensor("X", (2, 3)), axis=1)
    assert (x * y) is not (y * x)  # no commutative canonicalization at construction


def test_leaves_are_identified_by_name_shape_and_dtype():
    assert sd.tensor("X", (2, 3)) is sd.tensor("X", (2, 3))
    assert sd.tensor("X", ("m", "n")) is sd.tensor("X", ("m", "n"))
    assert sd.tensor("X", (2, 3)) is not sd.tensor("X", (3, 2))
    assert sd.tensor("X", (2, 3)) is not sd.tensor("X", (2, 3), "float32")
    assert sd.symbols("x") is sd.tensor("x", ())


def test_symbols_follow_sympy():
    x = sd.symbols("x")
    assert x.shape == () and x.dtype == "float64"
    assert len(sd.symbols("a b c")) == 3
    assert len(sd.symbols("a, b")) == 2
    assert isinstance(sd.symbols("a,"), tuple)
    with pytest.raises(ValueError):
        sd.symbols("")


@pytest.mark.parametrize("name", ["1x", "x-y", "x y", "lambda", "__class__", "", "a.b", "x;"])
def test_invalid_names_are_rejected(name):
    with pytest.raises(ValueError, match="symbol name"):
        sd.tensor(name, ())


def test_nodes_are_immutable_and_have_no_truth_value():
    x = sd.symbols("x")
    with pytest.raises(AttributeError):
        x.shape = (2,)
    with pytest.raises(TypeError, match="no truth value"):
        bool(x > 0)
    with pytest.raises(TypeError):
        sd.Node()


def test_constants_are_interned_by_value_and_dtype():
    assert sd.constant(2.0) is sd.constant(2.0)
    assert sd.constant(2.0) is not sd.constant(2.0, "float32")
    assert sd.constant(np.arange(3.0)) is sd.constant([0.0, 1.0, 2.0])
    assert sd.constant(np.arange(3.0)).shape == (3,)
    assert sd.constant(3).dtype == "int64" and sd.constant(True).dtype == "bool"
    with pytest.raises(TypeError):
        sd.constant(np.array(["a"]))


def test_python_numbers_are_weak():
    x32 = sd.tensor("x", (), "float32")
    assert (x32 * 2.0).dtype == "float32"
    assert (2 * x32).dtype == "float32"
    i = sd.tensor("i", (3,), "int64")
    assert (i + 1).dtype == "int64"
    assert (i + 1.5).dtype == "float64"
    assert (i / 2).dtype == "float64"
    assert np.float64(2.0) * x32 is not None  # numpy scalars defer to us
    assert (np.float64(2.0) * x32).dtype == "float32"


def test_tensor_promotion_follows_numpy():
    a = sd.tensor("a", (3,), "float32")
    i = sd.tensor("i", (3,), "int64")
    b = sd.tensor("b", (3,), "bool")
    assert (a + i).dtype == "float64"
    assert (a + b).dtype == "float32"
    assert (b + b).dtype == "int64"
    assert sd.exp(i).dtype == "float64"
    assert (a < i).dtype == "bool"


def test_elementwise_inputs_are_made_explicit():
    X = sd.tensor("X", ("m", 3))
    v = sd.tensor("v", (3,), "float32")
    node = X * v
    assert node.shape == (sd.shapes.dim("m"), 3)
    assert [i.op.name for i in node.inputs] == ["leaf", "broadcast_to"]
    assert node.inputs[1].inputs[0].op.name == "astype"


def test_broadcast_errors_name_the_op_and_shapes():
    with pytest.raises(ShapeError, match=r"add: shapes \(2, 3\) and \(4,\) cannot be broadcast"):
        sd.tensor("A", (2, 3)) + sd.tensor("b", (4,))
    with pytest.raises(ShapeError, match=r"multiply: shapes \(m,\) and \(n,\)"):
        sd.tensor("p", ("m",)) * sd.tensor("q", ("n",))


def test_symbolic_broadcasting():
    A = sd.tensor("A", ("m", 1))
    B = sd.tensor("B", ("n",))
    m, n = sd.shapes.dim("m"), sd.shapes.dim("n")
    assert (A + B).shape == (m, n)
    C = sd.tensor("C", ("m", "n"))
    assert (C[1:, :] + C[:-1, :]).shape == (m - 1, n)


def test_matmul_shape_errors():
    with pytest.raises(ShapeError, match=r"matmul: inner dimensions differ: \(2, 3\) @ \(4, 5\)"):
        sd.tensor("A", (2, 3)) @ sd.tensor("B", (4, 5))
    with pytest.raises(ShapeError, match="at least one dimension"):
        sd.symbols("x") @ sd.tensor("B", (4, 5))
    assert (sd.tensor("A", ("m", "n")) @ sd.tensor("B", ("n", 5))).shape[1] == 5


def test_movement_errors():
    X = sd.tensor("X", (2, 3))
    with pytest.raises(ShapeError, match=r"reshape: cannot reshape \(2, 3\) into \(4, 2\)"):
        sd.reshape(X, (4, 2))
    with pytest.raises(ShapeError, match="only one dimension can be -1"):
        sd.reshape(X, (-1, -1))
    with pytest.raises(ShapeError, match="not a permutation"):
        sd.transpose(X, (0, 0))
    with pytest.raises(ShapeError, match="axis 2 is out of range"):
        sd.sum(X, axis=2)
    with pytest.raises(IndexError, match="out of bounds"):
        X[5]
    with pytest.raises(IndexError, match="too many indices"):
        X[0, 0, 0]
    with pytest.raises(ShapeError, match="cannot broadcast"):
        sd.broadcast_to(X, (3, 3))
    with pytest.raises(ShapeError, match="differ outside axis 0"):
        sd.concatenate([X, sd.tensor("Y", (2, 4))])


def test_dtype_errors():
    i = sd.tensor("i", (3,), "int64")
    z = sd.tensor("z", (3, 4))
    with pytest.raises(TypeError, match="labels must be int64, got float64"):
        sd.softmax_cross_entropy(z, sd.tensor("y", (3,)))
    with pytest.raises(TypeError, match="where: the condition must be bool, got int64"):
        sd.where(i, z, z)
    with pytest.raises(TypeError, match="unsupported dtype"):
        sd.tensor("q", (), "complex128")
    with pytest.raises(TypeError, match="logsumexp: needs a float input, got int64"):
        sd.logsumexp(i)


def test_reshape_infers_symbolic_sizes():
    X = sd.tensor("X", ("m", 4))
    m = sd.shapes.dim("m")
    assert sd.reshape(X, (-1,)).shape == (4 * m,)
    assert sd.reshape(X, (-1, 2)).shape == (2 * m, 2)


def test_dimension_constants_print_and_evaluate():
    v = sd.tensor("v", ("n",))
    mean = sd.mean(v)
    assert str(mean) == "sum(v) / n"
    assert float(sd.evaluate(mean, {v: [1.0, 2.0, 6.0]})) == 3.0
    assert sd.constant(sympy.Symbol("n", integer=True, positive=True)).dtype == "float64"
    with pytest.raises(ValueError, match="not dimensions"):
        sd.constant(sympy.Symbol("q"))
