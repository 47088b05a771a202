import { readFileSync } from "node:fs";
import { ROOT } from "./server.js";

/** Predictions written by scripts/make_models.py from the reference implementations (scikit-learn, a Python dict). */
export interface Reference {
  iris: { columns: string[]; classes: string[]; rows: number[][]; label: number[]; probabilities: number[][] };
  greeter: { texts: string[]; labels: string[] };
  multi: { a: number[][]; b: number[]; sum: number[]; doubled: number[] };
  tabular: { x: number[]; n: number[]; y: number[] };
  abc_table: { total: number[] };
  abc_tensors: { b_plus_c: number[]; a_echo: string[] };
}

export const reference: Reference = JSON.parse(readFileSync(`${ROOT}test/fixtures/reference.json`, "utf8"));

/** float32 ONNX math against scikit-learn's float64: equal to about 1e-6. */
export const PROBABILITY_TOLERANCE = 1e-5;
