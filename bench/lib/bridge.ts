/**
 * A real bridge for the benchmarks: free loopback ports, a fresh data directory, and logs at the default level
 * ("info", as deployed) written to /dev/null, so their cost counts but they do not clutter the tables.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Bridge } from '../../src/bridge.ts';
import { OPTIONS, type OptionName } from '../../src/config/options.ts';
import { createLogger } from '../../src/log.ts';

export interface BenchBridge {
  bridge: Bridge;
  dataDir: string;
  close(): Promise<void>;
}

/**
 * Client limits a benchmark must not trip (connection counts, per-address caps, publish rates): each set to its
 * maximum, for the options this version of tali has. Benchmarks measure capacity, so admission control is off.
 */
export function withoutClientLimits(config: Partial<Record<OptionName, unknown>> = {}): Partial<Record<OptionName, unknown>> {
  const limits = ['maxConnections', 'maxConnectionsPerAddress', 'maxPendingConnections', 'maxPendingConnectionsPerAddress', 'publishRate', 'publishBurst', 'maxSessions', 'maxViewers'];
  const out: Record<string, unknown> = {};
  for (const name of limits) {
    const spec = (OPTIONS as Record<string, { type: string; max?: number }>)[name];
    if (spec?.type === 'integer' && spec.max !== undefined) out[name] = spec.max;
  }
  return { ...out, ...config } as Partial<Record<OptionName, unknown>>;
}

/**
 * A fresh data directory, removed on close; or `config.dataDir`, kept (a restart of the same bridge). Media on the
 * main thread (mediaWorkers 1) unless `config` says otherwise: the tables keep measuring what they measured before
 * worker threads became the default; relay, concurrency and sigload compare 1 and N workers themselves.
 */
export async function startBenchBridge(config: Partial<Record<OptionName, unknown>> = {}): Promise<BenchBridge> {
  const given = typeof config.dataDir === 'string' ? config.dataDir : undefined;
  const dataDir = given ?? (await mkdtemp(join(tmpdir(), 'tali-bench-')));
  const logger = createLogger(String(config.logLevel ?? 'info'), pino.destination({ dest: '/dev/null', sync: false }));
  const bridge = await Bridge.start({
    config: { host: '127.0.0.1', mqttPort: 0, httpPort: 0, dataDir, bridgeId: 'bench', mediaWorkers: 1, ...config },
    logger,
  });
  return {
    bridge,
    dataDir,
    close: async () => {
      await bridge.close();
      if (given === undefined) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
