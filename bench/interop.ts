/**
 * 7. Interoperability: how fast each kind of viewer sees its first picture, and how camera sessions fare on a lossy
 * link.
 *
 * Time to first frame per peer stack: one live camera (tali's simulated camera, VP8, in-process); viewers of three
 * WebRTC stacks watch it in turn on loopback: werift (tali's Node viewer: watch published → first video keyframe
 * complete, what a decoder needs), aiortc (test/interop/viewer.py, Debian's python3-aiortc: watch published → first
 * decoded frame) and Chromium (a plain page, no tali code: bench/lib/plain-viewer.js; watch published → first frame
 * presented, requestVideoFrameCallback). Each round is a new MQTT connection and session; the interval between them
 * is the viewer's own setup, not measured.
 *
 * Lossy link: werift cameras (the device SDK) and aiortc cameras (test/interop/camera.py) in a network namespace behind a user-space link (test/netlink) with
 * 20 ms delay each way and 0, 5 or 15 % loss each way; the bridge here. One offer per trial; success = the bridge
 * saw media within 15 s of the offer AND the camera connected too; a one-sided session (one side DTLS-connected, the
 * other not) counts separately. Needs root (namespaces, TUN).
 */
import { SimulatedCamera } from '../devices/camera/simulated-camera.ts';
import { nodeConnector } from '../src/client/node-connector.ts';
import { NodeViewer } from '../src/viewer/node-viewer.ts';
import { createBridge } from '../test/helpers/bridge.ts';
import { NetHost, netHostUnavailable } from '../test/netlink/netns.ts';
import { cameraTrials, oneSided, streamed } from '../test/netlink/trials.ts';
import { aiortcUnavailable, PYTHON } from '../test/interop/python.ts';
import { startBenchBridge, withoutClientLimits } from './lib/bridge.ts';
import type { BenchTable } from './lib/report.ts';
import { percentile, summarize } from './lib/stats.ts';
import { withTimeout } from './lib/util.ts';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const ms = (x: number) => (Number.isFinite(x) ? `${Math.round(x)}` : '–');

export type Stack = 'werift' | 'aiortc' | 'Chromium';

export async function runPeerStacks(options: { rounds: number; stacks?: readonly Stack[] }): Promise<BenchTable> {
  const wanted = new Set(options.stacks ?? ['werift', 'aiortc', 'Chromium']);
  const bb = await startBenchBridge(withoutClientLimits());
  const notes: string[] = [];
  const samples: Record<Stack, number[]> = { werift: [], aiortc: [], Chromium: [] };
  const failures: Record<Stack, number> = { werift: 0, aiortc: 0, Chromium: 0 };
  const camera = new SimulatedCamera({
    deviceId: 'ttff-cam',
    secret: await bb.bridge.credentials.add('ttff-cam', 'device', { replace: true }),
    connect: nodeConnector(bb.bridge.mqttUrl),
    codec: 'VP8',
  });
  try {
    const live = new Promise<void>((resolve) => camera.keeper.once('session-connected', () => resolve()));
    await camera.start();
    await withTimeout(live, 15_000, 'the camera to connect');
    const secret = await bb.bridge.credentials.add('ttff', 'viewer', { replace: true });
    const args = { url: bb.bridge.mqttUrl, user: 'ttff', password: secret, deviceId: 'ttff-cam' };

    for (let i = 0; wanted.has('werift') && i < options.rounds; i++) {
      const viewer = new NodeViewer({ ...args, audio: false });
      try {
        const watch = await viewer.start();
        const t = await withTimeout(
          new Promise<number>((resolve) => watch.on('timeline', (tl) => tl.firstFrame !== undefined && resolve(tl.firstFrame))),
          15_000,
          'a werift keyframe',
        );
        samples.werift.push(t);
      } catch {
        failures.werift++;
      } finally {
        await viewer.stop();
      }
    }

    const noAiortc = aiortcUnavailable();
    if (noAiortc) notes.push(`aiortc skipped: ${noAiortc}`);
    else if (wanted.has('aiortc')) {
      for (let i = 0; i < options.rounds; i++) {
        const t = await aiortcFirstFrame(args).catch(() => undefined);
        if (t === undefined) failures.aiortc++;
        else samples.aiortc.push(t);
      }
    }

    const chromium = !wanted.has('Chromium') ? undefined : await chromiumFirstFrames(bb.bridge.wsUrl, args, options.rounds).catch((err: Error) => {
      notes.push(`Chromium skipped: ${err.message.split('\n')[0]}`);
      return undefined;
    });
    if (chromium) {
      samples.Chromium = chromium.samples;
      failures.Chromium = chromium.failures;
    }
  } finally {
    await camera.stop();
    await bb.close();
  }
  const rows = (Object.keys(samples) as Stack[]).map((stack) => {
    const s = summarize(samples[stack]);
    return [stack, `${s.n}/${s.n + failures[stack]}`, ms(s.p50), ms(percentile([...samples[stack]].sort((a, b) => a - b), 90)), ms(s.max)];
  });
  notes.push(
    'One live VP8 camera (tali simulated camera, in-process), viewers on loopback, one watch at a time. werift: watch published → first keyframe received whole; aiortc: → first decoded frame; Chromium (plain page, no tali code): → first frame presented. Goal ≤ 200 ms p50 each.',
  );
  return {
    id: 'interop',
    title: 'Time to first frame per peer stack',
    columns: ['viewer stack', 'ok', 'p50 ms', 'p90 ms', 'max ms'],
    rows,
    notes,
    data: { samples, failures },
    charts: [{ title: 'watch → first frame', unit: 'ms', series: (Object.keys(samples) as Stack[]).map((label) => ({ label, samples: samples[label] })) }],
  };
}

