import { type FileHandle, open } from "node:fs/promises";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";

/** What an ONNX file says about itself (onnx.proto ModelProto, fields 1-3 and 8). */
export interface OnnxInfo {
  irVersion: number;
  producerName: string;
  producerVersion: string;
  /** Operator sets the graph uses; "" is the default ONNX domain. */
  opsets: Array<{ domain: string; version: number }>;
}

/** A field's tag and length prefix fit in this many bytes (two varints). */
const TAG_AND_LENGTH_BYTES = 20;

/**
 * Reads the model header of an ONNX file. onnxruntime exposes none of it; GetModel
 * shows it. The graph (field 7, which holds the weights and sits before the opsets)
 * and every other large field are skipped by file position, never read: a model of
 * a gigabyte costs a few small reads, not a gigabyte of memory.
 */
export async function readOnnxInfo(path: string): Promise<OnnxInfo> {
  const file = await open(path, "r");
  try {
    const size = (await file.stat()).size;
    const info: OnnxInfo = { irVersion: 0, producerName: "", producerVersion: "", opsets: [] };
    let at = 0;
    while (at < size) {
      const head = new BinaryReader(await readAt(file, at, TAG_AND_LENGTH_BYTES));
      const [field, wireType] = head.tag();
      if (wireType === WireType.Varint) {
        const value = head.int64();
        if (field === 1) info.irVersion = Number(value);
        at += head.pos;
      } else if (wireType === WireType.LengthDelimited) {
        const length = head.uint32();
        const start = at + head.pos;
        at = start + length;
        if (field !== 2 && field !== 3 && field !== 8) continue;
        const value = await readAt(file, start, length);
        if (value.length < length) throw new Error(`"${path}" ends inside field ${field}`);
        if (field === 2) info.producerName = new TextDecoder().decode(value);
        else if (field === 3) info.producerVersion = new TextDecoder().decode(value);
        else info.opsets.push(readOpset(value));
      } else if (wireType === WireType.Bit64) at += head.pos + 8;
      else if (wireType === WireType.Bit32) at += head.pos + 4;
      else throw new Error(`"${path}" is not an ONNX model (wire type ${wireType} at byte ${at})`);
    }
    return info;
  } finally {
    await file.close();
  }
}

async function readAt(file: FileHandle, at: number, length: number): Promise<Uint8Array> {
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await file.read(buffer, 0, length, at);
  return buffer.subarray(0, bytesRead);
}

/** An OperatorSetIdProto: domain (1) and version (2). */
function readOpset(bytes: Uint8Array): { domain: string; version: number } {
  const reader = new BinaryReader(bytes);
  const entry = { domain: "", version: 0 };
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.LengthDelimited) entry.domain = reader.string();
    else if (field === 2 && wireType === WireType.Varint) entry.version = Number(reader.int64());
    else reader.skip(wireType);
  }
  return entry;
}
