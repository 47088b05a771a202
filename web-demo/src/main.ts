/** The demo page: pick a model, see its signature, edit the example, predict, see the answer. */
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { type Model, ModelService } from "../../gen/mlflow/serving/v1/model_service_pb.js";
import { DataType } from "../../gen/mlflow/serving/v1/tensor_pb.js";
import { type Editor, EditorError, classProbabilities, curlCommand, editorFor, outputViews, requestFromEditor } from "./model-form.js";

const origin = window.location.origin;
const transports: Record<string, Transport> = {
  "grpc-web": createGrpcWebTransport({ baseUrl: origin }),
  connect: createConnectTransport({ baseUrl: origin }),
};

function $(id: string): HTMLElement {
  return document.getElementById(id)!;
}

function element<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}, ...children: Array<Node | string>): HTMLElementTagNameMap[K] {
  const el = Object.assign(document.createElement(tag), props);
  el.append(...children);
  return el;
}

let models: Model[] = [];
let current: Model | undefined;
let editor: Editor | undefined;

function client() {
  const choice = (document.querySelector<HTMLInputElement>('input[name="transport"]:checked')?.value ?? "grpc-web") as keyof typeof transports;
  return createClient(ModelService, transports[choice]!);
}

function showError(where: string, error: unknown): void {
  const e = error instanceof EditorError ? new ConnectError(error.message, Code.InvalidArgument) : ConnectError.from(error);
  const box = $("error");
  box.hidden = false;
  box.replaceChildren(element("strong", {}, `${where} failed: ${codeToString(e.code)}`), element("p", { className: "message" }, e.rawMessage));
  box.dataset.code = codeToString(e.code);
}

function clearResult(): void {
  $("error").hidden = true;
  $("outputs").replaceChildren();
  $("chart").replaceChildren();
  $("latency").textContent = "";
}

function renderModel(model: Model): void {
  const info = $("model-info");
  const onnx = model.onnx;
  info.replaceChildren(
    element("dt", {}, "flavor"),
    element("dd", {}, `${model.flavor} (MLmodel flavors: ${model.flavors.join(", ")})`),
    element("dt", {}, "version"),
    element("dd", {}, model.version || "(unversioned)"),
    element("dt", {}, "ONNX"),
    element("dd", {}, `IR ${onnx?.irVersion ?? "?"}, opsets ${onnx?.opsets.map((o) => `${o.domain || "ai.onnx"} ${o.version}`).join(", ") ?? "?"}${onnx?.producerName ? `, by ${onnx.producerName}` : ""}`),
  );
  const rows = [
    ...(model.signature?.inputs ?? []).map((s) => ["input", s.name, DataType[s.dtype].toLowerCase(), `[${s.shape.join(", ")}]`, s.columnType, s.optional ? "optional" : ""]),
    ...(model.signature?.outputs ?? []).map((s) => ["output", s.name, DataType[s.dtype].toLowerCase(), `[${s.shape.join(", ")}]`, "", ""]),
  ];
  $("signature").querySelector("tbody")!.replaceChildren(...rows.map((cells) => element("tr", {}, ...cells.map((c) => element("td", {}, c)))));
  renderEditor((editor = editorFor(model)));
  clearResult();
  $("curl-text").textContent = "";
}

function renderEditor(ed: Editor): void {
  const box = $("editor");
  if (ed.kind === "form") {
    box.replaceChildren(
      ...ed.fields.map((f) => {
        const input = element("input", { id: `field-${f.name}`, name: f.name, value: f.value, inputMode: f.dtype === DataType.STRING ? "text" : "decimal", autocomplete: "off" });
        input.addEventListener("input", () => (f.value = input.value));
        return element("label", { className: "field" }, element("span", {}, f.name, element("small", {}, ` ${f.hint}`)), input);
      }),
    );
  } else {
    const area = element("textarea", { id: "editor-text", value: ed.value, rows: ed.kind === "text" ? 3 : 10, spellcheck: false });
    area.setAttribute("aria-label", ed.kind === "text" ? `text for input ${ed.input}` : "inputs as MLflow JSON");
    area.addEventListener("input", () => (ed.value = area.value));
    box.replaceChildren(area);
  }
}

function renderOutputs(outputs: Parameters<typeof outputViews>[0]): void {
  $("outputs").replaceChildren(
    ...outputViews(outputs).map((view) =>
      element(
        "table",
        { className: "output" },
        element("caption", {}, `${view.name} [${view.shape.join(", ")}]`),
        element("tbody", {}, ...view.rows.map((row, i) => element("tr", {}, element("th", {}, String(i)), ...row.map((v) => element("td", { className: "value" }, v))))),
      ),
    ),
  );
  const classes = classProbabilities(outputs);
  if (!classes) return;
  $("chart").replaceChildren(
    element("h3", {}, "Class probabilities (first row)", ...(classes.label !== undefined ? [": predicted class ", element("output", { id: "predicted-class" }, classes.label)] : [])),
    ...classes.probabilities.map((p, k) => {
      const bar = element("div", { className: "bar" });
      bar.style.width = `${(p * 100).toFixed(1)}%`;
      return element("div", { className: "bar-row" }, element("span", {}, `class ${k}`), element("div", { className: "bar-track" }, bar), element("span", { className: "probability" }, p.toFixed(4)));
    }),
  );
}

async function predict(): Promise<void> {
  if (!current || !editor) return;
  clearResult();
  const button = $("predict") as HTMLButtonElement;
  button.disabled = true;
  try {
    const request = requestFromEditor(current, editor);
    $("curl-text").textContent = curlCommand(origin, request);
    const started = performance.now();
    const response = await client().predict(request);
    $("latency").textContent = `${(performance.now() - started).toFixed(1)} ms`;
    renderOutputs(response.outputs);
  } catch (error) {
    showError("Predict", error);
  } finally {
    button.disabled = false;
  }
}

async function copyCurl(): Promise<void> {
  if (!current || !editor) return;
  try {
    const text = curlCommand(origin, requestFromEditor(current, editor));
    $("curl-text").textContent = text;
    await navigator.clipboard?.writeText(text).catch(() => undefined); // the command stays on the page either way
  } catch (error) {
    showError("Copy as curl", error);
  }
}

async function start(): Promise<void> {
  try {
    models = (await client().listModels({})).models;
  } catch (error) {
    showError("ListModels", error);
    return;
  }
  const select = $("model") as HTMLSelectElement;
  select.replaceChildren(...models.map((m) => element("option", { value: m.name }, m.name)));
  select.addEventListener("change", () => renderModel((current = models.find((m) => m.name === select.value)!)));
  if (models[0]) renderModel((current = models[0]));
  // A submit button in a form: Enter in any field predicts too.
  $("input-form").addEventListener("submit", (event) => {
    event.preventDefault();
    void predict();
  });
  $("copy-curl").addEventListener("click", () => void copyCurl());
  document.body.dataset.ready = "true";
}

void start();
