// Bundles the web demo (web-demo/) into dist/public/ with esbuild: content-hashed
// script and stylesheet (served as immutable), and index.html pointing at them
// (served with no-cache, so a new build is picked up at once).
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename } from "node:path";
import { build } from "esbuild";

const out = "dist/public";
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const result = await build({
  entryPoints: ["web-demo/src/main.ts", "web-demo/style.css"],
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  sourcemap: true,
  entryNames: "[name]-[hash]",
  outdir: out,
  metafile: true,
  logLevel: "warning",
});
const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const script = outputs.find((f) => f.startsWith("main-") && f.endsWith(".js"));
const style = outputs.find((f) => f.startsWith("style-") && f.endsWith(".css"));
const html = readFileSync("web-demo/index.html", "utf8").replace("%SCRIPT%", `/${script}`).replace("%STYLE%", `/${style}`);
writeFileSync(`${out}/index.html`, html);
