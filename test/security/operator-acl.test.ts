/**
 * The operator's rule file (aclFile, Mosquitto acl_file syntax): parsing, and on a real bridge over TCP and
 * WebSocket: deny by default, grants for telemetry and commands beyond the protocol, `pattern` with %u and %c, a
 * generic MQTT client using a configured topic space, no line that widens tali's own rules (the protocol root,
 * `$SYS`), reload on change (a bad edit keeps the previous rules), and a broken file stopping the start.
 */
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { Bridge } from '../../src/bridge.ts';
import { AclSyntaxError, OperatorAcl } from '../../src/security/operator-acl.ts';
import { captureLogger, startBridge, TRANSPORTS, type TestBridge } from '../helpers/bridge.ts';
import { publishPacket, TYPE } from '../helpers/raw-mqtt.ts';
import { RawSession } from '../helpers/raw-session.ts';

describe('OperatorAcl.parse and allows', () => {
  const acl = OperatorAcl.parse(
    [
      '# anonymous clients',
      'topic read public/#',
      '',
      'user cam1',
      'topic write telemetry/cam1/#',
      '  topic readwrite   commands/cam1',
      'topic deny telemetry/cam1/secret',
      'topic spaces in/a topic',
      'user alice',
      'topic read telemetry/#',
      'pattern write devices/%u/out',
      'pattern read clients/%c/in',
    ].join('\n'),
  );
  const cam1 = { username: 'cam1', clientId: 'cam1' };
  const alice = { username: 'alice', clientId: 'alice:tab' };
  const anonymous = { username: undefined, clientId: 'x' };

  it.each([
    [cam1, 'write', 'telemetry/cam1/temp', true],
    [cam1, 'read', 'telemetry/cam1/temp', false],
    [cam1, 'write', 'telemetry/cam1/secret', false],
    [cam1, 'read', 'commands/cam1', true],
    [cam1, 'write', 'commands/cam1', true],
    [cam1, 'write', 'spaces in/a topic', true],
    [cam1, 'write', 'devices/cam1/out', true],
    [cam1, 'write', 'devices/alice/out', false],
    [cam1, 'read', 'public/x', false],
    [alice, 'read', 'telemetry/#', true],
    [alice, 'read', '#', false],
    [alice, 'read', 'clients/alice:tab/in', true],
    [alice, 'read', 'clients/cam1/in', false],
    [anonymous, 'read', 'public/a/b', true],
    [anonymous, 'write', 'public/a/b', false],
    [anonymous, 'write', 'devices//out', false],
  ] as const)('%o %s %s: %s', (subject, access, topic, expected) => {
    expect(acl.allows(subject, access, topic)).toBe(expected);
  });

  it('refuses a line it does not understand, naming the line', () => {
    expect(() => OperatorAcl.parse('user cam1\ntopic read a/b\nallow all', 'rules.acl')).toThrow(new AclSyntaxError('rules.acl', 3, 'unknown line "allow all"'));
    expect(() => OperatorAcl.parse('topic', 'rules.acl')).toThrow(/rules\.acl:1: `topic` without a topic/);
    expect(() => OperatorAcl.parse('user', 'rules.acl')).toThrow(/rules\.acl:1: `user` without a name/);
  });
});

const RULES = [
  'user cam1',
  'topic write telemetry/cam1/#',
  'topic read commands/cam1',
  // Attempts to widen tali's own rules: none of them may take effect.
  'topic readwrite tali/#',
  'topic write $SYS/#',
  'pattern readwrite tali/v1/device/%u/down',
  'user alice',
  'topic read telemetry/#',
  'topic write commands/#',
  'topic read #',
  'user tester',
  'topic readwrite test/#',
].join('\n');

async function withRules(text: string): Promise<{ tb: TestBridge; file: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'tali-acl-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'rules.acl');
  await writeFile(file, text);
  return { tb: await startBridge({ aclFile: file }), file };
}

const secrets = new WeakMap<TestBridge, Map<string, string>>();

async function login(tb: TestBridge, transport: 'mqtt' | 'ws', id: string, role: 'device' | 'viewer', clientId = id): Promise<RawSession> {
  const known = secrets.get(tb) ?? new Map<string, string>();
  secrets.set(tb, known);
  const password = known.get(id) ?? (await tb.bridge.credentials.add(id, role));
  known.set(id, password);
  const { session, connack } = await RawSession.connect(tb.urlFor(transport), { clientId, username: id, password });
  expect(connack.returnCode).toBe(0);
  return session;
}

