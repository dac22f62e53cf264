/**
 * Two admin actions on one device, on the bridge's HTTP port, for operators and for `tali check-device`, which needs
 * the bridge to do now what it otherwise does on its own schedule:
 *
 *   DELETE /api/sessions/{deviceId}?reason=R      end the device's camera session with `bye` R: normal (nothing needs
 *                                                 its media: it should wait for `start`), timeout, ice-failed or error
 *                                                 (it should offer again after its backoff). 200 {sessionId, reason}
 *   DELETE /api/connections/{deviceId}            close the device's MQTT connection; the broker publishes its will
 *                                                 and the device should reconnect. 200 {closed}
 *
 * Admins only, through ApiCallers (the dashboard's guard: CSRF check, Bearer admin token or Basic; no
 * WWW-Authenticate). Each is logged with who asked. They do no more than the bridge does by itself (an idle stop
 * sends bye "normal", a media timeout bye "timeout", removing a device closes its connection), so they give an admin
 * nothing a removed-and-re-added device or a pulled network cable would not. They act on this node: in a cluster,
 * ask the node the device is connected to (the answer's `bridgeId`); with an external broker there is no
 * connection to close here (404).
 */
import { sendError, sendJson, pathAfter } from '../http/api-request.ts';
import type { HttpServer } from '../http/server.ts';
import { isValidId } from '../protocol/topics.ts';
import type { ByeReason } from '../protocol/messages.ts';
import type { ApiCallers } from '../web/api/callers.ts';
import type { Logger } from 'pino';

export const SESSIONS_PATH = '/api/sessions/';
export const CONNECTIONS_PATH = '/api/connections/';

/** The bye reasons a bridge itself sends that tell a device to wait (normal) or to offer again. */
export const ACTION_BYE_REASONS = ['normal', 'timeout', 'ice-failed', 'error'] as const satisfies readonly ByeReason[];

export interface DeviceActions {
  /** Ends the device's live session with this bye; undefined when it has none on this node. */
  endSession(deviceId: string, reason: ByeReason): Promise<string | undefined>;
  /** Closes the device's MQTT connections on this node; undefined with an external broker. */
  disconnect: ((deviceId: string) => number) | undefined;
}

export function routeDeviceActions(http: HttpServer, callers: ApiCallers, actions: DeviceActions, logger: Logger): void {
  http.routePrefix(
    SESSIONS_PATH,
    callers.route('admin', async (req, res, caller) => {
      if (req.method !== 'DELETE') return sendError(res, 405, 'TALI_ERR_METHOD', 'use DELETE', { allow: 'DELETE' });
      const deviceId = pathAfter(req, SESSIONS_PATH);
      if (!isValidId(deviceId)) return sendError(res, 404, 'TALI_ERR_NOT_FOUND', 'not a device ID');
      const reason = new URL(req.url ?? '/', 'http://x').searchParams.get('reason') ?? 'normal';
      if (!(ACTION_BYE_REASONS as readonly string[]).includes(reason)) {
        return sendError(res, 400, 'TALI_ERR_BAD_REQUEST', `reason must be one of ${ACTION_BYE_REASONS.join(', ')}`);
      }
      const sessionId = await actions.endSession(deviceId, reason as ByeReason);
      if (sessionId === undefined) return sendError(res, 404, 'TALI_ERR_NOT_FOUND', `${deviceId} has no session on this bridge node`);
      logger.info({ event: 'session_ended_by_admin', deviceId, sessionId, reason, by: caller.id }, 'camera session ended on request');
      sendJson(res, 200, { deviceId, sessionId, reason });
    }),
  );
  http.routePrefix(
    CONNECTIONS_PATH,
    callers.route('admin', (req, res, caller) => {
      if (req.method !== 'DELETE') return sendError(res, 405, 'TALI_ERR_METHOD', 'use DELETE', { allow: 'DELETE' });
      const deviceId = pathAfter(req, CONNECTIONS_PATH);
      if (!isValidId(deviceId)) return sendError(res, 404, 'TALI_ERR_NOT_FOUND', 'not a device ID');
      if (actions.disconnect === undefined) return sendError(res, 404, 'TALI_ERR_NOT_FOUND', 'this bridge runs on an external broker: close the connection there');
      const closed = actions.disconnect(deviceId);
      if (closed === 0) return sendError(res, 404, 'TALI_ERR_NOT_FOUND', `${deviceId} is not connected to this bridge node`);
      logger.info({ event: 'connection_closed_by_admin', deviceId, by: caller.id }, 'device connection closed on request');
      sendJson(res, 200, { deviceId, closed });
    }),
  );
}
