import type { AddressInfo } from "node:net";
import { build, type App } from "../../src/app.js";
import { withDefaults, type ServerConfig } from "../../src/config.js";

// Tests run compiled, from dist/test/helpers/.
export const ROOT = new URL("../../../", import.meta.url).pathname;
export const IRIS = `${ROOT}models/iris`;
export const GREETER = `${ROOT}models/greeter`;
export const SLOW = `${ROOT}test/fixtures/slow`;
export const SLOW_BATCH = `${ROOT}test/fixtures/slow_batch`;
export const BROKEN = `${ROOT}test/fixtures/broken`;
export const MULTI = `${ROOT}test/fixtures/multi`;
export const TABULAR = `${ROOT}test/fixtures/tabular`;
export const ABC_TABLE = `${ROOT}test/fixtures/abc_table`;
export const ABC_TENSORS = `${ROOT}test/fixtures/abc_tensors`;
export const DTYPES = `${ROOT}test/fixtures/dtypes`;

export interface RunningServer {
  app: App;
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Starts the real server on an ephemeral loopback port. */
export async function startServer(models: string[], config: Partial<ServerConfig> = {}): Promise<RunningServer> {
  const app = await build(withDefaults({ models, port: 0, host: "127.0.0.1", workers: 1, logLevel: "silent", ...config }));
  await app.listen();
  const { port } = app.fastify.server.address() as AddressInfo;
  return { app, port, url: `http://127.0.0.1:${port}`, close: () => app.close() };
}
