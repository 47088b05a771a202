// Bundles the server (dist/src/cli.js, as tsc wrote it) into one file,
// dist/src/cli.bundle.js, which bin/mlflow-connect.js runs: Node's ESM loader spends
// ~130 ms here resolving and compiling the hundreds of files of fastify, connect-es
// and protobuf-es one by one; one file starts in about half the time.
// Kept outside: onnxruntime-node (native), the worker thread's entry (its own file,
// see src/locations.ts) and pino with its transports (they load files by path).
import { build } from "esbuild";

await build({
  entryPoints: ["dist/src/cli.js"],
  outfile: "dist/src/cli.bundle.js",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  external: ["onnxruntime-node", "pino", "pino-pretty", "thread-stream"],
  // CommonJS packages inside an ESM bundle still call require() for Node's built-ins.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  logLevel: "warning",
});
