import { readFileSync } from "node:fs";

/**
 * Where the server's files are at run time. This module sits at the top of dist/src/,
 * as does the bundled CLI (dist/src/cli.bundle.js, see scripts/bundle-server.js), so
 * the same URLs come out whether it runs bundled or as tsc wrote it.
 */
const distSrc = new URL("./", import.meta.url);

/** The project (or image) root: package.json, models/, dist/. */
export const projectRoot = new URL("../../", distSrc);

/** The onnxruntime worker thread's entry, never bundled. */
export const workerUrl = new URL("runtime/worker.js", distSrc);

/** The package's version, from its package.json. */
export const packageVersion = (JSON.parse(readFileSync(new URL("package.json", projectRoot), "utf8")) as { version: string }).version;
