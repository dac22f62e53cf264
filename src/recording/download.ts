/**
 * A finished recording file over HTTP, for playback in the page (with seeking) and download: single byte ranges
 * (RFC 9110 §14: `Range: bytes=a-b`, `a-`, `-n` → 206 with Content-Range; unsatisfiable → 416), `?download=1` for
 * `Content-Disposition: attachment`. Only finished files (never a `.part`), by a name that cannot leave the device's
 * directory.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';

/** What a recording's file name may be: the recorder's own names (letters, digits, `.`, `_`, `-`), .webm or .mkv. */
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.(webm|mkv)$/;

export function isRecordingName(name: string): boolean {
  return FILE_NAME.test(name) && !name.includes('..');
}

/** Serves `dir/deviceId/name`; false when there is no such finished file (the caller answers 404). */
export async function serveRecording(req: IncomingMessage, res: ServerResponse, dir: string, deviceId: string, name: string): Promise<boolean> {
  if (!isRecordingName(name)) return false;
  const path = join(dir, deviceId, name);
  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile()) return false;
  const size = info.size;
  const headers: Record<string, string | number> = {
    'content-type': name.endsWith('.webm') ? 'video/webm' : 'video/x-matroska',
    'accept-ranges': 'bytes',
    'last-modified': info.mtime.toUTCString(),
    'cache-control': 'private, no-store', // the URL may carry a token (RFC 6750 §5.3)
    'x-content-type-options': 'nosniff',
  };
  if (new URL(req.url ?? '/', 'http://x').searchParams.get('download') === '1') headers['content-disposition'] = `attachment; filename="${name}"`; // the recorder names files after the device
  const range = parseRange(req.headers.range, size);
  if (range === 'unsatisfiable') {
    res.writeHead(416, { ...headers, 'content-range': `bytes */${size}` }).end();
    return true;
  }
  const [start, end] = range ?? [0, size - 1];
  res.writeHead(range ? 206 : 200, {
    ...headers,
    'content-length': size === 0 ? 0 : end - start + 1,
    ...(range && { 'content-range': `bytes ${start}-${end}/${size}` }),
  });
  if (req.method === 'HEAD' || size === 0) {
    res.end();
    return true;
  }
  await pipeline(createReadStream(path, { start, end }), res).catch(() => res.destroy());
  return true;
}

/**
 * One range of `Range: bytes=…` as [first, last] (inclusive), undefined when there is no usable Range header (serve
 * it all: a multi-range or malformed header may be ignored, RFC 9110 §14.2), 'unsatisfiable' when it starts past the end.
 */
export function parseRange(header: string | undefined, size: number): [number, number] | 'unsatisfiable' | undefined {
  const m = header === undefined ? null : /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (m === null) return undefined;
  const [, from, to] = m as unknown as [string, string, string];
  if (from === '' && to === '') return undefined;
  if (from === '') {
    const n = Number(to);
    if (n === 0) return 'unsatisfiable';
    return [Math.max(0, size - n), size - 1];
  }
  const start = Number(from);
  if (start >= size) return 'unsatisfiable';
  const end = to === '' ? size - 1 : Math.min(Number(to), size - 1);
  return end < start ? undefined : [start, end];
}
