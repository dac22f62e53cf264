/**
 * The broker as a broker: MQTT 3.1.1 behaviour Aedes 1.2 gets wrong and tali's broker layer corrects, checked on the
 * wire (raw packets over TCP and WebSocket), as third-party broker suites check it:
 *
 *  - MQTT-3.8.4-6: a retained QoS 1 card reaches a QoS 0 wildcard subscription at QoS 0.
 *  - MQTT-3.3.5-1: a message matching a QoS 0 and a QoS 1 subscription of one client goes out once, at QoS 1.
 *  - MQTT-3.3.1-1 (aedes#601): an unacknowledged QoS 1 message is sent again after a reconnect with DUP 1.
 *  - MQTT-3.3.1-3: the publisher's DUP flag is not passed on to subscribers.
 *  - MQTT-3.2.2-2: Session Present 1 when a stored session without subscriptions resumes.
 *  - MQTT-3.1.3-9: a client ID tali can never accept gets CONNACK 2 "identifier rejected", whoever asks.
 */
import { describe, expect, it } from 'vitest';
import { startBridge, TRANSPORTS } from '../helpers/bridge.ts';
import { connectPacket, publishPacket, RawConnection, TYPE } from '../helpers/raw-mqtt.ts';
import { RawSession } from '../helpers/raw-session.ts';
import { waitFor } from '../helpers/wait.ts';

const CARD = '{"v":1,"type":"status","state":"online"}';

