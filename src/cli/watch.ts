/**
 * `tali watch`: watches one camera through a bridge as a viewer (werift, no browser) for a while and prints one JSON
 * line: what arrived (packets, bytes, keyframes per track) and the first-frame timeline. Exit 0 only if video with a
 * keyframe arrived. Logs go to stderr through pino.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { createLogger } from '../log.ts';
import { nodeConnector } from '../client/node-connector.ts';
import { assertValidId, assertValidRoot } from '../protocol/topics.ts';
import { NodeViewer } from '../viewer/node-viewer.ts';
import type { CliIo } from './main.ts';

const USAGE = `usage: tali watch --device ID [options]

Watches a camera through a tali bridge as a viewer, then prints one JSON line: packets, bytes and keyframes received,
and the timeline (ms): watchSent, waiting, answer, connected, firstRtp, firstFrame (first video keyframe).

  --url URL          broker URL: mqtt://, mqtts://, ws:// or wss:// (default mqtt://127.0.0.1:1883)
  --user USER        viewer or admin user name (default admin)
  --password SECRET  its password (default: $TALI_PASSWORD, better: other users can read arguments with ps)
  --device ID        the camera to watch (required)
  --duration S       how long to watch, in seconds (default 10)
  --root ROOT        topic root (default tali)
  --no-audio         offer video only
  --ca FILE          PEM CA certificate to trust for mqtts:// and wss://
  --insecure         do not verify the broker's TLS certificate (testing only)
  --log-level LEVEL  fatal, error, warn, info, debug, trace or silent (default warn)
  -h, --help         show this help
`;

const OPTIONS = {
  url: { type: 'string', default: 'mqtt://127.0.0.1:1883' },
  user: { type: 'string', default: 'admin' },
  password: { type: 'string' },
  device: { type: 'string' },
  duration: { type: 'string', default: '10' },
  root: { type: 'string', default: 'tali' },
  'no-audio': { type: 'boolean', default: false },
  ca: { type: 'string' },
  insecure: { type: 'boolean', default: false },
  'log-level': { type: 'string', default: 'warn' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

export interface WatchIo extends CliIo {
  env?: Record<string, string | undefined>;
}

export async function runWatch(argv: string[], io: WatchIo): Promise<number> {
  let values;
  try {
    values = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }).values;
  } catch (err) {
    io.stderr.write(`tali watch: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  const password = values.password ?? (io.env ?? process.env).TALI_PASSWORD;
  const durationS = Number(values.duration);
  try {
    if (values.device === undefined) throw new TypeError('--device is required');
    assertValidId(values.device, 'device ID');
    assertValidId(values.user, 'user name');
    assertValidRoot(values.root);
    if (password === undefined) throw new TypeError('give --password or set TALI_PASSWORD');
    if (!(durationS > 0 && durationS <= 86_400)) throw new TypeError('--duration must be a number of seconds in (0, 86400]');
    nodeConnector(values.url); // throws for a bad URL or scheme, before anything connects
  } catch (err) {
    io.stderr.write(`tali watch: ${(err as Error).message}\n`);
    return 2;
  }
  const log = createLogger(values['log-level'], { write: (line: string) => void io.stderr.write(line) }).child({ component: 'watch' });
  if (values.insecure) log.warn('--insecure: the broker certificate is not verified');
  const tls = { ca: values.ca ? await readFile(values.ca) : undefined, rejectUnauthorized: !values.insecure };
  const viewer = new NodeViewer({ url: values.url, user: values.user, password, deviceId: values.device, root: values.root, tls, audio: !values['no-audio'] });
  viewer.client.on('disconnected', (err) => err && log.warn({ err: err.message }, 'disconnected'));
  viewer.client.on('reconnecting', ({ attempt, delayMs }) => log.info({ attempt, delayMs, url: values.url }, 'broker unreachable: retrying'));
  viewer.client.on('protocolError', (err, topic) => log.warn({ topic, code: err.code, err: err.message }, 'undecodable message'));

  let timer: ReturnType<typeof setTimeout> | undefined;
  let onSignal = () => {};
  const stop = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, durationS * 1000);
    onSignal = resolve;
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
  let exitCode = 0;
  try {
    // An unreachable broker is retried until the duration is up or a signal comes: start() alone would wait forever.
    const started = viewer.start();
    started.catch(() => {}); // it may reject after the stop request (viewer.stop() below); the race reports the rest
    const watch = await Promise.race([started, stop.then(() => undefined)]);
    if (watch === undefined) {
      log.error({ url: values.url }, 'could not connect to the broker before the stop request (duration or signal)');
      exitCode = 1;
    } else {
      watch.on('state', (state) => log.info({ state }, 'watch state'));
      watch.on('stream', (state) => log.info({ stream: state }, 'camera stream'));
      watch.on('error', (m) => log.warn({ code: m.code, message: m.message }, 'bridge error'));
      watch.on('retry', (r) => log.info(r, 'watching again'));
      await stop;
    }
  } catch (err) {
    log.error({ err: (err as Error).message }, 'watch failed');
    exitCode = 1;
  } finally {
    clearTimeout(timer);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  const summary = viewer.summary();
  await viewer.stop();
  io.stdout.write(`${JSON.stringify({ url: values.url, ...summary })}\n`);
  const video = summary.tracks.find((t) => t.kind === 'video');
  return exitCode === 0 && video !== undefined && video.packets > 0 && video.keyframes > 0 ? 0 : 1;
}
