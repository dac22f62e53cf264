/**
 * `tali start`: the bridge on embedded defaults (with --cluster redis://…, one node of a cluster).
 * `tali answer --broker mqtt://…`: the answerer, relay, recorder and HTTP side against an existing broker.
 * Options come from flags, TALI_* environment variables and an optional JSON file (--config); see `--help`.
 */
import module from 'node:module';
import { parseArgs } from 'node:util';
import { Bridge } from '../bridge.ts';
import { ConfigError, loadConfig } from '../config/config.ts';
import { TaliError } from '../errors.ts';
import { envOf, flagOf, OPTIONS, type OptionName } from '../config/options.ts';
import { createLogger, terminalDestination } from '../log.ts';
import { webBundle } from '../web/bundle.ts';
import type { CliIo } from './main.ts';

/** When `tali start` does what can wait (the browser apps' bundle, the compile cache): after the burst of
 * reconnecting cameras that follows a restart. */
const AFTER_START_MS = 15_000;

export function runStart(argv: string[], io: CliIo): Promise<number> {
  return runBridge('start', argv, io);
}

export function runAnswer(argv: string[], io: CliIo): Promise<number> {
  return runBridge('answer', argv, io);
}

async function runBridge(command: 'start' | 'answer', argv: string[], io: CliIo): Promise<number> {
  const names = Object.keys(OPTIONS) as OptionName[];
  const spec = Object.fromEntries(
    names.map((name) => [flagOf(name), { type: OPTIONS[name].type === 'boolean' ? ('boolean' as const) : ('string' as const) }]),
  );
  // `tali answer --username … --password …`: the bridge's identity on the external broker.
  const extra = { config: { type: 'string' }, help: { type: 'boolean', short: 'h' }, username: { type: 'string' }, password: { type: 'string' } } as const;
  let parsed: ReturnType<typeof parseArgs<{ options: typeof spec & typeof extra }>>;
  try {
    // allowNegative: --no-X turns off a boolean option whose default is on (--no-persistence).
    parsed = parseArgs({ args: argv, options: { ...spec, ...extra }, allowNegative: true });
    if (command === 'start' && (parsed.values.username !== undefined || parsed.values.password !== undefined)) {
      throw new Error('--username and --password are for tali answer (the bridge on an external broker)');
    }
  } catch (err) {
    io.stderr.write(`tali ${command}: ${(err as Error).message}\n`);
    return 2;
  }
  if (parsed.values.help) {
    io.stdout.write(startUsage(command));
    return 0;
  }
  const flags: Partial<Record<OptionName, string | boolean>> = {};
  for (const name of names) {
    const value = parsed.values[flagOf(name)];
    if (value !== undefined) flags[name] = value as string | boolean;
  }
  if (parsed.values.username !== undefined) flags.brokerUsername = parsed.values.username;
  if (parsed.values.password !== undefined) flags.brokerPassword = parsed.values.password;

  let bridge: Bridge;
  try {
    const config = loadConfig({ flags, env: process.env, file: parsed.values.config as string | undefined });
    if (command === 'start' && config.broker !== '') throw new ConfigError(['broker: tali start embeds its broker; run tali answer --broker URL to use an external one']);
    if (command === 'answer' && config.broker === '') throw new ConfigError(['broker: tali answer needs --broker mqtt://host:port (or TALI_BROKER)']);
    if (command === 'answer' && config.cluster !== '') throw new ConfigError(['cluster: only for tali start (the embedded broker); an external broker clusters by itself']);
    bridge = await Bridge.start({ config, logger: createLogger(config.logLevel, await terminalDestination()) });
    // Bundle the dashboard before the first page view (tests start bridges without paying for it), but not while a
    // restarted bridge's cameras reconnect: esbuild's ~1 s of CPU, and the gzip on this thread, are better spent on
    // their offers. A page view before then bundles at once.
    // Then also write Node's compile cache (bin/tali.js): Node writes it at exit, which a killed bridge never reaches,
    // and the restart after a crash would start cold. Not at once: writing ~1 400 entries the first time blocks this
    // thread (0.25 s here, seconds on a loaded machine); later it writes nothing new and takes ~2 ms.
    setTimeout(() => {
      module.flushCompileCache?.();
      webBundle().catch((err: unknown) => bridge.log.error({ err }, 'bundling the browser apps failed'));
    }, AFTER_START_MS).unref();
  } catch (err) {
    // A port in use, a data directory that cannot be written, a bad option: one line, the code and what to do.
    if (err instanceof TaliError) io.stderr.write(`tali ${command}: ${err.code}: ${err.message}\n`);
    else io.stderr.write(err instanceof ConfigError ? `tali ${command}: ${err.message}\n` : `tali ${command}: ${(err as Error).stack}\n`);
    return 1;
  }

  // SIGHUP: the config file (and environment) read again for the one option that changes without a restart, the TURN
  // secret (docs/operations.md "TURN": rotation). Everything else needs a restart.
  let turnSecret = bridge.config.turnSecret;
  process.on('SIGHUP', () => {
    try {
      const next = loadConfig({ flags, env: process.env, file: parsed.values.config as string | undefined });
      const turn = bridge.services.ice.turn;
      if (next.turnSecret === turnSecret) return bridge.log.info({ signal: 'SIGHUP' }, 'TURN secret unchanged');
      if (turn === undefined || next.turnSecret === '') return bridge.log.warn({ signal: 'SIGHUP' }, 'turning TURN on or off needs a restart');
      turn.rotate(next.turnSecret);
      turnSecret = next.turnSecret;
      bridge.log.info({ signal: 'SIGHUP' }, 'TURN secret rotated: credentials minted from now on use the new one');
    } catch (err) {
      bridge.log.error({ signal: 'SIGHUP', err: err instanceof ConfigError ? err.problems : (err as Error).message }, 'configuration not reloaded');
    }
  });

  // SIGINT/SIGTERM: drain (bye to cameras, recordings finalised, offline card, ports released), then exit, all
  // within shutdownTimeoutMs whatever the broker or Redis does: the drain gets the time less a margin for the exit,
  // and if it still has not returned when the margin starts, the process exits anyway (code 1). A second signal
  // exits at once.
  const done = new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        bridge.log.warn({ signal }, 'second signal: exiting now');
        resolve(1);
        return;
      }
      stopping = true;
      const timeoutMs = bridge.config.shutdownTimeoutMs;
      // What is left after the drain for the exit itself, and for a loaded machine to schedule it: a fifth, ≤ 1 s.
      const margin = Math.min(1000, Math.max(20, timeoutMs / 5));
      bridge.log.info({ signal, timeoutMs }, 'shutting down');
      const timer = setTimeout(() => {
        bridge.log.error({ timeoutMs }, 'shutdown timed out');
        resolve(1);
      }, timeoutMs - margin / 2);
      bridge.close(timeoutMs - margin).then(
        () => resolve(0),
        (err: unknown) => {
          bridge.log.error({ err }, 'shutdown failed');
          resolve(1);
        },
      ).finally(() => clearTimeout(timer));
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });
  const code = await done;
  bridge.log.flush();
  process.exit(code);
}

function startUsage(command: 'start' | 'answer'): string {
  const rows = (Object.keys(OPTIONS) as OptionName[]).map((name) => {
    const o = OPTIONS[name];
    const def = o.default === null || o.default === '' ? '' : ` (default ${JSON.stringify(o.default)})`;
    const unit = 'unit' in o ? ` [${o.unit}]` : '';
    return `  --${flagOf(name).padEnd(20)} ${o.doc}${unit}${def}\n  ${''.padEnd(22)} env ${envOf(name)}`;
  });
  const head =
    command === 'start'
      ? 'usage: tali start [--config FILE] [--cluster redis://host:port] [options]'
      : 'usage: tali answer --broker mqtt://host:port [--username USER --password PASSWORD] [--config FILE] [options]\n\n' +
        'Runs the answerer, relay, recorder and HTTP side against an existing MQTT broker (docs/cluster.md);\n' +
        '--username/--password are --broker-username/--broker-password.';
  return `${head}\n\nPrecedence: flags > environment > config file > defaults.\n\n${rows.join('\n')}\n`;
}