describe.each(TRANSPORTS)('MQTT 3.1.1 deviations of Aedes, corrected, over %s', (transport) => {
  it('MQTT-3.8.4-6: a retained QoS 1 card is delivered at QoS 0 to a QoS 0 subscription to device/+/status', async () => {
    const tb = await startBridge();
    const t = tb.bridge.topics;
    const url = tb.urlFor(transport);
    const camSecret = await tb.bridge.credentials.add('cam1', 'device');
    const cam = await RawSession.connect(url, { clientId: 'cam1', username: 'cam1', password: camSecret });
    cam.session.conn.write(publishPacket(t.device('cam1', 'status'), CARD, { qos: 1, retain: true, id: 7 }));
    await cam.session.conn.next(TYPE.PUBACK);
    const viewerSecret = await tb.bridge.credentials.add('alice', 'viewer');
    const viewer = await RawSession.connect(url, { clientId: 'alice', username: 'alice', password: viewerSecret });
    expect(await viewer.session.subscribe([[t.allDevices('status'), 0]])).toEqual([0]);
    const [card] = await viewer.session.until(t.device('cam1', 'status'), CARD);
    expect(card).toMatchObject({ qos: 0, retain: true, dup: false });
    // And at QoS 1 for a QoS 1 subscription.
    expect(await viewer.session.subscribe([[t.device('cam1', 'status'), 1]])).toEqual([1]);
    expect((await viewer.session.until(t.device('cam1', 'status'), CARD))[0]).toMatchObject({ qos: 1, retain: true });
  });

  it('MQTT-3.3.5-1: a message matching a QoS 0 and a QoS 1 subscription of one client is delivered once, at QoS 1', async () => {
    const tb = await startBridge();
    const t = tb.bridge.topics;
    const url = tb.urlFor(transport);
    const adminSecret = await tb.bridge.credentials.add('ops', 'admin');
    const admin = await RawSession.connect(url, { clientId: 'ops', username: 'ops', password: adminSecret });
    // Two wildcard filters: Aedes fires the `#` one's delivery first and dropped the QoS 1 one as a duplicate.
    expect(await admin.session.subscribe([[`${t.root}/#`, 0], [t.allDevices('status'), 1]])).toEqual([0, 1]);
    for (const payload of ['one', 'two']) await tb.bridge.broker.publish({ topic: t.device('cam1', 'status'), payload, qos: 1, retain: false });
    const got = await admin.session.until(t.device('cam1', 'status'), 'two');
    expect(got.filter((p) => p.topic === t.device('cam1', 'status')).map((p) => [p.payload.toString(), p.qos])).toEqual([
      ['one', 1],
      ['two', 1],
    ]);
  });

  it('MQTT-3.3.1-1: an unacknowledged QoS 1 message is resent after the reconnect with DUP 1 and its packet identifier; one never sent goes with DUP 0', async () => {
    const tb = await startBridge();
    const t = tb.bridge.topics;
    const url = tb.urlFor(transport);
    const secret = await tb.bridge.credentials.add('cam1', 'device');
    const login = { clientId: 'cam1', username: 'cam1', password: secret, clean: false };
    const first = await RawSession.connect(url, login, { autoAck: false });
    await first.session.subscribe([[t.device('cam1', 'down'), 1]]);
    await tb.bridge.broker.publish({ topic: t.device('cam1', 'down'), payload: 'sent once', qos: 1, retain: false });
    const [sent] = await first.session.until(t.device('cam1', 'down'), 'sent once');
    expect(sent).toMatchObject({ qos: 1, dup: false });
    const gone = waitFor(tb.bridge.broker, 'clientGone', (id) => id === 'cam1');
    await first.session.drop();
    await gone;
    await tb.bridge.broker.publish({ topic: t.device('cam1', 'down'), payload: 'never sent', qos: 1, retain: false });

    const second = await RawSession.connect(url, login);
    expect(second.connack.sessionPresent).toBe(true);
    const resent = await second.session.until(t.device('cam1', 'down'), 'never sent');
    expect(resent.map((p) => [p.payload.toString(), p.dup])).toEqual([
      ['sent once', true],
      ['never sent', false],
    ]);
    expect(resent[0]?.packetId).toBe(sent?.packetId);
  });

  it('MQTT-3.3.1-3: a PUBLISH sent with DUP 1 reaches subscribers with DUP 0', async () => {
    const tb = await startBridge();
    const t = tb.bridge.topics;
    const url = tb.urlFor(transport);
    const camSecret = await tb.bridge.credentials.add('cam1', 'device');
    const viewerSecret = await tb.bridge.credentials.add('alice', 'viewer');
    const viewer = await RawSession.connect(url, { clientId: 'alice', username: 'alice', password: viewerSecret });
    await viewer.session.subscribe([[t.device('cam1', 'status'), 1]]);
    const cam = await RawSession.connect(url, { clientId: 'cam1', username: 'cam1', password: camSecret });
    // QoS 1, DUP 1: a retransmission as the publisher sees it.
    cam.session.conn.write(publishPacket(t.device('cam1', 'status'), CARD, { qos: 1, flags: 0x08 | 0x02, id: 9 }));
    expect((await viewer.session.until(t.device('cam1', 'status'), CARD))[0]).toMatchObject({ qos: 1, dup: false });
  });

  it('MQTT-3.2.2-2: a stored session without subscriptions resumes with Session Present 1; CleanSession 1 ends it', async () => {
    const tb = await startBridge();
    const url = tb.urlFor(transport);
    const secret = await tb.bridge.credentials.add('cam1', 'device');
    const login = { clientId: 'cam1', username: 'cam1', password: secret };
    const first = await RawSession.connect(url, { ...login, clean: false });
    expect(first.connack).toEqual({ sessionPresent: false, returnCode: 0 });
    await first.session.disconnect();
    const second = await RawSession.connect(url, { ...login, clean: false });
    expect(second.connack).toEqual({ sessionPresent: true, returnCode: 0 });
    await second.session.disconnect();
    const clean = await RawSession.connect(url, { ...login, clean: true });
    expect(clean.connack).toEqual({ sessionPresent: false, returnCode: 0 });
    await clean.session.disconnect();
    const third = await RawSession.connect(url, { ...login, clean: false });
    expect(third.connack).toEqual({ sessionPresent: false, returnCode: 0 });
  });

  it.each([
    ['a slash', 'cam/1'],
    ['a space', 'cam 1'],
    ['an empty suffix', 'alice:'],
    ['a wildcard', 'alice:+'],
    ['no ID at all (the server would make one up)', ''],
  ])('MQTT-3.1.3-9: a client ID with %s gets CONNACK 2, with or without credentials', async (_what, clientId) => {
    const tb = await startBridge();
    const password = await tb.bridge.credentials.add('alice', 'viewer');
    for (const credentials of [{}, { username: 'alice', password }, { username: 'alice', password: 'wrong' }]) {
      const conn = await RawConnection.open(tb.urlFor(transport));
      conn.write(connectPacket({ clientId, ...credentials }));
      const connack = await conn.next(TYPE.CONNACK);
      expect(connack.body[1], JSON.stringify(credentials)).toBe(2);
      await conn.expectClosed();
    }
  });
});
