import { execFile } from "node:child_process";
import { promisify } from "node:util";

const exec = promisify(execFile);

/** POSTs a body with curl over HTTP/1.1; resolves with the status and the parsed JSON answer. */
export async function curlPost(url: string, body: string, contentType = "application/json"): Promise<{ status: number; json: unknown }> {
  const { stdout } = await exec("curl", ["-sS", "--http1.1", "-X", "POST", "-H", `Content-Type: ${contentType}`, "--data-binary", body, "-w", "\n%{http_code}", url]);
  const at = stdout.lastIndexOf("\n");
  return { status: Number(stdout.slice(at + 1)), json: JSON.parse(stdout.slice(0, at)) };
}
