/**
 * `tali <command>`: the CLI's dispatcher. Each command is a module exporting `run(argv, io)` that returns an exit
 * code; commands write their own output through `io`, and the bridge logs through pino.
 */
import { runAnswer, runStart } from './start.ts';

export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

type Command = (argv: string[], io: CliIo) => Promise<number>;

const COMMANDS: Record<string, { run: () => Promise<Command>; summary: string }> = {
  start: { run: async () => runStart, summary: 'run the bridge (embedded broker, answerer, dashboard); --cluster redis://… for one node of many' },
  answer: { run: async () => runAnswer, summary: 'run the answerer, relay and dashboard against an existing broker (--broker mqtt://…)' },
  mosquitto: {
    run: async () => (await import('./mosquitto.ts')).runMosquitto,
    summary: 'print a Mosquitto acl_file, or password_file lines, for the same per-device isolation',
  },
  camera: {
    run: async () => (await import('../../devices/camera/cli.ts')).runCamera,
    summary: 'run a simulated camera against a bridge',
  },
  watch: { run: async () => (await import('./watch.ts')).runWatch, summary: 'watch a camera as a viewer and print what arrived' },
  'check-device': {
    run: async () => (await import('./check-device.ts')).runCheckDevice,
    summary: 'check a device (camera firmware) against the protocol, live, rule by rule (admin login)',
  },
  config: { run: async () => (await import('./config.ts')).runConfig, summary: 'check a config file; list every option' },
  device: { run: async () => (await import('./identities.ts')).runDevice, summary: 'add, remove or list devices (their secrets)' },
  user: { run: async () => (await import('./identities.ts')).runUser, summary: 'add, remove or list viewers and admins; issue viewer tokens' },
  cert: { run: async () => (await import('./cert.ts')).runCert, summary: 'make a self-signed certificate and key for local TLS' },
};

export async function main(argv: string[], io: CliIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(usage());
    return name === undefined ? 1 : 0;
  }
  if (name === '--version' || name === '-v') {
    io.stdout.write(`${(await import('../version.ts')).VERSION}\n`);
    return 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    io.stderr.write(`tali: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  return (await command.run())(rest, io);
}

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: tali <command> [options]\n\n${lines.join('\n')}\n\nRun "tali <command> --help" for its options.\n`;
}
