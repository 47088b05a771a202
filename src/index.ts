/**
 * mlflow-connect as a library: the server the CLI starts, built from the same options
 * (the CLI's flags in camelCase) with the same defaults. The generated clients and
 * message types are the package's `mlflow-connect/gen/...` subpaths.
 *
 * ```ts
 * import { createServer } from "mlflow-connect";
 * const server = await createServer({ models: ["models/iris"], port: 0 });
 * const url = await server.listen();
 * // ...
 * await server.close();
 * ```
 */
import { type App, build } from "./app.js";
import { type ServerConfig, withDefaults } from "./config.js";

export type { App } from "./app.js";
export { DEFAULT_HOST, DEFAULT_PORT, type LogLevel, type ServerConfig, withDefaults } from "./config.js";
export type { ModelControlMode } from "./fronts/oip/repository-guard.js";
export { ModelLoadError } from "./mlflow/model-directory.js";

/** Options of createServer(): the models, and any other setting of ServerConfig (its defaults otherwise). */
export type ServerOptions = Partial<ServerConfig> & Pick<ServerConfig, "models">;

/**
 * Loads the models and mounts every protocol; the returned server is not listening
 * yet (call `listen()`). Rejects with ModelLoadError for a model that cannot be served.
 */
export function createServer(options: ServerOptions): Promise<App> {
  return build(withDefaults(options));
}
