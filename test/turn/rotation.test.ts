/**
 * Rotating the TURN secret of a running `tali start`: the secret lives in its config file; the operator writes the
 * new one there and sends SIGHUP. Credentials minted from then on are signed with the new secret, the process and its
 * connections stay up, and the log never shows either secret.
 */
import { createHmac } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { connectMqtt } from '../../src/mqtt/connect.ts';
import { Topics } from '../../src/protocol/index.ts';
import { CredentialStore } from '../../src/security/credentials.ts';
import { startTali } from '../helpers/tali-process.ts';
import { Inbox } from '../helpers/wait.ts';

const OLD = 'rotation-old-secret';
const NEW = 'rotation-new-secret';

describe('tali start, TURN secret rotated with SIGHUP', () => {
  it('signs the next credentials with the secret now in the config file, without a restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tali-rotation-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'tali.json');
    // An address, not a name: no DNS lookup on this machine without a network (no TURN server answers there either).
    const config = (turnSecret: string) => JSON.stringify({ turnSecret, turnUrls: 'turn:127.0.0.1:9?transport=udp', dataDir: join(dir, 'data') });
    await writeFile(file, config(OLD));
    const tali = startTali(['--config', file, '--host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--log-level', 'debug']);
    // A process start: 3–5 s on a quiet machine, several times that when the machine's two cores are busy.
    const ready = await tali.log((r) => r.msg === 'tali ready', 'the ready line', 60_000);

    const secret = await new CredentialStore(join(dir, 'data')).add('cam1', 'device');
    const topics = new Topics();
    const device = await connectMqtt({ target: `mqtt://127.0.0.1:${ready.mqttPort}`, clientId: 'cam1', username: 'cam1', password: secret });
    onTestFinished(() => device.endAsync(true));
    const down = new Inbox(device);
    await device.subscribeAsync(topics.device('cam1', 'down'), { qos: 1 });
    const online = () => device.publishAsync(topics.device('cam1', 'status'), JSON.stringify({ v: 1, type: 'status', ts: Date.now(), state: 'online' }), { qos: 1, retain: true });
    const signedWith = async (key: string) => {
      await online();
      const message = (await down.next((m) => m.type === 'ice-servers')) as { iceServers: { username: string; credential: string }[] };
      const [server] = message.iceServers;
      expect(server?.credential).toBe(createHmac('sha1', key).update(server!.username).digest('base64'));
    };

    await signedWith(OLD);
    await writeFile(file, config(NEW));
    tali.child.kill('SIGHUP');
    await tali.log((r) => r.msg === 'TURN secret rotated: credentials minted from now on use the new one', 'the rotation');
    await signedWith(NEW);
    expect(device.connected).toBe(true);
    expect(tali.child.exitCode).toBeNull();
    const text = JSON.stringify(tali.logs);
    for (const s of [OLD, NEW]) expect(text).not.toContain(s);
  });
});
