/**
 * The second floor of the ingest table: what receiving a camera's packets costs a bare Node process WITH the UDP
 * socket, which no JavaScript bridge can avoid. A sender process sends SRTP-sized AES-128-GCM packets over loopback
 * at a given rate, in bursts every few milliseconds as cameras send their frames; a receiver process has one
 * `dgram` socket whose 'message' listener does only what ./floor.ts does per packet (parse the RTP header, decrypt
 * and verify). Its CPU per packet received (every thread, its idle CPU subtracted, as the bridge's "marginal") is
 * the floor: Node's dgram receive (one event-loop turn and one recvmsg per datagram), the parse, the decryption.
 *
 * One file, two roles (env BENCH_DGRAM_ROLE = send | receive), forked by measureDgramFloor().
 */
import { createSocket } from 'node:dgram';
import { createSecretKey, randomBytes } from 'node:crypto';
import { Child } from './child.ts';
import { makePackets, receive } from './floor.ts';
import { sleep } from './util.ts';

type Command = { cmd: 'bind' } | { cmd: 'usage' } | { cmd: 'send'; port: number; packetsPerSecond: number; ms: number };
type Event =
  | { type: 'bound'; port: number }
  | { type: 'usage'; cpuMs: number; wallMs: number; received: number }
  | { type: 'sent'; packets: number }
  | { type: 'error'; message: string };

export interface DgramFloorResult {
  /** Receiver CPU per datagram received, µs, its idle CPU subtracted. */
  usPerPacket: number;
  packetsPerSecond: number;
  received: number;
  sent: number;
}

/** Bursts this often: 16 cameras at 30 fps put about one frame's packets on the wire every 2 ms. */
const TICK_MS = 5;

export async function measureDgramFloor(options: { packetsPerSecond: number; ms: number; idleMs?: number }): Promise<DgramFloorResult> {
  const env = { ...process.env, BENCH_DGRAM_KEY: randomBytes(16).toString('hex'), BENCH_DGRAM_SALT: randomBytes(12).toString('hex') };
  const here = new URL(import.meta.url);
  const receiver = new Child<Command, Event>(here, { env: { ...env, BENCH_DGRAM_ROLE: 'receive' } });
  const sender = new Child<Command, Event>(here, { env: { ...env, BENCH_DGRAM_ROLE: 'send' } });
  try {
    receiver.send({ cmd: 'bind' });
    const { port } = await receiver.next('bound', 30_000);
    const usage = async () => (receiver.send({ cmd: 'usage' }), receiver.next('usage', 10_000));
    await usage();
    await sleep(options.idleMs ?? 1000);
    const idle = await usage();
    sender.send({ cmd: 'send', port, packetsPerSecond: options.packetsPerSecond, ms: options.ms });
    const { packets } = await sender.next('sent', options.ms + 30_000);
    await sleep(50); // the last burst's datagrams are read
    const busy = await usage();
    const marginalMs = busy.cpuMs - (idle.cpuMs / idle.wallMs) * busy.wallMs;
    return { usPerPacket: (marginalMs * 1000) / busy.received, packetsPerSecond: (busy.received * 1000) / busy.wallMs, received: busy.received, sent: packets };
  } finally {
    await Promise.all([receiver.close(), sender.close()]);
  }
}

function child(role: string): void {
  const key = Buffer.from(process.env.BENCH_DGRAM_KEY ?? '', 'hex');
  const salt = Buffer.from(process.env.BENCH_DGRAM_SALT ?? '', 'hex');
  const send = (e: Event) => process.send?.(e);
  const socket = createSocket('udp4');
  process.on('disconnect', () => (socket.close(), process.exit(0)));
  let received = 0;
  let sink = 0;
  let lastCpu = process.cpuUsage();
  let lastWall = performance.now();
  // ~1 100-byte payloads as the clip's packets (made before the receiver's window opens).
  const packets = role === 'send' ? makePackets(2000, 1100, key, salt).map((p) => p.data) : [];
  if (role === 'receive') {
    const keyObject = createSecretKey(key);
    socket.on('message', (packet) => {
      sink += receive(packet, keyObject, salt);
      received++;
    });
  }
  process.on('message', (m: Command) => {
    if (m.cmd === 'bind') socket.bind(0, '127.0.0.1', () => send({ type: 'bound', port: socket.address().port }));
    else if (m.cmd === 'usage') {
      const cpu = process.cpuUsage(lastCpu);
      const now = performance.now();
      send({ type: 'usage', cpuMs: (cpu.user + cpu.system) / 1000 + (sink < 0 ? 1 : 0), wallMs: now - lastWall, received });
      [lastCpu, lastWall, received] = [process.cpuUsage(), now, 0];
    } else if (m.cmd === 'send') {
      const start = performance.now();
      let sent = 0;
      const tick = setInterval(() => {
        const elapsed = performance.now() - start;
        const due = Math.min(Math.floor((elapsed * m.packetsPerSecond) / 1000), Math.floor((m.ms * m.packetsPerSecond) / 1000));
        for (; sent < due; sent++) socket.send(packets[sent % packets.length]!, m.port, '127.0.0.1');
        if (elapsed >= m.ms) {
          clearInterval(tick);
          send({ type: 'sent', packets: sent });
        }
      }, TICK_MS);
    }
  });
}

if (process.env.BENCH_DGRAM_ROLE) child(process.env.BENCH_DGRAM_ROLE);
