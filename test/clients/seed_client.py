"""The original mlflow-grpc wrapper's client, with stubs generated from proto/mlflow.proto.

Usage: seed_client.py STUBS_DIR ADDRESS VALUE; prints Output.value, or
"ERROR <status code name> <details>" for a failed call.
"""
import sys

sys.path.insert(0, sys.argv[1])

import grpc  # noqa: E402
import mlflow_pb2  # noqa: E402
import mlflow_pb2_grpc  # noqa: E402

with grpc.insecure_channel(sys.argv[2]) as channel:
    stub = mlflow_pb2_grpc.MLflowStub(channel)
    try:
        print(stub.predict(mlflow_pb2.Input(value=sys.argv[3]), timeout=10).value)
    except grpc.RpcError as error:
        print("ERROR", error.code().name, error.details())
