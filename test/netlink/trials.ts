/**
 * Camera sessions through a NetHost's link, seen from both ends: werift cameras (./werift-camera.ts) run inside the
 * namespace, the bridge runs here. Each offer is one trial; the result says when each side reached connected, so a
 * one-sided session (the bridge connected, the camera not, or the reverse) shows.
 */
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Bridge } from '../../src/bridge.ts';
import type { NetHost } from './netns.ts';

const CAMERA = fileURLToPath(new URL('./werift-camera.ts', import.meta.url));
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
  const onSession = (session: import('../../src/answerer/session.ts').Session) => {
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
  const child = host.spawn(NODE, [CAMERA, JSON.stringify({ url, cameras, trialsPerCamera: options.trialsPerCamera, windowMs })], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const fromCameras = new Map<string, number | null>();
  try {
    let done = false;
    for await (const line of createInterface({ input: child.stdout! })) {
      const row = JSON.parse(line) as { done?: true; sessionId: string; connected: number | null };
      if (row.done) {
        done = true;
        break;
      }
      fromCameras.set(row.sessionId, row.connected);
    }
    if (!done) throw new Error(`the cameras exited early (code ${child.exitCode})`);
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
