/**
 * Devices for tests: a SimulatedCamera or a bare DeviceClient registered with a real bridge, stopped when the test
 * finishes, and a way to wait for the SDK's typed events (never for time).
 */
import { onTestFinished } from 'vitest';
import { SimulatedCamera, type SimulatedCameraOptions } from '../../devices/camera/simulated-camera.ts';
import type { BackoffOptions } from '../../src/client/backoff.ts';
import { DeviceClient, type DeviceClientOptions } from '../../devices/sdk/device-client.ts';
import type { TypedEmitter } from '../../src/client/emitter.ts';
import { nodeConnector } from '../../src/client/node-connector.ts';
import type { TestBridge, Transport } from '../helpers/bridge.ts';
import { withTimeout } from '../helpers/wait.ts';

/** Short delays so retries happen within a test, with the real jitter still in play. */
export const FAST_BACKOFF: BackoffOptions = { initialMs: 200, maxMs: 2000, jitter: 0.5 };

export async function register(tb: TestBridge, id: string): Promise<string> {
  return tb.bridge.credentials.add(id, 'device', { replace: true });
}

/** A camera registered as `deviceId` (default cam1), not started yet, stopped when the test finishes. */
export async function createCamera(
  tb: TestBridge,
  transport: Transport,
  options: Partial<SimulatedCameraOptions> = {},
): Promise<SimulatedCamera> {
  const deviceId = options.deviceId ?? 'cam1';
  const camera = new SimulatedCamera({
    deviceId,
    secret: options.secret ?? (await register(tb, deviceId)),
    connect: nodeConnector(tb.urlFor(transport)),
    backoff: FAST_BACKOFF,
    ...options,
  });
  onTestFinished(() => camera.stop());
  return camera;
}

/** createCamera, started (connected to the broker). */
export async function startCamera(
  tb: TestBridge,
  transport: Transport,
  options: Partial<SimulatedCameraOptions> = {},
): Promise<SimulatedCamera> {
  const camera = await createCamera(tb, transport, options);
  await camera.start();
  return camera;
}

/** A DeviceClient (not started) that is stopped when the test finishes. */
export async function deviceClient(
  tb: TestBridge,
  transport: Transport,
  options: Partial<DeviceClientOptions> = {},
): Promise<DeviceClient> {
  const deviceId = options.deviceId ?? 'cam1';
  const client = new DeviceClient({
    deviceId,
    secret: options.secret ?? (await register(tb, deviceId)),
    connect: nodeConnector(tb.urlFor(transport)),
    backoff: FAST_BACKOFF,
    ...options,
  });
  onTestFinished(() => client.stop());
  return client;
}

type EventMap<T> = { [K in keyof T]: unknown[] };

/** Resolves with the arguments of the first `event` that satisfies `predicate`; fails after `ms` saying which. */
export function next<Events extends EventMap<Events>, K extends keyof Events & string>(
  emitter: TypedEmitter<Events>,
  event: K,
  predicate: (...args: Events[K]) => boolean = () => true,
  ms = 10_000,
): Promise<Events[K]> {
  let off: () => void = () => {};
  const seen = new Promise<Events[K]>((resolve) => {
    off = emitter.on(event, (...args) => {
      if (predicate(...args)) resolve(args);
    });
  });
  return withTimeout(seen, ms, `"${event}"`).finally(off);
}

/** Records every emission of `event` from now on, with its time (performance.now()). */
export function record<Events extends EventMap<Events>, K extends keyof Events & string>(
  emitter: TypedEmitter<Events>,
  event: K,
): { at: number; args: Events[K] }[] {
  const seen: { at: number; args: Events[K] }[] = [];
  const off = emitter.on(event, (...args) => void seen.push({ at: performance.now(), args }));
  onTestFinished(off);
  return seen;
}
