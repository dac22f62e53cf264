/**
 * A hostile-input flood run in its own process (so the bridge's memory is measured alone): random bytes, silent
 * connections, half CONNECTs, truncated frames and packets announcing 200 MB that then stream, over TCP and
 * WebSocket, from several loopback addresses at once.
 *
 *   node test/helpers/flood-client.ts MQTT_URL WS_URL SECONDS CONCURRENCY
 *
 * Prints one JSON line with how many connections it opened.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { WebSocket } from 'ws';
import { connectPacket, varint } from './raw-mqtt.ts';

const [mqttUrl = '', wsUrl = '', secondsArg = '5', concurrencyArg = '20'] = process.argv.slice(2);
const deadline = Date.now() + Number(secondsArg) * 1000;
const mqtt = new URL(mqttUrl);
let opened = 0;
const rnd = (n: number) => Math.floor(Math.random() * n);

interface Pipe {
  write(b: Buffer): boolean;
  close(): void;
  closed: Promise<void>;
}

function open(ws: boolean, from: string): Promise<Pipe | undefined> {
  return new Promise((resolve) => {
    if (ws) {
      const s = new WebSocket(wsUrl, ['mqtt'], { localAddress: from });
      s.on('error', () => resolve(undefined));
      s.once('open', () => {
        opened++;
        resolve({ write: (b) => (s.send(b), s.bufferedAmount < 1 << 20), close: () => s.terminate(), closed: new Promise((r) => s.once('close', () => r())) });
      });
      return;
    }
    const s = connect({ host: mqtt.hostname, port: Number(mqtt.port), localAddress: from });
    s.on('error', () => resolve(undefined));
    s.once('connect', () => {
      opened++;
      resolve({ write: (b) => s.write(b), close: () => s.destroy(), closed: new Promise((r) => s.once('close', () => r())) });
    });
  });
}

const wait = (p: Pipe, ms: number) => Promise.race([p.closed, new Promise((r) => setTimeout(r, ms))]);

const ATTACKS = [
  async (p: Pipe) => void p.write(randomBytes(1 + rnd(8192))),
  async (p: Pipe) => void (await wait(p, 3000)),
  async (p: Pipe) => {
    const c = connectPacket({ clientId: `p${rnd(1e6)}` });
    p.write(c.subarray(0, 1 + rnd(c.length - 1)));
    await wait(p, 3000);
  },
  async (p: Pipe) => {
    // A frame cut short: a PUBLISH header announcing more than follows, after a CONNECT nobody can log in with.
    p.write(connectPacket({ clientId: `t${rnd(1e6)}`, username: 'nobody', password: 'x' }));
    p.write(Buffer.concat([Buffer.from([0x30]), varint(5000), randomBytes(rnd(4000))]));
    await wait(p, 1000);
  },
  async (p: Pipe) => {
    p.write(Buffer.concat([Buffer.from([0x10]), varint(200 * 1024 * 1024)]));
    const chunk = randomBytes(64 * 1024);
    let open_ = true;
    void p.closed.then(() => (open_ = false));
    while (open_ && Date.now() < deadline) if (!p.write(chunk)) await wait(p, 5);
  },
];

async function actor(i: number): Promise<void> {
  const from = `127.0.0.${2 + (i % 16)}`;
  for (let n = 0; Date.now() < deadline; n++) {
    const p = await open((i + n) % 2 === 1, from);
    if (p === undefined) {
      await new Promise((r) => setTimeout(r, 20));
      continue;
    }
    await (ATTACKS[(i + n) % ATTACKS.length] as (p: Pipe) => Promise<void>)(p).catch(() => {});
    p.close();
  }
}

await Promise.all(Array.from({ length: Number(concurrencyArg) }, (_, i) => actor(i)));
process.stdout.write(`${JSON.stringify({ opened })}\n`);
process.exit(0);
