/**
 * The second floor of the ingest table: what receiving a camera's packets costs a bare Node process WITH UDP
 * sockets, which no JavaScript bridge can avoid. A sender process sends SRTP-sized AES-128-GCM packets over loopback
 * shaped as the bench's cameras send theirs: each camera a burst of one frame's packets every 1/fps s, the cameras'
 * phases spread over the frame interval, each camera to its own socket of the receiver (werift binds one ICE socket
 * per peer connection, so the bridge wakes once per camera frame, not once per few milliseconds for everyone). The
 * receiver's 'message' listeners do only what ./floor.ts does per packet (parse the RTP header, decrypt and verify).
 * Its CPU per datagram received, minus its idle CPU, is the floor: Node's dgram receive (one event-loop turn and one
 * recvmsg per datagram, one epoll wake-up per burst), the parse, the decryption.
 *
 * Both processes live for the whole ingest run (DgramFloor.start … close), so that the bench can alternate windows
 * of the bridge and windows of this floor at every level instead of measuring the floor once the bridge is gone.
 *
 * One file, two roles (env BENCH_DGRAM_ROLE = send | receive).
 */
import { createSocket, type Socket } from 'node:dgram';
import { createSecretKey, randomBytes } from 'node:crypto';
import { Child } from './child.ts';
import { makePackets, receive } from './floor.ts';

type Command =
  | { cmd: 'bind'; sockets: number }
  | { cmd: 'usage' }
  | { cmd: 'send'; ports: number[]; cameras: number; packetsPerSecond: number; fps: number; ms: number };
type Event =
  | { type: 'bound'; ports: number[] }
  | { type: 'usage'; cpuMs: number; systemMs: number; mainCpuMs: number; wallMs: number; received: number }
  | { type: 'sent'; packets: number }
  | { type: 'error'; message: string };

export interface DgramUsage {
  cpuMs: number;
  /** Of which in the kernel. */
  systemMs: number;
  /** Of which on the main (event-loop) thread. */
  mainCpuMs: number;
  wallMs: number;
  received: number;
}

/** A receiver with one socket per camera and a sender shaped as the cameras, both child processes. */
export class DgramFloor {
  readonly #receiver: Child<Command, Event>;
  readonly #sender: Child<Command, Event>;
  #ports: number[] = [];

  private constructor() {
    const env = { ...process.env, BENCH_DGRAM_KEY: randomBytes(16).toString('hex'), BENCH_DGRAM_SALT: randomBytes(12).toString('hex') };
    const here = new URL(import.meta.url);
    this.#receiver = new Child<Command, Event>(here, { env: { ...env, BENCH_DGRAM_ROLE: 'receive' } });
    this.#sender = new Child<Command, Event>(here, { env: { ...env, BENCH_DGRAM_ROLE: 'send' } });
  }

  static start(): DgramFloor {
    return new DgramFloor();
  }

  /** The receiver has at least `n` sockets (one per camera of the level). */
  async sockets(n: number): Promise<void> {
    if (n <= this.#ports.length) return;
    this.#receiver.send({ cmd: 'bind', sockets: n - this.#ports.length });
    this.#ports.push(...(await this.#receiver.next('bound', 30_000)).ports);
  }

  /** The receiver's CPU, wall time and datagrams since the last call (the counters restart). */
  async usage(): Promise<DgramUsage> {
    this.#receiver.send({ cmd: 'usage' });
    const { cpuMs, systemMs, mainCpuMs, wallMs, received } = await this.#receiver.next('usage', 10_000);
    return { cpuMs, systemMs, mainCpuMs, wallMs, received };
  }

  /** `cameras` cameras of `packetsPerSecond` each at `fps` frames a second, for `ms`; resolves with packets sent. */
  async send(options: { cameras: number; packetsPerSecond: number; fps: number; ms: number }): Promise<number> {
    await this.sockets(options.cameras);
    this.#sender.send({ cmd: 'send', ports: this.#ports, ...options });
    return (await this.#sender.next('sent', options.ms + 30_000)).packets;
  }

  async close(): Promise<void> {
    await Promise.all([this.#receiver.close(), this.#sender.close()]);
  }
}

function child(role: string): void {
  const key = Buffer.from(process.env.BENCH_DGRAM_KEY ?? '', 'hex');
  const salt = Buffer.from(process.env.BENCH_DGRAM_SALT ?? '', 'hex');
  const send = (e: Event) => process.send?.(e);
  const sockets: Socket[] = [];
  process.on('disconnect', () => {
    for (const s of sockets) s.close();
    process.exit(0);
  });
  let received = 0;
  let sink = 0;
  let lastCpu = process.cpuUsage();
  let lastMainCpu = process.threadCpuUsage();
  let lastWall = performance.now();
  // ~1 100-byte payloads as the clip's packets (made before any window opens).
  const packets = role === 'send' ? makePackets(2000, 1100, key, salt).map((p) => p.data) : [];
  const keyObject = createSecretKey(key);
  const out = createSocket('udp4');
  sockets.push(out);
  const onMessage = (packet: Buffer) => {
    sink += receive(packet, keyObject, salt);
    received++;
  };
  const bind = async (n: number): Promise<number[]> =>
    Promise.all(
      Array.from({ length: n }, () => {
        const socket = createSocket('udp4');
        sockets.push(socket);
        socket.on('message', onMessage);
        return new Promise<number>((resolve) => socket.bind(0, '127.0.0.1', () => resolve(socket.address().port)));
      }),
    );
  process.on('message', (m: Command) => {
    if (m.cmd === 'bind') void bind(m.sockets).then((ports) => send({ type: 'bound', ports }));
    else if (m.cmd === 'usage') {
      const cpu = process.cpuUsage(lastCpu);
      const main = process.threadCpuUsage(lastMainCpu);
      const now = performance.now();
      send({ type: 'usage', cpuMs: (cpu.user + cpu.system) / 1000 + (sink < 0 ? 1 : 0), systemMs: cpu.system / 1000, mainCpuMs: (main.user + main.system) / 1000, wallMs: now - lastWall, received });
      [lastCpu, lastMainCpu, lastWall, received] = [process.cpuUsage(), process.threadCpuUsage(), now, 0];
    } else if (m.cmd === 'send') {
      // Camera c sends frame f at phase(c) + f / fps: the packets of frames 0…f are round((f + 1) · perFrame) in all.
      const frameMs = 1000 / m.fps;
      const perFrame = m.packetsPerSecond / m.fps;
      const phase = Array.from({ length: m.cameras }, (_, c) => (c * frameMs) / m.cameras);
      const framesSent = new Array<number>(m.cameras).fill(0);
      const start = performance.now();
      let sent = 0;
      const tick = () => {
        const elapsed = Math.min(performance.now() - start, m.ms);
        for (let c = 0; c < m.cameras; c++) {
          const due = elapsed < phase[c]! ? 0 : Math.floor((elapsed - phase[c]!) / frameMs) + 1;
          const port = m.ports[c]!;
          for (let f = framesSent[c]!; f < due; f++) {
            const n = Math.round((f + 1) * perFrame) - Math.round(f * perFrame);
            for (let k = 0; k < n; k++) out.send(packets[sent++ % packets.length]!, port, '127.0.0.1');
          }
          framesSent[c] = due;
        }
        if (elapsed >= m.ms) send({ type: 'sent', packets: sent });
        else setTimeout(tick, 1);
      };
      tick();
    }
  });
}

if (process.env.BENCH_DGRAM_ROLE) child(process.env.BENCH_DGRAM_ROLE);
