/**
 * A simulated camera (the device SDK on werift) for a network namespace (test/netlink/netns.ts): settings are JSON in
 * argv[2] ({url, id, secret}); it prints one JSON line per event (its ice-servers, sessions opening, connecting and
 * closing) and stops cleanly (bye, offline card) when its stdin closes.
 */
import { SimulatedCamera } from '../../devices/camera/simulated-camera.ts';
import { nodeConnector } from '../../src/client/node-connector.ts';

const settings = JSON.parse(process.argv[2] ?? '{}') as { url: string; id: string; secret: string };
const print = (event: string, fields: object = {}) => console.log(JSON.stringify({ event, at: Date.now(), ...fields }));

const camera = new SimulatedCamera({
  deviceId: settings.id,
  secret: settings.secret,
  connect: nodeConnector(settings.url),
  backoff: { initialMs: 100, maxMs: 200, jitter: 0 },
});
camera.client.on('ice-servers', (m) => {
  // The user name and the lifetime only: a test proves the password never shows up in a log.
  print('ice-servers', { username: m.iceServers[0]?.username, expiresAt: m.expiresAt, ts: m.ts, policy: m.iceTransportPolicy ?? 'all' });
});
camera.keeper.on('session-open', (s) => print('session-open', { sessionId: s.sessionId }));
camera.keeper.on('session-connected', (s) => print('session-connected', { sessionId: s.sessionId }));
camera.keeper.on('session-closed', (s) => print('session-closed', { sessionId: s.sessionId, reason: s.closeReason }));
await camera.start();
print('started');
process.stdin.on('end', () => void camera.stop().then(() => process.exit(0)));
process.stdin.resume();
