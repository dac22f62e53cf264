/**
 * A child process holding many simulated cameras (werift peers streaming a clip), so that their CPU does not count
 * against the bridge or the answerers being timed. Driven over IPC by the parent:
 *
 *   parent → { cmd: 'prepare', n, path, url?, root, ids }   child gathers n more offers (and connects n MQTT clients) → 'ready'
 *   parent → { cmd: 'go' }                                  child sends every offer not sent yet at once, reporting { sent, i, t }
 *   parent → { cmd: 'stats' }                               → { packetsSent, cpuMs }: RTP packets sent by every camera so far
 *   parent → { cmd: 'answer', i, sdp }                      floor path only: the parent's answerer replies over IPC
 *   parent → { cmd: 'media', on }                           every camera streams (the default, from connected) or not
 *   parent → { cmd: 'stop' }                                child says bye, closes everything → 'stopped'
 *
 * Times are epoch milliseconds with sub-millisecond resolution (performance.timeOrigin + now), comparable across
 * the two processes.
 */
import type { MqttClient } from 'mqtt';
import { connectMqtt } from '../../src/mqtt/connect.ts';
import { PROTOCOL_VERSION, Topics } from '../../src/protocol/topics.ts';
import { createCameraPeer, sessionId, upMessage, type CameraPeer } from './camera.ts';
import { epochMs } from './stats.ts';

export type WorkerCommand =
  | {
      cmd: 'prepare';
      n: number;
      path: 'floor' | 'mqtt' | 'ws';
      url?: string;
      root: string;
      ids: string[];
      clip?: string;
      /** Stop each camera's media once the parent says its first frame was delivered; otherwise stream throughout. */
      untilDelivered?: boolean;
    }
  | { cmd: 'delivered'; i: number }
  /** Cameras stream their clip from connected (on, the default) or send no media, their sessions staying up. */
  | { cmd: 'media'; on: boolean }
  | { cmd: 'go' }
  | { cmd: 'answer'; i: number; sdp: string }
  | { cmd: 'stats' }
  | { cmd: 'stop' };

export type WorkerEvent =
  | { type: 'ready' }
  | { type: 'sent'; i: number; t: number; sdp?: string }
  | { type: 'answered'; i: number; t: number }
  | { type: 'connected'; i: number; t: number }
  | { type: 'stopped'; cpuMs: number }
  | { type: 'stats'; packetsSent: number; cpuMs: number }
  | { type: 'error'; message: string };

interface Cam {
  peer: CameraPeer;
  /** Its first frame reached the answerer: media can stop (untilDelivered). */
  delivered?: boolean;
  sid: string;
  id: string;
  client?: MqttClient;
  topics: Topics;
  /** Its offer went out (a later 'go' sends only the cameras prepared since). */
  offered?: boolean;
  connected?: boolean;
}

const send = (event: WorkerEvent) => process.send?.(event);
let cams: Cam[] = [];
let path: 'floor' | 'mqtt' | 'ws' = 'floor';
let cpuAtGo = process.cpuUsage();
let mediaOn = true;

async function prepare(c: Extract<WorkerCommand, { cmd: 'prepare' }>): Promise<void> {
  path = c.path;
  const topics = new Topics(c.root);
  const first = cams.length;
  const added = await Promise.all(
    Array.from({ length: c.n }, async (_, k) => {
      const i = first + k;
      const id = c.ids[k] as string;
      const cam: Cam = { peer: await createCameraPeer({ ...(c.clip && { clip: c.clip }) }), sid: sessionId(), id, topics };
      void cam.peer.connected.then(() => {
        send({ type: 'connected', i, t: epochMs() });
        cam.connected = true;
        if (!cam.delivered && mediaOn) cam.peer.startMedia();
      });
      if (c.path !== 'floor') {
        // allowAnonymous bridge: the client ID is the device ID (what a device's credentials would give it).
        const client = await connectMqtt({ target: c.url as string, clientId: id });
        await client.subscribeAsync(topics.device(id, 'down'), { qos: 1 });
        // Its online card, as a device publishes it: the relay serves watches of devices it knows (registered or carded).
        const card = { v: PROTOCOL_VERSION, type: 'status', ts: Date.now(), state: 'online' };
        await client.publishAsync(topics.device(id, 'status'), JSON.stringify(card), { qos: 1, retain: true });
        client.on('message', (_topic, payload) => {
          const m = JSON.parse(payload.toString()) as { type: string; sessionId?: string; sdp?: string };
          if (m.type === 'answer' && m.sessionId === cam.sid) void applyAnswer(i, m.sdp ?? '');
        });
        cam.client = client;
      }
      return cam;
    }),
  );
  cams.push(...added);
  send({ type: 'ready' });
}

async function applyAnswer(i: number, sdp: string): Promise<void> {
  send({ type: 'answered', i, t: epochMs() });
  await cams[i]?.peer.applyAnswer(sdp);
}

function go(): void {
  cpuAtGo = process.cpuUsage();
  cams.forEach((cam, i) => {
    if (cam.offered) return;
    cam.offered = true;
    const t = epochMs();
    if (path === 'floor') {
      send({ type: 'sent', i, t, sdp: cam.peer.offerSdp });
      return;
    }
    const up = cam.topics.device(cam.id, 'up');
    cam.client?.publish(up, upMessage('offer', cam.sid, 1, { sdp: cam.peer.offerSdp }), { qos: 1 });
    cam.client?.publish(up, upMessage('candidate', cam.sid, 2, { endOfCandidates: true }), { qos: 1 });
    send({ type: 'sent', i, t });
  });
}

async function stop(): Promise<void> {
  const cpu = process.cpuUsage(cpuAtGo);
  await Promise.all(
    cams.map(async (cam) => {
      cam.peer.source.stop();
      if (cam.client) {
        await cam.client.publishAsync(cam.topics.device(cam.id, 'up'), upMessage('bye', cam.sid, 3, { reason: 'normal' }), { qos: 1 }).catch(() => {});
        await cam.client.endAsync().catch(() => {});
      }
      await cam.peer.stop();
    }),
  );
  cams = [];
  send({ type: 'stopped', cpuMs: (cpu.user + cpu.system) / 1000 });
}

process.on('message', (m: WorkerCommand) => {
  const run = async () => {
    if (m.cmd === 'prepare') await prepare(m);
    else if (m.cmd === 'go') go();
    else if (m.cmd === 'answer') await applyAnswer(m.i, m.sdp);
    else if (m.cmd === 'stop') await stop();
    else if (m.cmd === 'stats') {
      const cpu = process.cpuUsage();
      send({ type: 'stats', packetsSent: cams.reduce((a, c) => a + c.peer.source.packetsSent, 0), cpuMs: (cpu.user + cpu.system) / 1000 });
    }
    else if (m.cmd === 'media') {
      mediaOn = m.on;
      for (const cam of cams) {
        if (!m.on) cam.peer.stopMedia();
        else if (cam.connected && !cam.delivered) cam.peer.startMedia();
      }
    } else if (m.cmd === 'delivered') {
      const cam = cams[m.i];
      if (cam) (cam.delivered = true), cam.peer.stopMedia();
    }
  };
  run().catch((err: Error) => send({ type: 'error', message: err.stack ?? err.message }));
});
process.on('disconnect', () => process.exit(0));
