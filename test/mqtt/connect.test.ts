/**
 * The MQTT client seam (src/mqtt/connect.ts) after the CONNACK: a broker that goes away mid-connection (here a TCP
 * reset, as a killed or restarted broker on another host gives) must not crash the process. mqtt.js emits such
 * transport errors as 'error' on the client, which throws when nobody listens: the bridge's clients in external-broker
 * mode had no listener after connecting (CI saw an uncaught EPIPE in test/cluster/mosquitto.test.ts).
 */
import { createServer, type Socket } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { connectMqtt } from '../../src/mqtt/connect.ts';

/** A TCP peer that answers the first CONNECT with CONNACK 0 (MQTT-3.2.2) and hands the socket to the test. */
async function brokerThatAccepts(): Promise<{ url: string; sockets: Promise<Socket> }> {
  let accepted!: (s: Socket) => void;
  const sockets = new Promise<Socket>((resolve) => (accepted = resolve));
  const server = createServer((socket) => {
    socket.once('data', () => {
      socket.write(Buffer.from([0x20, 0x02, 0x00, 0x00]));
      accepted(socket);
    });
  });
  onTestFinished(() => void server.close());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { url: `mqtt://127.0.0.1:${port}`, sockets };
}

describe('connectMqtt after the CONNACK', () => {
  it('reports a reset connection to onError and closes; nothing is thrown', async () => {
    const broker = await brokerThatAccepts();
    const errors: Error[] = [];
    const client = await connectMqtt({ target: broker.url, clientId: 'reset-me', onError: (err) => errors.push(err) });
    onTestFinished(() => void client.end(true));
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    (await broker.sockets).resetAndDestroy();
    await closed;
    expect(errors.map((e) => (e as NodeJS.ErrnoException).code)).toEqual([expect.stringMatching(/^(ECONNRESET|EPIPE)$/)]);
  });

  it('without onError a transport error is still listened to (an unlistened error would throw)', async () => {
    const broker = await brokerThatAccepts();
    const client = await connectMqtt({ target: broker.url, clientId: 'no-listener' });
    onTestFinished(() => void client.end(true));
    expect(client.listenerCount('error')).toBeGreaterThan(0);
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    (await broker.sockets).resetAndDestroy();
    await closed;
  });
});
