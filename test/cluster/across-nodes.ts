/**
 * The scene both Redis failover tests (Sentinel, Redis Cluster) start from: two tali nodes on one Redis target
 * sharing a data directory, a camera streaming on node A and a viewer on node B receiving its video, with every
 * `offline` card the viewer reads recorded (nothing may be marked offline while Redis fails over).
 */
import { onTestFinished } from 'vitest';
import { SimulatedCamera } from '../../devices/camera/simulated-camera.ts';
import { Bridge } from '../../src/bridge.ts';
import { nodeConnector } from '../../src/client/node-connector.ts';
import { NodeViewer } from '../../src/viewer/node-viewer.ts';
import { FAST_BACKOFF, next } from '../devices/helpers.ts';
import { captureLogger } from '../helpers/bridge.ts';
import { until } from '../helpers/wait.ts';

const HEARTBEAT_MS = 500;

/** A tali node in cluster mode on `cluster`, closed when the test ends. */
export async function startNode(cluster: string, dataDir: string, bridgeId: string): Promise<Bridge> {
  const bridge = await Bridge.start({
    config: { host: '127.0.0.1', mqttPort: 0, httpPort: 0, dataDir, bridgeId, cluster, clusterHeartbeatMs: HEARTBEAT_MS },
    logger: captureLogger([]),
  });
  onTestFinished(() => bridge.close());
  return bridge;
}

/** Nodes A and B, cam1 streaming on A, alice watching it on B; cam2 registered for later. */
export async function streamAcrossNodes(cluster: string, dataDir: string) {
  const a = await startNode(cluster, dataDir, 'node-a');
  const b = await startNode(cluster, dataDir, 'node-b');
  const cam1 = await a.credentials.add('cam1', 'device', { replace: true });
  const cam2 = await a.credentials.add('cam2', 'device', { replace: true });
  const password = await a.credentials.add('alice', 'viewer', { replace: true });

  const camera = new SimulatedCamera({ deviceId: 'cam1', secret: cam1, connect: nodeConnector(a.mqttUrl), backoff: FAST_BACKOFF });
  onTestFinished(() => camera.stop());
  await camera.start();
  await next(camera.keeper, 'session-connected', () => true, 15_000);
  const viewer = new NodeViewer({ url: b.mqttUrl, user: 'alice', password, deviceId: 'cam1', backoff: FAST_BACKOFF });
  onTestFinished(() => viewer.stop());
  const watch = await viewer.start();
  await until(() => viewer.summary().keyframes > 0 && viewer.summary().packets >= 30, 20_000, "video from A's camera to the viewer on B");
  const offline: string[] = [];
  viewer.client.on('device', (id, entry) => entry?.status?.state === 'offline' && offline.push(id));
  viewer.client.on('bridge', (card) => card.state === 'offline' && offline.push(card.bridgeId));
  return { a, b, cam2, password, camera, viewer, watch, firstSession: watch.sessionId, offline };
}
