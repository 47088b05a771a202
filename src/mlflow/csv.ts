/** A CSV text that cannot be read; the message says where. */
export class CsvError extends Error {
  override name = "CsvError";
}

const COMMA = 44;
const LF = 10;
const CR = 13;
const QUOTE = 34;

/**
 * Reads CSV text as pandas.read_csv reads MLflow's `text/csv` bodies (RFC 4180):
 * fields separated by commas, records by LF or CRLF, a field optionally in double
 * quotes with `""` for a quote inside (and then free to hold commas and line breaks);
 * a quote inside an unquoted field is an ordinary character; empty lines are skipped;
 * a leading byte order mark is dropped. Every record must have as many fields as the
 * first one, the header.
 *
 * Linear in the text: a body without quotes is split with String.split, which V8
 * runs natively; only bodies with quotes are scanned by character. csv-parse, used
 * before, took 2-3 times as long on tall bodies and 30-60 times on a wide header
 * (~4 us per field); what remains is mostly allocating one string per field.
 */
export function parseCsv(text: string): string[][] {
  const start = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const records = text.indexOf('"', start) < 0 ? splitUnquoted(text, start) : scanQuoted(text, start);
  const width = records[0]?.length ?? 0;
  for (let r = 1; r < records.length; r++) {
    if (records[r]!.length !== width) throw new CsvError(`record ${r + 1} has ${records[r]!.length} fields, the header has ${width}`);
  }
  return records;
}

function splitUnquoted(text: string, start: number): string[][] {
  const records: string[][] = [];
  for (let line of (start > 0 ? text.slice(start) : text).split("\n")) {
    if (line.charCodeAt(line.length - 1) === CR) line = line.slice(0, -1);
    if (line.length > 0) records.push(line.split(","));
  }
  return records;
}

/** The length of the line break at `i` (LF, CRLF, or a CR ending the text), or 0. */
function lineBreak(text: string, i: number): number {
  const c = text.charCodeAt(i);
  if (c === LF) return 1;
  if (c === CR) return text.charCodeAt(i + 1) === LF ? 2 : i + 1 === text.length ? 1 : 0;
  return 0;
}

function scanQuoted(text: string, start: number): string[][] {
  const records: string[][] = [];
  let fields: string[] = [];
  let at = start;
  const end = text.length;
  while (at < end) {
    if (fields.length === 0) {
      // Empty lines are skipped, as pandas' skip_blank_lines does.
      const blank = lineBreak(text, at);
      if (blank > 0) {
        at += blank;
        continue;
      }
    }
    let value: string;
    if (text.charCodeAt(at) === QUOTE) {
      value = "";
      let from = at + 1;
      for (;;) {
        const q = text.indexOf('"', from);
        if (q < 0) throw new CsvError(`record ${records.length + 1} has a quoted field that is not closed`);
        if (text.charCodeAt(q + 1) === QUOTE) {
          value += text.slice(from, q + 1);
          from = q + 2;
          continue;
        }
        value += text.slice(from, q);
        at = q + 1;
        break;
      }
      if (at < end && text.charCodeAt(at) !== COMMA && lineBreak(text, at) === 0) {
        throw new CsvError(`record ${records.length + 1} has characters after a closing quote`);
      }
    } else {
      let stop = at;
      for (; stop < end; stop++) {
        if (text.charCodeAt(stop) === COMMA || lineBreak(text, stop) > 0) break;
      }
      value = text.slice(at, stop);
      at = stop;
    }
    fields.push(value);
    // After a field: a comma starts the next one; a line break or the end closes the record.
    if (text.charCodeAt(at) === COMMA) {
      at++;
      if (at < end) continue;
      fields.push(""); // a comma ending the text ends the record with an empty field
    }
    records.push(fields);
    fields = [];
    at += Math.max(lineBreak(text, at), 1);
  }
  return records;
}
