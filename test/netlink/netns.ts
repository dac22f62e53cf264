/**
 * A network host for tests on a bad link, without touching the host's loopback or its other interfaces: a network
 * namespace whose only way out is a point-to-point link to the host's namespace, carried by a user-space forwarder
 * (./forwarder.py) that drops and delays packets each way. The kernel here has no netem.
 *
 *     namespace "<prefix>-<pid>-<n>"                 host namespace (the bridge under test listens here)
 *     ┌──────────────────────────┐                   ┌──────────────────────────────┐
 *     │ lo, <tun>i  address ─────┼── forwarder.py ───┼── <tun>o  (no address)        │
 *     │ default route via it     │  up ↑   ↓ down    │ route to address via it      │
 *     └──────────────────────────┘  loss, delay each │ gateway: the host's own IPv4 │
 *                                                    └──────────────────────────────┘
 *
 * The host's end of the link has no address, and must not: every WebRTC peer on the host (werift, Chromium) gathers
 * a host candidate on each address of each interface, so an address here would become the selected pair of other
 * tests' sessions, running at the same time, between two peers that are both on the host — and their media would
 * stop the moment this host closes and the address goes (seen as "connected, but no video" in full suites). The
 * namespace reaches the host at the host's own address instead (`gateway`: the address of the interface of its
 * default route), whose packets go out through its default route, this link.
 *
 * Usage:
 *   const host = await NetHost.create();            // skip with netHostUnavailable() when not root
 *   onTestFinished(() => host.close());
 *   await host.shape('both', { loss: 0.15, delayMs: 20 });
 *   const child = host.spawn('/usr/bin/python3', ['camera.py', ...]);   // runs inside the namespace
 *   // reach the host's services at host.gateway; the host reaches the namespace at host.address
 *
 * Names carry a prefix (default: this work tree's folder name, so several engineers' runs never collide), the PID
 * and a counter; namespaces left behind by a dead process with the same prefix are removed on the next create().
 * Several hosts may exist at once; each has its own address in 100.64.0.0/10 (RFC 6598), picked at random among those
 * not yet in use on this machine.
 */
import { execFile, spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const FORWARDER = join(dirname(fileURLToPath(import.meta.url)), 'forwarder.py');
const PYTHON = '/usr/bin/python3';

export type Direction = 'up' | 'down' | 'both';
export interface Shape {
  /** Probability 0…1 that a packet is dropped. */
  loss?: number;
  /** Milliseconds added to every packet (one delay per direction keeps the order). */
  delayMs?: number;
}
export interface DirectionStats {
  packets: number;
  dropped: number;
  /** Dropped by a dropNext() rule. */
  matched: number;
  /** Dropped by the allowOnly() firewall. */
  blocked: number;
  /** Packets seen per watch() name. */
  watched: Record<string, number>;
  /** Per SSRC (decimal), once accountRtp() was asked for this direction. */
  rtp?: Record<string, RtpCounts>;
}

/** What the link did to one RTP stream (SRTP leaves the header in the clear, RFC 3711 §3.1). */
export interface RtpCounts {
  packets: number;
  /** Copies dropped by random loss (shape()). */
  dropped: number;
  /** Sequence numbers whose first copy was dropped. */
  lost: number;
  /** Copies of a sequence number this SSRC already sent: resends in the original stream. */
  repeats: number;
  /** Lost sequence numbers that have since got through. */
  recovered: number;
  /** Repeats whose bytes differ from the first copy's (under SRTP the same packet at the same index is the same bytes). */
  altered: number;
}

/**
 * Patterns for dropNext() and watch(): DTLS 1.2 records (RFC 6347 §4.1: content type, version fefd, epoch, 6-byte
 * sequence number, length; then the handshake header, RFC 6347 §4.2.2, whose first byte is the message type).
 */
export const DTLS = {
  /** Any handshake message in a clear (epoch 0) record, by type: 1 ClientHello, 11 Certificate, 13 CertificateRequest… */
  handshake: (type: number) => `16fe..0000${'..'.repeat(8)}${type.toString(16).padStart(2, '0')}`,
  /** A handshake record of epoch 1: a Finished (the only encrypted handshake message). */
  finishedRecord: '16fefd0001',
} as const;

/** STUN messages (RFC 5389 §6: type, length, magic cookie 0x2112A442). */
export const STUN = {
  bindingRequest: '0001....2112a442',
  bindingResponse: '0101....2112a442',
} as const;

/**
 * RTCP under SRTCP: the first packet's header and sender SSRC stay in the clear (RFC 3711 §3.4). A compound packet
 * that starts with a Generic NACK (RFC 4585 §6.2.1: V=2, no padding, FMT 1; PT 205, RTPFB), as aiortc sends them.
 */
export const RTCP = {
  genericNack: '81cd',
} as const;

/** Why network namespaces cannot be used here (not root, no TUN, no ip), or undefined when they can. */
export function netHostUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces and TUN devices)';
  const ip = spawnSync('ip', ['netns', 'list']);
  if (ip.status !== 0) return 'needs iproute2 (`ip netns`): apt-get install -y iproute2';
  const py = spawnSync(PYTHON, ['-c', 'import fcntl; open("/dev/net/tun", "rb")']);
  if (py.status !== 0) return `needs ${PYTHON} and /dev/net/tun`;
  return undefined;
}

