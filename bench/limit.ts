import * as ort from "onnxruntime-node";
import { availableParallelism } from "node:os";

/**
 * The limit: onnxruntime-node in this process, no server, the same number of
 * threads the server's workers use in all. Returns runs per second at `batch` rows.
 */
export async function rawRunsPerSecond(onnxPath: string, row: number[], batch: number, seconds: number): Promise<number> {
  const session = await ort.InferenceSession.create(onnxPath, { intraOpNumThreads: availableParallelism(), executionMode: "sequential" });
  const data = new Float32Array(batch * row.length);
  for (let i = 0; i < batch; i++) data.set(row, i * row.length);
  const feeds = { [session.inputNames[0]!]: new ort.Tensor("float32", data, [batch, row.length]) };
  for (let i = 0; i < 20; i++) await session.run(feeds); // warm up
  let runs = 0;
  const started = performance.now();
  while (performance.now() - started < seconds * 1000) {
    await session.run(feeds);
    runs++;
  }
  const rate = runs / ((performance.now() - started) / 1000);
  await session.release();
  return rate;
}
