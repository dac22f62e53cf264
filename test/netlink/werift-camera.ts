/**
 * Cameras for a network namespace (./netns.ts): simulated cameras (the device SDK on werift) that each open sessions
 * with the bridge, one trial at a time per camera. Settings are JSON in argv[2]; prints one JSON line per camera
 * session ({deviceId, sessionId, connected: ms from its offer to DTLS connected, or null}) and `{"done": true}`.
 *
 * A trial: start a camera, wait until its session connects (then 1 s more, so media reaches the bridge) or until
 * `windowMs` after its offer, stop it (bye). One offer per trial: the camera's own retries are not what is measured.
 */
import { SimulatedCamera } from '../../devices/camera/simulated-camera.ts';
import { nodeConnector } from '../../src/client/node-connector.ts';

interface Settings {
  url: string;
  cameras: { id: string; secret: string }[];
  trialsPerCamera: number;
  windowMs: number;
}

const settings = JSON.parse(process.argv[2] ?? '{}') as Settings;

async function trial(id: string, secret: string): Promise<void> {
  const camera = new SimulatedCamera({
    deviceId: id,
    secret,
    connect: nodeConnector(settings.url),
    // One offer per trial: the window is what is measured, not the camera's retries.
    backoff: { initialMs: 60_000, maxMs: 60_000, jitter: 0 },
    connectTimeoutMs: settings.windowMs,
  });
  const sessions = new Map<string, { openedAt: number; connected: number | null }>();
  const done = new Promise<void>((resolve) => {
    const timer = { id: undefined as NodeJS.Timeout | undefined };
    camera.keeper.on('session-open', (info) => {
      sessions.set(info.sessionId, { openedAt: performance.now(), connected: null });
      timer.id ??= setTimeout(resolve, settings.windowMs);
    });
    camera.keeper.on('session-connected', (info) => {
      const s = sessions.get(info.sessionId);
      if (s) s.connected = performance.now() - s.openedAt;
      clearTimeout(timer.id);
      // Long enough for media to reach the bridge through the link (its session goes "streaming").
      setTimeout(resolve, 1000);
    });
  });
  await camera.start();
  await done;
  await camera.stop();
  for (const [sessionId, s] of sessions) console.log(JSON.stringify({ deviceId: id, sessionId, connected: s.connected }));
}

await Promise.all(
  settings.cameras.map(async ({ id, secret }) => {
    for (let i = 0; i < settings.trialsPerCamera; i++) await trial(id, secret);
  }),
);
console.log(JSON.stringify({ done: true }));
process.exit(0);
