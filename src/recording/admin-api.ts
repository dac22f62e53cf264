/**
 * The recordings API on the bridge's HTTP port, for admins: behind ApiCallers (../web/api/callers.ts), like every
 * route the dashboard calls: an admin's password (Basic) or unscoped token (Bearer), the CSRF check on POST and
 * DELETE, and never `WWW-Authenticate`.
 *
 *   GET      /api/recordings                           devices being recorded or waiting to be, and the finished files
 *   GET      /api/recordings/{deviceId}                one device: status and files
 *   POST     /api/recordings/{deviceId}                start recording it (its live session now, else its next one)
 *   DELETE   /api/recordings/{deviceId}                stop and finalise (not for devices listed in the `record` option)
 *   GET|HEAD /api/recordings/{deviceId}/files/{name}   one finished file, with HTTP Range (./download.ts);
 *                                                      ?download=1 for Content-Disposition: attachment; a GET here
 *                                                      may carry the token as ?access_token= (RFC 6750 §2.3)
 *
 * A file in a list: {deviceId, name, bytes, startedAt, durationMs, modified}. Files left by a crash are listed
 * once recovered (./recovery.ts). Errors are JSON {"error": CODE, "message": …} with a stable code.
 */
import { pathAfter, sendError, sendJson } from '../http/api-request.ts';
import type { HttpServer } from '../http/server.ts';
import { isValidId } from '../protocol/topics.ts';
import type { ApiCallers } from '../web/api/callers.ts';
import { sendFile } from './download.ts';
import { RecordingError, type Recorder, type RecordingEntry } from './recorder.ts';

export const RECORDINGS_PATH = '/api/recordings';
const FILES = '/files/';

const CONTENT_TYPES: Record<string, string> = { '.webm': 'video/webm', '.mkv': 'video/x-matroska' };

export function routeRecordings(http: HttpServer, recorder: Recorder, callers: ApiCallers): void {
  http.route(
    RECORDINGS_PATH,
    callers.route('admin', async (req, res) => {
      if (req.method !== 'GET') return sendError(res, 405, 'TALI_ERR_METHOD', 'use GET', { allow: 'GET' });
      sendJson(res, 200, { recordings: recorder.statuses(), files: (await recorder.files()).map(fileJson) });
    }),
  );
  // A <video src> that seeks, and a download link, cannot send headers: this route takes ?access_token= too.
  http.routePrefix(
    `${RECORDINGS_PATH}/`,
    callers.route('admin', async (req, res) => {
      const rest = pathAfter(req, `${RECORDINGS_PATH}/`);
      const filesAt = rest?.indexOf(FILES) ?? -1;
      const deviceId = filesAt >= 0 ? rest!.slice(0, filesAt) : rest;
      if (deviceId === undefined || !isValidId(deviceId)) return sendError(res, 404, 'TALI_ERR_NOT_FOUND', 'not a device ID');
      if (filesAt >= 0) {
        if (req.method !== 'GET' && req.method !== 'HEAD') return sendError(res, 405, 'TALI_ERR_METHOD', 'use GET or HEAD', { allow: 'GET, HEAD' });
        const file = await recorder.file(deviceId, rest!.slice(filesAt + FILES.length));
        if (file === undefined) return sendError(res, 404, 'TALI_ERR_NOT_FOUND', `no such recording of ${deviceId}`);
        const attachment = new URL(req.url ?? '/', 'http://x').searchParams.get('download') === '1';
        const contentType = CONTENT_TYPES[file.name.slice(file.name.lastIndexOf('.'))] ?? 'application/octet-stream';
        await sendFile(req, res, { path: file.path, name: file.name, contentType, attachment }).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT' || res.headersSent) throw err;
          sendError(res, 404, 'TALI_ERR_NOT_FOUND', `no such recording of ${deviceId}`); // deleted by retention just now
        });
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
    }, { queryToken: true }),
  );
}

function fileJson(f: RecordingEntry) {
  return { deviceId: f.deviceId, name: f.name, bytes: f.bytes, startedAt: f.startedAt, durationMs: f.durationMs, modified: f.modified };
}
