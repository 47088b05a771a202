import { cpSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Copies model directories into a fresh repository folder: { "iris/1": IRIS, greeter: GREETER, ... }. */
export function makeRepository(models: Record<string, string>): string {
  const folder = mkdtempSync(join(tmpdir(), "model-repo-"));
  for (const [where, source] of Object.entries(models)) cpSync(source, join(folder, where), { recursive: true });
  return folder;
}
