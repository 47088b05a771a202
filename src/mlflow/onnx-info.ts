import { readFile } from "node:fs/promises";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";

/** What an ONNX file says about itself (onnx.proto ModelProto, fields 1-3 and 8). */
export interface OnnxInfo {
  irVersion: number;
  producerName: string;
  producerVersion: string;
  /** Operator sets the graph uses; "" is the default ONNX domain. */
  opsets: Array<{ domain: string; version: number }>;
}

/**
 * Reads the model header of an ONNX file without decoding its graph (which the
 * reader skips). onnxruntime exposes none of it; GetModel shows it.
 */
export async function readOnnxInfo(path: string): Promise<OnnxInfo> {
  const reader = new BinaryReader(await readFile(path));
  const info: OnnxInfo = { irVersion: 0, producerName: "", producerVersion: "", opsets: [] };
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.Varint) info.irVersion = Number(reader.int64());
    else if (field === 2 && wireType === WireType.LengthDelimited) info.producerName = reader.string();
    else if (field === 3 && wireType === WireType.LengthDelimited) info.producerVersion = reader.string();
    else if (field === 8 && wireType === WireType.LengthDelimited) {
      const opset = new BinaryReader(reader.bytes());
      const entry = { domain: "", version: 0 };
      while (opset.pos < opset.len) {
        const [f, w] = opset.tag();
        if (f === 1 && w === WireType.LengthDelimited) entry.domain = opset.string();
        else if (f === 2 && w === WireType.Varint) entry.version = Number(opset.int64());
        else opset.skip(w);
      }
      info.opsets.push(entry);
    } else reader.skip(wireType);
  }
  return info;
}
