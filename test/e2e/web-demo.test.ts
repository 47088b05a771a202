import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { type Browser, type Page, chromium } from "playwright-core";
import { PROBABILITY_TOLERANCE, reference } from "../helpers/reference.js";
import { GREETER, IRIS, ROOT, type RunningServer, startServer } from "../helpers/server.js";
import { toolSkip } from "../helpers/tools.js";

const CHROMIUM = "/usr/bin/chromium";
const OUTPUT = `${ROOT}test-output`;
const skip = toolSkip("chromium", existsSync(CHROMIUM), "apt-get install -y chromium");
const { iris, greeter } = reference;

async function predictedClass(page: Page): Promise<{ label: string; probabilities: number[] }> {
  await page.locator("#predicted-class").waitFor();
  return {
    label: (await page.locator("#predicted-class").textContent())!,
    probabilities: (await page.locator(".probability").allTextContents()).map(Number),
  };
}

async function predict(page: Page): Promise<void> {
  await page.locator("#predict").click();
  await page.locator("#latency").filter({ hasText: /ms$/ }).or(page.locator("#error:not([hidden])")).first().waitFor();
}

describe("web demo in headless Chromium", { skip }, () => {
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  before(async () => {
    server = await startServer([IRIS, GREETER]);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic", "--no-first-run"],
    });
    page = await browser.newPage({ viewport: { width: 1000, height: 1100 } });
    await page.goto(server.url);
    await page.locator("body[data-ready=true]").waitFor();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  it("lists the served models and shows the iris signature", async () => {
    assert.deepEqual(await page.locator("#model option").allTextContents(), ["iris", "greeter"]);
    const signature = await page.locator("#signature tbody tr").allTextContents();
    assert.equal(signature.length, 6);
    assert.match(signature[0]!, /inputsepal length \(cm\)float64\[-1\]double/);
    assert.match(await page.locator("#model-info").textContent() ?? "", /onnx/);
  });

  it("predicts the example's class and probabilities, as the reference does", async () => {
    // The form is prefilled with the input example's first row, reference row 0.
    assert.equal(await page.locator(`[id="field-${iris.columns[0]}"]`).inputValue(), String(iris.rows[0]![0]));
    await predict(page);
    const { label, probabilities } = await predictedClass(page);
    assert.equal(label, String(iris.label[0]));
    assert.equal(probabilities.length, 3, "one probability per class");
    probabilities.forEach((p, k) => assert.ok(Math.abs(p - iris.probabilities[0]![k]!) < 1e-4, `class ${k}`));
    assert.match((await page.locator("#latency").textContent())!, /^\d+\.\d ms$/);
    mkdirSync(OUTPUT, { recursive: true });
    await page.screenshot({ path: `${OUTPUT}/web-demo.png`, fullPage: true });
  });

  it("answers differently when a feature changes, and the same over both transports", async () => {
    const contentTypes: string[] = [];
    page.on("request", (req) => {
      if (req.url().endsWith("/mlflow.serving.v1.ModelService/Predict")) contentTypes.push(req.headers()["content-type"] ?? "");
    });
    // Type reference row 1 (a virginica) into the form.
    for (const [i, column] of iris.columns.entries()) await page.locator(`[id="field-${column}"]`).fill(String(iris.rows[1]![i]));
    for (const transport of ["grpc-web", "connect"]) {
      await page.locator(`input[name=transport][value=${transport}]`).check();
      // Enter in a field submits the form.
      await page.locator(`[id="field-${iris.columns[3]}"]`).press("Enter");
      await page.locator("#latency").filter({ hasText: /ms$/ }).waitFor();
      const { label, probabilities } = await predictedClass(page);
      assert.equal(label, String(iris.label[1]), transport);
      assert.equal(probabilities.length, 3, `${transport}: one probability per class`);
      probabilities.forEach((p, k) => assert.ok(Math.abs(p - iris.probabilities[1]![k]!) < Math.max(1e-4, PROBABILITY_TOLERANCE), `${transport} class ${k}`));
    }
    // The switch really changes the protocol: gRPC-Web frames, then Connect JSON.
    assert.deepEqual(contentTypes, ["application/grpc-web+proto", "application/json"]);
  });

  it("gives the equivalent curl command", async () => {
    await page.locator("#copy-curl").click();
    const curl = (await page.locator("#curl-text").textContent())!;
    assert.match(curl, new RegExp(`^curl -s -H 'Content-Type: application/json' -d '\\{.*"modelName":"iris".*\\}' ${server.url}/mlflow.serving.v1.ModelService/Predict$`));
  });

  it("shows the server's error message and code for invalid input", async () => {
    await page.locator(`[id="field-${iris.columns[2]}"]`).fill("long");
    await predict(page);
    const error = page.locator("#error");
    assert.equal(await error.isVisible(), true);
    assert.equal(await error.getAttribute("data-code"), "invalid_argument");
    assert.match((await error.textContent())!, /petal length \(cm\).*expects dtype float64, got string/);
    await page.screenshot({ path: `${OUTPUT}/web-demo-error.png`, fullPage: true });
  });

  it("predicts with the string model from a text box", async () => {
    await page.locator("#model").selectOption("greeter");
    const box = page.locator("#editor-text");
    assert.equal(await box.inputValue(), "HELLO WORLD");
    await predict(page);
    assert.equal(await page.locator("#outputs td.value").first().textContent(), greeter.labels[0]);
    await box.fill("thank you");
    // Keyboard only: Tab from the text box reaches the Predict button, Enter presses it.
    await box.press("Tab");
    assert.equal(await page.evaluate("document.activeElement.id"), "predict");
    await page.keyboard.press("Enter");
    await page.locator("#outputs td.value").filter({ hasText: "gratitude" }).waitFor();
    assert.equal(await page.locator("#outputs td.value").first().textContent(), "gratitude");
  });

  it("fits a narrow screen without horizontal scrolling", async () => {
    await page.setViewportSize({ width: 360, height: 800 });
    await page.locator("#model").selectOption("iris");
    const overflow = (await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")) as number;
    assert.ok(overflow <= 0, `${overflow}px wider than the screen`);
    await page.screenshot({ path: `${OUTPUT}/web-demo-narrow.png`, fullPage: true });
  });
});
