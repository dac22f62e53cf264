/**
 * The recordings admin API on the bridge's HTTP port, for identities with the admin role (HTTP Basic auth against the
 * credential store, the same user name and secret as their MQTT login):
 *
 *   GET    /api/recordings              devices being recorded or waiting to be, and the finished files
 *   GET    /api/recordings/{deviceId}   one device: status and files
 *   POST   /api/recordings/{deviceId}   start recording it (its live session now, else its next one)
 *   DELETE /api/recordings/{deviceId}   stop and finalise (not for devices listed in the `record` option)
 *
 * Errors are JSON {"error": CODE, "message": …} with a stable code.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Route } from '../http/server.ts';
import { isValidId } from '../protocol/topics.ts';
import type { Logger } from 'pino';
import type { CredentialStore } from '../security/credentials.ts';
import { httpLogins } from '../security/http-login.ts';
import { RecordingError, type Recorder } from './recorder.ts';
import type { RecordingFile } from './retention.ts';

export const RECORDINGS_PATH = '/api/recordings';

export function recordingsApi(recorder: Recorder, credentials: CredentialStore, logger: Logger): { list: Route; device: Route } {
  const login = httpLogins(credentials, logger, RECORDINGS_PATH);
  const guarded =
    (handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>): Route =>
    async (req, res) => {
      const result = await login(req);
      if ('refused' in result && result.refused === 'throttled') {
        fail(res, 429, 'TALI_ERR_RATE_LIMITED', 'too many failed logins from this address; wait and retry', { 'retry-after': '6' });
        return;
      }
      if (!('identity' in result) || result.identity.role !== 'admin') {
        fail(res, 401, 'TALI_ERR_UNAUTHORIZED', 'admin credentials required (HTTP Basic)', { 'www-authenticate': 'Basic realm="tali"' });
        return;
      }
      await handler(req, res);
    };

  const list = guarded(async (req, res) => {
    if (req.method !== 'GET') return fail(res, 405, 'TALI_ERR_METHOD', 'use GET', { allow: 'GET' });
    send(res, 200, { recordings: recorder.statuses(), files: (await recorder.files()).map(fileJson) });
  });

  const device = guarded(async (req, res) => {
    const deviceId = decodeURIComponent((req.url ?? '').split('?')[0]!.slice(RECORDINGS_PATH.length + 1));
    if (!isValidId(deviceId)) return fail(res, 404, 'TALI_ERR_NOT_FOUND', 'not a device ID');
    try {
      switch (req.method) {
        case 'GET':
          return send(res, 200, { ...recorder.status(deviceId), files: (await recorder.files(deviceId)).map(fileJson) });
        case 'POST':
          return send(res, 202, recorder.start(deviceId));
        case 'DELETE':
          return send(res, 200, await recorder.stop(deviceId));
        default:
          return fail(res, 405, 'TALI_ERR_METHOD', 'use GET, POST or DELETE', { allow: 'GET, POST, DELETE' });
      }
    } catch (err) {
      if (!(err instanceof RecordingError)) throw err;
      fail(res, err.code === 'TALI_ERR_RECORDING_CONFIGURED' ? 409 : 503, err.code, err.message);
    }
  });

  return { list, device };
}

function fileJson(f: RecordingFile) {
  return { deviceId: f.deviceId, name: f.name, bytes: f.bytes, modified: f.modified.toISOString() };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(`${JSON.stringify(body)}\n`);
}

function fail(res: ServerResponse, status: number, error: string, message: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(`${JSON.stringify({ error, message })}\n`);
}
