/**
 * Access rules of the libpeer profile: a device registered with it is admitted with its own credentials on
 * `<prefix>/<its ID>/invoke` (SUBSCRIBE) and `.../result` (PUBLISH) only, exactly as a native device on its own
 * topics: the device level must be its ID, nothing else is granted, and a native device gets none of them.
 */
import fc from 'fast-check';
import { describe, expect, it, onTestFinished } from 'vitest';
import { CoreMqtt } from '../../devices/libpeer/core-mqtt.ts';
import { resolveToken } from '../../devices/libpeer/signaling.ts';
import { connectMqtt } from '../../src/mqtt/connect.ts';
import { LibpeerTopics, Topics } from '../../src/protocol/topics.ts';
import { libpeerToken } from '../../src/profiles/libpeer/token.ts';
import { AccessPolicy } from '../../src/security/access.ts';
import type { Identity } from '../../src/security/identity.ts';
import { until, withTimeout } from '../helpers/wait.ts';
import { tlsBridge } from './helpers.ts';

const topics = new Topics('tali');
const libpeer = new LibpeerTopics(['/public', 'acme/cams']);
const policy = new AccessPolicy(topics, { libpeer });
const lp = (id: string): Identity => ({ role: 'device', id, profile: 'libpeer', source: 'secret' });

describe('libpeer access rules (AccessPolicy)', () => {
  it('its own invoke and result under each prefix, nothing else', () => {
    expect(policy.canSubscribe(lp('cam-lp1'), '/public/cam-lp1/invoke')).toBe(true);
    expect(policy.canSubscribe(lp('cam-lp1'), 'acme/cams/cam-lp1/invoke')).toBe(true);
    expect(policy.canPublish(lp('cam-lp1'), '/public/cam-lp1/result', false)).toBe(true);
    for (const filter of ['/public/cam-lp2/invoke', '/public/+/invoke', '/public/#', '#', 'public/cam-lp1/invoke', '/public/cam-lp1/result', '/other/cam-lp1/invoke', topics.device('cam-lp1', 'down'), topics.allBridges()]) {
      expect(policy.canSubscribe(lp('cam-lp1'), filter), filter).toBe(false);
    }
    for (const topic of ['/public/cam-lp2/result', '/public/cam-lp1/invoke', 'public/cam-lp1/result', topics.device('cam-lp1', 'up'), topics.device('cam-lp1', 'status')]) {
      expect(policy.canPublish(lp('cam-lp1'), topic, false), topic).toBe(false);
    }
    expect(policy.canPublish(lp('cam-lp1'), '/public/cam-lp1/result', true)).toBe(false); // never retained
  });

  it('a native device gets no libpeer topic, a libpeer device no native one, and the device level must match (property)', () => {
    const id = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,30}$/);
    const level = fc.oneof(id, fc.constantFrom('+', '#', ''));
    fc.assert(
      fc.property(id, level, fc.constantFrom('invoke', 'result', 'up', 'down', 'status'), fc.constantFrom('/public', 'acme/cams', 'tali/v1/device'), (who, device, channel, prefix) => {
        const topic = `${prefix}/${device}/${channel}`;
        const own = device === who;
        const native: Identity = { role: 'device', id: who };
        expect(policy.canSubscribe(lp(who), topic)).toBe(own && channel === 'invoke' && prefix !== 'tali/v1/device');
        expect(policy.canPublish(lp(who), topic, false)).toBe(own && channel === 'result' && prefix !== 'tali/v1/device');
        if (prefix !== 'tali/v1/device') {
          expect(policy.canSubscribe(native, topic)).toBe(false);
          expect(policy.canPublish(native, topic, false)).toBe(false);
        }
      }),
    );
  });

  it('without libpeerPrefixes a libpeer device may do nothing', () => {
    const none = new AccessPolicy(topics, { libpeer: new LibpeerTopics([]) });
    expect(none.canSubscribe(lp('cam-lp1'), '/public/cam-lp1/invoke')).toBe(false);
    expect(none.canPublish(lp('cam-lp1'), '/public/cam-lp1/result', false)).toBe(false);
  });
});

describe('libpeer access over MQTT/TLS', () => {
  it('admitted with libpeer CONNECT (CleanSession 0, no will, client ID = ID): own invoke granted, others refused', async () => {
    const tb = await tlsBridge();
    const secret = await tb.bridge.credentials.add('cam-lp1', 'device', { profile: 'libpeer' });
    await tb.bridge.credentials.add('cam-lp2', 'device', { profile: 'libpeer' });
    const creds = resolveToken(libpeerToken('cam-lp1', secret));
    expect(creds).toEqual({ username: 'cam-lp1', password: secret });
    const subacks = new Map<number, number[]>();
    const mqtt = new CoreMqtt({ host: '127.0.0.1', port: tb.bridge.mqttsPort, clientId: 'cam-lp1', ...creds }, { publish: () => {}, dropped: () => {}, closed: () => {}, suback: (codes, id) => subacks.set(id, codes) });
    onTestFinished(() => mqtt.destroy());
    expect(await mqtt.connect()).toBe(0);
    const ids = ['/public/cam-lp1/invoke', '/public/cam-lp2/invoke', '/public/+/invoke', tb.bridge.topics.device('cam-lp1', 'down')].map((f) => mqtt.subscribe(f));
    await until(() => subacks.size === 4, 5000, 'four SUBACKs');
    expect(ids.map((id) => subacks.get(id))).toEqual([[0], [0x80], [0x80], [0x80]]);
    await until(() => tb.bridge.libpeer?.devices.includes('cam-lp1') === true, 5000, 'the adapter to take the device');
  });

  it('wrong secret: CONNACK 4; a client ID other than the device ID: CONNACK 2; publishing elsewhere closes the connection', async () => {
    const tb = await tlsBridge();
    const secret = await tb.bridge.credentials.add('cam-lp1', 'device', { profile: 'libpeer' });
    const events = { publish: () => {}, dropped: () => {}, closed: () => {}, suback: () => {} };
    const bad = new CoreMqtt({ host: '127.0.0.1', port: tb.bridge.mqttsPort, clientId: 'cam-lp1', username: 'cam-lp1', password: 'nope' }, events);
    onTestFinished(() => bad.destroy());
    expect(await bad.connect()).toBe(4);
    const other = new CoreMqtt({ host: '127.0.0.1', port: tb.bridge.mqttsPort, clientId: 'cam-lp1x', username: 'cam-lp1', password: secret }, events);
    onTestFinished(() => other.destroy());
    expect(await other.connect()).toBe(2);

    const client = await connectMqtt({ target: tb.bridge.mqttsUrl as string, clientId: 'cam-lp1', username: 'cam-lp1', password: secret, tls: { rejectUnauthorized: false } });
    onTestFinished(() => client.endAsync(true));
    const closed = withTimeout(new Promise<void>((resolve) => client.once('close', () => resolve())), 5000, 'the broker to close the connection');
    client.publishAsync(tb.bridge.topics.device('cam-lp1', 'up'), '{"v":1,"type":"offer"}', { qos: 1 }).catch(() => {});
    await closed;
    expect(tb.logs.find((l) => l.event === 'denied')).toMatchObject({ identity: 'cam-lp1', action: 'publish' });
  });
});
