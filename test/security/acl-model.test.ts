/**
 * Model-based fuzzing (fast-check) of the broker's access rules across sessions, over TCP and WebSocket: random
 * sequences of CONNECT (CleanSession 0 and 1), SUBSCRIBE (any filter, wildcards included), PUBLISH (allowed and
 * forbidden), DISCONNECT or a dropped connection, re-keying the camera and removing and re-adding the user, from
 * an attacker holding one camera identity (cam1) and one viewer token scoped to cam1, while the bridge and another
 * camera publish everywhere. The property: nothing outside the attacker's rights is ever delivered to it, live,
 * retained, or out of a stored session after any reconnect.
 *
 * Each run starts without stored sessions and ends by flushing: both attackers resume their sessions, and once a
 * sentinel arrived and their stored queues are empty, everything the broker would deliver has been delivered and
 * checked.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { covers } from '../../src/security/access.ts';
import { TokenSigner } from '../../src/security/tokens.ts';
import { createBridge, TRANSPORTS, type TestBridge } from '../helpers/bridge.ts';
import { connectRawDevice, type RawDevice } from '../helpers/raw-device.ts';
import { publishPacket } from '../helpers/raw-mqtt.ts';
import { RawSession, type ReceivedPublish } from '../helpers/raw-session.ts';
import { eventually } from '../helpers/wait.ts';

type Who = 'cam' | 'viewer';
const WHO: Who[] = ['cam', 'viewer'];

interface Real {
  tb: TestBridge;
  transport: 'mqtt' | 'ws';
  cam2: RawDevice;
  secret: string;
  session: Partial<Record<Who, RawSession>>;
  /** Every PUBLISH each attacker received, over all its connections. */
  received: Record<Who, ReceivedPublish[]>;
  sentinels: number;
}

const CLIENT_ID: Record<Who, string> = { cam: 'cam1', viewer: 'alice:t1' };

function rights(tb: TestBridge, who: Who): string[] {
  const t = tb.bridge.topics;
  return who === 'cam'
    ? [t.device('cam1', 'down'), t.allBridges()]
    : [t.viewer('alice', CLIENT_ID.viewer, 'down'), t.device('cam1', 'status'), t.device('cam1', 'metrics'), t.allBridges()];
}

/** The topic each attacker's own sentinel goes to: one it may read. */
function ownTopic(tb: TestBridge, who: Who): string {
  return rights(tb, who)[0] as string;
}

function forbidden(real: Real): string[] {
  const out: string[] = [];
  for (const who of WHO) {
    const allowed = rights(real.tb, who);
    for (const p of real.received[who]) if (!allowed.some((pattern) => covers(pattern, p.topic))) out.push(`${who} got ${p.topic}`);
  }
  return out;
}

function topicPool(tb: TestBridge): string[] {
  const t = tb.bridge.topics;
  return [
    t.device('cam1', 'down'),
    t.device('cam1', 'status'),
    t.device('cam1', 'up'),
    t.device('cam1', 'metrics'),
    t.device('cam2', 'down'),
    t.device('cam2', 'status'),
    t.device('cam2', 'up'),
    t.device('cam2', 'metrics'),
    t.viewer('alice', CLIENT_ID.viewer, 'down'),
    t.viewer('alice', CLIENT_ID.viewer, 'up'),
    t.viewer('alice', 'alice:t2', 'down'), // the same user's other connection (a password login, say)
    t.viewer('bob', 'bob', 'down'),
    t.bridge('b1'),
    'other/telemetry',
    '$SYS/tali/x',
  ];
}

const FILTERS = ['#', '+/#', 'tali/#', 'tali/v1/+/+/+', 'tali/v1/device/+/down', 'tali/v1/device/+/status', 'tali/v1/device/cam2/#', 'tali/v1/viewer/+/down', 'tali/v1/viewer/alice/+/down', 'tali/v1/+/+/+/+', '$SYS/#', 'other/#'];

