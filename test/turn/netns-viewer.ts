/**
 * A viewer (the viewer SDK on werift) for a network namespace: like the dashboard, it signs in with POST /api/token,
 * whose answer carries its TURN credentials, and watches one camera. Settings are JSON in argv[2]
 * ({httpUrl, mqttUrl, user, password, deviceId}); prints one JSON line per event and stops when its stdin closes.
 */
import type { Credential } from '../../src/viewer/viewer-client.ts';
import { NodeViewer } from '../../src/viewer/node-viewer.ts';

const settings = JSON.parse(process.argv[2] ?? '{}') as { httpUrl: string; mqttUrl: string; user: string; password: string; deviceId: string };
const print = (event: string, fields: object = {}) => console.log(JSON.stringify({ event, at: Date.now(), ...fields }));

async function token(): Promise<Credential> {
  const res = await fetch(`${settings.httpUrl}/api/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${btoa(`${settings.user}:${settings.password}`)}`, 'content-type': 'application/json' },
    body: '{}',
  });
  if (!res.ok) throw new Error(`/api/token: HTTP ${res.status}`);
  const reply = (await res.json()) as { token: string; expiresAt: string; ice?: Parameters<NodeViewer['client']['iceGrant']['update']>[0] };
  print('token', { ice: reply.ice ? { username: reply.ice.iceServers[0]?.username, expiresAt: reply.ice.expiresAt } : undefined });
  return { secret: reply.token, expiresAt: Date.parse(reply.expiresAt), ice: reply.ice };
}

const viewer = new NodeViewer({ url: settings.mqttUrl, user: settings.user, password: token, deviceId: settings.deviceId, audio: false });
const watch = await viewer.start();
watch.on('state', (state) => print('state', { state, sessionId: watch.sessionId }));
watch.on('timeline', (timeline) => timeline.firstFrame !== undefined && print('first-frame', { sessionId: watch.sessionId, timeline }));
const timer = setInterval(() => print('summary', viewer.summary()), 500);
process.stdin.on('end', () => {
  clearInterval(timer);
  void viewer.stop().then(() => process.exit(0));
});
process.stdin.resume();
