import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

/**
 * Whether an outside tool the test needs is here. Absent, the test is skipped with a
 * printed reason, except under CI=true where .ci/run must have installed it: there
 * the absence fails the suite.
 */
export function toolSkip(name: string, present: boolean, install: string): string | false {
  if (present) return false;
  const reason = `${name} is not installed (${install})`;
  if (process.env.CI === "true") throw new Error(`CI=true but ${reason}`);
  process.stdout.write(`# skipping: ${reason}\n`);
  return reason;
}

/** Debian's python3 (the python3 on PATH may be another interpreter without Debian's modules). */
export const DEBIAN_PYTHON = "/usr/bin/python3";

export function pythonHas(module: string): boolean {
  if (!existsSync(DEBIAN_PYTHON)) return false;
  return spawnSync(DEBIAN_PYTHON, ["-c", `import ${module}`]).status === 0;
}

export function commandExists(command: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${command}`]).status === 0;
}

/**
 * A check that no machine of this project can run, as opposed to a missing tool that
 * .ci/run installs: it is skipped with the reason printed, under CI=true too (CI could
 * not provide it either), and the test file checks what it can in its place. Returns
 * the reason, for node:test's skip option.
 */
export function untestableSkip(what: string, reason: string): string {
  const message = `${what} is untestable here: ${reason}`;
  process.stdout.write(`# skipping: ${message}\n`);
  return message;
}