async function login(real: Real, who: Who): Promise<{ username: string; password: string }> {
  if (who === 'cam') return { username: 'cam1', password: real.secret };
  const entry = await real.tb.bridge.credentials.get('alice');
  const now = Math.floor(Date.now() / 1000);
  const token = (await TokenSigner.open(real.tb.dataDir)).sign({ sub: 'alice', devices: ['cam1'], iat: now, exp: now + 600, auth: now, cred: entry!.created });
  return { username: 'alice', password: token };
}

async function connect(real: Real, who: Who, clean: boolean): Promise<void> {
  real.session[who]?.conn.destroy();
  const fields = { clientId: CLIENT_ID[who], ...(await login(real, who)), clean };
  const { session, connack } = await RawSession.connect(real.tb.urlFor(real.transport), fields, { onPublish: (p) => real.received[who].push(p) });
  expect(connack.returnCode).toBe(0);
  real.session[who] = session;
}

function live(real: Real, who: Who): RawSession | undefined {
  const session = real.session[who];
  return session && !session.conn.isClosed ? session : undefined;
}

type Cmd = fc.AsyncCommand<object, Real>;

/** The attacker's moves, each as likely as the others except the ones that build a stored session, which come twice. */
const commands = (pool: string[]): fc.Arbitrary<Cmd>[] => {
  const [connectCmd, subscribeCmd, worldPublish, ...rest] = moves(pool);
  return [connectCmd, connectCmd, subscribeCmd, subscribeCmd, worldPublish, worldPublish, ...rest] as fc.Arbitrary<Cmd>[];
};

const moves = (pool: string[]): fc.Arbitrary<Cmd>[] => [
  fc.record({ who: fc.constantFrom(...WHO), clean: fc.constantFrom(false, false, true) }).map(
    ({ who, clean }): Cmd => ({
      check: () => true,
      run: (_m, real) => connect(real, who, clean),
      toString: () => `connect(${who}, clean=${clean})`,
    }),
  ),
  // As an attacker would: its own topic (granted) with wider ones (refused) in the same SUBSCRIBE, mostly at QoS 1.
  fc.record({
    who: fc.constantFrom(...WHO),
    own: fc.boolean(),
    filters: fc.uniqueArray(fc.constantFrom(...FILTERS, ...pool), { minLength: 1, maxLength: 3 }),
    qos: fc.constantFrom(0, 1, 1),
  }).map(
    ({ who, own, filters, qos }): Cmd => ({
      check: () => true,
      run: async (_m, real) => {
        const all = own ? [ownTopic(real.tb, who), ...filters.filter((f) => f !== ownTopic(real.tb, who))] : filters;
        await live(real, who)?.subscribe(all.map((f) => [f, qos])).catch(() => {});
      },
      toString: () => `subscribe(${who}, ${own ? 'own topic + ' : ''}${filters.join(' ')}, qos ${qos})`,
    }),
  ),
  fc.record({ topic: fc.constantFrom(...pool), qos: fc.constantFrom(0, 1, 1) as fc.Arbitrary<0 | 1>, retain: fc.boolean() }).map(
    ({ topic, qos, retain }): Cmd => ({
      check: () => true,
      run: (_m, real) => real.tb.bridge.broker.publish({ topic, payload: `world ${topic}`, qos, retain }),
      toString: () => `bridge publishes ${topic} qos ${qos}${retain ? ' retained' : ''}`,
    }),
  ),
  fc.constantFrom<'status' | 'up'>('status', 'up').map(
    (channel): Cmd => ({
      check: () => true,
      run: async (_m, real) => {
        await real.cam2.client.publishAsync(real.tb.bridge.topics.device('cam2', channel), '{"v":1,"type":"status","state":"online"}', { qos: 1, retain: channel === 'status' });
      },
      toString: () => `cam2 publishes on its ${channel}`,
    }),
  ),
  fc.record({ who: fc.constantFrom(...WHO), topic: fc.constantFrom(...pool), retain: fc.boolean() }).map(
    ({ who, topic, retain }): Cmd => ({
      check: () => true,
      run: async (_m, real) => {
        // Allowed or not: a forbidden one closes the connection, which the next commands live with.
        live(real, who)?.conn.write(publishPacket(topic, '{"v":1,"type":"status","state":"online"}', { qos: 1, retain, id: 3 }));
      },
      toString: () => `${who} publishes ${topic}${retain ? ' retained' : ''}`,
    }),
  ),
  fc.record({ who: fc.constantFrom(...WHO), clean: fc.boolean() }).map(
    ({ who, clean }): Cmd => ({
      check: () => true,
      run: async (_m, real) => {
        const session = live(real, who);
        if (session) await (clean ? session.disconnect() : session.drop());
      },
      toString: () => `${who} ${clean ? 'disconnects' : 'drops its connection'}`,
    }),
  ),
  fc.constantFrom<'rekey camera' | 'remove and re-add user'>('rekey camera', 'remove and re-add user').map(
    (change): Cmd => ({
      check: () => true,
      run: async (_m, real) => {
        const { credentials } = real.tb.bridge;
        if (change === 'rekey camera') real.secret = await credentials.add('cam1', 'device', { replace: true });
        else {
          await credentials.remove('alice');
          await credentials.add('alice', 'viewer');
        }
        await real.tb.bridge.embedded?.revocation.check();
      },
      toString: () => change,
    }),
  ),
];

