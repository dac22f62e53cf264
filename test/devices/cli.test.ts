/**
 * `tali camera` (runCamera) against a real bridge: a timed run registers the device by itself, connects, streams and
 * prints exactly one JSON summary line; usage errors and refused credentials fail with a message.
 */
import { createServer, type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { runCamera } from '../../devices/camera/cli.ts';
import type { CameraSummary } from '../../devices/camera/simulated-camera.ts';
import { startBridge, TRANSPORTS } from '../helpers/bridge.ts';
import { until } from '../helpers/wait.ts';

function captureIo() {
  const out = { stdout: '', stderr: '' };
  return {
    out,
    io: {
      stdout: { write: (text: string) => void (out.stdout += text) },
      stderr: { write: (text: string) => void (out.stderr += text) },
      env: {}, // no TALI_DEVICE_SECRET from the environment running the tests
    },
  };
}

describe.each(TRANSPORTS)('tali camera over %s', (transport) => {
  it('registers itself, streams for --duration 2 and prints one JSON summary line', async () => {
    // A bridge as `tali start` runs it: its media threads started with it. Each run's camera may go to another
    // thread, and a thread's boot (~1 s under load) is not what --duration 1 is there to cover.
    const tb = await startBridge({ mediaWorkersPrestart: true });
    const { out, io } = captureIo();
    const argv = ['--url', tb.urlFor(transport), '--id', 'cam7', '--data-dir', tb.dataDir, '--codec', 'h264', '--duration', '2'];

    const code = await runCamera(argv, io);

    expect(code, out.stderr).toBe(0);
    const lines = out.stdout.split('\n').filter((line) => line !== '');
    expect(lines).toHaveLength(1);
    const summary = JSON.parse(lines[0] as string) as CameraSummary;
    expect(summary).toMatchObject({ deviceId: 'cam7', codec: 'H264', audio: 'PCMU', sessionsConnected: 1 });
    expect(summary.lastSession?.timeline.connected).toBeGreaterThan(0);
    expect(summary.lastSession?.closeReason).toBe('stopped');
    expect(summary.packetsSent).toBeGreaterThan(0);
    expect(summary.audioPacketsSent).toBeGreaterThan(0);
    const logs = out.stderr.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as { msg: string });
    expect(logs.some((l) => l.msg.includes('registered device "cam7" in'))).toBe(true);
    const registered = await tb.bridge.credentials.get('cam7');
    expect(registered).toMatchObject({ role: 'device' });
    // Run again: the kept secret, not a new one. Stopped as SIGINT stops it once the bridge has its media, not at a
    // fixed --duration: what is checked here is the secret, not how fast a loaded machine connects.
    const again = captureIo();
    const stop = new AbortController();
    let ended = false;
    const second = runCamera([...argv.slice(0, -2), '--log-level', 'info'], { ...again.io, signal: stop.signal }).finally(() => (ended = true));
    const streaming = () => tb.bridge.answerer.sessions.get('cam7')?.state === 'streaming';
    await until(() => ended || streaming(), 20_000, 'the second run to stream');
    expect(streaming(), again.out.stderr).toBe(true);
    stop.abort();
    expect(await second, again.out.stderr).toBe(0);
    expect(again.out.stderr).toContain('registered by an earlier tali camera');
    expect((await tb.bridge.credentials.get('cam7'))?.created).toBe(registered?.created);
  });

  it('exits 1 with a clear message when the broker refuses the secret', async () => {
    const tb = await startBridge();
    const { out, io } = captureIo();
    const argv = ['--url', tb.urlFor(transport), '--secret', 'wrong', '--duration', '5', '--log-level', 'error'];

    expect(await runCamera(argv, io)).toBe(1);
    expect(out.stderr).toContain('bad device ID or secret');
    expect(JSON.parse(out.stdout)).toMatchObject({ deviceId: 'cam1', sessionsConnected: 0 });
  });
});

describe('tali camera without --secret for a device registered otherwise', () => {
  it('never re-keys it: a clear TALI_ERR_IDENTITY_EXISTS, and the real secret keeps working', async () => {
    const tb = await startBridge();
    const secret = await tb.bridge.credentials.add('cam8', 'device'); // tali device add, or the dashboard
    const { out, io } = captureIo();
    const code = await runCamera(['--url', tb.bridge.mqttUrl, '--id', 'cam8', '--data-dir', tb.dataDir, '--duration', '2'], io);
    expect(code).toBe(1);
    expect(out.stderr).toMatch(/^tali camera: TALI_ERR_IDENTITY_EXISTS: "cam8" is registered already .*--secret/m);
    expect(out.stdout).toBe('');
    expect(await tb.bridge.credentials.verify('cam8', Buffer.from(secret))).toBeDefined();
  });
});

describe('tali camera without a broker', () => {
  it('keeps retrying until --duration is up, then exits 1 with a summary', async () => {
    // A port that was free a moment ago: connections to it are refused.
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    const { out, io } = captureIo();

    const argv = ['--url', `mqtt://127.0.0.1:${port}`, '--secret', 'whatever', '--duration', '1', '--log-level', 'silent'];
    expect(await runCamera(argv, io)).toBe(1);
    expect(JSON.parse(out.stdout)).toMatchObject({ sessionsOpened: 0, packetsSent: 0 });
  });
});

describe('tali camera usage', () => {
  it.each([
    [['--codec', 'vp9'], '--codec must be vp8 or h264'],
    [['--audio', 'opus'], '--audio must be none, pcmu or pcma'],
    [['--duration', '0'], '--duration must be'],
    [['--url', 'http://localhost'], 'unsupported MQTT URL'],
    [['--url', 'localhost:1883'], 'unsupported MQTT URL'],
    [['--root', 'a/+/b'], 'invalid topic root'],
    [['--id', 'a/b'], 'invalid device ID'],
    [['--frobnicate'], "Unknown option '--frobnicate'"],
  ])('%j is refused with exit code 2', async (argv, message) => {
    const { out, io } = captureIo();
    expect(await runCamera(argv, io)).toBe(2);
    expect(out.stderr).toContain(message);
  });

  it('--help prints the options', async () => {
    const { out, io } = captureIo();
    expect(await runCamera(['--help'], io)).toBe(0);
    expect(out.stdout).toContain('--duration S');
  });
});
