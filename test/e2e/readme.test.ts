import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { GREETER, IRIS, ROOT, type RunningServer, startServer } from "../helpers/server.js";
import { commandExists, toolSkip } from "../helpers/tools.js";

const exec = promisify(execFile);

interface Example {
  language: string;
  command: string;
  /** json: compared as JSON values; text: compared line by line. */
  format: string;
  expected: string;
}

/** Every ```sh example or ```js example block of the README with the ```json or ```text block that follows it. */
function examples(): Example[] {
  const readme = readFileSync(`${ROOT}README.md`, "utf8");
  const found: Example[] = [];
  const pattern = /```(sh|js) example\n([\s\S]*?)```\s*```(json|text)\n([\s\S]*?)```/g;
  for (let m = pattern.exec(readme); m; m = pattern.exec(readme)) found.push({ language: m[1]!, command: m[2]!, format: m[3]!, expected: m[4]! });
  return found;
}

describe("README examples work as written", () => {
  // The README talks to `npm start` (iris on 50051) and the greeter on 50052; here
  // both run on free ports and the commands are pointed at them.
  let iris: RunningServer;
  let greeter: RunningServer;
  before(async () => {
    [iris, greeter] = await Promise.all([startServer([IRIS]), startServer([GREETER])]);
  });
  after(() => Promise.all([iris.close(), greeter.close()]));

  const list = examples();
  it("pairs every example block with its expected output", () => {
    // Counted apart from the pairing pattern: an example whose expected block went
    // missing or changed its fence would drop out of the list, untested.
    const fences = readFileSync(`${ROOT}README.md`, "utf8").match(/^```(sh|js) example$/gm) ?? [];
    assert.ok(fences.length > 0, "the README has examples");
    assert.equal(list.length, fences.length, `${list.length} of ${fences.length} examples paired with an expected output`);
  });

  for (const { language, command, format, expected } of list) {
    it(command.split("\n")[0]!.slice(0, 80), async (t) => {
      if (toolSkip("curl", commandExists("curl"), "apt-get install -y curl")) return t.skip("curl missing");
      const script = command.replaceAll(/:50051\b/g, `:${iris.port}`).replaceAll(/:50052\b/g, `:${greeter.port}`);
      // A js example runs as the README says: a module file in the project folder.
      const { stdout } =
        language === "js"
          ? await exec(process.execPath, ["--input-type=module", "-e", script], { cwd: ROOT, timeout: 60_000 })
          : await exec("sh", ["-c", script], { cwd: ROOT, timeout: 60_000 });
      if (format === "text") assert.equal(stdout.trim(), expected.trim());
      else assert.deepEqual(JSON.parse(stdout), JSON.parse(expected));
    });
  }
});
