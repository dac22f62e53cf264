/**
 * What plain Aedes 1.2, Mosquitto and tali do with the packets MQTT 3.1.1 says a server must refuse
 * (test/helpers/spec-cases.ts). Prints one row per case; docs/security.md's deviation list is written from it.
 *
 *   node_modules/.bin/node bench/mqtt-conformance.ts
 *
 * Each case sends a valid CONNECT first (when the case is not about CONNECT), then the defective bytes, then a
 * PINGREQ: a PINGRESP means the connection survived the defect.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Aedes } from 'aedes';
import { pino } from 'pino';
import { Bridge } from '../src/bridge.ts';
import { connectPacket, PINGREQ, RawConnection, TYPE } from '../test/helpers/raw-mqtt.ts';
import { SPEC_CASES, type Credentials, type SpecCase } from '../test/helpers/spec-cases.ts';

interface Target {
  name: string;
  url: string;
  creds: Credentials;
  stop: () => Promise<void>;
}

async function observe(url: string, c: Credentials, testCase: SpecCase): Promise<string> {
  const conn = await RawConnection.open(url);
  try {
    if (testCase.afterConnect) {
      conn.write(connectPacket({ clientId: c.clientId, username: c.username, password: c.password }));
      const ack = await conn.next(TYPE.CONNACK, 3000);
      if (ack.body[1] !== 0) return `setup CONNACK ${ack.body[1]}`;
    }
    conn.write(testCase.bytes(c));
    conn.write(PINGREQ);
    const outcome = await Promise.race([
      conn.closed.then(() => 'closed'),
      conn.next(TYPE.PINGRESP, 3000).then(
        () => 'open',
        () => 'no reply',
      ),
    ]);
    const connack = conn.packets.find((p) => p.type === TYPE.CONNACK);
    const suback = conn.packets.find((p) => p.type === TYPE.SUBACK);
    const notes = [outcome];
    if (connack) notes.push(`CONNACK ${connack.body[1]}`);
    if (suback) notes.push(`SUBACK ${[...suback.body.subarray(2)].map((b) => b.toString(16)).join(',')}`);
    return notes.join(', ');
  } catch (err) {
    return `error: ${(err as Error).message}`;
  } finally {
    conn.destroy();
  }
}

async function plainAedes(): Promise<Target> {
  const aedes = await Aedes.createBroker();
  const server = createServer(aedes.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    name: 'Aedes 1.2',
    url: `mqtt://127.0.0.1:${port}`,
    creds: { clientId: 'probe', topic: 'a/b', filter: 'a/b' },
    stop: () => new Promise((resolve) => server.close(() => aedes.close(() => resolve()))),
  };
}

async function mosquitto(): Promise<Target | undefined> {
  const dir = await mkdtemp(join(tmpdir(), 'tali-mosq-'));
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  await writeFile(join(dir, 'm.conf'), `listener ${port} 127.0.0.1\nallow_anonymous true\n`);
  const child = spawn('mosquitto', ['-c', join(dir, 'm.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  const started = await new Promise<boolean>((resolve) => {
    child.once('error', () => resolve(false));
    child.stderr.on('data', (d: Buffer) => d.toString().includes('running') && resolve(true));
    setTimeout(() => resolve(true), 1500);
  });
  if (!started) return undefined;
  return {
    name: 'Mosquitto',
    url: `mqtt://127.0.0.1:${port}`,
    creds: { clientId: 'probe', topic: 'a/b', filter: 'a/b' },
    stop: async () => {
      child.kill('SIGTERM');
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function tali(): Promise<Target> {
  const dataDir = await mkdtemp(join(tmpdir(), 'tali-probe-'));
  const bridge = await Bridge.start({
    config: { host: '127.0.0.1', mqttPort: 0, httpPort: 0, dataDir },
    logger: pino({ level: 'silent' }),
  });
  const password = await bridge.credentials.add('probe', 'device');
  return {
    name: 'tali',
    url: bridge.mqttUrl,
    creds: { clientId: 'probe', username: 'probe', password, topic: bridge.topics.device('probe', 'up'), filter: bridge.topics.device('probe', 'down') },
    stop: async () => {
      await bridge.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

const targets = [await plainAedes(), await mosquitto(), await tali()].filter((t): t is Target => t !== undefined);
const rows: string[][] = [];
for (const testCase of SPEC_CASES) {
  const row = [testCase.clause, testCase.name, testCase.expect.connack === undefined ? 'close' : `CONNACK ${testCase.expect.connack}, close`];
  for (const target of targets) row.push(await observe(target.url, target.creds, testCase));
  process.stderr.write(`${row.join(" | ")}\n`);
  rows.push(row);
}
for (const target of targets) await target.stop();
console.log(`| clause | packet | required | ${targets.map((t) => t.name).join(' | ')} |`);
console.log(`|---|---|---|${targets.map(() => '---').join('|')}|`);
for (const row of rows) console.log(`| ${row.join(' | ')} |`);
// Aedes keeps half-closed sockets referenced for a while after close(); a bench need not wait for them.
process.exit(0);