describe.each(TRANSPORTS)('the operator rule file over %s', (transport) => {
  it('grants telemetry and commands beyond the protocol, deny by default, retained messages included', async () => {
    const { tb } = await withRules(RULES);
    const cam = await login(tb, transport, 'cam1', 'device');
    const alice = await login(tb, transport, 'alice', 'viewer', 'alice:dash');
    expect(await alice.subscribe([['telemetry/#', 1]])).toEqual([1]);
    expect(await cam.subscribe([['commands/cam1', 1], ['commands/cam2', 1], ['telemetry/cam1/#', 1]])).toEqual([1, 0x80, 0x80]);
    cam.conn.write(publishPacket('telemetry/cam1/temp', '21.5', { qos: 1, retain: true, id: 5 }));
    await cam.conn.next(TYPE.PUBACK);
    expect((await alice.until('telemetry/cam1/temp', '21.5'))[0]).toMatchObject({ qos: 1, retain: false });
    alice.conn.write(publishPacket('commands/cam1', 'reboot', { qos: 1, id: 6 }));
    expect((await cam.until('commands/cam1', 'reboot')).map((p) => p.topic)).toEqual(['commands/cam1']);
    // A later subscriber gets the retained reading.
    const late = await login(tb, transport, 'alice', 'viewer', 'alice:late');
    await late.subscribe([['telemetry/+/temp', 0]]);
    expect((await late.until('telemetry/cam1/temp', '21.5'))[0]).toMatchObject({ retain: true, qos: 0 });
    // Not granted: a device publishing outside its lines is disconnected, as for any forbidden publish.
    cam.conn.write(publishPacket('telemetry/cam2/temp', '0', { qos: 1, id: 7 }));
    await cam.conn.expectClosed();
  });

  it('no line widens tali’s rules: the protocol root and $SYS stay as tali decides, a `read #` delivers nothing of the protocol', async () => {
    const { tb } = await withRules(RULES);
    const t = tb.bridge.topics;
    const alice = await login(tb, transport, 'alice', 'viewer', 'alice:dash');
    expect(await alice.subscribe([[t.allDevices('down'), 1], ['tali/#', 1], ['#', 1]])).toEqual([0x80, 0x80, 1]);
    await tb.bridge.broker.publish({ topic: t.device('cam2', 'down'), payload: 'secret offer', qos: 1, retain: false });
    await tb.bridge.broker.publish({ topic: t.viewer('bob', 'bob', 'down'), payload: 'for bob', qos: 1, retain: false });
    await tb.bridge.broker.publish({ topic: 'telemetry/cam9/x', payload: 'sentinel', qos: 1, retain: false });
    // What `#` brought: the bridge card (a viewer's right anyway) and the telemetry; nothing of cam2's or bob's.
    const got = (await alice.until('telemetry/cam9/x', 'sentinel')).map((p) => p.topic);
    expect(got.filter((topic) => topic !== t.bridge(tb.bridge.config.bridgeId))).toEqual(['telemetry/cam9/x']);
    for (const [topic, what] of [
      [t.device('cam1', 'down'), 'its own down topic (the bridge’s voice)'],
      [t.device('cam2', 'up'), 'another device’s topic'],
      ['$SYS/tali/x', '$SYS'],
    ] as const) {
      const cam = await login(tb, transport, 'cam1', 'device');
      cam.conn.write(publishPacket(topic, '{}', { qos: 1, id: 9 }));
      await cam.conn.expectClosed().catch(() => {
        throw new Error(`the file let cam1 publish to ${what}`);
      });
    }
  });

  it('a generic MQTT client uses its configured topic space: QoS 0 and 1, retained, wildcards, its own client ID suffixes', async () => {
    const { tb } = await withRules(RULES);
    const a = await login(tb, transport, 'tester', 'viewer', 'tester:a');
    const b = await login(tb, transport, 'tester', 'viewer', 'tester:b');
    expect(await b.subscribe([['test/+/x', 1], ['test/#', 0]])).toEqual([1, 0]);
    a.conn.write(publishPacket('test/1/x', 'one', { qos: 1, id: 1 }));
    await a.conn.next(TYPE.PUBACK);
    expect((await b.until('test/1/x', 'one')).map((p) => [p.topic, p.qos])).toEqual([['test/1/x', 1]]);
    a.conn.write(publishPacket('test/2/y', 'two', { qos: 0, retain: true }));
    expect((await b.until('test/2/y', 'two')).map((p) => [p.topic, p.qos])).toEqual([['test/2/y', 0]]);
    expect(await a.subscribe([['other/#', 0]])).toEqual([0x80]);
  });

  it('is reloaded when it changes; a bad edit keeps the rules in force and is logged', async () => {
    const { tb, file } = await withRules('user cam1\ntopic write telemetry/cam1/#\n');
    const aclFile = tb.bridge.embedded!.aclFile!;
    // Replaced as editors and config tools do: a new file renamed over the old one.
    await writeFile(`${file}.new`, 'user cam1\ntopic write metrics/cam1\n');
    await rename(`${file}.new`, file);
    await aclFile.reload();
    const cam = await login(tb, transport, 'cam1', 'device');
    cam.conn.write(publishPacket('metrics/cam1', '1', { qos: 1, id: 1 }));
    await cam.conn.next(TYPE.PUBACK);
    cam.conn.write(publishPacket('telemetry/cam1/t', '1', { qos: 1, id: 2 }));
    await cam.conn.expectClosed();
    await writeFile(file, 'user cam1\nallow everything\n');
    await aclFile.reload();
    expect(tb.logs.filter((l) => l.event === 'acl_invalid').at(-1)).toMatchObject({ err: expect.stringContaining(':2: unknown line') });
    const again = await login(tb, transport, 'cam1', 'device');
    again.conn.write(publishPacket('metrics/cam1', '2', { qos: 1, id: 3 }));
    await again.conn.next(TYPE.PUBACK);
  });
});

it('a file tali cannot read or parse stops the start with TALI_ERR_ACL_FILE', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tali-acl-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'bad.acl'), 'user cam1\ntopic\n');
  for (const aclFile of [join(dir, 'bad.acl'), join(dir, 'missing.acl')]) {
    const started = Bridge.start({ config: { host: '127.0.0.1', mqttPort: 0, httpPort: 0, dataDir: join(dir, 'data'), aclFile }, logger: captureLogger([]) });
    await expect(started).rejects.toMatchObject({ code: 'TALI_ERR_ACL_FILE' });
  }
});
