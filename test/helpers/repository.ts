import { appendFileSync, cpSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SLOW } from "./server.js";

/** Copies model directories into a fresh repository folder: { "iris/1": IRIS, greeter: GREETER, ... }. */
export function makeRepository(models: Record<string, string>): string {
  const folder = mkdtempSync(join(tmpdir(), "model-repo-"));
  for (const [where, source] of Object.entries(models)) cpSync(source, join(folder, where), { recursive: true });
  return folder;
}

/**
 * Writes into `dir` a copy of the slow fixture with an input example of `n`: a model is
 * warmed up with its example on every worker before it serves, so loading it takes an
 * n^3 run (n = 2000: a few hundred ms on one thread), a window in which the server
 * reports it as loading. Returns `dir`.
 */
export function slowToLoad(dir: string, n = 2000): string {
  cpSync(SLOW, dir, { recursive: true });
  writeFileSync(join(dir, "input_example.json"), JSON.stringify({ inputs: [n] }));
  appendFileSync(join(dir, "MLmodel"), "saved_input_example_info:\n  artifact_path: input_example.json\n  type: json_object\n");
  return dir;
}
