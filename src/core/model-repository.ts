import { type MlflowModel, ModelLoadError, readModelDirectory } from "../mlflow/model-directory.js";
import { type ModelLocation, type ModelSources, isInside, scanRepository } from "../mlflow/model-repository.js";
import type { BatcherOptions } from "./batcher.js";
import { InferenceError } from "./errors.js";
import type { InferenceService } from "./inference-service.js";

/** One entry of the repository index, as the OIP repository extension lists it. */
export interface RepositoryEntry {
  name: string;
  version: string;
  state: "READY" | "LOADING" | "UNAVAILABLE";
  /** Why a model is unavailable (not loaded, or its last load failed). */
  reason: string;
}

/** The model repository: what can be served, loaded and unloaded while the server runs. */
export interface ModelRepository {
  /** Loads every model the command line named; the first failure stops the start. */
  loadAll(): Promise<void>;
  /** Every model the server serves or could load; only the ready ones when `readyOnly`. */
  index(readyOnly?: boolean): Promise<RepositoryEntry[]>;
  /** Loads (or reloads, with a newer version) a model by name, without failing requests in flight. */
  load(name: string): Promise<void>;
  /** Stops serving a model; requests in flight finish. */
  unload(name: string): Promise<void>;
}

/** Creates the repository over the models and repository folders of the command line. */
export function createModelRepository(
  core: InferenceService,
  sources: ModelSources,
  batching: Record<string, Partial<Omit<BatcherOptions, "concurrency">>> = {},
): ModelRepository {
  const failures = new Map<string, string>();

  async function locations(): Promise<ModelLocation[]> {
    const scanned = (await Promise.all(sources.repositories.map(scanRepository))).flat();
    const byName = new Map<string, ModelLocation>();
    for (const location of [...sources.models.filter((m) => !sources.repositories.some((r) => isInside(r, m.path))), ...scanned]) {
      if (!byName.has(location.name)) byName.set(location.name, location);
    }
    return [...byName.values()];
  }

  async function loadLocation(location: ModelLocation): Promise<void> {
    let source: MlflowModel;
    try {
      source = await readModelDirectory(location.path, location.name);
      await core.loadModel(source, location.version, batching[location.name]);
      failures.delete(location.name);
    } catch (error) {
      failures.set(location.name, (error as Error).message);
      throw error;
    }
  }

  return {
    async loadAll() {
      for (const location of sources.models) await loadLocation(location);
    },

    async index(readyOnly = false) {
      const loading = core.loading();
      const entries: RepositoryEntry[] = (await locations()).map((l) => ({
        name: l.name,
        version: l.version,
        state: loading.includes(l.name) ? "LOADING" : "UNAVAILABLE",
        reason: failures.get(l.name) ?? "not loaded",
      }));
      for (const model of core.models()) {
        const entry = entries.find((e) => e.name === model.name);
        const ready: RepositoryEntry = { name: model.name, version: model.version, state: "READY", reason: "" };
        if (entry) Object.assign(entry, ready);
        else entries.push(ready);
      }
      return readyOnly ? entries.filter((e) => e.state === "READY") : entries;
    },

    async load(name) {
      const location = (await locations()).find((l) => l.name === name);
      if (!location) throw new InferenceError("not_found", `model "${name}" is not in the model repository`);
      try {
        await loadLocation(location);
      } catch (error) {
        if (error instanceof ModelLoadError) throw new InferenceError("unavailable", `model "${name}" cannot be loaded: ${error.message}`);
        throw error;
      }
    },

    unload: (name) => core.unloadModel(name),
  };
}
