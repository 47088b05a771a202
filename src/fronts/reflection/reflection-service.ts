import { type DescFile, type DescService, createRegistry, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, type ServiceImpl } from "@connectrpc/connect";
import { ServerReflection as ServerReflectionV1, type ServerReflectionRequest as RequestV1 } from "../../../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionV1alpha, type ServerReflectionRequest as RequestV1alpha } from "../../../gen/grpc/reflection/v1alpha/reflection_pb.js";

type Request = RequestV1 | RequestV1alpha;

/**
 * gRPC server reflection over the services the server exposes, in both versions
 * clients use (grpcurl and buf curl try v1, then v1alpha). Files go with all their
 * dependencies, as the protocol asks.
 */
export function createReflectionServices(services: readonly DescService[]): {
  v1: ServiceImpl<typeof ServerReflectionV1>;
  v1alpha: ServiceImpl<typeof ServerReflectionV1alpha>;
} {
  const all = [...services, ServerReflectionV1, ServerReflectionV1alpha];
  const files = new Map<string, DescFile>();
  const addFile = (file: DescFile): void => {
    if (files.has(file.proto.name)) return;
    files.set(file.proto.name, file);
    file.dependencies.forEach(addFile);
  };
  all.forEach((s) => addFile(s.file));
  // Dependencies too, so that their symbols (google.protobuf.Struct) resolve.
  const registry = createRegistry(...files.values());

  /** The file and everything it imports, serialized. */
  function withDependencies(file: DescFile): Uint8Array[] {
    const seen = new Map<string, DescFile>();
    const visit = (f: DescFile): void => {
      if (seen.has(f.proto.name)) return;
      seen.set(f.proto.name, f);
      f.dependencies.forEach(visit);
    };
    visit(file);
    return [...seen.values()].map((f) => toBinary(FileDescriptorProtoSchema, f.proto));
  }

  function fileOfSymbol(symbol: string): DescFile | undefined {
    const desc = registry.get(symbol) ?? registry.getService(symbol.slice(0, symbol.lastIndexOf(".")));
    return desc?.file;
  }

  function answer(req: Request) {
    const notFound = (what: string) => ({ case: "errorResponse" as const, value: { errorCode: Code.NotFound, errorMessage: `${what} not found` } });
    const descriptors = (file: DescFile | undefined, what: string) =>
      file ? { case: "fileDescriptorResponse" as const, value: { fileDescriptorProto: withDependencies(file) } } : notFound(what);
    const r = req.messageRequest;
    const messageResponse =
      r.case === "listServices"
        ? { case: "listServicesResponse" as const, value: { service: all.map((s) => ({ name: s.typeName })) } }
        : r.case === "fileByFilename"
          ? descriptors(files.get(r.value), `file "${r.value}"`)
          : r.case === "fileContainingSymbol"
            ? descriptors(fileOfSymbol(r.value), `symbol "${r.value}"`)
            : r.case === "allExtensionNumbersOfType"
              ? { case: "allExtensionNumbersResponse" as const, value: { baseTypeName: r.value, extensionNumber: [] } }
              : r.case === "fileContainingExtension"
                ? notFound(`extension ${r.value.extensionNumber} of "${r.value.containingType}"`)
                : { case: "errorResponse" as const, value: { errorCode: Code.InvalidArgument, errorMessage: "empty reflection request" } };
    return { validHost: req.host, originalRequest: req, messageResponse };
  }

  return {
    v1: {
      async *serverReflectionInfo(requests) {
        for await (const req of requests) yield answer(req) as never;
      },
    },
    v1alpha: {
      async *serverReflectionInfo(requests) {
        for await (const req of requests) yield answer(req) as never;
      },
    },
  };
}

export { ServerReflectionV1, ServerReflectionV1alpha };
