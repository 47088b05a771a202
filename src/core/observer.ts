/**
 * What the core reports as it works, for metrics. The core knows no metrics library:
 * the composition root passes an implementation (server/metrics.ts).
 */
export interface CoreObserver {
  /** A request for a model finished: "ok" or its error kind. */
  inference(model: string, outcome: string): void;
  /** One model run: how many requests and rows it merged, and how long the worker took. */
  batch(model: string, requests: number, rows: number, seconds: number): void;
  /** Requests now waiting for the model. */
  queue(model: string, depth: number): void;
  /** Runs of the model on a worker now. */
  running(model: string, count: number): void;
  /** A model (version) finished loading. */
  loaded(model: string, seconds: number): void;
  /** A model (version) ran its input example once on every worker before serving. */
  warmedUp(model: string, seconds: number): void;
}

/** An observer that records nothing. */
export const NO_OBSERVER: CoreObserver = { inference() {}, batch() {}, queue() {}, running() {}, loaded() {}, warmedUp() {} };
