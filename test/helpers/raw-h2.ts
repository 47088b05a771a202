import net from "node:net";

/** The client connection preface (RFC 9113, 3.4). */
export const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** Frame types and flags (RFC 9113, 6), and the error codes the tests look for (7). */
export const DATA = 0x0;
export const HEADERS = 0x1;
export const RST_STREAM = 0x3;
export const SETTINGS = 0x4;
export const GOAWAY = 0x7;
export const END_STREAM = 0x1;
export const ACK = 0x1;
export const END_HEADERS = 0x4;
export const NO_ERROR = 0x0;
export const CANCEL = 0x8;
export const REFUSED_STREAM = 0x7;
export const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;
export const SETTINGS_MAX_HEADER_LIST_SIZE = 0x6;

export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

/** An HPACK integer with a 7-bit prefix (RFC 7541, 5.1). */
function hpackInteger(value: number): Buffer {
  if (value < 127) return Buffer.from([value]);
  const bytes = [127];
  for (value -= 127; value >= 128; value = Math.floor(value / 128)) bytes.push((value % 128) + 128);
  bytes.push(value);
  return Buffer.from(bytes);
}

/** A HEADERS frame whose fields are HPACK literals without indexing (RFC 7541, 6.2.2): no encoder state to keep. */
export function headersFrame(streamId: number, fields: Record<string, string>, endStream: boolean): Buffer {
  const block = Object.entries(fields).map(([name, value]) => {
    const n = Buffer.from(name);
    const v = Buffer.from(value);
    return Buffer.concat([Buffer.from([0]), hpackInteger(n.length), n, hpackInteger(v.length), v]);
  });
  return frame(HEADERS, END_HEADERS | (endStream ? END_STREAM : 0), streamId, Buffer.concat(block));
}

export function rstStreamFrame(streamId: number, code: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(code);
  return frame(RST_STREAM, 0, streamId, payload);
}

/** The first field of a RST_STREAM or GOAWAY frame's error code. */
export function errorCode(f: Frame): number {
  return f.type === GOAWAY ? f.payload.readUInt32BE(4) : f.payload.readUInt32BE(0);
}

/** The settings of a SETTINGS frame, by identifier. */
export function settingsOf(f: Frame): Map<number, number> {
  const settings = new Map<number, number>();
  for (let at = 0; at + 6 <= f.payload.length; at += 6) settings.set(f.payload.readUInt16BE(at), f.payload.readUInt32BE(at + 2));
  return settings;
}

/**
 * A raw HTTP/2 client connection, as an attacker writes one: frames go out as given,
 * frames that come back are recorded, and tests wait on them (never on time).
 */
export class RawH2 {
  readonly frames: Frame[] = [];
  readonly closed: Promise<void>;
  private buffered = Buffer.alloc(0);
  private watchers = new Set<() => void>();
  private isClosed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      while (this.buffered.length >= 9 && this.buffered.length >= 9 + this.buffered.readUIntBE(0, 3)) {
        const length = this.buffered.readUIntBE(0, 3);
        this.frames.push({ type: this.buffered[3]!, flags: this.buffered[4]!, streamId: this.buffered.readUInt32BE(5) & 0x7fffffff, payload: this.buffered.subarray(9, 9 + length) });
        this.buffered = this.buffered.subarray(9 + length);
      }
      for (const watcher of this.watchers) watcher();
    });
    socket.on("error", () => undefined);
    this.closed = new Promise((resolve) =>
      socket.once("close", () => {
        this.isClosed = true;
        for (const watcher of this.watchers) watcher();
        resolve();
      }),
    );
  }

  /** Connects and sends the preface and an empty SETTINGS; with ack, waits for the server's SETTINGS and acknowledges them. */
  static async open(port: number, { ack = true }: { ack?: boolean } = {}): Promise<RawH2> {
    const socket = net.connect(port, "127.0.0.1");
    const connection = new RawH2(socket);
    socket.write(Buffer.concat([PREFACE, frame(SETTINGS, 0, 0)]));
    if (ack) {
      await connection.until(() => connection.frames.some((f) => f.type === SETTINGS && !(f.flags & ACK)));
      connection.send(frame(SETTINGS, ACK, 0));
    }
    return connection;
  }

  send(...frames: Buffer[]): void {
    this.socket.write(Buffer.concat(frames));
  }

  /** Resolves once condition() holds (checked now and on every frame); rejects if the connection closes first. */
  until(condition: () => boolean, what = "the expected frames"): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (condition()) {
          this.watchers.delete(check);
          resolve();
        } else if (this.isClosed) {
          this.watchers.delete(check);
          reject(new Error(`the connection closed before ${what}; frames: ${this.frames.map((f) => `${f.type}/${f.streamId}`).join(" ")}`));
        }
      };
      this.watchers.add(check);
      check();
    });
  }

  /** Frames of one stream. */
  stream(id: number): Frame[] {
    return this.frames.filter((f) => f.streamId === id);
  }

  destroy(): void {
    this.socket.destroy();
  }
}
