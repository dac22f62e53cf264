/**
 * `tali camera`: runs one simulated camera against a bridge. With --duration it is a check ("did a session connect
 * and did media flow?") that prints one JSON summary line on stdout; without, it runs until SIGINT or SIGTERM. Logs
 * go to stderr through pino.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { TaliError } from '../../src/errors.ts';
import { createLogger, type Logger } from '../../src/log.ts';
import { assertValidId, assertValidRoot } from '../../src/protocol/topics.ts';
import { CredentialStore } from '../../src/security/credentials.ts';
import { nodeConnector } from '../../src/client/node-connector.ts';
import type { G711Law } from './media/g711.ts';
import type { VideoCodec } from './media/video-source.ts';
import { SimulatedCamera } from './simulated-camera.ts';

export interface CameraIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  /** Default process.env (read for TALI_DEVICE_SECRET). */
  env?: Record<string, string | undefined>;
  /** Stops the camera like SIGINT does (for embedding and tests). */
  signal?: AbortSignal;
}

const USAGE = `usage: tali camera [options]

Runs a simulated camera: connects to a tali bridge over MQTT, offers a WebRTC session and streams a test clip.

  --url URL          broker URL: mqtt://, mqtts://, ws:// or wss:// (default mqtt://127.0.0.1:1883)
  --id ID            device ID (default cam1)
  --secret SECRET    device secret (default: $TALI_DEVICE_SECRET, better: other users can read arguments with ps).
                     If neither is set: the secret an earlier tali camera left in DIR/devices/ID.secret; else a
                     device not registered yet is registered in --data-dir and its new secret kept there. A device
                     registered otherwise (tali device add, the dashboard) is never re-keyed: give its secret.
  --data-dir DIR     the bridge's data directory, for that registration (default ./data)
  --root ROOT        topic root (default tali)
  --codec CODEC      vp8 or h264 (default vp8)
  --audio AUDIO      none, pcmu or pcma (default pcmu)
  --model MODEL      model name on the device's status card
  --duration S       stop after S seconds and print a JSON summary; exit 0 only if a session connected and
                     media flowed
  --ca FILE          PEM CA certificate to trust for mqtts:// and wss://
  --insecure         do not verify the broker's TLS certificate (testing only)
  --log-level LEVEL  fatal, error, warn, info, debug, trace or silent (default info)
  -h, --help         show this help
`;

