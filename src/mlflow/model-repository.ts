import { readdir, stat } from "node:fs/promises";
import { basename, isAbsolute, join, relative } from "node:path";
import { ModelLoadError, modelPathFromUri } from "./model-directory.js";

/** Where one model to serve lives. */
export interface ModelLocation {
  /** Name it is served under. */
  name: string;
  /** Version folder name ("" for an unversioned model directory). */
  version: string;
  /** The MLflow model directory. */
  path: string;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function subdirectories(path: string): Promise<string[]> {
  const entries = await readdir(path, { withFileTypes: true });
  return entries.filter((e) => e.isDirectory() && !e.name.startsWith(".")).map((e) => e.name);
}

/**
 * The models of a repository folder: each subfolder is an MLflow model directory,
 * or holds numeric version subfolders that are (the highest number is served).
 */
export async function scanRepository(folder: string): Promise<ModelLocation[]> {
  const found: ModelLocation[] = [];
  for (const name of (await subdirectories(folder)).sort()) {
    const dir = join(folder, name);
    if (await exists(join(dir, "MLmodel"))) {
      found.push({ name, version: "", path: dir });
      continue;
    }
    const versions = (await subdirectories(dir)).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
    for (const version of versions) {
      if (await exists(join(dir, version, "MLmodel"))) {
        found.push({ name, version, path: join(dir, version) });
        break;
      }
    }
  }
  return found;
}

/** Whether `path` lies inside the folder `parent`. */
export function isInside(parent: string, path: string): boolean {
  const rel = relative(parent, path);
  return rel !== "" && !rel.startsWith("..") && !isAbsolute(rel);
}

/** What the command line names: single models and repository folders. */
export interface ModelSources {
  models: ModelLocation[];
  /** Repository folders, scanned again by the repository API's index and load. */
  repositories: string[];
}

/**
 * Reads the command line's model arguments. Each is a model directory, a repository
 * folder of model directories, or NAME=PATH to serve a model directory under NAME.
 */
export async function resolveModelArguments(args: string[]): Promise<ModelSources> {
  const sources: ModelSources = { models: [], repositories: [] };
  for (const arg of args) {
    const named = /^([A-Za-z0-9_.-]+)=(.+)$/.exec(arg);
    const path = modelPathFromUri(named ? named[2]! : arg);
    const isDirectory = await stat(path).then((s) => s.isDirectory(), () => false);
    if (named || !isDirectory || (await exists(join(path, "MLmodel")))) {
      // A model directory; readModelDirectory() says what is wrong with a bad one.
      sources.models.push({ name: named ? named[1]! : basename(path), version: "", path });
      continue;
    }
    const found = await scanRepository(path);
    if (found.length === 0) {
      throw new ModelLoadError(`"${path}" is neither an MLflow model directory (it has no MLmodel file) nor a repository of them`);
    }
    sources.repositories.push(path);
    sources.models.push(...found);
  }
  const seen = new Set<string>();
  for (const m of sources.models) {
    if (seen.has(m.name)) throw new ModelLoadError(`two models are named "${m.name}": serve one under another name with NAME=PATH`);
    seen.add(m.name);
  }
  return sources;
}
