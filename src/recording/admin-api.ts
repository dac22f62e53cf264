/**
 * The recordings admin API on the bridge's HTTP port, for admins: HTTP Basic (the same user name and secret as their
 * MQTT login) or the dashboard's Bearer token, through the dashboard API's guard (src/web/api/callers.ts: CSRF check,
 * never `WWW-Authenticate: Basic`):
 *
 *   GET    /api/recordings              devices being recorded or waiting to be, and the finished files
 *   GET    /api/recordings/{deviceId}   one device: status and files
 *   POST   /api/recordings/{deviceId}   start recording it (its live session now, else its next one)
 *   DELETE /api/recordings/{deviceId}   stop and finalise (not for devices listed in the `record` option)
 *   GET    /api/recordings/{deviceId}/files/{name}[?download=1]   a finished file, with byte ranges (./download.ts);
 *          a GET here may carry the token as ?access_token= (what a <video src> that seeks can send)
 *
 * Errors are JSON {"error": CODE, "message": …} with a stable code.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendError, sendJson } from '../http/api-request.ts';
import type { Route } from '../http/server.ts';
import { isValidId } from '../protocol/topics.ts';
import type { ApiCallers } from '../web/api/callers.ts';
import { serveRecording } from './download.ts';
import { RecordingError, type Recorder } from './recorder.ts';
import type { RecordingFile } from './retention.ts';

export const RECORDINGS_PATH = '/api/recordings';

export function recordingsApi(recorder: Recorder, callers: ApiCallers): { list: Route; device: Route } {
  const guarded = (handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>, queryToken = false): Route => callers.route('admin', handler, { queryToken });

  const list = guarded(async (req, res) => {
    if (req.method !== 'GET') return sendError(res, 405, 'TALI_ERR_METHOD', 'use GET', { allow: 'GET' });
    sendJson(res, 200, { recordings: recorder.statuses(), files: (await recorder.files()).map(fileJson) });
  });

  const device = guarded(async (req, res) => {
    const [deviceId, files, name, ...more] = decodeURIComponent((req.url ?? '').split('?')[0]!.slice(RECORDINGS_PATH.length + 1)).split('/');
    if (!isValidId(deviceId)) return sendError(res, 404, 'TALI_ERR_NOT_FOUND', 'not a device ID');
    if (files !== undefined) {
      if (files !== 'files' || name === undefined || more.length > 0) return sendError(res, 404, 'TALI_ERR_NOT_FOUND', `use ${RECORDINGS_PATH}/{deviceId}/files/{name}`);
      if (req.method !== 'GET' && req.method !== 'HEAD') return sendError(res, 405, 'TALI_ERR_METHOD', 'use GET', { allow: 'GET, HEAD' });
      if (!(await serveRecording(req, res, recorder.dir, deviceId, name))) sendError(res, 404, 'TALI_ERR_NOT_FOUND', `no finished recording ${name} of ${deviceId}`);
      return;
    }
    try {
      switch (req.method) {
        case 'GET':
          return sendJson(res, 200, { ...recorder.status(deviceId), files: (await recorder.files(deviceId)).map(fileJson) });
        case 'POST':
          return sendJson(res, 202, recorder.start(deviceId));
        case 'DELETE':
          return sendJson(res, 200, await recorder.stop(deviceId));
        default:
          return sendError(res, 405, 'TALI_ERR_METHOD', 'use GET, POST or DELETE', { allow: 'GET, POST, DELETE' });
      }
    } catch (err) {
      if (!(err instanceof RecordingError)) throw err;
      sendError(res, err.code === 'TALI_ERR_RECORDING_CONFIGURED' ? 409 : 503, err.code, err.message);
    }
  }, true);

  return { list, device };
}

function fileJson(f: RecordingFile) {
  return { deviceId: f.deviceId, name: f.name, bytes: f.bytes, modified: f.modified.toISOString() };
}
