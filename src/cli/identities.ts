/**
 * `tali device …` and `tali user …`: the identities in the data directory's credential store. A running bridge
 * picks every change up without a restart, and closes the connections of what was removed (or re-keyed).
 *
 *   tali device add <id> [--profile libpeer] [--replace] [--quiet]   prints the device's new secret, once
 *   tali device remove <id>
 *   tali device list [--json]                        with online / last seen, from the running bridge
 *   tali user add <name> --role viewer|admin [--replace] [--quiet]
 *   tali user remove <name>
 *   tali user list [--json]
 *   tali user token <name> [--devices cam1,cam2|*] [--ttl 15m]   a signed viewer token
 *
 * All take --data-dir DIR (default $TALI_DATA_DIR or ./data). Errors print their TALI_ERR_* code (src/errors.ts).
 */
import { parseArgs } from 'node:util';
import { OPTIONS } from '../config/options.ts';
import { TaliError } from '../errors.ts';
import { isValidId, LIBPEER_MAX_ID_LENGTH } from '../protocol/topics.ts';
import { libpeerToken } from '../profiles/libpeer/token.ts';
import { DEVICE_PROFILES, type DeviceProfile } from '../security/identity.ts';
import { readPresence } from '../fleet/presence.ts';
import { CredentialStore, type StoredIdentity } from '../security/credentials.ts';
import { parseDevices, parseTtl, TokenSigner } from '../security/tokens.ts';
import type { CliIo } from './main.ts';

type Kind = 'device' | 'user';

const USAGE: Record<Kind, string> = {
  device: `usage: tali device add <id> [--profile libpeer|native] [--replace] [--quiet]
       tali device remove <id>
       tali device list [--json]     (ONLINE and LAST SEEN come from the bridge running on DIR)

  --data-dir DIR   the bridge's data directory (default $TALI_DATA_DIR or ./data)
  --profile NAME   libpeer: the device runs sepfy/libpeer's MQTT signaling (docs/devices.md; ID at most 31
                   characters); native (default): protocol v1. With --replace, the old profile is kept unless given
  --replace        re-key an existing device (its old secret stops working, its connection is closed)
  --quiet          print only the secret
`,
  user: `usage: tali user add <name> --role viewer|admin [--replace] [--quiet]
       tali user remove <name>
       tali user list [--json]
       tali user token <name> [--devices cam1,cam2|*] [--ttl 15m]

  --data-dir DIR   the bridge's data directory (default $TALI_DATA_DIR or ./data)
  --role ROLE      viewer (reads cards, watches cameras) or admin (also the recordings API and $SYS)
  --devices LIST   token: the devices it may see, comma-separated, or * (default *)
  --ttl TIME       token: lifetime, e.g. 90s, 15m, 2h (default 15m; at most tokenMaxTtlS)
`,
};

export function runDevice(argv: string[], io: CliIo): Promise<number> {
  return run('device', argv, io);
}

export function runUser(argv: string[], io: CliIo): Promise<number> {
  return run('user', argv, io);
}