let counter = 0;
const defaultPrefix = basename(process.cwd()).replace(/[^a-z0-9]/gi, '').slice(0, 7).toLowerCase() || 'tali';

export class NetHost {
  /** The network namespace's name (for `ip netns exec`). */
  readonly name: string;
  /** This host's address, inside the namespace. */
  readonly address: string;
  /** What the namespace reaches the host's services at: the host's own IPv4 address (see above), not the link's. */
  readonly gateway: string;
  readonly #forwarder: ChildProcess;
  readonly #replies: ((line: string) => void)[] = [];
  readonly #children = new Set<ChildProcess>();
  #closed: Promise<void> | undefined;

  private constructor(name: string, address: string, gateway: string, forwarder: ChildProcess) {
    this.name = name;
    this.address = address;
    this.gateway = gateway;
    this.#forwarder = forwarder;
    const lines = createInterface({ input: forwarder.stdout! });
    lines.on('line', (line) => this.#replies.shift()?.(line));
  }

  /** Creates the namespace, its link and forwarder (no loss, no delay yet). Call close() when done. */
  static async create(options: { prefix?: string } = {}): Promise<NetHost> {
    const prefix = (options.prefix ?? defaultPrefix).slice(0, 7);
    await removeStale(prefix);
    const n = counter++;
    const name = `${prefix}-${process.pid}-${n}`;
    // IFNAMSIZ is 16 with the NUL: prefix (≤ 7) + pid and counter in base 36 (≤ 6) + side.
    const tun = `${prefix}${(process.pid % 36 ** 4).toString(36)}${(n % 36 ** 2).toString(36)}`.slice(0, 14);
    const [gateway, address] = await Promise.all([hostAddress(), freeAddress()]);
    const forwarder = spawn(PYTHON, [FORWARDER, `${tun}i`, `${tun}o`], { stdio: ['pipe', 'pipe', 'inherit'] });
    const host = new NetHost(name, address, gateway, forwarder);
    try {
      const ready = await host.#reply();
      if (!('ready' in ready)) throw new Error(`forwarder did not start: ${JSON.stringify(ready)}`);
      await ip('netns', 'add', name);
      await ip('link', 'set', `${tun}i`, 'netns', name);
      await ip('-n', name, 'addr', 'add', `${address}/32`, 'dev', `${tun}i`);
      await ip('-n', name, 'link', 'set', `${tun}i`, 'up');
      await ip('-n', name, 'link', 'set', 'lo', 'up');
      await ip('-n', name, 'route', 'add', 'default', 'dev', `${tun}i`);
      // A route, not an address: replies to the namespace leave from the host's own address (see above).
      await ip('link', 'set', `${tun}o`, 'addrgenmode', 'none'); // nor an IPv6 link-local one
      await ip('link', 'set', `${tun}o`, 'up');
      await ip('route', 'add', `${address}/32`, 'dev', `${tun}o`);
    } catch (err) {
      await host.close();
      throw err;
    }
    return host;
  }

  /** Sets loss and/or delay on one direction or both ("up": namespace → host, "down": host → namespace). */
  async shape(direction: Direction, shape: Shape): Promise<void> {
    for (const dir of direction === 'both' ? (['up', 'down'] as const) : [direction]) {
      await this.#command({ cmd: 'shape', dir, ...shape });
    }
  }

  /**
   * Drops the next `count` (default 1) UDP packets going `direction` whose payload starts with `pattern`: hex bytes,
   * ".." for any byte. A lost packet at an exact point of a handshake, e.g. DTLS.finishedRecord.
   */
  async dropNext(direction: 'up' | 'down', pattern: string, count = 1): Promise<void> {
    await this.#command({ cmd: 'drop', dir: direction, pattern, count });
  }

  /** Counts the UDP packets going `direction` that match `pattern` (as in dropNext), under `name` in stats(). */
  async watch(direction: 'up' | 'down', pattern: string, name: string): Promise<void> {
    await this.#command({ cmd: 'watch', dir: direction, pattern, name });
  }

  /** From now on counts the RTP packets going `direction` per SSRC: stats()[direction].rtp. */
  async accountRtp(direction: 'up' | 'down'): Promise<void> {
    await this.#command({ cmd: 'rtp', dir: direction });
  }

  /**
   * A firewall on the link: from now on the namespace reaches only these TCP/UDP endpoints of the host side (and hears
   * only from them); every other packet is dropped and counted as `blocked`. An empty list lifts it.
   */
  async allowOnly(endpoints: readonly { address: string; port: number }[]): Promise<void> {
    await this.#command({ cmd: 'allow', endpoints: endpoints.map((e) => [e.address, e.port]) });
  }

  /** Makes the loss pattern repeatable. */
  async seed(value: number): Promise<void> {
    await this.#command({ cmd: 'seed', value });
  }

  async stats(): Promise<{ up: DirectionStats; down: DirectionStats }> {
    return (await this.#command({ cmd: 'stats' })) as { up: DirectionStats; down: DirectionStats };
  }

  /** Starts a process inside the namespace (killed on close() if still running). */
  spawn(command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.name, command, ...args], options);
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
    return child;
  }

