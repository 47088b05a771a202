#!/usr/bin/python3
"""Make the MLflow model directories the server bundles and the tests use.

Run with Debian's interpreter (`npm run fixtures`), which has python3-onnx,
python3-numpy and python3-sklearn (apt-get install -y python3-onnx python3-sklearn).
The outputs are committed; running the script again rewrites them identically
except for the trained weights' last bits if scikit-learn changes.

Every model is a real ONNX graph inside a real MLflow model directory (MLmodel
YAML with an `onnx` flavor, signature and input example, as mlflow.onnx.save_model
writes them). Reference predictions come from the reference implementations
(scikit-learn for iris, a Python dict for the string model), never from
onnxruntime, and are written to test/fixtures/reference.json.
"""

import json
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, "models")
FIXTURES = os.path.join(ROOT, "test", "fixtures")

# MLflow writes these; the server ignores them but a real directory has them.
CONDA_YAML = """name: mlflow-env
channels:
- conda-forge
dependencies:
- python=3.11
- pip
- pip:
  - mlflow
  - onnx
  - onnxruntime
"""

IRIS_COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
IRIS_CLASSES = ["setosa", "versicolor", "virginica"]

# The string model: normalise to lower case, then look the phrase up.
GREETER_LABELS = {
    "hello world": "greeting",
    "hello": "greeting",
    "hi": "greeting",
    "good morning": "greeting",
    "goodbye": "farewell",
    "bye": "farewell",
    "see you": "farewell",
    "thanks": "gratitude",
    "thank you": "gratitude",
}
GREETER_DEFAULT = "unknown"

# onnx_session_options of the slow fixtures: their run time must not depend on the cores.
ONE_THREAD = {"intra_op_num_threads": 1}


def opset(domain="", version=17):
    return helper.make_opsetid(domain, version)


def save_onnx(graph, path, opsets=None):
    model = helper.make_model(graph, opset_imports=opsets or [opset()], producer_name="mlflow-connect-fixtures")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return model


def mlmodel_yaml(signature=None, example=None, flavors=None, params=None, session_options=None):
    """The MLmodel file as mlflow.onnx.save_model writes it (MLflow 2.x), with the
    onnx flavor's onnx_session_options when given."""
    if flavors is None:
        flavors = """  onnx:
    code: null
    data: model.onnx
    onnx_version: 1.12.0
"""
        if session_options:
            flavors += "    onnx_session_options:\n" + "".join(f"      {k}: {v}\n" for k, v in session_options.items())
        flavors += """    providers:
    - CPUExecutionProvider
  python_function:
    data: model.onnx
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.onnx
    python_version: 3.11.2
"""
    text = "artifact_path: model\nflavors:\n" + flavors
    text += "mlflow_version: 2.17.2\nmodel_uuid: 00000000000000000000000000000000\n"
    if example is not None:
        text += "saved_input_example_info:\n"
        for key, value in example.items():
            text += f"  {key}: {value}\n"
    if signature is not None:
        text += "signature:\n"
        for key in ("inputs", "outputs"):
            text += f"  {key}: '{json.dumps(signature[key])}'\n"
        text += f"  params: '{json.dumps(params)}'\n" if params else "  params: null\n"
    text += "utc_time_created: '2026-11-28 00:00:00.000000'\n"
    return text


def write_model_dir(path, model_bytes_or_graph, signature=None, example=None, example_json=None, flavors=None, params=None, session_options=None):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    with open(os.path.join(path, "MLmodel"), "w") as f:
        f.write(mlmodel_yaml(signature, example, flavors, params, session_options))
    with open(os.path.join(path, "conda.yaml"), "w") as f:
        f.write(CONDA_YAML)
    if example_json is not None:
        with open(os.path.join(path, example["artifact_path"]), "w") as f:
            json.dump(example_json, f)
    if model_bytes_or_graph is not None:
        target = os.path.join(path, "model.onnx")
        if isinstance(model_bytes_or_graph, bytes):
            with open(target, "wb") as f:
                f.write(model_bytes_or_graph)
        else:
            graph, opsets = model_bytes_or_graph
            save_onnx(graph, target, opsets)


