/**
 * src/broker/deliver-once.ts: a message from another node that arrives after a later one from that node (as Redis
 * Cluster delivers them: each PUBLISH goes to a random cluster node) still reaches the subscriber, and a message
 * matched by two of a client's subscriptions still arrives once. Aedes alone drops the late one.
 */
import { expect, it, onTestFinished } from 'vitest';
import { connectMqtt } from '../../src/mqtt/connect.ts';
import { startBridge } from '../helpers/bridge.ts';
import { until } from '../helpers/wait.ts';

it('delivers a late message from another node, and a message matched twice once', async () => {
  const tb = await startBridge();
  const secret = await tb.bridge.credentials.add('ops', 'admin', { replace: true });
  const client = await connectMqtt({ target: tb.bridge.mqttUrl, clientId: 'ops:once', username: 'ops', password: secret });
  onTestFinished(() => client.endAsync(true));
  const received: string[] = [];
  client.on('message', (_topic, payload) => received.push(payload.toString()));
  // Overlapping filters: each subscription delivers the same packet.
  await client.subscribeAsync(['tali/v1/device/+/metrics', 'tali/v1/device/cam9/metrics'], { qos: 1 });

  const mq = (tb.bridge.broker.aedes as unknown as { mq: { emit(packet: object, cb: () => void): void } }).mq;
  const emit = (counter: number, payload: string, qos = 1) =>
    new Promise<void>((resolve) =>
      mq.emit({ cmd: 'publish', topic: 'tali/v1/device/cam9/metrics', payload: Buffer.from(payload), qos, retain: false, brokerId: 'node-x', brokerCounter: counter }, resolve),
    );
  await emit(11, 'later');
  await emit(10, 'earlier, arriving late');
  await emit(12, 'at QoS 0', 0); // Aedes' deliverQoS passes it to deliver0: still one delivery
  // Published by this node after both: everything before it has been delivered (one connection, in order).
  await tb.bridge.broker.publish({ topic: 'tali/v1/device/cam9/metrics', payload: 'last', qos: 1, retain: false });
  await until(() => received.includes('last'), 5000, 'the last message');
  expect(received).toEqual(['later', 'earlier, arriving late', 'at QoS 0', 'last']);
});
