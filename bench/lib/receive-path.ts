/**
 * The receive path of one camera session with no viewer, measured without the noise of a second process: a werift
 * camera in this process streams a clip to a real bridge (MQTT signaling, answerer, relay, fleet, metrics, as
 * deployed) as fast as the event loop lets it; the SRTP datagrams the bridge's ICE connection delivered are recorded,
 * then delivered again through the same connection, many times, and the CPU per packet is taken. What it covers:
 * everything from werift's ICE connection (`onData`) to the last of tali's listeners (SRTP decrypt, RTP parse,
 * werift's receiver and its statistics, NACK bookkeeping, tali's session, keyframe detection, fleet and metrics);
 * not the UDP socket (see the floor in ./floor.ts for that).
 *
 * `node bench/lib/receive-path.ts [--profile FILE]` prints µs per packet (and writes a .cpuprofile of the replay).
 */
import { writeFile } from 'node:fs/promises';
import { Session as InspectorSession } from 'node:inspector/promises';
import { RTCPeerConnection } from 'werift';
import { createVideoPacketizer, loadVideoClip } from '../../devices/camera/media/video-source.ts';
import { startBenchBridge } from './bridge.ts';
import { createCameraPeer, sessionId, upMessage } from './camera.ts';
import { makeClip } from './clip.ts';
import { connectMqtt } from '../../src/mqtt/connect.ts';
import { Topics } from '../../src/protocol/topics.ts';
import { floorPasses } from './floor.ts';
import { withTimeout } from './util.ts';

interface IceConnectionLike {
  onData: { execute(data: Buffer): void; subscribe(fn: (data: Buffer) => void): { unSubscribe(): void } };
}

export interface ReceivePathResult {
  /** CPU per replayed packet, µs (median of the passes). */
  usPerPacket: number;
  packets: number;
  passes: number;
  /** Bytes per datagram, mean. */
  bytesPerPacket: number;
  /** werift's SrtpSession.decrypt alone on the same packets, µs. */
  srtpDecryptUs: number;
  /** The floor (./floor.ts), one pass after each replay pass in this process, µs (median). */
  floorUs: number;
  /** Median over the passes of replay ÷ the floor pass right after it: the ratio least moved by a machine whose load changes. */
  ratioToFloor: number;
}

const isRtp = (d: Buffer) => d.length > 12 && (d[0]! & 0xc0) === 0x80 && !(d[1]! >= 192 && d[1]! <= 223);

/** Longest run of recorded packets whose sequence numbers do not wrap (replaying across a wrap moves SRTP's ROC). */
function noWrap(packets: Buffer[]): Buffer[] {
  let best: Buffer[] = [];
  let run: Buffer[] = [];
  let last = -1;
  for (const p of packets) {
    const seq = p.readUInt16BE(2);
    if (last !== -1 && seq < last) {
      if (run.length > best.length) best = run;
      run = [];
    }
    run.push(p);
    last = seq;
  }
  return run.length > best.length ? run : best;
}

