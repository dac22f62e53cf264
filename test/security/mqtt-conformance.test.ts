/**
 * Where MQTT 3.1.1 says a server must refuse a packet, tali refuses it, even where plain Aedes 1.2 does not
 * (bench/mqtt-conformance.ts shows which). Raw packets over TCP and WebSocket; each refusal must be the rule's own
 * (its clause in the log), not a side effect of an access rule.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBridge, TRANSPORTS, type TestBridge } from '../helpers/bridge.ts';
import { connectPacket, PINGREQ, RawConnection, TYPE } from '../helpers/raw-mqtt.ts';
import { SPEC_CASES, type Credentials } from '../helpers/spec-cases.ts';
import { until } from '../helpers/wait.ts';
import { scrape } from '../ops/prometheus.ts';

describe.each(TRANSPORTS)('MQTT 3.1.1 refusals over %s', (transport) => {
  let tb: TestBridge & { close: () => Promise<void> };
  let creds: Credentials;

  beforeAll(async () => {
    tb = await createBridge({ publishBurst: 500 });
    const id = `conf-${transport}`;
    const password = await tb.bridge.credentials.add(id, 'device');
    creds = { clientId: id, username: id, password, topic: tb.bridge.topics.device(id, 'up'), filter: tb.bridge.topics.device(id, 'down') };
  });
  afterAll(() => tb.close());

  it.each(SPEC_CASES.map((c) => [`${c.clause}: ${c.name}`, c] as const))('%s', async (_name, testCase) => {
    const conn = await RawConnection.open(tb.urlFor(transport));
    if (testCase.afterConnect) {
      conn.write(connectPacket({ clientId: creds.clientId, username: creds.username, password: creds.password }));
      expect((await conn.next(TYPE.CONNACK)).body[1]).toBe(0);
      // Proof that the connection works before the defect: a PINGREQ answered.
      conn.write(PINGREQ);
      await conn.next(TYPE.PINGRESP);
    }
    const refusalsBefore = tb.bridge.broker.gate.counters.refusals[testCase.clause] ?? 0;
    conn.write(testCase.bytes(creds));
    await conn.expectClosed();
    const connack = conn.packets.find((p) => p.type === TYPE.CONNACK);
    if (testCase.expect.connack === undefined) expect(connack).toBeUndefined();
    else expect(connack?.body[1]).toBe(testCase.expect.connack);
    expect(conn.packets.filter((p) => p.type !== TYPE.CONNACK)).toEqual([]);
    await until(() => (tb.bridge.broker.gate.counters.refusals[testCase.clause] ?? 0) > refusalsBefore, 2000, `a refusal counted under ${testCase.clause}`);
    const logged = tb.logs.filter((l) => l.event === 'refused' && l.clause === testCase.clause);
    expect(logged.at(-1)).toMatchObject({ address: expect.stringContaining('127.0.0.1'), transport: transport === 'mqtt' ? 'tcp' : 'ws' });
  });

  it('a well-behaved client still connects after all of them; /metrics counts the refusals by clause', async () => {
    const metrics = await scrape(`http://127.0.0.1:${tb.bridge.httpPort}/metrics`);
    for (const clause of new Set(SPEC_CASES.map((c) => c.clause))) {
      expect(metrics.value('tali_mqtt_refusals_total', { clause }), clause).toBe(tb.bridge.broker.gate.counters.refusals[clause]);
    }
    const conn = await RawConnection.open(tb.urlFor(transport));
    conn.write(connectPacket({ clientId: creds.clientId, username: creds.username, password: creds.password }));
    expect((await conn.next(TYPE.CONNACK)).body[1]).toBe(0);
    conn.destroy();
  });
});