def make_iris():
    """Multinomial logistic regression on the iris data set (scikit-learn's copy of
    Fisher's table), exported as MatMul + Add + Softmax / ArgMax."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    data = load_iris()
    clf = LogisticRegression(max_iter=1000, C=1.0).fit(data.data, data.target)
    weights = clf.coef_.T.astype(np.float32)  # [4, 3]
    bias = clf.intercept_.astype(np.float32)  # [3]

    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["input", "W"], ["logits_raw"]),
            helper.make_node("Add", ["logits_raw", "B"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
            helper.make_node("ArgMax", ["logits"], ["label"], axis=1, keepdims=0),
        ],
        "iris_logistic_regression",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 3]),
        ],
        initializer=[numpy_helper.from_array(weights, "W"), numpy_helper.from_array(bias, "B")],
    )
    signature = {
        "inputs": [{"type": "double", "name": c, "required": True} for c in IRIS_COLUMNS],
        "outputs": [
            {"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}, "name": "label"},
            {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 3]}, "name": "probabilities"},
        ],
    }
    example_rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
    write_model_dir(
        os.path.join(MODELS, "iris"),
        (graph, [opset()]),
        signature,
        {"artifact_path": "input_example.json", "pandas_orient": "split", "type": "dataframe"},
        {"columns": IRIS_COLUMNS, "data": example_rows},
    )

    # Reference rows: the example, one of each class from the data set, and a
    # borderline flower, predicted by scikit-learn itself.
    rows = example_rows + [list(data.data[i]) for i in (0, 60, 120)] + [[6.0, 2.7, 5.0, 1.6]]
    x = np.array(rows)
    return {
        "columns": IRIS_COLUMNS,
        "classes": IRIS_CLASSES,
        "rows": rows,
        "label": clf.predict(x).tolist(),
        "probabilities": clf.predict_proba(x).tolist(),
    }


def make_greeter():
    """String in, string out: StringNormalizer (lower case) then LabelEncoder.

    The locale is C.UTF-8: StringNormalizer defaults to en_US.UTF-8, which slim
    Debian images lack (onnxruntime then refuses to load the model)."""
    keys = list(GREETER_LABELS.keys())
    graph = helper.make_graph(
        [
            helper.make_node("StringNormalizer", ["text"], ["normalized"], case_change_action="LOWER", locale="C.UTF-8"),
            helper.make_node(
                "LabelEncoder",
                ["normalized"],
                ["label"],
                domain="ai.onnx.ml",
                keys_strings=keys,
                values_strings=[GREETER_LABELS[k] for k in keys],
                default_string=GREETER_DEFAULT,
            ),
        ],
        "greeter",
        [helper.make_tensor_value_info("text", TensorProto.STRING, ["batch"])],
        [helper.make_tensor_value_info("label", TensorProto.STRING, ["batch"])],
    )
    signature = {
        "inputs": [{"type": "tensor", "tensor-spec": {"dtype": "str", "shape": [-1]}, "name": "text"}],
        "outputs": [{"type": "tensor", "tensor-spec": {"dtype": "str", "shape": [-1]}, "name": "label"}],
    }
    write_model_dir(
        os.path.join(MODELS, "greeter"),
        (graph, [opset(), opset("ai.onnx.ml", 2)]),
        signature,
        {"artifact_path": "input_example.json", "type": "ndarray", "format": "tf-serving"},
        {"inputs": ["HELLO WORLD"]},
    )
    texts = ["HELLO WORLD", "Goodbye", "thank you", "What is this?", ""]
    return {"texts": texts, "labels": [GREETER_LABELS.get(t.lower(), GREETER_DEFAULT) for t in texts]}


def make_multi():
    """Several named inputs and outputs, float64 and int64, a tensor signature and a
    params schema: sum = a.sum(axis=1) + b, doubled = 2 * b."""
    graph = helper.make_graph(
        [
            helper.make_node("ReduceSum", ["a", "axes"], ["row_sum"], keepdims=0),
            helper.make_node("Cast", ["b"], ["b_double"], to=TensorProto.DOUBLE),
            helper.make_node("Add", ["row_sum", "b_double"], ["sum"]),
            helper.make_node("Mul", ["b", "two"], ["doubled"]),
        ],
        "multi",
        [
            helper.make_tensor_value_info("a", TensorProto.DOUBLE, ["batch", 2]),
            helper.make_tensor_value_info("b", TensorProto.INT64, ["batch"]),
        ],
        [
            helper.make_tensor_value_info("sum", TensorProto.DOUBLE, ["batch"]),
            helper.make_tensor_value_info("doubled", TensorProto.INT64, ["batch"]),
        ],
        initializer=[
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axes"),
            numpy_helper.from_array(np.array(2, dtype=np.int64), "two"),
        ],
    )
    signature = {
        "inputs": [
            {"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 2]}, "name": "a"},
            {"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}, "name": "b"},
        ],
        "outputs": [
            {"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1]}, "name": "sum"},
            {"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}, "name": "doubled"},
        ],
    }
    params = [
        {"name": "scale", "type": "double", "default": 1.0, "shape": None},
        {"name": "tags", "type": "string", "default": ["x"], "shape": [-1]},
    ]
    write_model_dir(
        os.path.join(FIXTURES, "multi"),
        (graph, [opset()]),
        signature,
        {"artifact_path": "input_example.json", "type": "json_object"},
        {"inputs": {"a": [[1.0, 2.0]], "b": [3]}},
        params=params,
    )
    a = np.array([[1.0, 2.0], [0.5, -4.25], [1e10, 3.0]])
    b = np.array([3, -7, 9007199254740000], dtype=np.int64)
    return {"a": a.tolist(), "b": b.tolist(), "sum": (a.sum(axis=1) + b).tolist(), "doubled": (2 * b).tolist()}


def make_tabular():
    """A column-based signature with one graph input per column: y = x * n. The
    optional "comment" column is checked but not fed to the graph."""
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["n"], ["n_double"], to=TensorProto.DOUBLE),
            helper.make_node("Mul", ["x", "n_double"], ["y"]),
        ],
        "tabular",
        [
            helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["batch"]),
            helper.make_tensor_value_info("n", TensorProto.INT64, ["batch"]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, ["batch"])],
    )
    signature = {
        "inputs": [
            {"type": "double", "name": "x", "required": True},
            {"type": "long", "name": "n", "required": True},
            {"type": "string", "name": "comment", "required": False},
        ],
        "outputs": [{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1]}, "name": "y"}],
    }
    write_model_dir(
        os.path.join(FIXTURES, "tabular"),
        (graph, [opset()]),
        signature,
        {"artifact_path": "input_example.json", "pandas_orient": "split", "type": "dataframe"},
        {"columns": ["x", "n"], "data": [[1.5, 2], [2.0, 3]]},
    )
    x = np.array([1.5, 2.0, -0.25])
    n = np.array([2, 3, 8], dtype=np.int64)
    return {"x": x.tolist(), "n": n.tolist(), "y": (x * n).tolist()}


def make_docs_models():
    """Two models that take the request bodies of MLflow's `mlflow models serve`
    documentation verbatim: columns a, b, c (all long, fed as one [-1, 3] input), and
    tensors a (strings), b (int64), c (int64 [-1, 3])."""
    table = helper.make_graph(
        [helper.make_node("ReduceSum", ["abc", "axes"], ["total"], keepdims=0)],
        "abc_table",
        [helper.make_tensor_value_info("abc", TensorProto.INT64, ["batch", 3])],
        [helper.make_tensor_value_info("total", TensorProto.INT64, ["batch"])],
        initializer=[numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")],
    )
    write_model_dir(
        os.path.join(FIXTURES, "abc_table"),
        (table, [opset()]),
        {
            "inputs": [{"type": "long", "name": n, "required": True} for n in "abc"],
            "outputs": [{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}, "name": "total"}],
        },
    )
    tensors = helper.make_graph(
        [
            helper.make_node("ReduceSum", ["c", "axes"], ["c_sum"], keepdims=0),
            helper.make_node("Add", ["c_sum", "b"], ["b_plus_c"]),
            helper.make_node("Identity", ["a"], ["a_echo"]),
        ],
        "abc_tensors",
        [
            helper.make_tensor_value_info("a", TensorProto.STRING, ["batch"]),
            helper.make_tensor_value_info("b", TensorProto.INT64, ["batch"]),
            helper.make_tensor_value_info("c", TensorProto.INT64, ["batch", 3]),
        ],
        [
            helper.make_tensor_value_info("b_plus_c", TensorProto.INT64, ["batch"]),
            helper.make_tensor_value_info("a_echo", TensorProto.STRING, ["batch"]),
        ],
        initializer=[numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")],
    )
    write_model_dir(
        os.path.join(FIXTURES, "abc_tensors"),
        (tensors, [opset()]),
        {
            "inputs": [
                {"type": "tensor", "tensor-spec": {"dtype": "str", "shape": [-1]}, "name": "a"},
                {"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}, "name": "b"},
                {"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1, 3]}, "name": "c"},
            ],
            "outputs": [
                {"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}, "name": "b_plus_c"},
                {"type": "tensor", "tensor-spec": {"dtype": "str", "shape": [-1]}, "name": "a_echo"},
            ],
        },
    )
    rows = np.array([[1, 2, 3], [4, 5, 6]])
    c = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    return {
        "abc_table": {"total": rows.sum(axis=1).tolist()},
        "abc_tensors": {"b_plus_c": (c.sum(axis=1) + np.array([1, 2, 3])).tolist(), "a_echo": ["s1", "s2", "s3"]},
    }


# Every tensor dtype the server handles, as ONNX and numpy name them.
DTYPES = {
    "bool": TensorProto.BOOL, "int8": TensorProto.INT8, "int16": TensorProto.INT16, "int32": TensorProto.INT32,
    "int64": TensorProto.INT64, "uint8": TensorProto.UINT8, "uint16": TensorProto.UINT16, "uint32": TensorProto.UINT32,
    "uint64": TensorProto.UINT64, "float16": TensorProto.FLOAT16, "float32": TensorProto.FLOAT,
    "float64": TensorProto.DOUBLE, "string": TensorProto.STRING,
}


def make_dtypes():
    """One input per dtype, each passed through (Identity) to an output named out_<dtype>."""
    graph = helper.make_graph(
        [helper.make_node("Identity", [name], [f"out_{name}"]) for name in DTYPES],
        "dtypes",
        [helper.make_tensor_value_info(name, t, ["batch"]) for name, t in DTYPES.items()],
        [helper.make_tensor_value_info(f"out_{name}", t, ["batch"]) for name, t in DTYPES.items()],
    )
    numpy_name = lambda n: "str" if n == "string" else n  # noqa: E731
    write_model_dir(
        os.path.join(FIXTURES, "dtypes"),
        (graph, [opset()]),
        {
            "inputs": [{"type": "tensor", "tensor-spec": {"dtype": numpy_name(n), "shape": [-1]}, "name": n} for n in DTYPES],
            "outputs": [
                {"type": "tensor", "tensor-spec": {"dtype": numpy_name(n), "shape": [-1]}, "name": f"out_{n}"} for n in DTYPES
            ],
        },
    )


def make_slow():
    """A model whose run time the caller chooses: an n x n matrix of ones squared
    and summed (n^3 multiply-adds). Used to prove the event loop stays free. One
    intra-op thread (onnx_session_options), so that a run takes as long on any number
    of cores."""
    graph = helper.make_graph(
        [
            helper.make_node("Concat", ["n", "n"], ["shape"], axis=0),
            helper.make_node(
                "ConstantOfShape", ["shape"], ["ones"], value=helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
            ),
            helper.make_node("MatMul", ["ones", "ones"], ["square"]),
            helper.make_node("ReduceSum", ["square"], ["total"], keepdims=0),
        ],
        "slow",
        [helper.make_tensor_value_info("n", TensorProto.INT64, [1])],
        [helper.make_tensor_value_info("total", TensorProto.FLOAT, [])],
    )
    write_model_dir(os.path.join(FIXTURES, "slow"), (graph, [opset()]), session_options=ONE_THREAD)


def make_slow_batch():
    """The batchable twin of the slow model: each row asks for an n, a run costs
    max(n)^3 multiply-adds (one thread), and answers every row its own n ("echo") and
    the number of rows its run held ("rows_in_run"), so a caller sees the batch it was
    merged into. A "tag" param (default "a") keeps requests apart as params do."""
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMax", ["n"], ["m"], keepdims=1),
            helper.make_node("Concat", ["m", "m"], ["shape"], axis=0),
            helper.make_node(
                "ConstantOfShape", ["shape"], ["ones"], value=helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
            ),
            helper.make_node("MatMul", ["ones", "ones"], ["square"]),
            helper.make_node("ReduceSum", ["square"], ["total"], keepdims=0),
            # 0 from the run's result, so the work cannot be skipped.
            helper.make_node("Mul", ["total", "zero"], ["nothing"]),
            helper.make_node("Cast", ["nothing"], ["nothing_int"], to=TensorProto.INT64),
            helper.make_node("Add", ["n", "nothing_int"], ["echo"]),
            helper.make_node("Shape", ["n"], ["rows"]),
            helper.make_node("Expand", ["rows", "rows"], ["rows_in_run"]),
        ],
        "slow_batch",
        [helper.make_tensor_value_info("n", TensorProto.INT64, ["batch"])],
        [
            helper.make_tensor_value_info("echo", TensorProto.INT64, ["batch"]),
            helper.make_tensor_value_info("rows_in_run", TensorProto.INT64, ["batch"]),
        ],
        initializer=[numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero")],
    )
    signature = {
        "inputs": [{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}, "name": "n"}],
        "outputs": [
            {"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}, "name": "echo"},
            {"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}, "name": "rows_in_run"},
        ],
    }
    params = [{"name": "tag", "type": "string", "default": "a", "shape": None}]
    write_model_dir(
        os.path.join(FIXTURES, "slow_batch"), (graph, [opset()]), signature, params=params, session_options=ONE_THREAD
    )


def make_broken():
    broken = os.path.join(FIXTURES, "broken")
    shutil.rmtree(broken, ignore_errors=True)
    os.makedirs(os.path.join(broken, "no-mlmodel"))
    with open(os.path.join(broken, "no-mlmodel", "model.onnx"), "wb") as f:
        f.write(b"")
    sklearn_flavors = """  python_function:
    env:
      conda: conda.yaml
    loader_module: mlflow.sklearn
    model_path: model.pkl
    python_version: 3.11.2
  sklearn:
    code: null
    pickled_model: model.pkl
    serialization_format: cloudpickle
    sklearn_version: 1.2.1
