// A viewer in a plain Chromium page, written from docs/protocol.md §16 with no tali code: mqtt.js's browser bundle
// (loaded before this script) and the browser's own RTCPeerConnection. Run as
// `await watchOnce({ url, user, password, root, deviceId })` in the page; resolves with { firstFrameMs } (watch
// published → first video frame presented, by requestVideoFrameCallback) and stops (bye, disconnect).
/* global mqtt */
// eslint-disable-next-line no-unused-vars
async function watchOnce({ url, user, password, root, deviceId }) {
  const rand = () => Math.random().toString(36).slice(2, 10);
  // §16: the client ID is also a level of this connection's own topics.
  const clientId = `${user}:${rand()}`;
  const up = `${root}/v1/viewer/${user}/${clientId}/up`;
  const down = `${root}/v1/viewer/${user}/${clientId}/down`;
  const client = mqtt.connect(url, {
    clientId, // §16: user name, ":", a suffix; also a level of this connection's topics
    username: user,
    password,
    protocolVersion: 4,
    clean: true,
    reconnectPeriod: 0,
    will: { topic: up, payload: JSON.stringify({ v: 1, type: 'leave', ts: Date.now() }), qos: 1, retain: false },
  });
  await new Promise((resolve, reject) => (client.once('connect', resolve), client.once('error', reject)));
  await client.subscribeAsync(down, { qos: 1 });
  const pc = new RTCPeerConnection();
  pc.addTransceiver('video', { direction: 'recvonly' });
  const video = document.createElement('video');
  video.muted = true;
  video.autoplay = true;
  video.playsInline = true;
  document.body.append(video);
  pc.ontrack = (e) => {
    video.srcObject = e.streams[0] ?? new MediaStream([e.track]);
  };
  const sessionId = `pv${rand()}${rand()}`;
  let seq = 0;
  const send = (type, fields) => client.publish(up, JSON.stringify({ v: 1, type, sessionId, seq: ++seq, ts: Date.now(), ...fields }), { qos: 1 });
  // Candidates follow the watch (§7): held until it is sent.
  let held = [];
  const trickle = (c) => (c ? send('candidate', { candidate: c.candidate, sdpMid: c.sdpMid ?? undefined, sdpMLineIndex: c.sdpMLineIndex ?? undefined }) : send('candidate', { endOfCandidates: true }));
  pc.onicecandidate = (e) => (held ? held.push(e.candidate) : trickle(e.candidate));
  const seen = new Set();
  client.on('message', async (_topic, payload) => {
    const m = JSON.parse(payload.toString());
    if (m.sessionId !== sessionId || seen.has(m.seq)) return; // §8
    seen.add(m.seq);
    if (m.type === 'answer') await pc.setRemoteDescription({ type: 'answer', sdp: m.sdp });
    else if (m.type === 'candidate' && m.candidate) await pc.addIceCandidate({ candidate: m.candidate, sdpMid: m.sdpMid, sdpMLineIndex: m.sdpMLineIndex });
  });
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  const frame = new Promise((resolve) => video.requestVideoFrameCallback(() => resolve(performance.now())));
  const started = performance.now();
  send('watch', { deviceId, sdp: pc.localDescription.sdp });
  for (const c of held) trickle(c);
  held = undefined;
  const firstFrameMs = (await frame) - started;
  send('bye', { reason: 'normal' });
  await new Promise((resolve) => client.end(false, {}, resolve));
  pc.close();
  video.remove();
  return { firstFrameMs };
}
