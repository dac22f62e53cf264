/**
 * bridge → aiortc viewer: a viewer written in Python on Debian's aiortc from docs/protocol.md §16 alone
 * (./viewer.py) watches cameras through a real bridge and decodes their video: tali's simulated camera (VP8 and
 * PCMU) and the aiortc camera (H264, no audio: the viewer must not ask for audio, aiortc would refuse the answer).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SimulatedCamera } from '../../devices/camera/simulated-camera.ts';
import { nodeConnector } from '../../src/client/node-connector.ts';
import { createBridge, type TestBridge } from '../helpers/bridge.ts';
import { describeWithAiortc, PythonPeer } from './python.ts';
import { onTestFinished } from 'vitest';

describeWithAiortc('bridge → aiortc viewer', () => {
  let tb: TestBridge & { close: () => Promise<void> };
  let viewerSecret: string;
  beforeAll(async () => {
    tb = await createBridge();
    viewerSecret = await tb.bridge.credentials.add('alice', 'viewer', { replace: true });
  });
  afterAll(() => tb?.close());

  function watch(device: string, args: string[] = []): PythonPeer {
    return new PythonPeer('viewer.py', ['--url', tb.bridge.mqttUrl, '--user', 'alice', '--device', device, ...args], viewerSecret);
  }

  it.each(['VP8', 'H264'] as const)("watches tali's simulated camera (%s + PCMU) and decodes its video", async (codec) => {
    const id = `sim-${codec.toLowerCase()}`;
    const camera = new SimulatedCamera({
      deviceId: id,
      secret: await tb.bridge.credentials.add(id, 'device', { replace: true }),
      connect: nodeConnector(tb.bridge.mqttUrl),
      codec,
      audio: 'PCMU',
    });
    onTestFinished(() => camera.stop());
    await camera.start();
    const viewer = watch(id, ['--audio']);
    expect((await viewer.on('watch')).audio).toBe(true);
    const answer = await viewer.on('answer');
    expect(answer.seq).toBeGreaterThanOrEqual(1); // a `stream` may come first: §16 says so
    await viewer.on('stream', { state: 'live' });
    const frame = await viewer.on('frame');
    expect(frame).toMatchObject({ width: 320, height: 240 });
    await viewer.on('track', { kind: 'audio' });
    await viewer.on('frames', { count: 10 }); // it keeps decoding
  });

  it('watches the aiortc camera (H264, no audio), trickling, without asking for audio', async () => {
    const secret = await tb.bridge.credentials.add('py-cam', 'device', { replace: true });
    const camera = new PythonPeer('camera.py', ['--url', tb.bridge.mqttUrl, '--id', 'py-cam', '--video', 'h264', '--audio', 'none'], secret);
    await camera.on('connected');
    const viewer = watch('py-cam', ['--audio', '--trickle']);
    expect(await viewer.on('watch')).toMatchObject({ audio: false, trickle: true });
    await viewer.on('answer');
    expect(await viewer.on('frame')).toMatchObject({ width: 320, height: 240 });
  });
});
