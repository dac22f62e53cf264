/**
 * `tali check-device --device ID`: checks a device's firmware against the protocol, live, against a running bridge
 * with an admin's login (src/check/checker.ts). Progress goes to stderr, the report to stdout (text, or JSON with
 * --json). Exit 0 when no rule failed, 1 when one did, 2 for a usage error, 3 when the check could not run or the
 * device never connected.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { ACTIVE_STEPS, checkDevice, type ActiveStep } from '../check/checker.ts';
import { formatReport } from '../check/report.ts';
import { nodeConnector } from '../client/node-connector.ts';
import { assertValidId, assertValidRoot } from '../protocol/topics.ts';
import type { WatchIo } from './watch.ts';

const USAGE = `usage: tali check-device --device ID [options]

Checks a device (camera firmware) against the tali protocol, live, on a running bridge: watches it connect and
negotiate, has the bridge end its session (bye "normal", "timeout", "ice-failed") and watches it as a viewer (start,
keyframe requests), then reports each rule with its section of docs/protocol.md. A device that is connected already
is disconnected first (the bridge drops its connection), to watch it connect. Needs an admin login.

  --device ID            the device to check (required)
  --url URL              the bridge's MQTT URL: mqtt://, mqtts://, ws://, wss:// (default mqtt://127.0.0.1:1883)
  --http URL             the bridge's HTTP(S) URL, for the admin actions (default: http://<host of --url>:8080)
  --user USER            an admin user (default admin)
  --password SECRET      its password (default: $TALI_PASSWORD, better: other users can read arguments with ps)
  --root ROOT            topic root (default tali)
  --passive              only observe: drop no connection, end no session, watch nothing
  --steps LIST           the active steps to run, comma-separated, of start, keyframe, timeout, ice-failed
                         (default all, in that order)
  --wait-connect S       how long to wait for the device to connect (default 60)
  --wait-disconnect S    at the end, wait this long for the device to be stopped, to check that it says bye and
                         goes offline before DISCONNECT (default 0: not checked)
  --keyframe-ms MS       a keyframe must follow a keyframe request within this (default 500)
  --reoffer-s S          after bye "timeout"/"ice-failed" a new offer must come within this (default 35)
  --min-backoff-ms MS    a re-offer sooner than this after bye "timeout"/"ice-failed" has no backoff (default 400)
  --idle-s S             after bye "normal", how long the device must stay idle before it is watched (default 3)
  --max-age-ms MS        the bridge's maxAgeMs: the accepted clock difference (default 60000)
  --json                 print the report as JSON
  --ca FILE              PEM CA certificate to trust for mqtts:// and wss://
  --insecure             do not verify the broker's TLS certificate (testing only)
  -h, --help             show this help

Exit status: 0 no rule failed (some may not have been observed), 1 a rule failed, 2 usage, 3 the check could not
run or the device did not connect.
`;

const OPTIONS = {
  device: { type: 'string' },
  url: { type: 'string', default: 'mqtt://127.0.0.1:1883' },
  http: { type: 'string' },
  user: { type: 'string', default: 'admin' },
  password: { type: 'string' },
  root: { type: 'string', default: 'tali' },
  passive: { type: 'boolean', default: false },
  steps: { type: 'string', default: ACTIVE_STEPS.join(',') },
  'wait-connect': { type: 'string', default: '60' },
  'wait-disconnect': { type: 'string', default: '0' },
  'keyframe-ms': { type: 'string', default: '500' },
  'reoffer-s': { type: 'string', default: '35' },
  'min-backoff-ms': { type: 'string', default: '400' },
  'idle-s': { type: 'string', default: '3' },
  'max-age-ms': { type: 'string', default: '60000' },
  json: { type: 'boolean', default: false },
  ca: { type: 'string' },
  insecure: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

export async function runCheckDevice(argv: string[], io: WatchIo): Promise<number> {
  let values;
  try {
    values = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }).values;
  } catch (err) {
    io.stderr.write(`tali check-device: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  const password = values.password ?? (io.env ?? process.env).TALI_PASSWORD;
  const number = (name: keyof typeof values, min: number, max: number): number => {
    const n = Number(values[name]);
    if (!(n >= min && n <= max)) throw new TypeError(`--${name} must be a number in [${min}, ${max}]`);
    return n;
  };
  let settings;
  try {
    if (values.device === undefined) throw new TypeError('--device is required');
    assertValidId(values.device, 'device ID');
    assertValidId(values.user, 'user name');
    assertValidRoot(values.root);
    if (password === undefined) throw new TypeError('give --password or set TALI_PASSWORD');
    nodeConnector(values.url); // throws for a bad URL or scheme, before anything connects
    const httpUrl = values.http ?? `http://${new URL(values.url).hostname}:8080`;
    if (!/^https?:$/.test(new URL(httpUrl).protocol)) throw new TypeError('--http must be an http:// or https:// URL');
    const steps = values.steps.split(',').filter((step) => step !== '');
    const unknown = steps.filter((step) => !(ACTIVE_STEPS as readonly string[]).includes(step));
    if (unknown.length > 0) throw new TypeError(`--steps: unknown ${unknown.join(', ')}; use ${ACTIVE_STEPS.join(', ')}`);
    settings = {
      httpUrl,
      steps: steps as ActiveStep[],
      connectTimeoutMs: number('wait-connect', 1, 86_400) * 1000,
      waitDisconnectMs: number('wait-disconnect', 0, 86_400) * 1000,
      keyframeWithinMs: number('keyframe-ms', 1, 60_000),
      reofferWithinMs: number('reoffer-s', 1, 3600) * 1000,
      minBackoffMs: number('min-backoff-ms', 0, 60_000),
      idleMs: number('idle-s', 0, 600) * 1000,
      maxAgeMs: number('max-age-ms', 0, 86_400_000),
    };
  } catch (err) {
    io.stderr.write(`tali check-device: ${(err as Error).message}\n`);
    return 2;
  }
  const tls = { ca: values.ca ? await readFile(values.ca) : undefined, rejectUnauthorized: !values.insecure };
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once('SIGINT', onSignal);
  try {
    const report = await checkDevice({
      ...settings,
      deviceId: values.device,
      url: values.url,
      user: values.user,
      password,
      root: values.root,
      tls,
      active: !values.passive,
      signal: abort.signal,
      onProgress: (step, message) => void io.stderr.write(`[${step}] ${message}\n`),
    });
    io.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
    return report.verdict === 'pass' ? 0 : report.verdict === 'fail' ? 1 : 3;
  } catch (err) {
    io.stderr.write(`tali check-device: the check could not run: ${(err as Error).message}\n`);
    return 3;
  } finally {
    process.off('SIGINT', onSignal);
  }
}
