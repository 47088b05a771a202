import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InferenceError, MAX_MESSAGE_CHARS, invalidInput, quote } from "../src/core/errors.js";
import { ScoringFormatError } from "../src/mlflow/scoring-format.js";

describe("error messages", () => {
  it("quote client names, clipped when long", () => {
    assert.equal(quote("x"), '"x"');
    const long = quote("n".repeat(1_000_000));
    assert.ok(long.length <= 102 && long.endsWith('..."'), long);
  });

  it("are capped, so that a gRPC trailer can carry them", () => {
    assert.equal(invalidInput(`model "m" has no input "${"x".repeat(1_000_000)}"`).message.length, MAX_MESSAGE_CHARS);
    assert.equal(InferenceError.from(new ScoringFormatError("y".repeat(100_000))).message.length, MAX_MESSAGE_CHARS);
    assert.equal(invalidInput("short").message, "short");
  });
});
