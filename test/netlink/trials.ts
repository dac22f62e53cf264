/**
 * Camera sessions through a NetHost's link, seen from both ends: cameras run inside the namespace (werift: the device
 * SDK, ./werift-camera.ts; or aiortc: test/interop/camera.py), the bridge runs here. Each offer is one trial; the
 * result says when each side reached connected, so a one-sided session (the bridge connected, the camera not, or the
 * reverse) shows.
 */
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Bridge } from '../../src/bridge.ts';
import type { NetHost } from './netns.ts';

const CAMERA = fileURLToPath(new URL('./werift-camera.ts', import.meta.url));
const PY_CAMERA = fileURLToPath(new URL('../interop/camera.py', import.meta.url));
const PYTHON = '/usr/bin/python3';
const NODE = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url));

export interface Trial {
  deviceId: string;
  sessionId: string;
  /** Milliseconds from the bridge receiving the offer to each state it reached. */
  bridge: { connected?: number; streaming?: number; closeReason?: string };
  /** Milliseconds from the camera sending the offer to DTLS connected on its side; null if it never did. */
  camera: { connected: number | null };
}

export interface TrialOptions {
  cameras: number;
  trialsPerCamera: number;
  /** How long an offer has to connect (default 15 000 ms, the bridge's connect timeout). */
  windowMs?: number;
  /** Device IDs are `<idPrefix><n>`. */
  idPrefix?: string;
  /** The cameras' WebRTC stack (default werift). */
  stack?: 'werift' | 'aiortc';
}

/** A trial succeeded when the bridge saw media within the window and the camera connected too. */
export function streamed(trial: Trial, windowMs = 15_000): boolean {
  return trial.bridge.streaming !== undefined && trial.bridge.streaming <= windowMs && trial.camera.connected !== null;
}

/** Exactly one side reached DTLS connected. */
export function oneSided(trial: Trial): boolean {
  return (trial.bridge.connected !== undefined) !== (trial.camera.connected !== null);
}

export async function cameraTrials(host: NetHost, bridge: Bridge, options: TrialOptions): Promise<Trial[]> {
  const windowMs = options.windowMs ?? 15_000;
  const prefix = options.idPrefix ?? 'lossy';
  const cameras = [];
  for (let i = 0; i < options.cameras; i++) {
    const id = `${prefix}${i}`;
    cameras.push({ id, secret: await bridge.credentials.add(id, 'device', { replace: true }) });
  }
  const ids = new Set(cameras.map((c) => c.id));
  const seen = new Map<string, Trial['bridge'] & { deviceId: string }>();
  const onSession = (session: import('../../src/answerer/session.ts').CameraSession) => {
    if (!ids.has(session.deviceId)) return;
    const start = performance.now();
    const record: Trial['bridge'] & { deviceId: string } = { deviceId: session.deviceId };
    seen.set(session.sessionId, record);
    session.on('state', (state) => {
      if (state === 'connected' || state === 'streaming') record[state] = Math.round(performance.now() - start);
    });
    session.on('closed', (reason) => (record.closeReason = reason));
  };
  bridge.answerer.on('session', onSession);
  const url = bridge.mqttUrl.replace('127.0.0.1', host.gateway);
  let fromCameras: Map<string, number | null>;
  try {
    fromCameras =
      options.stack === 'aiortc'
        ? await aiortcCameras(host, url, cameras, options.trialsPerCamera, windowMs)
        : await weriftCameras(host, url, cameras, options.trialsPerCamera, windowMs);
  } finally {
    bridge.answerer.off('session', onSession);
  }
  return [...seen].map(([sessionId, { deviceId, ...states }]) => ({
    deviceId,
    sessionId,
    bridge: states,
    camera: { connected: fromCameras.get(sessionId) ?? null },
  }));
}

type Cameras = { id: string; secret: string }[];

async function weriftCameras(host: NetHost, url: string, cameras: Cameras, trialsPerCamera: number, windowMs: number): Promise<Map<string, number | null>> {
  const child = host.spawn(NODE, [CAMERA, JSON.stringify({ url, cameras, trialsPerCamera, windowMs })], { stdio: ['ignore', 'pipe', 'inherit'] });
  const connected = new Map<string, number | null>();
  for await (const line of createInterface({ input: child.stdout! })) {
    const row = JSON.parse(line) as { done?: true; sessionId: string; connected: number | null };
    if (row.done) return connected;
    connected.set(row.sessionId, row.connected);
  }
  throw new Error(`the cameras exited early (code ${child.exitCode})`);
}

/** Each trial: camera.py starts, offers once, runs until connected (+1 s for media) or the window, then quits. */
async function aiortcCameras(host: NetHost, url: string, cameras: Cameras, trialsPerCamera: number, windowMs: number): Promise<Map<string, number | null>> {
  const connected = new Map<string, number | null>();
  const trial = async ({ id, secret }: Cameras[number]) => {
    const child = host.spawn(PYTHON, ['-u', PY_CAMERA, '--url', url, '--id', id, '--video', 'vp8'], {
      stdio: ['pipe', 'pipe', 'ignore'],
      env: { ...process.env, TALI_SECRET: secret },
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let timer: NodeJS.Timeout | undefined;
    const done = new Promise<void>((resolve) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const e = JSON.parse(line) as { event: string; sessionId?: string; ms?: number };
        if (e.event === 'offer' && e.sessionId) {
          connected.set(e.sessionId, null);
          timer ??= setTimeout(resolve, windowMs);
        } else if (e.event === 'connected' && e.sessionId) {
          connected.set(e.sessionId, e.ms ?? null);
          clearTimeout(timer);
          setTimeout(resolve, 1000);
        }
      });
      void exited.then(resolve);
    });
    await done;
    child.stdin!.end(); // quit: bye, offline card
    const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(kill);
  };
  await Promise.all(cameras.map(async (camera) => {
    for (let i = 0; i < trialsPerCamera; i++) await trial(camera);
  }));
  return connected;
}
