import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { Health, type HealthCheckResponse, HealthCheckResponse_ServingStatus as Status, HealthCheckResponseSchema } from "../../../gen/grpc/health/v1/health_pb.js";
import type { InferenceService } from "../../core/inference-service.js";

export interface HealthServiceOptions {
  /**
   * Watch streams open at once over all clients; more fail with RESOURCE_EXHAUSTED
   * before they subscribe. Health is open without a token (for probes), so without
   * this a client could hold streams until the heap runs out.
   */
  maxWatchStreams: number;
}

/**
 * grpc.health.v1.Health. The service "" (the server) and every gRPC service it
 * exposes are SERVING once every model is loaded and until shutdown begins. A model's
 * name is a service too: SERVING while a version of it is served, NOT_SERVING while
 * its first version loads, after it is unloaded, and during shutdown.
 */
export function createHealthService(core: InferenceService, serviceNames: readonly string[], options: HealthServiceOptions): ServiceImpl<typeof Health> {
  let watching = 0;
  const seenModels = new Set<string>();
  const remember = () => [...core.models().map((m) => m.name), ...core.loading()].forEach((n) => seenModels.add(n));
  remember();
  core.onChange(remember);

  function status(service: string): Status | undefined {
    if (service === "" || serviceNames.includes(service)) return core.ready() ? Status.SERVING : Status.NOT_SERVING;
    if (!seenModels.has(service)) return undefined;
    // A reload keeps the old version serving until the new one is ready: still SERVING.
    const loaded = core.models().some((m) => m.name === service);
    return loaded && !core.shuttingDown() ? Status.SERVING : Status.NOT_SERVING;
  }

  const response = (s: Status): HealthCheckResponse => create(HealthCheckResponseSchema, { status: s });

  return {
    async check(req) {
      const s = status(req.service);
      if (s === undefined) throw new ConnectError(`unknown service "${req.service}"`, Code.NotFound);
      return response(s);
    },

    async *watch(req, context) {
      if (watching >= options.maxWatchStreams) {
        throw new ConnectError(`too many health watchers (at most ${options.maxWatchStreams}, see --max-health-watch-streams); use Check`, Code.ResourceExhausted);
      }
      // The status now and on every change, until the client goes away; during
      // shutdown the stream ends after NOT_SERVING so that it does not hold the drain.
      let wake: (() => void) | undefined;
      const unsubscribe = core.onChange(() => wake?.());
      const stopped = new Promise<void>((resolve) => context.signal.addEventListener("abort", () => resolve(), { once: true }));
      watching++;
      try {
        let last: Status | undefined;
        for (;;) {
          const changed = new Promise<void>((resolve) => (wake = resolve));
          const s = status(req.service) ?? Status.SERVICE_UNKNOWN;
          if (s !== last) yield response((last = s));
          if (core.shuttingDown()) return;
          await Promise.race([changed, stopped]);
          if (context.signal.aborted) return;
        }
      } finally {
        watching--;
        unsubscribe();
      }
    },
  };
}

export { Health };
