/**
 * `tali config check FILE`: validates a config file without starting anything. Every problem is one line on stderr
 * (option, what is wrong, the value and where it came from); exit 0 when valid, 1 when not, 2 on bad usage.
 * `tali config options`: the table of every option (markdown), as in docs/configuration.md.
 */
import { checkConfigFile, ConfigError } from '../config/config.ts';
import { renderOptionsTable } from '../config/options-table.ts';
import type { CliIo } from './main.ts';

const USAGE = `usage: tali config check FILE    validate a JSON config file (exit 0 valid, 1 invalid)
       tali config options       print every option: flag, environment variable, default, unit, meaning
`;

export async function runConfig(argv: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    io.stdout.write(USAGE);
    return 0;
  }
  if (sub === 'options' && rest.length === 0) {
    io.stdout.write(renderOptionsTable());
    return 0;
  }
  if (sub !== 'check' || rest.length !== 1 || rest[0]!.startsWith('-')) {
    io.stderr.write(`tali config: ${sub === undefined ? 'missing command' : `unexpected "${[sub, ...rest].join(' ')}"`}\n\n${USAGE}`);
    return 2;
  }
  const file = rest[0]!;
  try {
    const config = checkConfigFile(file);
    io.stdout.write(`${file}: ok (bridge ${config.bridgeId}, MQTT port ${config.mqttPort}, HTTP port ${config.httpPort})\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const problem of err.problems) io.stderr.write(`${file}: ${problem}\n`);
    return 1;
  }
}
