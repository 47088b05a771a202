import { Code, ConnectError } from "@connectrpc/connect";
import { codeToHttpStatus, errorToJsonBytes, parseContentType, parseTimeout, trailerMux } from "@connectrpc/connect/protocol-connect";
import { type LeanCore, type LeanMethod, type LeanRequest, type LeanResponse, MAX_TIMEOUT_MS, headerValue } from "./lean-core.js";

/**
 * Connect unary POSTs (protobuf or JSON, identity request encoding, HTTP/1.1 or
 * HTTP/2) on the lean path: what connect-es' Connect handler answers, without its
 * async-iterable plumbing. Answers are compressed as connect-es compresses them.
 */
export function createLeanConnect(core: LeanCore) {
  const { readMaxBytes } = core.options;

  return {
    /** Takes a Connect unary call it can answer (returns true); anything else is left alone. */
    handle(entry: LeanMethod, req: LeanRequest, res: LeanResponse): boolean {
      const type = parseContentType(req.headers["content-type"] ?? null);
      if (!type || type.stream) return false;
      const encoding = req.headers["content-encoding"];
      if (encoding !== undefined && encoding !== "identity") return false;
      const started = performance.now();
      const responseCompression = core.responseCompression(req.headers["accept-encoding"], "accept-encoding");
      const timeout = parseTimeout(headerValue(req.headers["connect-timeout-ms"]), MAX_TIMEOUT_MS);
      const context = core.createContext(entry, "connect", req, res, timeout.timeoutMs);
      context.responseHeader.set("content-type", binaryType(type.binary));

      // Read even when the call fails first, so that an HTTP/2 stream never stalls on an unread body.
      const request = readBody(req, readMaxBytes);
      request.catch(() => undefined);

      const answer = async (): Promise<void> => {
        let status = 200;
        let body: Uint8Array;
        let error: ConnectError | undefined;
        try {
          if (timeout.error) throw timeout.error;
          body = await core.invoke(entry, context, type.binary, await request);
        } catch (e) {
          error = core.toConnectError(e, entry);
          status = codeToHttpStatus(error.code);
          context.responseHeader.set("content-type", "application/json");
          error.metadata.forEach((value, key) => context.responseHeader.set(key, value));
          body = errorToJsonBytes(error, undefined);
        } finally {
          context.end();
        }
        if (responseCompression && body.byteLength >= core.compressMinBytes) {
          body = await responseCompression.compress(body);
          context.responseHeader.set("content-encoding", responseCompression.name);
        }
        core.report("connect", entry, error, started, context);
        if (res.writableEnded || ("stream" in res ? res.stream.destroyed : res.destroyed)) return;
        const header = trailerMux(context.responseHeader, context.responseTrailer);
        header.set("content-length", String(body.byteLength));
        res.writeHead(status, Object.fromEntries(header));
        res.end(body);
      };
      void answer();
      return true;
    },
  };
}

const binaryType = (binary: boolean) => (binary ? "application/proto" : "application/json");

/**
 * The whole request body, refused with connect-es' errors once it is larger than
 * readMaxBytes or than its Content-Length promised. The rest of a refused body is
 * read and dropped, so the connection stays usable.
 */
function readBody(req: LeanRequest, readMaxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const lengthHeader = headerValue(req.headers["content-length"]);
    const promised = lengthHeader !== null && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : undefined;
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const fail = (error: ConnectError) => {
      settled = true;
      chunks.length = 0;
      reject(error);
    };
    req.on("data", (chunk: Buffer) => {
      if (settled) return;
      size += chunk.length;
      if (promised !== undefined && size > promised) return fail(new ConnectError(`protocol error: promised ${promised} bytes, received ${size}`, Code.InvalidArgument));
      if (size > readMaxBytes) return fail(new ConnectError(`message size is larger than configured readMaxBytes ${readMaxBytes}`, Code.ResourceExhausted));
      chunks.push(chunk);
    });
    req.once("end", () => {
      if (settled) return;
      settled = true;
      if (promised !== undefined && size < promised) reject(new ConnectError(`protocol error: promised ${promised} bytes, received ${size}`, Code.InvalidArgument));
      else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    });
    // A client that goes away mid-body: nothing to answer, but nothing may hang either.
    req.once("close", () => {
      if (!settled) fail(new ConnectError("client closed the request", Code.Canceled));
    });
    if (promised !== undefined && promised > readMaxBytes) fail(new ConnectError(`message size ${promised} is larger than configured readMaxBytes ${readMaxBytes}`, Code.ResourceExhausted));
  });
}