async function aiortcFirstFrame(args: { url: string; user: string; password: string; deviceId: string }): Promise<number> {
  const script = fileURLToPath(new URL('../test/interop/viewer.py', import.meta.url));
  const child = spawn(PYTHON, ['-u', script, '--url', args.url, '--user', args.user, '--device', args.deviceId], {
    stdio: ['pipe', 'pipe', 'ignore'],
    env: { ...process.env, TALI_SECRET: args.password },
  });
  try {
    const frame = new Promise<number>((resolve, reject) => {
      createInterface({ input: child.stdout }).on('line', (line) => {
        const e = JSON.parse(line) as { event: string; ms?: number };
        if (e.event === 'frame') resolve(e.ms as number);
      });
      child.once('exit', () => reject(new Error('viewer.py exited')));
    });
    return await withTimeout(frame, 20_000, 'an aiortc frame');
  } finally {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.stdin.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  }
}

async function chromiumFirstFrames(
  wsUrl: string,
  args: { user: string; password: string; deviceId: string },
  rounds: number,
): Promise<{ samples: number[]; failures: number }> {
  const { launch } = await import('../test/e2e/browser.ts');
  const browser = await launch({ candidates: 'raw-ip' });
  const samples: number[] = [];
  let failures = 0;
  try {
    const page = await browser.context.newPage();
    // The page must come from the bridge's origin: /mqtt refuses WebSockets from other origins (allowedOrigins).
    await page.goto(wsUrl.replace(/^ws/, 'http').replace(/\/mqtt$/, '/healthz'));
    await page.setContent('<!doctype html><title>plain viewer</title><body></body>');
    await page.addScriptTag({ content: await readFile(fileURLToPath(new URL('../node_modules/mqtt/dist/mqtt.min.js', import.meta.url)), 'utf8') });
    await page.addScriptTag({ content: await readFile(fileURLToPath(new URL('./lib/plain-viewer.js', import.meta.url)), 'utf8') });
    for (let i = 0; i < rounds; i++) {
      const result = await withTimeout(
        page.evaluate((a) => (globalThis as unknown as { watchOnce: (a: unknown) => Promise<{ firstFrameMs: number }> }).watchOnce(a), {
          url: wsUrl,
          user: args.user,
          password: args.password,
          root: 'tali',
          deviceId: args.deviceId,
        }),
        20_000,
        'a Chromium frame',
      ).catch(() => undefined);
      if (result) samples.push(result.firstFrameMs);
      else failures++;
    }
  } finally {
    await browser.close();
  }
  return { samples, failures };
}

export async function runLossy(options: { trials: number; cameras: number; losses: number[]; stacks: ('werift' | 'aiortc')[] }): Promise<BenchTable> {
  const why = netHostUnavailable();
  const columns = ['camera', 'loss each way', 'offers', 'streaming ≤ 15 s', 'rate', 'p50 ms', 'p90 ms', 'one-sided'];
  if (why) return { id: 'lossy', title: 'Camera sessions on a lossy link', columns, rows: [], notes: [`skipped: ${why}`] };
  const host = await NetHost.create();
  const tb = await createBridge({ host: host.gateway, logLevel: 'warn' });
  const rows: string[][] = [];
  const data: Record<string, unknown> = {};
  try {
    const noAiortc = aiortcUnavailable();
    const stacks = options.stacks.filter((stack) => stack !== 'aiortc' || noAiortc === undefined);
    for (const stack of stacks) for (const loss of options.losses) {
      await host.shape('both', { loss, delayMs: 20 });
      const trials = await cameraTrials(host, tb.bridge, {
        cameras: options.cameras,
        trialsPerCamera: Math.ceil(options.trials / options.cameras),
        idPrefix: `${stack}${Math.round(loss * 100)}x`,
        stack,
      });
      const ok = trials.filter((t) => streamed(t));
      const times = ok.map((t) => t.bridge.streaming as number).sort((a, b) => a - b);
      rows.push([
        stack,
        `${Math.round(loss * 100)} %`,
        String(trials.length),
        String(ok.length),
        `${((100 * ok.length) / Math.max(1, trials.length)).toFixed(1)} %`,
        ms(percentile(times, 50)),
        ms(percentile(times, 90)),
        String(trials.filter(oneSided).length),
      ]);
      data[`${stack} ${loss}`] = trials;
    }
  } finally {
    await tb.close();
    await host.close();
  }
  return {
    id: 'lossy',
    title: 'Camera sessions on a lossy link',
    columns,
    rows,
    notes: [
      `Cameras in a network namespace, ${options.cameras} at a time, one offer per trial: werift (the device SDK) and aiortc (test/interop/camera.py, OpenSSL DTLS: first retransmission after 1 s, doubling). The link (test/netlink: TUN + user-space forwarder) adds 20 ms and the loss each way. Time to streaming: offer received → first RTP at the bridge. Goal at 15 %: ≥ 95 % within 15 s, no one-sided session.`,
    ],
    data,
  };
}
