/**
 * Starts a real bridge on free ports in a fresh data directory and registers its teardown with the running test
 * (or suite), so nothing outlives the test that made it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { onTestFinished } from 'vitest';
import { Bridge } from '../../src/bridge.ts';
import type { OptionName } from '../../src/config/options.ts';

export const TRANSPORTS = ['mqtt', 'ws'] as const;
export type Transport = (typeof TRANSPORTS)[number];

export interface TestBridge {
  bridge: Bridge;
  dataDir: string;
  /** Log records the bridge wrote (parsed pino JSON lines). */
  logs: Record<string, unknown>[];
  urlFor(transport: Transport): string;
}

/**
 * Media workers of test bridges (option mediaWorkers): TALI_MEDIA_WORKERS when set (`TALI_MEDIA_WORKERS=1 npm test`
 * runs the suite in one-worker mode), else the option's default (one per core). Spawned `tali` processes read the
 * same variable themselves.
 */
const MEDIA_WORKERS = process.env.TALI_MEDIA_WORKERS === undefined ? {} : { mediaWorkers: Number(process.env.TALI_MEDIA_WORKERS) };

/** Use inside a test: the bridge is closed and its directory removed when the test finishes. */
export async function startBridge(config: Partial<Record<OptionName, unknown>> = {}): Promise<TestBridge> {
  const started = await createBridge(config);
  onTestFinished(() => started.close());
  return started;
}

/** For beforeAll/afterAll suites: returns the bridge and its close function. */
export async function createBridge(
  config: Partial<Record<OptionName, unknown>> = {},
): Promise<TestBridge & { close: () => Promise<void> }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'tali-test-'));
  const logs: Record<string, unknown>[] = [];
  const bridge = await Bridge.start({
    // Media worker threads start with their first camera (unless a test asks for mediaWorkersPrestart): most test
    // bridges carry no media, and booting every thread of hundreds of bridges would cost ~1 s of CPU each.
    config: { host: '127.0.0.1', mqttPort: 0, httpPort: 0, dataDir, mediaWorkersPrestart: false, ...MEDIA_WORKERS, ...config },
    logger: captureLogger(logs),
  });
  return {
    bridge,
    dataDir,
    logs,
    urlFor: (transport) => (transport === 'mqtt' ? bridge.mqttUrl : bridge.wsUrl),
    close: async () => {
      await bridge.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** A pino logger that keeps every record in memory (level debug), so tests can assert what was logged. */
export function captureLogger(into: Record<string, unknown>[]): Logger {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) into.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return pino({ level: 'debug' }, sink);
}