async function run(kind: Kind, argv: string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        'data-dir': { type: 'string' },
        role: { type: 'string' },
        profile: { type: 'string' },
        devices: { type: 'string' },
        ttl: { type: 'string' },
        replace: { type: 'boolean' },
        quiet: { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    return usage(kind, io, (err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout.write(USAGE[kind]);
    return 0;
  }
  const [action, name, ...rest] = positionals;
  if (rest.length > 0) return usage(kind, io, `unexpected ${rest.join(' ')}`);
  const dataDir = values['data-dir'] ?? process.env.TALI_DATA_DIR ?? OPTIONS.dataDir.default;
  const store = new CredentialStore(dataDir);
  try {
    switch (action) {
      case 'add': {
        const role = kind === 'device' ? 'device' : values.role;
        if (role !== 'device' && role !== 'viewer' && role !== 'admin') return usage(kind, io, '--role must be viewer or admin');
        const id = requireName(kind, name);
        const parsedProfile = parseProfile(kind, values.profile);
        if (typeof parsedProfile === 'object' && parsedProfile !== null) return usage(kind, io, parsedProfile.problem);
        const profile = parsedProfile;
        const existing = await store.get(id);
        if (existing && existing.role !== role) throw wrongRole(existing, kind);
        if (existing && !values.replace) throw new TaliError('TALI_ERR_IDENTITY_EXISTS', `${id} exists already (remove it first, or --replace to re-key it)`);
        const effective = profile === undefined ? existing?.profile : (profile ?? undefined);
        if (effective === 'libpeer' && id.length > LIBPEER_MAX_ID_LENGTH) {
          throw new TaliError('TALI_ERR_INVALID_ID', `device ID ${id}: a libpeer device's client ID is at most ${LIBPEER_MAX_ID_LENGTH} characters (libpeer cuts longer ones)`);
        }
        const secret = await store.add(id, role, { replace: Boolean(values.replace), ...(profile !== undefined && { profile }) });
        io.stdout.write(values.quiet ? `${secret}\n` : added(kind, id, role, secret, dataDir, effective));
        return 0;
      }
      case 'remove': {
        const id = requireName(kind, name);
        const existing = await store.get(id);
        if (existing === undefined) throw new TaliError('TALI_ERR_IDENTITY_NOT_FOUND', `no ${kind} named ${id} in ${dataDir}`);
        if ((existing.role === 'device') !== (kind === 'device')) throw wrongRole(existing, kind);
        await store.remove(id);
        io.stdout.write(`Removed ${kind} ${id}. A running bridge closes its connections now.\n`);
        return 0;
      }
      case 'list': {
        if (name !== undefined) return usage(kind, io, `list takes no name`);
        const rows = (await store.list())
          .filter((i) => (i.role === 'device') === (kind === 'device'))
          .map(({ id, role, created, profile }) => ({ id, role, created, ...(profile && { profile }) }));
        if (kind === 'device') await listDevices(rows, dataDir, Boolean(values.json), io);
        else if (values.json) io.stdout.write(`${JSON.stringify(rows)}\n`);
        else for (const r of rows) io.stdout.write(`${r.id.padEnd(24)} ${r.role.padEnd(7)} ${r.created}\n`);
        return 0;
      }
      case 'token': {
        if (kind !== 'user') return usage(kind, io, 'tokens are for users');
        const id = requireName(kind, name);
        const user = await store.get(id);
        if (user === undefined) throw new TaliError('TALI_ERR_IDENTITY_NOT_FOUND', `no user named ${id} in ${dataDir}`);
        if (user.role === 'device') throw wrongRole(user, kind);
        const devices = parseDevices(values.devices ?? '*');
        if (devices === undefined) throw new TaliError('TALI_ERR_TOKEN', '--devices must be * or device IDs separated by commas');
        const ttl = parseTtl(values.ttl ?? '15m');
        if (ttl === undefined) throw new TaliError('TALI_ERR_TOKEN', '--ttl must be like 90s, 15m, 2h or 1d');
        if (ttl > OPTIONS.tokenMaxTtlS.max) throw new TaliError('TALI_ERR_TOKEN', `--ttl is at most ${OPTIONS.tokenMaxTtlS.max} s`);
        const now = Math.floor(Date.now() / 1000);
        const token = (await TokenSigner.open(dataDir)).sign({ sub: id, devices, iat: now, exp: now + ttl, auth: now, cred: user.created });
        io.stdout.write(`${token}\n`);
        return 0;
      }
      default:
        return usage(kind, io, action === undefined ? 'which action?' : `unknown action "${action}"`);
    }
  } catch (err) {
    const e = err instanceof TaliError ? err : asTaliError(err);
    io.stderr.write(`tali ${kind}: ${e.code}: ${e.message}\n`);
    return 1;
  }
}

/**
 * Devices with what the running bridge says of them (its presence file in the data directory, src/fleet/presence.ts):
 * online, and when last seen. With no bridge running on this data directory, "online" is unknown.
 */
async function listDevices(rows: { id: string; role: string; created: string; profile?: string }[], dataDir: string, json: boolean, io: CliIo): Promise<void> {
  const { running, devices } = await readPresence(dataDir);
  const withPresence = rows.map((r) => {
    const p = devices.get(r.id);
    return { ...r, online: running ? (p?.online ?? false) : null, lastSeen: p ? new Date(p.lastSeen).toISOString() : null };
  });
  if (json) {
    io.stdout.write(`${JSON.stringify(withPresence)}\n`);
    return;
  }
  io.stdout.write(`${'DEVICE'.padEnd(24)} ${'ONLINE'.padEnd(7)} ${'LAST SEEN'.padEnd(24)} CREATED\n`);
  for (const r of withPresence) {
    const online = r.online === null ? '?' : r.online ? 'yes' : 'no';
    const profile = r.profile ? ` ${r.profile}` : '';
    io.stdout.write(`${r.id.padEnd(24)} ${online.padEnd(7)} ${(r.online ? 'now' : (r.lastSeen ?? 'never')).padEnd(24)} ${r.created}${profile}\n`);
  }
  if (!running) io.stdout.write(`(no bridge is running on ${dataDir}: ONLINE unknown; LAST SEEN from its last run)\n`);
}

function requireName(kind: Kind, name: string | undefined): string {
  if (!isValidId(name)) {
    throw new TaliError('TALI_ERR_INVALID_ID', `${kind === 'device' ? 'device ID' : 'user name'} ${JSON.stringify(name ?? '')}: use 1–64 of A–Z a–z 0–9 . _ - starting with a letter or digit`);
  }
  return name;
}

function wrongRole(existing: StoredIdentity, kind: Kind): TaliError {
  const other = existing.role === 'device' ? 'device' : 'user';
  return new TaliError('TALI_ERR_WRONG_ROLE', `${existing.id} is a ${existing.role}; use tali ${other} (not tali ${kind})`);
}

function asTaliError(err: unknown): TaliError {
  const code = (err as NodeJS.ErrnoException).code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return new TaliError('TALI_ERR_DATA_DIR', (err as Error).message);
  throw err;
}

/** `--profile`: a profile, null for native, undefined when not given, or the problem with the value. */
function parseProfile(kind: Kind, value: string | undefined): DeviceProfile | null | undefined | { problem: string } {
  if (value === undefined) return undefined;
  if (kind !== 'device') return { problem: '--profile is for devices' };
  if (value === 'native') return null;
  if ((DEVICE_PROFILES as readonly string[]).includes(value)) return value as DeviceProfile;
  return { problem: `--profile must be ${[...DEVICE_PROFILES, 'native'].join(' or ')}` };
}

function added(kind: Kind, id: string, role: string, secret: string, dataDir: string, profile?: DeviceProfile): string {
  const use =
    kind === 'user'
      ? `Sign in to the dashboard as "${id}" with it, or issue short-lived tokens: tali user token ${id} --data-dir ${dataDir}\n`
      : profile === 'libpeer'
        ? `A libpeer device (docs/devices.md): give peer_signaling_connect() this URL and token (TLS: the bridge needs
--tls-cert/--tls-key, see tali cert; the path is one of libpeerPrefixes, default /public, then the device ID):\n
  url:   mqtts://BRIDGE-HOST:8883/public/${id}
  token: ${libpeerToken(id, secret)}\n`
        : `Connect with client ID and user name "${id}" and this secret as the password. A simulated camera:\n\n  TALI_DEVICE_SECRET=${secret} npx tali camera --id ${id}\n`;
  return `Added ${role} ${id}. Its secret, shown only now (tali stores a scrypt hash of it):\n\n  ${secret}\n\n${use}`;
}

function usage(kind: Kind, io: CliIo, problem: string): number {
  io.stderr.write(`tali ${kind}: TALI_ERR_USAGE: ${problem}\n\n${USAGE[kind]}`);
  return 2;
}