"""
    write_model_dir(os.path.join(broken, "sklearn-only"), None, flavors=sklearn_flavors)
    write_model_dir(os.path.join(broken, "invalid-onnx"), b"this is not an ONNX protobuf\n")
    write_model_dir(os.path.join(broken, "missing-onnx-file"), None)
    os.makedirs(os.path.join(broken, "bad-yaml"))
    with open(os.path.join(broken, "bad-yaml", "MLmodel"), "w") as f:
        f.write("flavors:\n  onnx: [data: model.onnx\n")


def make_mlp(folder):
    """The benchmark's 784-1024-1024-10 float32 MLP (ReLU, softmax) with fixed random
    weights: 7 MB, so made on demand (`npm run bench`) and not committed."""
    rng = np.random.default_rng(0)
    sizes = [784, 1024, 1024, 10]
    nodes, inits, last = [], [], "input"
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        w = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32)
        b = np.zeros(n_out, dtype=np.float32)
        inits += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(b, f"B{i}")]
        nodes += [helper.make_node("MatMul", [last, f"W{i}"], [f"m{i}"]), helper.make_node("Add", [f"m{i}", f"B{i}"], [f"a{i}"])]
        last = f"a{i}"
        if i < len(sizes) - 2:
            nodes.append(helper.make_node("Relu", [last], [f"r{i}"]))
            last = f"r{i}"
    nodes.append(helper.make_node("Softmax", [last], ["probabilities"], axis=1))
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 784])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 10])],
        initializer=inits,
    )
    signature = {
        "inputs": [{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 784]}, "name": "input"}],
        "outputs": [{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 10]}, "name": "probabilities"}],
    }
    write_model_dir(folder, (graph, [opset()]), signature)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--mlp":
        make_mlp(sys.argv[2])
        return
    os.makedirs(MODELS, exist_ok=True)
    os.makedirs(FIXTURES, exist_ok=True)
    reference = {"iris": make_iris(), "greeter": make_greeter(), "multi": make_multi(), "tabular": make_tabular(), **make_docs_models()}
    make_dtypes()
    make_slow()
    make_slow_batch()
    make_broken()
    with open(os.path.join(FIXTURES, "reference.json"), "w") as f:
        json.dump(reference, f, indent=2)
        f.write("\n")
    print("wrote", MODELS, "and", FIXTURES, file=sys.stderr)


if __name__ == "__main__":
    main()
