/**
 * bench/flood.ts's well-behaved client, in a process of its own: connect, subscribe, publish, get the reply,
 * disconnect; again and again until the flood ends. Prints {ok, failed, p50, max} (ms per round trip).
 *
 * tali: a junk message on the victim device's up topic comes back as an error on its down topic, through the
 * answerer: both directions of routing. Plain Aedes: an anonymous client publishes to a topic it subscribed to.
 */
import { connectMqtt } from '../src/mqtt/connect.ts';

const ready = JSON.parse(process.argv[2] ?? '{}') as { mqtt: string; root?: string; victim?: { id: string; secret: string } };
const deadline = Date.now() + Number(process.argv[3] ?? '10') * 1000;
const times: number[] = [];
let failed = 0;
while (Date.now() < deadline) {
  const start = performance.now();
  try {
    const v = ready.victim;
    const client = await connectMqtt({ target: ready.mqtt, clientId: v ? v.id : `good${Math.floor(Math.random() * 1e9)}`, username: v?.id, password: v?.secret, connectTimeoutMs: 5000 });
    const topic = v ? `${ready.root}/v1/device/${v.id}/down` : 'good/topic';
    const got = new Promise<void>((r) => client.once('message', () => r()));
    await client.subscribeAsync(topic, { qos: 1 });
    await client.publishAsync(v ? `${ready.root}/v1/device/${v.id}/up` : topic, v ? '{"v":1,' : 'hi', { qos: 1 });
    await Promise.race([got, new Promise((_, reject) => setTimeout(() => reject(new Error('no message')), 5000))]);
    await client.endAsync();
    times.push(performance.now() - start);
  } catch {
    failed++;
  }
  await new Promise((r) => setTimeout(r, 100));
}
times.sort((a, b) => a - b);
process.stdout.write(`${JSON.stringify({ ok: times.length, failed, p50: Math.round(times[times.length >> 1] ?? 0), max: Math.round(times.at(-1) ?? 0) })}\n`);
process.exit(0);