  /** Runs a command inside the namespace to completion. */
  async exec(command: string, args: readonly string[]): Promise<string> {
    return (await run('ip', ['netns', 'exec', this.name, command, ...args])).stdout;
  }

  /** Kills what runs inside, stops the forwarder (its TUN devices go with it), deletes the namespace. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      await Promise.all([...this.#children].map((child) => stop(child)));
      await stop(this.#forwarder);
      await ip('netns', 'del', this.name).catch(() => {});
    })();
    return this.#closed;
  }

  async #command(message: Record<string, unknown>): Promise<Record<string, unknown>> {
    const reply = this.#reply();
    this.#forwarder.stdin!.write(`${JSON.stringify(message)}\n`);
    const parsed = await reply;
    if ('error' in parsed) throw new Error(`forwarder: ${String(parsed.error)}`);
    return parsed;
  }

  #reply(): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const onExit = () => reject(new Error('forwarder exited'));
      this.#forwarder.once('exit', onExit);
      this.#replies.push((line) => {
        this.#forwarder.off('exit', onExit);
        resolve(JSON.parse(line) as Record<string, unknown>);
      });
    });
  }
}

async function ip(...args: string[]): Promise<void> {
  try {
    await run('ip', args);
  } catch (err) {
    throw new Error(`ip ${args.join(' ')}: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`);
  }
}

/** SIGTERM, then SIGKILL after 2 s; resolves once it has exited. */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.stdin?.end();
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
  await exited;
  clearTimeout(timer);
}

/**
 * The host's own IPv4 address, which the namespace reaches its services at: the first address of the interface of the
 * default route (where the host's WebRTC peers gather their host candidates), else any address of a non-loopback one.
 */
async function hostAddress(): Promise<string> {
  const dev = /\bdev (\S+)/.exec((await run('ip', ['-4', '-o', 'route', 'show', 'default'])).stdout)?.[1];
  const shown = (await run('ip', ['-4', '-o', 'addr', 'show', ...(dev ? ['dev', dev] : []), 'scope', 'global'])).stdout;
  const found = /\binet (\d+\.\d+\.\d+\.\d+)/.exec(shown)?.[1];
  if (found === undefined) throw new Error('no IPv4 address on this machine for a network namespace to reach it at');
  return found;
}

/** An address in 100.64.0.0/10 (RFC 6598) that no interface nor route of this machine uses, for a namespace. */
async function freeAddress(): Promise<string> {
  const shown = (await run('ip', ['-4', '-o', 'addr'])).stdout + (await run('ip', ['-4', '-o', 'route'])).stdout;
  const used = new Set(shown.split(/[\s/]+/));
  for (;;) {
    const address = `100.${64 + Math.floor(Math.random() * 64)}.${Math.floor(Math.random() * 256)}.${1 + Math.floor(Math.random() * 254)}`;
    if (!used.has(address)) return address;
  }
}

/** Deletes namespaces `<prefix>-<pid>-<n>` whose process is gone (a test run that was killed). */
async function removeStale(prefix: string): Promise<void> {
  const list = (await run('ip', ['netns', 'list'])).stdout;
  for (const m of list.matchAll(new RegExp(`^(${prefix}-(\\d+)-\\d+)`, 'gm'))) {
    const pid = Number(m[2]);
    if (pid === process.pid || alive(pid)) continue;
    await ip('netns', 'del', m[1] as string).catch(() => {});
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