const OPTIONS = {
  url: { type: 'string', default: 'mqtt://127.0.0.1:1883' },
  id: { type: 'string', default: 'cam1' },
  secret: { type: 'string' },
  'data-dir': { type: 'string', default: './data' },
  root: { type: 'string', default: 'tali' },
  codec: { type: 'string', default: 'vp8' },
  audio: { type: 'string', default: 'pcmu' },
  model: { type: 'string' },
  duration: { type: 'string' },
  ca: { type: 'string' },
  insecure: { type: 'boolean', default: false },
  'log-level': { type: 'string', default: 'info' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

const CODECS: Record<string, VideoCodec> = { vp8: 'VP8', h264: 'H264' };
const AUDIO: Record<string, G711Law | undefined> = { none: undefined, pcmu: 'PCMU', pcma: 'PCMA' };
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

class UsageError extends Error {}

export async function runCamera(argv: string[], io: CameraIo): Promise<number> {
  let values;
  try {
    values = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }).values;
  } catch (err) {
    io.stderr.write(`tali camera: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  let settings: ReturnType<typeof validate>;
  try {
    settings = validate(values);
  } catch (err) {
    if (!(err instanceof UsageError || err instanceof TypeError)) throw err;
    io.stderr.write(`tali camera: ${err.message}\n`);
    return 2;
  }
  const log = createLogger(values['log-level'], { write: (line: string) => void io.stderr.write(line) }).child({ component: 'camera' });
  try {
    return await run(settings, values, io, log);
  } catch (err) {
    if (err instanceof TaliError) io.stderr.write(`tali camera: ${err.code}: ${err.message}\n`);
    else log.error({ err: (err as Error).message }, 'camera failed');
    return 1;
  }
}

function validate(values: { [K in keyof typeof OPTIONS]?: string | boolean }) {
  const id = values.id as string;
  assertValidId(id, 'device ID');
  const codec = CODECS[(values.codec as string).toLowerCase()];
  if (codec === undefined) throw new UsageError(`--codec must be vp8 or h264, not ${JSON.stringify(values.codec)}`);
  const audioName = (values.audio as string).toLowerCase();
  if (!Object.hasOwn(AUDIO, audioName)) throw new UsageError(`--audio must be none, pcmu or pcma, not ${JSON.stringify(values.audio)}`);
  let durationS: number | undefined;
  if (values.duration !== undefined) {
    durationS = Number(values.duration);
    if (!(durationS > 0 && durationS <= 86_400)) throw new UsageError(`--duration must be a number of seconds in (0, 86400]`);
  }
  if (!LOG_LEVELS.includes(values['log-level'] as string)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  assertValidRoot(values.root as string);
  const url = values.url as string;
  nodeConnector(url); // throws TypeError for a bad URL or scheme, before anything connects
  return { id, codec, audio: AUDIO[audioName], durationS, url };
}

async function run(
  settings: ReturnType<typeof validate>,
  values: { secret?: string | undefined; 'data-dir': string; root: string; model?: string | undefined; ca?: string | undefined; insecure: boolean },
  io: CameraIo,
  log: Logger,
): Promise<number> {
  const secret = values.secret ?? (io.env ?? process.env).TALI_DEVICE_SECRET ?? (await register(settings.id, values['data-dir'], log));
  if (values.insecure) log.warn('--insecure: the broker certificate is not verified');
  const tls = { ca: values.ca ? await readFile(values.ca) : undefined, rejectUnauthorized: !values.insecure };
  const camera = new SimulatedCamera({
    deviceId: settings.id,
    secret,
    root: values.root,
    connect: nodeConnector(settings.url, { tls }),
    codec: settings.codec,
    audio: settings.audio,
    model: values.model,
    logger: log,
  });

  const stop = stopRequest(settings.durationS, io.signal);
  let exitCode = 0;
  try {
    log.info({ url: settings.url, deviceId: settings.id, codec: settings.codec, audio: settings.audio ?? 'none' }, 'camera starting');
    // A refused CONNECT (bad secret) rejects start(); an unreachable broker is retried until the stop request.
    await Promise.race([camera.start(), stop.requested]);
    const why = await stop.requested;
    log.info({ why }, 'stopping');
  } catch (err) {
    log.error({ err: (err as Error).message }, 'camera could not start');
    exitCode = 1;
  } finally {
    stop.release();
    await camera.stop();
  }
  const summary = camera.summary();
  if (settings.durationS === undefined) {
    log.info({ summary }, 'camera stopped');
    return exitCode;
  }
  io.stdout.write(`${JSON.stringify(summary)}\n`);
  return exitCode === 0 && summary.sessionsConnected > 0 && summary.packetsSent > 0 ? 0 : 1;
}

/**
 * The secret of a camera run without --secret: the one an earlier run registered (kept in DIR/devices/ID.secret,
 * readable by its owner only), else a new registration, so that the quick start needs no manual step and can be run
 * again. A device that exists without such a file was registered by someone else, with a secret this command does
 * not know: it is never silently re-keyed (that would lock the real device out).
 */
async function register(id: string, dataDir: string, log: Logger): Promise<string> {
  const file = join(dataDir, 'devices', `${id}.secret`);
  const store = new CredentialStore(dataDir);
  const kept = await readFile(file, 'utf8').then((text) => text.trim(), () => undefined);
  const existing = await store.get(id);
  if (kept && existing?.role === 'device') {
    log.info({ deviceId: id, file }, `using the secret of "${id}" registered by an earlier tali camera (${file})`);
    return kept;
  }
  if (existing !== undefined) {
    throw new TaliError(
      'TALI_ERR_IDENTITY_EXISTS',
      `"${id}" is registered already (a ${existing.role}) and its secret is not known here: give it with --secret or TALI_DEVICE_SECRET, ` +
        `or make a new one with: tali device add ${id} --replace (the device using the old one is then locked out)`,
    );
  }
  const secret = await store.add(id, 'device');
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  await writeFile(file, `${secret}\n`, { mode: 0o600 });
  log.warn({ deviceId: id, file: store.file, secretFile: file }, `no --secret or TALI_DEVICE_SECRET: registered device "${id}" in ${store.file}; its secret is in ${file}`);
  return secret;
}

/** Resolves with why the camera should stop: the duration elapsed, a signal, or an abort. */
function stopRequest(durationS: number | undefined, signal: AbortSignal | undefined): { requested: Promise<string>; release: () => void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onSignal: (name: NodeJS.Signals) => void = () => {};
  let onAbort: () => void = () => {};
  const requested = new Promise<string>((resolve) => {
    if (durationS !== undefined) timer = setTimeout(() => resolve('duration'), durationS * 1000);
    onSignal = (name) => resolve(name);
    onAbort = () => resolve('abort');
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    if (signal?.aborted) resolve('abort');
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  return {
    requested,
    release: () => {
      clearTimeout(timer);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      signal?.removeEventListener('abort', onAbort);
    },
  };
}
