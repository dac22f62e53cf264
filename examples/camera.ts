/**
 * A camera in Node on the tali device SDK: connects to a bridge, keeps one WebRTC session up (offering again after
 * failures), and while it is connected streams the VP8 test clip shipped with the package, with a keyframe on every
 * request from the bridge. Prints one JSON line per session event; stops cleanly (bye, offline card) on SIGINT/SIGTERM.
 *
 *   TALI_URL=mqtt://localhost:1883 TALI_DEVICE=cam1 TALI_SECRET=… node camera.ts
 *
 * (`tali device add cam1` on the bridge's host prints the secret.) A real camera replaces VideoSource with its
 * encoder's output: RTP packets to peer.sendVideoRtp(), a keyframe when onKeyframeRequest fires.
 */
import { DeviceClient, SessionKeeper, VideoSource, WeriftPeer, nodeConnector } from 'tali/device';

const url = process.env.TALI_URL ?? 'mqtt://localhost:1883';
const deviceId = process.env.TALI_DEVICE ?? 'cam1';
const secret = process.env.TALI_SECRET ?? '';

const video = new VideoSource({ codec: 'VP8' });
const client = new DeviceClient({ deviceId, secret, connect: nodeConnector(url), card: { model: 'example camera', codecs: { video: ['VP8'] } } });
let peer: WeriftPeer | undefined;
const keeper = new SessionKeeper({
  client,
  createPeer: (iceServers, { iceTransportPolicy }) => {
    const created = new WeriftPeer({ iceServers, iceTransportPolicy, video: 'VP8' });
    created.onKeyframeRequest = () => video.requestKeyframe();
    peer = created;
    return created;
  },
});

const log = (event: string, fields: object) => console.log(JSON.stringify({ event, ...fields }));
keeper.on('session-connected', (session) => {
  log('streaming', { sessionId: session.sessionId, timeline: session.timeline });
  if (!video.running) video.start((packet) => peer?.sendVideoRtp(packet));
});
keeper.on('session-closed', (session) => {
  video.stop();
  log('closed', { sessionId: session.sessionId, reason: session.closeReason });
});

keeper.start();
await client.start(); // rejects on a wrong device ID or secret

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  video.stop();
  await keeper.stop(); // bye for the live session
  await client.stop(); // offline card, DISCONNECT
  log('stopped', { framesSent: video.framesSent, keyframesSent: video.keyframesSent, packetsSent: video.packetsSent });
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
