/**
 * The entries of a protobuf map field as protobuf-es decodes it: a plain object keyed
 * by the client's strings. protobuf-es stores each entry with `obj[key] = value`, so an
 * entry "__proto__" (with a message value) becomes the object's prototype instead of
 * an entry, and Object.entries() does not list it. It is listed here as the entry it
 * was sent as, so that it is refused or served like any other name, not dropped.
 */
export function protoMapEntries<T>(map: { readonly [key: string]: T }): Array<[string, T]> {
  const entries = Object.entries(map);
  const proto: unknown = Object.getPrototypeOf(map);
  if (proto !== Object.prototype && proto !== null) entries.push(["__proto__", proto as T]);
  return entries;
}
