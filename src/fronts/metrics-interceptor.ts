import { ConnectError, type Interceptor } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";

/** The RPC protocol of a request, from its content type. */
export function rpcProtocol(contentType: string | null | undefined): string {
  if (contentType?.startsWith("application/grpc-web")) return "grpc-web";
  if (contentType?.startsWith("application/grpc")) return "grpc";
  return "connect";
}

/** Counts and times every RPC on the Connect router (the lean path reports its own). */
export function createMetricsInterceptor(record: (protocol: string, method: string, code: string, seconds: number) => void): Interceptor {
  return (next) => async (req) => {
    const started = performance.now();
    const protocol = rpcProtocol(req.header.get("content-type"));
    const method = `${req.service.typeName}/${req.method.name}`;
    try {
      const res = await next(req);
      record(protocol, method, "ok", (performance.now() - started) / 1000);
      return res;
    } catch (error) {
      record(protocol, method, codeToString(ConnectError.from(error).code), (performance.now() - started) / 1000);
      throw error;
    }
  };
}
