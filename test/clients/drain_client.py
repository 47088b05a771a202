"""Many concurrent typed Predict calls on one gRPC channel, and SIGTERM to the server
once some have completed: what an independent gRPC implementation sees of a drain.

Usage: drain_client.py STUBS_DIR ADDRESS SERVER_PID CALLS ROWS SIGNAL_AFTER [MODEL]
Calls model MODEL (default "multi": sum = a[:, 0] + a[:, 1] + b, doubled = 2 * b) with
ROWS rows each in raw_data, every call with rows of its own, and checks each answer
exactly. Prints one JSON object:
{"ok": n, "wrong": n, "failed": {"CODE details": n}, "signalled": bool}
"""
import json
import os
import signal
import struct
import sys
import threading

sys.path.insert(0, sys.argv[1])

import grpc  # noqa: E402
from mlflow.serving.v1 import model_service_pb2 as pb  # noqa: E402
from mlflow.serving.v1 import model_service_pb2_grpc  # noqa: E402
from mlflow.serving.v1 import tensor_pb2  # noqa: E402

address, pid, calls, rows, signal_after = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
model = sys.argv[7] if len(sys.argv) > 7 else "multi"


def request(call):
    # Small integers: every sum is exact in float64.
    b = [call * 7 + i for i in range(rows)]
    a = [v for i in range(rows) for v in (float(i), float(call))]
    inputs = {
        "a": tensor_pb2.Tensor(dtype=tensor_pb2.DATA_TYPE_FLOAT64, shape=[rows, 2], raw_data=struct.pack(f"<{2 * rows}d", *a)),
        "b": tensor_pb2.Tensor(dtype=tensor_pb2.DATA_TYPE_INT64, shape=[rows], raw_data=struct.pack(f"<{rows}q", *b)),
    }
    expected = ([float(i + call + b[i]) for i in range(rows)], [2 * v for v in b])
    return pb.PredictRequest(model_name=model, inputs=inputs), expected


def values(tensor, fmt, field):
    if tensor.raw_data:
        return list(struct.unpack(f"<{len(tensor.raw_data) // 8}{fmt}", tensor.raw_data))
    return list(getattr(tensor, field))


options = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]
with grpc.insecure_channel(address, options=options) as channel:
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    lock = threading.Lock()
    done = threading.Event()
    result = {"ok": 0, "wrong": 0, "failed": {}, "signalled": False}
    finished = 0

    def on_done(future, expected):
        global finished
        with lock:
            error = future.exception()
            if error is None:
                out = future.result().outputs
                got = (values(out["sum"], "d", "double_data"), values(out["doubled"], "q", "int64_data"))
                result["ok" if got == expected else "wrong"] += 1
            else:
                key = f"{error.code().name} {error.details()}"
                result["failed"][key] = result["failed"].get(key, 0) + 1
            finished += 1
            if finished == signal_after and not result["signalled"]:
                result["signalled"] = True
                os.kill(pid, signal.SIGTERM)
            if finished == calls:
                done.set()

    prepared = [request(i) for i in range(calls)]
    for req, expected in prepared:
        future = stub.Predict.future(req, timeout=60)
        future.add_done_callback(lambda f, e=expected: on_done(f, e))
    done.wait(90)
    print(json.dumps(result))
