/**
 * Sends one recording file, whole or a byte range of it (RFC 9110 §14), so that a `<video>` element can seek in it
 * and a download can resume:
 *
 *   Range: bytes=a-b | a- | -n   → 206 with Content-Range: bytes a-b/size
 *   unsatisfiable or malformed   → 416 with Content-Range: bytes * /size (no space; RFC 9110 §14.4)
 *   several ranges, another unit, HEAD, an If-Range that no longer matches → 200 with the whole file
 *
 * Every answer says Accept-Ranges: bytes. The file is opened before anything is sent, so a file that retention
 * deletes meanwhile is still sent whole (its blocks stay until the handle closes).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { open } from 'node:fs/promises';

export type ByteRange = { start: number; end: number } | 'unsatisfiable' | 'whole';

/**
 * What a Range header asks of a `size`-byte representation: one range (inclusive `end`), 'unsatisfiable' (416), or
 * 'whole' (no range handling: no header, another unit, several ranges — RFC 9110 §14.2 lets a server ignore those).
 */
export function parseRange(header: string | undefined, size: number): ByteRange {
  if (header === undefined) return 'whole';
  const m = /^\s*bytes\s*=\s*(.*)$/i.exec(header);
  if (m === null) return 'whole'; // RFC 9110 §14.2: a unit we do not support is ignored
  const specs = m[1]!.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (specs.length !== 1) return specs.length === 0 ? 'unsatisfiable' : 'whole';
  const spec = /^(\d*)-(\d*)$/.exec(specs[0]!);
  if (spec === null || (spec[1] === '' && spec[2] === '')) return 'unsatisfiable';
  if (spec[1] === '') {
    const suffix = Number(spec[2]); // RFC 9110 §14.1.2: the last n bytes
    if (!Number.isSafeInteger(suffix) || suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(spec[1]);
  const last = spec[2] === '' ? size - 1 : Number(spec[2]);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(last) || last < start || start >= size) return 'unsatisfiable';
  return { start, end: Math.min(last, size - 1) };
}

export interface FileToSend {
  path: string;
  name: string;
  contentType: string;
  /** Content-Disposition: attachment (a download) rather than inline (a player). */
  attachment?: boolean;
}

export async function sendFile(req: IncomingMessage, res: ServerResponse, file: FileToSend): Promise<void> {
  const handle = await open(file.path, 'r');
  let streaming = false;
  try {
    const info = await handle.stat();
    const size = info.size;
    const etag = `"${size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
    const lastModified = info.mtime.toUTCString();
    const headers: Record<string, string | number> = {
      'accept-ranges': 'bytes',
      'content-type': file.contentType,
      'content-disposition': `${file.attachment ? 'attachment' : 'inline'}; filename="${file.name}"`,
      'cache-control': 'private, no-store', // the URL may carry a token (RFC 6750 §5.3)
      etag,
      'last-modified': lastModified,
      'x-content-type-options': 'nosniff',
    };
    // RFC 9110 §14.2: range handling is defined for GET only; §13.1.5: an If-Range that does not match gets it all.
    const ifRange = req.headers['if-range'];
    const rangeApplies = req.method === 'GET' && (ifRange === undefined || ifRange === etag || ifRange === lastModified);
    const range = rangeApplies ? parseRange(req.headers.range, size) : 'whole';
    if (range === 'unsatisfiable') {
      res.writeHead(416, { ...headers, 'content-range': `bytes */${size}`, 'content-type': 'text/plain', 'content-length': 0 }).end();
      return;
    }
    const { start, end } = range === 'whole' ? { start: 0, end: size - 1 } : range;
    const length = end - start + 1;
    if (range === 'whole') res.writeHead(200, { ...headers, 'content-length': size });
    else res.writeHead(206, { ...headers, 'content-length': length, 'content-range': `bytes ${start}-${end}/${size}` });
    if (req.method === 'HEAD' || length <= 0) {
      res.end();
      return;
    }
    streaming = true;
    const stream = handle.createReadStream({ start, end, autoClose: true });
    stream.once('error', () => res.destroy());
    res.once('close', () => stream.destroy());
    stream.pipe(res);
  } finally {
    if (!streaming) await handle.close();
  }
}
