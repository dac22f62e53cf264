/**
 * A viewer in Node on the tali viewer SDK: watches one camera through the bridge's relay for a few seconds with a
 * werift receive-only peer and prints what arrived (packets, keyframes, the first-frame timeline) as one JSON line.
 * Exit status 0 once video with a keyframe arrived.
 *
 *   TALI_URL=mqtt://localhost:1883 TALI_USER=admin TALI_PASSWORD=… TALI_DEVICE=cam1 node viewer.ts
 *
 * The password may be a viewer token (`tali user token alice --devices cam1`, or POST /api/token).
 */
import { NodeViewer } from 'tali/viewer';

const viewer = new NodeViewer({
  url: process.env.TALI_URL ?? 'mqtt://localhost:1883',
  user: process.env.TALI_USER ?? 'admin',
  password: process.env.TALI_PASSWORD ?? '',
  deviceId: process.env.TALI_DEVICE ?? 'cam1',
});
const timeoutMs = Number(process.env.TALI_TIMEOUT_S ?? 15) * 1000;

const watch = await viewer.start(); // rejects on a wrong user name or password
watch.on('state', (state) => console.error(`watch: ${state}`));
// The first video keyframe is the first picture a decoder can show (a real player attaches the peer's tracks instead).
await new Promise<void>((resolve) => {
  const timer = setTimeout(resolve, timeoutMs);
  watch.on('timeline', (timeline) => {
    if (timeline.firstFrame !== undefined) (clearTimeout(timer), resolve());
  });
});
const summary = viewer.summary();
await viewer.stop();
console.log(JSON.stringify(summary));
process.exitCode = summary.keyframes > 0 ? 0 : 1;