/** Each run starts from no stored session and an empty record, so a counterexample shrinks to what caused it. */
async function reset(real: Real): Promise<void> {
  for (const who of WHO) {
    await connect(real, who, true);
    await (real.session[who] as RawSession).disconnect();
    real.received[who] = [];
  }
}

/**
 * With both attackers away, the world publishes on every topic at QoS 1 (whatever a session stored is queued now);
 * then both resume their sessions, and once a sentinel arrived and their stored queues are empty, everything the
 * broker would deliver has been delivered.
 */
async function flush(real: Real, pool: string[]): Promise<void> {
  const persistence = (real.tb.bridge.broker.aedes as unknown as { persistence: { outgoingStream(c: { id: string }): AsyncIterable<unknown> } }).persistence;
  for (const who of WHO) await live(real, who)?.drop();
  for (const topic of pool) await real.tb.bridge.broker.publish({ topic, payload: `away ${topic}`, qos: 1, retain: false });
  for (const who of WHO) {
    await connect(real, who, false);
    const session = real.session[who] as RawSession;
    await session.subscribe([[ownTopic(real.tb, who), 1]]);
    const sentinel = `sentinel ${real.sentinels++}`;
    await real.tb.bridge.broker.publish({ topic: ownTopic(real.tb, who), payload: sentinel, qos: 1, retain: false });
    await session.until(ownTopic(real.tb, who), sentinel);
    await eventually(async () => {
      for await (const _ of persistence.outgoingStream({ id: CLIENT_ID[who] })) return false;
      return true;
    }, 5000, `the stored queue of ${who} to be delivered`);
  }
}

describe.each(TRANSPORTS)('access rules under model-based fuzzing over %s', (transport) => {
  let tb: TestBridge & { close: () => Promise<void> };
  beforeAll(async () => {
    // Generous rates: the fuzz checks access, not the rate limit.
    tb = await createBridge({ publishRate: 100_000, publishBurst: 100_000 });
  });
  afterAll(() => tb.close());

  it('nothing outside its rights ever reaches a camera identity or a scoped viewer token, across sessions', { timeout: 120_000 }, async () => {
    const cam2 = await connectRawDevice(tb, transport, 'cam2');
    await tb.bridge.credentials.add('alice', 'viewer');
    const real: Real = { tb, transport, cam2, secret: await tb.bridge.credentials.add('cam1', 'device'), session: {}, received: { cam: [], viewer: [] }, sentinels: 0 };
    const pool = topicPool(tb);
    await fc.assert(
      fc.asyncProperty(fc.commands(commands(pool), { maxCommands: 30 }), async (cmds) => {
        await reset(real);
        await fc.asyncModelRun(() => ({ model: {}, real }), cmds);
        await flush(real, pool);
        expect(forbidden(real)).toEqual([]);
      }),
      { numRuns: 30 },
    );
    expect(real.received.cam.length + real.received.viewer.length).toBeGreaterThan(0);
    for (const who of WHO) real.session[who]?.conn.destroy();
  });
});
