/**
 * `tali mosquitto acl`: an acl_file for Mosquitto from tali's access rules and the identities of the credential
 * store, so `tali answer --broker mqtt://…` keeps per-device isolation on Mosquitto (docs/cluster.md).
 * `tali mosquitto passwd USER`: one password_file line for USER, with the secret read from standard input (not an
 * argument: other users can read arguments with ps).
 */
import { parseArgs } from 'node:util';
import { Topics } from '../protocol/topics.ts';
import { AccessPolicy } from '../security/access.ts';
import { CredentialStore } from '../security/credentials.ts';
import { mosquittoAcl, mosquittoPasswordLine } from '../security/mosquitto.ts';
import type { CliIo } from './main.ts';

const USAGE = `usage: tali mosquitto acl [--data-dir DIR] [--root ROOT] [--bridge-user USER]
         print an acl_file: the bridge's user may do everything, every identity in DIR/identities.json what its
         role may (devices: their own topics only). Regenerate after adding identities, then SIGHUP Mosquitto.
       tali mosquitto passwd USER < secret
         print one password_file line (PBKDF2-SHA512, as mosquitto_passwd writes) for USER with the secret read
         from standard input, e.g. the secret "tali device add" printed, or the bridge's --password.

  --data-dir DIR      the bridge's data directory (default ./data, or TALI_DATA_DIR)
  --root ROOT         topic root (default tali, or TALI_ROOT)
  --bridge-user USER  the bridge's user on the broker, as in tali answer --username (default tali-bridge)
`;

export interface MosquittoIo extends CliIo {
  /** Standard input, read for the secret (default process.stdin). */
  stdin?: AsyncIterable<Buffer | string>;
}

export async function runMosquitto(argv: string[], io: MosquittoIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        'data-dir': { type: 'string', default: process.env.TALI_DATA_DIR || './data' },
        root: { type: 'string', default: process.env.TALI_ROOT || 'tali' },
        'bridge-user': { type: 'string', default: 'tali-bridge' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    io.stderr.write(`tali mosquitto: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const [sub, ...rest] = parsed.positionals;
  if (parsed.values.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  try {
    if (sub === 'acl' && rest.length === 0) {
      const store = new CredentialStore(parsed.values['data-dir']);
      const identities = (await store.list()).map(({ id, role }) => ({ id, role }));
      io.stdout.write(mosquittoAcl(new AccessPolicy(new Topics(parsed.values.root)), parsed.values['bridge-user'], identities));
      return 0;
    }
    if (sub === 'passwd' && rest.length === 1) {
      const secret = (await readAll(io.stdin ?? process.stdin)).split(/\r?\n/)[0] ?? '';
      if (secret === '') throw new Error('no secret on standard input');
      io.stdout.write(`${await mosquittoPasswordLine(rest[0]!, secret)}\n`);
      return 0;
    }
  } catch (err) {
    io.stderr.write(`tali mosquitto: ${(err as Error).message}\n`);
    return 1;
  }
  io.stderr.write(`tali mosquitto: ${sub === undefined ? 'missing command' : `unexpected "${[sub, ...rest].join(' ')}"`}\n\n${USAGE}`);
  return 2;
}

async function readAll(input: AsyncIterable<Buffer | string>): Promise<string> {
  let text = '';
  for await (const chunk of input) text += chunk.toString();
  return text;
}
