import type { WireTensor } from "./messages.js";

/**
 * The buffers of numeric tensors, to move (not copy) them across threads. A buffer
 * is listed only when the tensor owns all of it: transferring a shared pool buffer
 * would detach memory the sender still uses.
 */
export function transferListOf(tensors: Record<string, WireTensor>): ArrayBuffer[] {
  const list: ArrayBuffer[] = [];
  for (const t of Object.values(tensors)) {
    if (Array.isArray(t.data)) continue;
    const view = t.data as ArrayBufferView;
    const buffer = view.buffer;
    if (buffer instanceof ArrayBuffer && view.byteOffset === 0 && view.byteLength === buffer.byteLength && !list.includes(buffer)) {
      list.push(buffer);
    }
  }
  return list;
}
