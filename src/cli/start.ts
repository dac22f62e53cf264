/**
 * `tali start`: the bridge on embedded defaults. Options come from flags, TALI_* environment variables and an
 * optional JSON file (--config); see `tali start --help` for the table.
 */
import { parseArgs } from 'node:util';
import { Bridge } from '../bridge.ts';
import { ConfigError, loadConfig } from '../config/config.ts';
import { envOf, flagOf, OPTIONS, type OptionName } from '../config/options.ts';
import { webBundle } from '../web/bundle.ts';
import type { CliIo } from './main.ts';

export async function runStart(argv: string[], io: CliIo): Promise<number> {
  const names = Object.keys(OPTIONS) as OptionName[];
  const spec = Object.fromEntries(
    names.map((name) => [flagOf(name), { type: OPTIONS[name].type === 'boolean' ? ('boolean' as const) : ('string' as const) }]),
  );
  let parsed: ReturnType<typeof parseArgs<{ options: typeof spec & { config: { type: 'string' }; help: { type: 'boolean' } } }>>;
  try {
    parsed = parseArgs({ args: argv, options: { ...spec, config: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  } catch (err) {
    io.stderr.write(`tali start: ${(err as Error).message}\n`);
    return 2;
  }
  if (parsed.values.help) {
    io.stdout.write(startUsage());
    return 0;
  }
  const flags: Partial<Record<OptionName, string | boolean>> = {};
  for (const name of names) {
    const value = parsed.values[flagOf(name)];
    if (value !== undefined) flags[name] = value as string | boolean;
  }

  let bridge: Bridge;
  try {
    const config = loadConfig({ flags, env: process.env, file: parsed.values.config as string | undefined });
    bridge = await Bridge.start({ config });
    // Bundle the dashboard now rather than on the first page view (tests start bridges without paying for it).
    webBundle().catch((err: unknown) => bridge.log.error({ err }, 'bundling the browser apps failed'));
  } catch (err) {
    io.stderr.write(err instanceof ConfigError ? `tali start: ${err.message}\n` : `tali start: ${(err as Error).stack}\n`);
    return 1;
  }

  // SIGINT/SIGTERM: drain (bye to cameras, offline card, ports released) within shutdownTimeoutMs, then exit.
  const done = new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      bridge.log.info({ signal }, 'shutting down');
      const timer = setTimeout(() => {
        bridge.log.error({ timeoutMs: bridge.config.shutdownTimeoutMs }, 'shutdown timed out');
        resolve(1);
      }, bridge.config.shutdownTimeoutMs);
      bridge.close().then(() => {
        clearTimeout(timer);
        resolve(0);
      });
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  const code = await done;
  bridge.log.flush();
  process.exit(code);
}

function startUsage(): string {
  const rows = (Object.keys(OPTIONS) as OptionName[]).map((name) => {
    const o = OPTIONS[name];
    const def = o.default === null || o.default === '' ? '' : ` (default ${JSON.stringify(o.default)})`;
    const unit = 'unit' in o ? ` [${o.unit}]` : '';
    return `  --${flagOf(name).padEnd(20)} ${o.doc}${unit}${def}\n  ${''.padEnd(22)} env ${envOf(name)}`;
  });
  return `usage: tali start [--config FILE] [options]\n\nPrecedence: flags > environment > config file > defaults.\n\n${rows.join('\n')}\n`;
}
