"""sd.onnx.load: ONNX inference graphs (built with onnx.helper, exported by symdiff, exported by
PyTorch where torch is installed) as symdiff expressions whose values equal ONNX Runtime's and
whose gradients w.r.t. the weights are right; bad files are one clear error."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx_cases import exportable_cases

import symdiff as sd
from symdiff import nn

RTOL, ATOL = 1e-5, 1e-5


def _ort(model, feed):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feed)


def _init(name, array):
    return numpy_helper.from_array(np.asarray(array, np.float32), name)


def _cnn_model(rng):
    """A small CNN as torch.onnx.export writes one: Conv + BatchNormalization + Relu + MaxPool,
    a flatten through Shape -> Gather -> Unsqueeze -> Concat -> Reshape, Gemm (transB) and Softmax."""
    nodes = [
        helper.make_node("Conv", ["x", "conv.weight", "conv.bias"], ["c"], name="/conv/Conv", kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"],
                         ["b"], name="/bn/BatchNormalization", epsilon=1e-5),
        helper.make_node("Relu", ["b"], ["r"], name="/relu/Relu"),
        helper.make_node("MaxPool", ["r"], ["p"], name="/pool/MaxPool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Shape", ["p"], ["s"], name="/Shape"),
        helper.make_node("Constant", [], ["zero"], name="/Constant",
                         value=numpy_helper.from_array(np.array(0, np.int64))),
        helper.make_node("Gather", ["s", "zero"], ["n"], name="/Gather", axis=0),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"], name="/Unsqueeze"),
        helper.make_node("Concat", ["n1", "minus1"], ["shape"], name="/Concat", axis=0),
        helper.make_node("Reshape", ["p", "shape"], ["f"], name="/Reshape"),
        helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["z"], name="/fc/Gemm", transB=1),
        helper.make_node("Softmax", ["z"], ["probs"], name="/Softmax", axis=1),
    ]
    inits = [_init("conv.weight", rng.normal(size=(3, 2, 3, 3)) * 0.5), _init("conv.bias", rng.normal(size=3)),
             _init("bn.weight", rng.uniform(0.5, 1.5, 3)), _init("bn.bias", rng.normal(size=3)),
             _init("bn.running_mean", rng.normal(size=3)), _init("bn.running_var", rng.uniform(0.5, 2, 3)),
             _init("fc.weight", rng.normal(size=(4, 3 * 3 * 3))), _init("fc.bias", rng.normal(size=4)),
             numpy_helper.from_array(np.array([0], np.int64), "axes0"),
             numpy_helper.from_array(np.array([-1], np.int64), "minus1")]
    graph = helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2, 6, 6])],
                              [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 4])],
                              initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_model_built_with_onnx_helper(tmp_path):
    rng = np.random.default_rng(0)
    model = _cnn_model(rng)
    path = tmp_path / "cnn.onnx"
    onnx.save(model, path)
    imported = sd.onnx.load(path)
    (x,) = imported.inputs
    assert x.name == "x" and str(x.shape[0]) == "batch" and x.shape[1:] == (2, 6, 6)
    assert sorted(leaf.name for leaf in imported.params) == sorted(
        ["conv_weight", "conv_bias", "bn_weight", "bn_bias", "bn_running_mean", "bn_running_var", "fc_weight",
         "fc_bias"])
    X = rng.normal(size=(3, 2, 6, 6)).astype(np.float32)
    (want,) = _ort(model, {"x": X})
    got = sd.evaluate(imported.outputs[0], imported.feed(x=X))
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    assert "probs = softmax(" in sd.pretty(imported.outputs)


def test_gradients_of_an_imported_model_are_right():
    """A user's model from elsewhere: its loss's gradient formulas w.r.t. the weights print and
    agree with float64 central differences (the model read in float64)."""
    rng = np.random.default_rng(1)
    model = _cnn_model(rng)
    imported = sd.onnx.from_model(model, float_dtype="float64")
    (x,) = imported.inputs
    assert x.dtype == "float64" and all(leaf.dtype == "float64" for leaf in imported.params)
    weights = {leaf.name: leaf for leaf in imported.params}
    loss = sd.name(-sd.mean(sd.log(imported.outputs[0][:, 1])), "L")
    wrt = [weights["fc_weight"], weights["conv_weight"], weights["bn_weight"]]
    grads = sd.grad(loss, wrt)
    text = sd.pretty(grads)
    assert "∂L/∂fc_weight = " in text and "∂L/∂conv_weight = " in text, text
    at = dict(imported.params)
    at[x] = rng.normal(size=(2, 2, 6, 6))
    for exact, numeric in zip((sd.evaluate(g, at) for g in grads), sd.numeric_grad(loss, wrt, at=at)):
        np.testing.assert_allclose(exact, numeric, rtol=1e-6, atol=1e-9)
    # and the float32 reading computes what ONNX Runtime does
    X = at[x].astype(np.float32)
    single = sd.onnx.from_model(model)
    np.testing.assert_allclose(sd.evaluate(single.outputs[0], single.feed(x=X)), _ort(model, {"x": X})[0],
                               rtol=RTOL, atol=ATOL)


def test_export_then_load_evaluates_equal():
    """Every registry example that exports: loaded back, it evaluates to the original's values;
    the few whose exported form uses ops load does not read are refused by name."""
    loaded, refused = 0, []
    for label, _, expr, leaves, values, _ in exportable_cases():
        model = sd.onnx.to_model([expr], leaves)
        try:
            imported = sd.onnx.from_model(model)
        except sd.onnx.LoadError as e:
            refused.append((label, str(e)))
            continue
        got = sd.evaluate(imported.outputs[0], imported.feed(**{leaf.name: v for leaf, v in zip(leaves, values)}))
        want = sd.evaluate(expr, dict(zip(leaves, values)))
        np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64), rtol=RTOL, atol=ATOL,
                                   err_msg=label)
        loaded += 1
    assert loaded >= 150, (loaded, refused)
    for label, message in refused:
        assert "node '" in message, (label, message)


def test_an_exported_symdiff_model_loads_with_its_weights(tmp_path):
    nn.init.manual_seed(2)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    path = tmp_path / "mlp.onnx"
    model.export_onnx(path, ("m", 4))
    imported = sd.onnx.load(path)
    assert sorted(leaf.name for leaf in imported.params) == ["W1", "W2", "b1", "b2"]
    X = np.random.default_rng(2).normal(size=(5, 4)).astype(np.float32)
    got = sd.evaluate(imported.outputs[0], imported.feed(X=X))
    want = sd.evaluate(model(sd.tensor("X", ("m", 4), "float32")), {**model.feed(), sd.tensor("X", ("m", 4),
                                                                                               "float32"): X})
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_a_model_exported_by_pytorch(tmp_path):
    torch = pytest.importorskip("torch", reason="torch is not installed: the torch.onnx.export model is not built")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                              torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 10),
                              torch.nn.LogSoftmax(dim=1)).eval()
    x = torch.randn(2, 1, 8, 8)
    path = tmp_path / "torch.onnx"
    torch.onnx.export(net, (x,), str(path), input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "batch"}},
                      opset_version=17, dynamo=False)
    imported = sd.onnx.load(path)
    got = sd.evaluate(imported.outputs[0], imported.feed(x=x.numpy()))
    np.testing.assert_allclose(got, net(x).detach().numpy(), rtol=1e-4, atol=1e-5)
    assert sd.grad(sd.sum(imported.outputs[0]), list(imported.params))


def _tiny():
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="r")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_unsupported_ops_name_the_op_and_the_node():
    model = _tiny()
    model.graph.node[0].op_type = "Hardmax"
    with pytest.raises(sd.onnx.LoadError, match="node 'r': ONNX op Hardmax is not supported"):
        sd.onnx.from_model(model)


@pytest.mark.parametrize("content", [b"", b"not an onnx file at all \x00\xff", b"\x08" * 64], ids=["empty", "text",
                                                                                                 "junk"])
def test_hostile_files_are_clear_errors(tmp_path, content):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(sd.onnx.LoadError, match="bad.onnx: not a"):
        sd.onnx.load(path)


def test_truncated_and_missing_files(tmp_path):
    data = _cnn_model(np.random.default_rng(3)).SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(sd.onnx.LoadError, match="cut.onnx: not a"):
        sd.onnx.load(path)
    with pytest.raises(FileNotFoundError, match="no such file"):
        sd.onnx.load(tmp_path / "nowhere.onnx")
    broken = _tiny()
    broken.graph.node[0].input[0] = "undefined"
    with pytest.raises(sd.onnx.LoadError, match="not a valid ONNX model"):
        sd.onnx.from_model(broken)


def test_damaged_bytes_never_crash(tmp_path):
    """A few hundred files with bytes changed or cut: each loads or is one LoadError."""
    data = _cnn_model(np.random.default_rng(4)).SerializeToString()
    rng = np.random.default_rng(5)
    path, outcomes = tmp_path / "damaged.onnx", {"loaded": 0, "refused": 0}
    for _ in range(300):
        damaged = bytearray(data)
        for _ in range(rng.integers(1, 6)):
            damaged[rng.integers(0, len(damaged))] = rng.integers(0, 256)
        if rng.random() < 0.2:
            damaged = damaged[: rng.integers(1, len(damaged))]
        path.write_bytes(bytes(damaged))
        try:
            sd.onnx.load(path)
            outcomes["loaded"] += 1
        except sd.onnx.LoadError as e:
            assert str(e).startswith(str(path)), e
            outcomes["refused"] += 1
    assert outcomes["refused"] > 100, outcomes


def test_external_data_is_not_followed(tmp_path):
    model = _tiny()
    weight = numpy_helper.from_array(np.ones(2, np.float32), "w")
    weight.data_location = TensorProto.EXTERNAL
    weight.ClearField("raw_data")
    entry = weight.external_data.add()
    entry.key, entry.value = "location", "weights.bin"
    model.graph.initializer.append(weight)
    with pytest.raises(sd.onnx.LoadError, match="external|weights.bin"):  # onnx's checker refuses it first
        sd.onnx.from_model(model)
    from symdiff.onnx.load import _Importer  # past the checker: symdiff's own refusal

    with pytest.raises(sd.onnx.LoadError, match="keeps its data in an external file"):
        _Importer(model.graph, 18, "the model").run()
