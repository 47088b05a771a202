/** One sample of Prometheus' text format: `name{label="value",...} value`. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition, histogram buckets and all, with their labels. */
export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of m[2]?.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g) ?? []) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

/** What GET /metrics answered, with a way to read one value. */
export interface Scrape {
  samples: Sample[];
  /**
   * The value of the one sample called `name` whose labels include `labels`;
   * undefined when there is none (throws when several match: the labels are too loose).
   */
  value(name: string, labels?: Record<string, string>): number | undefined;
}

/** Scrapes a server's /metrics (GET, status 200 checked). */
export async function scrape(baseUrl: string, headers: Record<string, string> = {}): Promise<Scrape> {
  const res = await fetch(`${baseUrl}/metrics`, { headers });
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}`);
  const samples = parseMetrics(await res.text());
  return {
    samples,
    value(name, labels = {}) {
      const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
      if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
      return found[0]?.value;
    },
  };
}

/** A per-model gauge or counter now; 0 when the model has not reported it yet. */
export async function modelValue(baseUrl: string, name: string, model: string, labels: Record<string, string> = {}): Promise<number> {
  return (await scrape(baseUrl)).value(name, { model, ...labels }) ?? 0;
}