export async function measureReceivePath(
  options: { packets?: number; passes?: number; profile?: string; bridgeConfig?: Record<string, unknown> } = {},
): Promise<ReceivePathResult> {
  const want = options.packets ?? 3000;
  const passes = options.passes ?? 5;
  const clip = await makeClip(1000, 150);
  const bb = await startBenchBridge({ allowAnonymous: true, ...options.bridgeConfig });
  // The bridge's peer connection, caught as it applies the camera's offer (bench only: nothing in tali exposes it).
  let bridgePc: RTCPeerConnection | undefined;
  const original = RTCPeerConnection.prototype.setRemoteDescription;
  RTCPeerConnection.prototype.setRemoteDescription = function (this: RTCPeerConnection, ...args: Parameters<typeof original>) {
    bridgePc ??= this;
    return original.apply(this, args);
  };
  const camera = await createCameraPeer();
  const topics = new Topics(bb.bridge.config.root);
  const deviceId = 'bench-receive';
  const client = await connectMqtt({ target: bb.bridge.mqttUrl, clientId: deviceId });
  try {
    await client.subscribeAsync(topics.device(deviceId, 'down'), { qos: 1 });
    const sid = sessionId();
    const answered = new Promise<string>((resolve) =>
      client.on('message', (_t, payload) => {
        const m = JSON.parse(payload.toString()) as { type: string; sessionId?: string; sdp?: string };
        if (m.type === 'answer' && m.sessionId === sid) resolve(m.sdp ?? '');
      }),
    );
    client.publish(topics.device(deviceId, 'up'), upMessage('offer', sid, 1, { sdp: camera.offerSdp }), { qos: 1 });
    await camera.applyAnswer(await withTimeout(answered, 20_000, 'answer'));
    await withTimeout(camera.connected, 20_000, 'camera connected');
    RTCPeerConnection.prototype.setRemoteDescription = original;
    const connection = (bridgePc as unknown as { iceTransports: { connection: IceConnectionLike }[] }).iceTransports[0]?.connection;
    if (connection === undefined) throw new Error('no ICE connection on the bridge peer');

    // Record: the clip, packetized, sent as fast as the loop drains it (in batches, so the socket buffers keep up).
    const recorded: Buffer[] = [];
    const tap = connection.onData.subscribe((data) => isRtp(data) && recorded.push(Buffer.from(data)));
    const { frames } = loadVideoClip('VP8', clip.path);
    const packetizer = createVideoPacketizer({ codec: 'VP8' });
    const sender = camera.pc.getTransceivers()[0]!.sender;
    for (let i = 0, ts = 0; recorded.length < want; i++, ts += 3000) {
      for (const packet of packetizer.packetize(frames[i % frames.length]!, ts)) await sender.sendRtp(packet);
      if (i % 4 === 3) await new Promise((resolve) => setTimeout(resolve, 2));
    }
    tap.unSubscribe();
    const replay = noWrap(recorded);

    // werift's SRTP layer alone, on the same packets (it keeps no replay state that would refuse them).
    const srtp = (bridgePc as unknown as { dtlsTransports: { srtp: { decrypt(b: Buffer): Buffer } }[] }).dtlsTransports[0]!.srtp;
    for (const p of replay) srtp.decrypt(p);
    const d0 = process.cpuUsage();
    for (let k = 0; k < passes; k++) for (const p of replay) srtp.decrypt(p);
    const decrypted = process.cpuUsage(d0);
    const srtpDecryptUs = (decrypted.user + decrypted.system) / replay.length / passes;

    // Replay, in chunks with a turn of the loop between them (microtasks and timers run, as they would live), each
    // pass followed by one of the floor's.
    const floorPass = floorPasses();
    const perPass: number[] = [];
    const floors: number[] = [];
    const ratios: number[] = [];
    const inspector = options.profile ? new InspectorSession() : undefined;
    if (inspector) {
      inspector.connect();
      await inspector.post('Profiler.enable');
      await inspector.post('Profiler.setSamplingInterval', { interval: 100 });
      await inspector.post('Profiler.start');
    }
    for (let pass = 0; pass < passes + 1; pass++) {
      const t0 = process.cpuUsage();
      for (let i = 0; i < replay.length; i += 200) {
        for (const packet of replay.slice(i, i + 200)) connection.onData.execute(packet);
        await new Promise((resolve) => setImmediate(resolve));
      }
      const used = process.cpuUsage(t0);
      const floorUs = floorPass();
      if (pass === 0) continue; // the first pass warms the JIT
      perPass.push((used.user + used.system) / replay.length);
      floors.push(floorUs);
      ratios.push(perPass.at(-1)! / floorUs);
    }
    if (inspector) {
      const { profile } = await inspector.post('Profiler.stop');
      inspector.disconnect();
      await writeFile(options.profile!, JSON.stringify(profile));
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    return {
      usPerPacket: median(perPass),
      floorUs: median(floors),
      ratioToFloor: median(ratios),
      packets: replay.length,
      passes,
      bytesPerPacket: replay.reduce((a, p) => a + p.length, 0) / replay.length,
      srtpDecryptUs,
    };
  } finally {
    RTCPeerConnection.prototype.setRemoteDescription = original;
    await client.endAsync().catch(() => {});
    await camera.stop();
    await bb.close();
    await clip.remove();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const at = process.argv.indexOf('--profile');
  const result = await measureReceivePath({ profile: at > 0 ? process.argv[at + 1] : undefined });
  console.log(JSON.stringify(result));
  process.exit(0);
}
