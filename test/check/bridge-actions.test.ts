/**
 * The admin actions tali check-device triggers (src/check/bridge-actions.ts): DELETE /api/sessions/{id}?reason= ends
 * the camera's session with that bye, DELETE /api/connections/{id} closes its MQTT connection. Admins only, behind
 * the dashboard API's guard (no WWW-Authenticate, CSRF), logged with who asked.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { connectMqtt } from '../../src/mqtt/connect.ts';
import { startBridge, type TestBridge } from '../helpers/bridge.ts';
import { next, startCamera } from '../devices/helpers.ts';
import { Inbox } from '../helpers/wait.ts';

function call(tb: TestBridge, method: string, path: string, auth: string | undefined, headers: Record<string, string> = { 'x-tali-request': '1' }) {
  return fetch(`http://127.0.0.1:${tb.bridge.httpPort}${path}`, { method, headers: { ...(auth && { authorization: auth }), ...headers } });
}

const basic = (user: string, secret: string) => `Basic ${Buffer.from(`${user}:${secret}`).toString('base64')}`;

describe('admin device actions', () => {
  it('end a camera session with the bye asked for, and close a device connection (its will goes out)', async () => {
    const tb = await startBridge();
    const secret = await tb.bridge.credentials.add('ops', 'admin', { replace: true });
    const admin = basic('ops', secret);
    const camera = await startCamera(tb, 'mqtt');
    const live = camera.keeper.session?.phase === 'connected' ? camera.keeper.session : (await next(camera.keeper, 'session-connected', undefined, 15_000))[0];
    const watcher = await connectMqtt({ target: tb.bridge.mqttUrl, clientId: 'ops:w', username: 'ops', password: secret });
    onTestFinished(() => watcher.endAsync(true));
    const inbox = new Inbox(watcher);
    await watcher.subscribeAsync([tb.bridge.topics.device('cam1', 'down'), tb.bridge.topics.device('cam1', 'status'), '$SYS/+/tali/device/cam1/+'], { qos: 1 });

    const ended = await call(tb, 'DELETE', '/api/sessions/cam1?reason=timeout', admin);
    expect(ended.status).toBe(200);
    expect(await ended.json()).toEqual({ deviceId: 'cam1', sessionId: live.sessionId, reason: 'timeout' });
    expect(await inbox.next((m) => m.type === 'bye' && m.sessionId === live.sessionId, 5000, 'the bye')).toMatchObject({ reason: 'timeout' });
    expect(tb.logs.some((l) => l.event === 'session_ended_by_admin' && l.by === 'ops' && l.reason === 'timeout')).toBe(true);

    const closed = await call(tb, 'DELETE', '/api/connections/cam1', admin);
    expect(closed.status).toBe(200);
    expect(await closed.json()).toEqual({ deviceId: 'cam1', closed: 1 });
    expect(await inbox.next((m, topic) => topic.endsWith('/disconnected'), 5000, 'disconnected')).toMatchObject({ reason: 'closed-by-bridge', willPublished: true });
    expect(await inbox.next((m, topic) => topic.endsWith('/status') && m.state === 'offline', 5000, 'the will')).toMatchObject({ type: 'status' });
  });

  it('refuse viewers, missing credentials, forged requests, unknown reasons and devices without a session', async () => {
    const tb = await startBridge();
    const admin = basic('ops', await tb.bridge.credentials.add('ops', 'admin', { replace: true }));
    const viewer = basic('vera', await tb.bridge.credentials.add('vera', 'viewer', { replace: true }));
    const none = await call(tb, 'DELETE', '/api/sessions/cam1', undefined);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBeNull();
    expect((await call(tb, 'DELETE', '/api/sessions/cam1', viewer)).status).toBe(403);
    expect((await call(tb, 'DELETE', '/api/connections/cam1', viewer)).status).toBe(403);
    // A page on another site cannot make an admin's browser do it.
    expect((await call(tb, 'DELETE', '/api/connections/cam1', admin, { origin: 'https://evil.example', 'content-type': 'application/json' })).status).toBe(403);
    expect((await call(tb, 'DELETE', '/api/connections/cam1', admin, {})).status).toBe(403);
    const bad = await call(tb, 'DELETE', '/api/sessions/cam1?reason=replaced', admin);
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: 'TALI_ERR_BAD_REQUEST' });
    expect(await (await call(tb, 'DELETE', '/api/sessions/cam1', admin)).json()).toMatchObject({ error: 'TALI_ERR_NOT_FOUND' });
    expect((await call(tb, 'DELETE', '/api/connections/cam1', admin)).status).toBe(404);
    expect((await call(tb, 'GET', '/api/connections/cam1', admin)).status).toBe(405);
    expect((await call(tb, 'DELETE', '/api/sessions/..%2Fx', admin)).status).toBe(404);
  });
});
