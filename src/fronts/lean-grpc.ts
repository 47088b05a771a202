import type http2 from "node:http2";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { type Compression, compressedFlag, encodeEnvelope } from "@connectrpc/connect/protocol";
import { parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { type LeanContext, type LeanCore, type LeanMethod, MAX_TIMEOUT_MS, headerValue } from "./lean-core.js";
import { encodeGrpcMessage } from "./wire-error-fixes.js";

/**
 * gRPC unary over HTTP/2 with protobuf and identity request encoding, on the lean path.
 * Answers through Node's compatibility response, which owns the stream's trailers.
 */
export function createLeanGrpc(core: LeanCore) {
  const { readMaxBytes } = core.options;

  // Headers and trailers an implementation set, and error details and metadata, go out
  // as connect-es sends them (its own setTrailerStatus); grpc-message is encoded as the
  // gRPC spec asks, as wire-error-fixes makes the full path do.
  function respond(res: http2.Http2ServerResponse, body: Uint8Array | undefined, error: ConnectError | undefined, context?: HandlerContext): void {
    if (res.stream.destroyed || res.stream.closed) return;
    res.writeHead(200, { ...Object.fromEntries(context?.responseHeader ?? []), "content-type": "application/grpc+proto" });
    const trailer = setTrailerStatus(new Headers(context?.responseTrailer), error);
    if (error && trailer.has("grpc-message")) trailer.set("grpc-message", encodeGrpcMessage(error.rawMessage));
    res.addTrailers(Object.fromEntries(trailer));
    if (body) res.end(body);
    else res.end();
  }

  async function serve(entry: LeanMethod, context: LeanContext, timeout: { error?: ConnectError }, res: http2.Http2ServerResponse, body: Buffer, responseCompression: Compression | null, started: number): Promise<void> {
    let error: ConnectError | undefined;
    try {
      if (timeout.error) throw timeout.error;
      const message = await core.invoke(entry, context, true, readSingleMessage(body));
      const compress = responseCompression !== null && message.byteLength >= core.compressMinBytes;
      const frame = compress ? encodeEnvelope(compressedFlag, await responseCompression.compress(message)) : encodeEnvelope(0, message);
      core.report("grpc", entry, undefined, started, context);
      respond(res, frame, undefined, context);
    } catch (e) {
      error = core.toConnectError(e, entry);
      core.report("grpc", entry, error, started, context);
      respond(res, undefined, error, context);
    } finally {
      context.end();
    }
  }

  return {
    /** Takes a gRPC call it can answer (returns true); anything else is left alone. */
    handle(entry: LeanMethod, req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): boolean {
      const contentType = req.headers["content-type"];
      if (contentType !== "application/grpc" && contentType !== "application/grpc+proto") return false;
      const encoding = req.headers["grpc-encoding"];
      if (encoding !== undefined && encoding !== "identity") return false;
      const responseCompression = core.responseCompression(req.headers["grpc-accept-encoding"], "grpc-accept-encoding");
      const stream = req.stream;
      const started = performance.now();
      // As connect-es: the deadline runs from the request's headers, not from the end of its body.
      const timeout = parseTimeout(headerValue(req.headers["grpc-timeout"]), MAX_TIMEOUT_MS);
      const context = core.createContext(entry, "grpc", req, res, timeout.timeoutMs);
      if (responseCompression) context.responseHeader.set("grpc-encoding", responseCompression.name);
      const chunks: Buffer[] = [];
      let size = 0;
      let refused = false;
      // Envelopes are checked as they arrive, so no more than one message is ever held:
      // an oversized one is refused from its header (as connect-es does), a second one
      // at once (connect-es refuses it too, once it is read).
      let next = 0; // where the next envelope header starts
      let envelopes = 0;
      const refuse = (error: ConnectError) => {
        refused = true;
        chunks.length = 0;
        context.end();
        core.report("grpc", entry, error, started, context);
        respond(res, undefined, error, context);
      };
      // The chunks so far as one buffer (most requests come in one chunk: no copy).
      const joined = (): Buffer => {
        if (chunks.length > 1) chunks.splice(0, chunks.length, Buffer.concat(chunks, size));
        return chunks[0] ?? Buffer.alloc(0);
      };
      stream.on("data", (chunk: Buffer) => {
        if (refused) return;
        chunks.push(chunk);
        size += chunk.length;
        while (!refused && size >= next + 5) {
          const announced = joined().readUInt32BE(next + 1);
          envelopes++;
          if (announced > readMaxBytes) {
            refuse(new ConnectError(`message size ${announced} is larger than configured readMaxBytes ${readMaxBytes}`, Code.ResourceExhausted));
          } else if (envelopes > 1) {
            refuse(new ConnectError("protocol error: received extra input message for unary method", Code.Unimplemented));
          }
          next += 5 + announced;
        }
      });
      stream.once("end", () => {
        if (!refused) void serve(entry, context, timeout, res, joined(), responseCompression, started);
      });
      return true;
    },
  };
}

/**
 * The one message of a unary request body, with connect-es' errors for what is wrong
 * with it. An oversized or second envelope never gets here: handle() refuses those
 * from their headers, as they arrive; so anything but exactly one envelope is one
 * cut short (or the start of a second one's header).
 */
function readSingleMessage(body: Buffer): Uint8Array {
  if (body.length === 0) throw new ConnectError("protocol error: missing input message for unary method", Code.Unimplemented);
  if (body.length < 5 || body.length !== 5 + body.readUInt32BE(1)) throw new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
  if ((body[0]! & compressedFlag) === compressedFlag) throw new ConnectError("received compressed envelope, but do not know how to decompress", Code.Internal);
  return body.subarray(5, 5 + body.readUInt32BE(1));
}
