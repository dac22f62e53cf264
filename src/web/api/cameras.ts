/**
 * The fleet view's routes, for viewers and admins, scoped like a watch (a token sees only its devices):
 *
 *   GET /api/cameras                 {"stills": bool, "cameras": [health of each live camera session on this node]}
 *   GET /api/snapshots/{deviceId}.jpg  the camera's latest keyframe as a JPEG (ETag: revalidate with If-None-Match);
 *                                      204 while there is none (the camera has not streamed a keyframe yet)
 *
 * Snapshot requests are rate-limited per caller (a grid of a few hundred cameras refreshing every few seconds fits);
 * decoding is bounded by the fleet (one decode per keyframe, ffmpeg processes at most two at a time).
 */
import type { Logger } from 'pino';
import { pathAfter, sendError, sendJson } from '../../http/api-request.ts';
import type { HttpServer } from '../../http/server.ts';
import { DecodeError } from '../../fleet/jpeg-decoder.ts';
import type { Fleet } from '../../fleet/fleet.ts';
import { isValidId } from '../../protocol/topics.ts';
import type { CredentialStore } from '../../security/credentials.ts';
import { BucketsByIdentity } from '../../security/token-bucket.ts';
import { mayWatch, type ApiCallers } from './callers.ts';

export const SNAPSHOTS_PATH = '/api/snapshots/';
export const CAMERAS_PATH = '/api/cameras';

/** Per caller: 100 snapshot requests at once, 40 a second after that. */
const SNAPSHOT_RATE = { perS: 40, burst: 100 };

export function routeCameras(http: HttpServer, callers: ApiCallers, fleet: Fleet, store: CredentialStore, log: Logger): void {
  const buckets = new BucketsByIdentity(SNAPSHOT_RATE.perS, SNAPSHOT_RATE.burst);
  let decodeWarned = false;

  http.route(
    CAMERAS_PATH,
    callers.route('viewer', (req, res, caller) => {
      if (req.method !== 'GET') return sendError(res, 405, 'TALI_ERR_METHOD', 'use GET', { allow: 'GET' });
      const cameras = fleet.health().filter((c) => mayWatch(caller, c.deviceId));
      sendJson(res, 200, { stills: fleet.stillsEnabled, cameras });
    }),
  );

  http.routePrefix(
    SNAPSHOTS_PATH,
    callers.route('viewer', async (req, res, caller) => {
      if (req.method !== 'GET' && req.method !== 'HEAD') return sendError(res, 405, 'TALI_ERR_METHOD', 'use GET', { allow: 'GET, HEAD' });
      const name = pathAfter(req, SNAPSHOTS_PATH) ?? '';
      const deviceId = name.endsWith('.jpg') ? name.slice(0, -4) : '';
      if (!isValidId(deviceId)) return sendError(res, 404, 'TALI_ERR_NOT_FOUND', 'not a device ID: use /api/snapshots/{deviceId}.jpg');
      if (!mayWatch(caller, deviceId)) return sendError(res, 403, 'TALI_ERR_FORBIDDEN', `this login may not watch ${deviceId}`);
      const held = buckets.acquire(caller.id);
      try {
        if (!held.bucket.take()) return sendError(res, 429, 'TALI_ERR_RATE_LIMITED', 'too many snapshot requests; slow down', { 'retry-after': '1' });
      } finally {
        held.release();
      }
      if ((await store.get(deviceId))?.role !== 'device') return sendError(res, 404, 'TALI_ERR_NOT_FOUND', `no device named ${deviceId}`);
      if (!fleet.stillsEnabled) return sendError(res, 503, 'TALI_ERR_UNAVAILABLE', 'stills are off on this bridge (ffmpegPath is empty)');
      let still;
      try {
        still = await fleet.still(deviceId);
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err;
        if (!decodeWarned) log.warn({ deviceId, err: err.message }, 'camera still could not be decoded (logged once)');
        decodeWarned = true;
        return sendError(res, 503, 'TALI_ERR_UNAVAILABLE', `the still could not be made: ${err.message}`);
      }
      // Not an error: the camera exists but sent no keyframe yet (or never streamed). 204 says "nothing to show".
      if (still === undefined) return void res.writeHead(204, { 'cache-control': 'no-store', 'x-tali-still': 'none yet: the camera is not streaming, or no keyframe came' }).end();
      const etag = `"${still.at}"`;
      const headers = {
        etag,
        'cache-control': 'private, no-cache',
        'last-modified': new Date(still.at).toUTCString(),
        'x-content-type-options': 'nosniff',
      };
      if (req.headers['if-none-match'] === etag) return void res.writeHead(304, headers).end();
      res.writeHead(200, { ...headers, 'content-type': 'image/jpeg', 'content-length': still.jpeg.length });
      res.end(req.method === 'HEAD' ? undefined : still.jpeg);
    }),
  );
}
