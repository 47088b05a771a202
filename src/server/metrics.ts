import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { CoreObserver } from "../core/observer.js";

/** The server's Prometheus metrics, in a registry of its own (no global state). */
export interface Metrics extends CoreObserver {
  registry: Registry;
  /** One finished call: protocol (grpc, grpc-web, connect, http), method or route, code (Connect code name or HTTP status), and the model it addressed ("" for none). */
  call(protocol: string, method: string, code: string, seconds: number, model?: string): void;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "mlflow_connect_" });
  const labels = { registers: [registry] };
  const requests = new Counter({ name: "mlflow_connect_requests_total", help: "Calls by protocol, model, method and code.", labelNames: ["protocol", "model", "method", "code"], ...labels });
  const latency = new Histogram({
    name: "mlflow_connect_request_duration_seconds",
    help: "Call latency by protocol and method.",
    labelNames: ["protocol", "method"],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    ...labels,
  });
  const inferences = new Counter({ name: "mlflow_connect_inferences_total", help: "Model runs requested, by model and outcome (ok or the error kind).", labelNames: ["model", "outcome"], ...labels });
  const batchRows = new Histogram({ name: "mlflow_connect_batch_rows", help: "Rows per model run (after batching).", labelNames: ["model"], buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256], ...labels });
  const batchRequests = new Histogram({ name: "mlflow_connect_batch_requests", help: "Requests merged into one model run.", labelNames: ["model"], buckets: [1, 2, 4, 8, 16, 32, 64], ...labels });
  const runSeconds = new Histogram({ name: "mlflow_connect_worker_busy_seconds", help: "Time a worker spent on one model run.", labelNames: ["model"], buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], ...labels });
  const queueDepth = new Gauge({ name: "mlflow_connect_queue_depth", help: "Requests waiting for a model run.", labelNames: ["model"], ...labels });
  const runsInProgress = new Gauge({ name: "mlflow_connect_runs_in_progress", help: "Model runs (batches) on a worker now.", labelNames: ["model"], ...labels });
  const loadSeconds = new Gauge({ name: "mlflow_connect_model_load_seconds", help: "How long the served version of a model took to load.", labelNames: ["model"], ...labels });
  const warmUpSeconds = new Gauge({ name: "mlflow_connect_model_warmup_seconds", help: "How long the served version of a model took to run its input example on every worker.", labelNames: ["model"], ...labels });
  return {
    registry,
    call(protocol, method, code, seconds, model = "") {
      requests.inc({ protocol, model, method, code });
      latency.observe({ protocol, method }, seconds);
    },
    inference(model, outcome) {
      inferences.inc({ model, outcome });
    },
    batch(model, requestCount, rows, seconds) {
      batchRows.observe({ model }, rows);
      batchRequests.observe({ model }, requestCount);
      runSeconds.observe({ model }, seconds);
    },
    queue(model, depth) {
      queueDepth.set({ model }, depth);
    },
    running(model, count) {
      runsInProgress.set({ model }, count);
    },
    loaded(model, seconds) {
      loadSeconds.set({ model }, seconds);
    },
    warmedUp(model, seconds) {
      warmUpSeconds.set({ model }, seconds);
    },
  };
}
