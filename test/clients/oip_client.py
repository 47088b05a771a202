"""An Open Inference Protocol client with stubs generated from proto/inference/grpc_predict_v2.proto.

Usage: oip_client.py STUBS_DIR ADDRESS MODEL ROWS_JSON; calls ServerReady, ModelMetadata
and ModelInfer (FP32 [n, 4] in typed contents, then the same in raw_input_contents) and
prints one JSON object with what came back.
"""
import json
import struct
import sys

sys.path.insert(0, sys.argv[1])

import grpc  # noqa: E402
import grpc_predict_v2_pb2 as pb  # noqa: E402
import grpc_predict_v2_pb2_grpc as pb_grpc  # noqa: E402

address, model, rows = sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
flat = [v for row in rows for v in row]
with grpc.insecure_channel(address) as channel:
    stub = pb_grpc.GRPCInferenceServiceStub(channel)
    ready = stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready
    meta = stub.ModelMetadata(pb.ModelMetadataRequest(name=model), timeout=10)
    tensor = pb.ModelInferRequest.InferInputTensor(name="input", datatype="FP32", shape=[len(rows), 4])
    tensor.contents.fp32_contents.extend(flat)
    typed = stub.ModelInfer(pb.ModelInferRequest(model_name=model, id="py-1", inputs=[tensor]), timeout=10)
    raw_tensor = pb.ModelInferRequest.InferInputTensor(name="input", datatype="FP32", shape=[len(rows), 4])
    raw = stub.ModelInfer(
        pb.ModelInferRequest(model_name=model, inputs=[raw_tensor], raw_input_contents=[struct.pack(f"<{len(flat)}f", *flat)]),
        timeout=10,
    )
    by_name = {o.name: i for i, o in enumerate(raw.outputs)}
    label_raw = raw.raw_output_contents[by_name["label"]]
    try:
        stub.ModelInfer(pb.ModelInferRequest(model_name="nope", inputs=[tensor]), timeout=10)
        error = None
    except grpc.RpcError as e:
        error = [e.code().name, e.details()]
    print(json.dumps({
        "ready": ready,
        "platform": meta.platform,
        "inputs": [[t.name, t.datatype, list(t.shape)] for t in meta.inputs],
        "id": typed.id,
        "label": list(next(o for o in typed.outputs if o.name == "label").contents.int64_contents),
        "probabilities": list(next(o for o in typed.outputs if o.name == "probabilities").contents.fp32_contents),
        "raw_label": list(struct.unpack(f"<{len(label_raw) // 8}q", label_raw)),
        "error": error,
    }))
