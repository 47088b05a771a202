import type { ConnectRouter } from "@connectrpc/connect";
import { type UniversalHandler, type UniversalServerResponse, encodeEnvelope } from "@connectrpc/connect/protocol";

/**
 * Two corrections to what connect-es puts on the wire for errors, applied to every
 * handler of a router:
 *
 * - A request body that is not valid protobuf is the client's mistake, but
 *   connect-es reports it as internal ("parse binary: ..."): it becomes
 *   invalid_argument (grpc-status 3, HTTP 400) on gRPC, gRPC-Web and Connect
 *   (unary, and the end of a Connect stream).
 * - connect-es percent-encodes grpc-message with encodeURIComponent, and
 *   @grpc/grpc-js decodes it with decodeURI, so its users would read "%3A" for ":".
 *   The gRPC spec asks to encode only bytes outside 0x20-0x7E and "%"; doing just
 *   that reads right in every client.
 */
export function applyWireErrorFixes(router: ConnectRouter): void {
  const handlers = router.handlers as UniversalHandler[];
  handlers.forEach((handler, i) => {
    handlers[i] = Object.assign(async (req: Parameters<UniversalHandler>[0]) => fixResponse(await handler(req)), handler);
  });
}

const PARSE_ERROR = "parse binary:";
const GRPC_INTERNAL = "13";
const GRPC_INVALID_ARGUMENT = "3";

/** Percent-encodes a grpc-message as the gRPC spec asks (PROTOCOL-HTTP2.md). */
export function encodeGrpcMessage(message: string): string {
  let out = "";
  for (const byte of new TextEncoder().encode(message)) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

function decodeGrpcMessage(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** Fixes grpc-status and grpc-message in a header or trailer block. */
function fixGrpcStatus(headers: Headers | undefined): void {
  const raw = headers?.get("grpc-message");
  if (!headers || raw === null || raw === undefined) return;
  const message = decodeGrpcMessage(raw);
  if (headers.get("grpc-status") === GRPC_INTERNAL && message.startsWith(PARSE_ERROR)) headers.set("grpc-status", GRPC_INVALID_ARGUMENT);
  headers.set("grpc-message", encodeGrpcMessage(message));
}

async function* fixGrpcTrailerAfter(body: AsyncIterable<Uint8Array>, trailer: Headers | undefined): AsyncIterable<Uint8Array> {
  yield* body;
  // The adapter writes trailers only after the body ends, so they can still change here.
  fixGrpcStatus(trailer);
}

/** gRPC-Web carries trailers in the body: a last envelope with flag 0x80 holding "key: value\r\n" lines. */
async function* fixGrpcWebTrailer(body: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  for await (const chunk of body) {
    const isPlainTrailer = chunk.length >= 5 && chunk[0] === 0x80;
    const text = isPlainTrailer ? new TextDecoder().decode(chunk.subarray(5)) : "";
    if (!text.includes(`grpc-status: ${GRPC_INTERNAL}\r\n`) || !decodeGrpcMessage(text).includes(`grpc-message: ${PARSE_ERROR}`)) {
      yield chunk;
      continue;
    }
    yield encodeEnvelope(0x80, new TextEncoder().encode(text.replace(`grpc-status: ${GRPC_INTERNAL}\r\n`, `grpc-status: ${GRPC_INVALID_ARGUMENT}\r\n`)));
  }
}

/** A Connect stream ends with an envelope flagged 0x02 holding {"error": {"code", "message"}} (or no error). */
async function* fixConnectEndStream(body: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  for await (const chunk of body) {
    const isEndStream = chunk.length >= 5 && (chunk[0]! & 0x02) === 0x02 && (chunk[0]! & 0x01) === 0;
    const end = isEndStream ? parseEndStream(chunk.subarray(5)) : undefined;
    if (end?.error?.code !== "internal" || !end.error.message?.startsWith(PARSE_ERROR)) {
      yield chunk;
      continue;
    }
    yield encodeEnvelope(chunk[0]!, new TextEncoder().encode(JSON.stringify({ ...end, error: { ...end.error, code: "invalid_argument" } })));
  }
}

function parseEndStream(bytes: Uint8Array): { error?: { code?: string; message?: string } } | undefined {
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as { error?: { code?: string; message?: string } };
  } catch {
    return undefined; // not ours to judge: passed on as it is
  }
}

async function readAll(body: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function fixResponse(res: UniversalServerResponse): Promise<UniversalServerResponse> {
  const contentType = res.header?.get("content-type") ?? "";
  const body = res.body;
  if (body === undefined || !(Symbol.asyncIterator in body)) return res;
  if (contentType.startsWith("application/grpc-web")) return { ...res, body: fixGrpcWebTrailer(body) };
  if (contentType.startsWith("application/connect+")) return { ...res, body: fixConnectEndStream(body) };
  if (contentType.startsWith("application/grpc")) {
    fixGrpcStatus(res.header);
    return { ...res, body: fixGrpcTrailerAfter(body, res.trailer) };
  }
  if (res.status !== 500 || !contentType.startsWith("application/json")) return res;
  // A Connect unary error: one JSON object.
  const bytes = await readAll(body);
  const error = JSON.parse(new TextDecoder().decode(bytes)) as { code?: string; message?: string };
  if (error.code !== "internal" || !error.message?.startsWith(PARSE_ERROR)) return { ...res, body: (async function* () { yield bytes; })() };
  const fixed = new TextEncoder().encode(JSON.stringify({ ...error, code: "invalid_argument" }));
  res.header?.set("content-length", String(fixed.length));
  return { ...res, status: 400, body: (async function* () { yield fixed; })() };
}
