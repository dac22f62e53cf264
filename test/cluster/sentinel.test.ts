/**
 * tali nodes on Redis Sentinel (issue 17, item 4), with real parts: Debian's redis-server (a primary and its replica)
 * and redis-sentinel (three, quorum 2) on loopback, tali configured with `redis-sentinel://…/name`:
 * - the primary killed (SIGKILL) while node A streams a camera to a viewer on node B: once the sentinels announce
 *   `+switch-master`, both nodes find the promoted replica by themselves; the viewer keeps its video, a new camera
 *   connects to A and its card reaches B, and a viewer on B watches it through A (messages cross nodes again);
 *   nothing was marked offline meanwhile. Failover and recovery times are printed.
 * - a switch while the old primary stays up (SENTINEL FAILOVER, as after a healed partition): every node connection
 *   leaves the demoted primary for the new one (ioredis's failover detector), and messages cross nodes again.
 * - all of Redis gone (primary, replica and sentinels): SIGTERM of a node still exits within shutdownTimeoutMs.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it, onTestFinished } from 'vitest';
import { SimulatedCamera } from '../../devices/camera/simulated-camera.ts';
import { nodeConnector } from '../../src/client/node-connector.ts';
import { CredentialStore } from '../../src/security/credentials.ts';
import { NodeViewer } from '../../src/viewer/node-viewer.ts';
import { startStreamingCamera } from '../ops/camera.ts';
import { startSentinelGroup } from '../helpers/redis-ha.ts';
import { describeWith } from '../helpers/services.ts';
import { startTali } from '../helpers/tali-process.ts';
import { eventually, until, withTimeout } from '../helpers/wait.ts';
import { FAST_BACKOFF, next } from '../devices/helpers.ts';
import { startNode, streamAcrossNodes } from './across-nodes.ts';

const SHUTDOWN_TIMEOUT_MS = 5000;

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tali-sentinel-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}


describeWith(['redis-server', 'redis-sentinel'], 'tali nodes on Redis Sentinel', () => {
  it('the primary killed: both nodes recover on the promoted replica by themselves and keep serving', { timeout: 90_000 }, async () => {
    const group = await startSentinelGroup();
    const dataDir = await tempDir();
    const { a, b, cam2, password, camera, viewer, watch, firstSession, offline } = await streamAcrossNodes(group.clusterUrl, dataDir);

    const backends = [a.embedded!.backend!, b.embedded!.backend!];
    const { switched } = await group.watchFailover();
    const killedAt = performance.now();
    await group.primary.kill();
    await until(() => backends.every((backend) => !backend.available), 10_000, 'both nodes to notice the primary is gone');
    const failover = await switched;
    expect(failover.port).toBe(group.replica.port);
    await until(() => backends.every((backend) => backend.available), 20_000, 'both nodes available again on the promoted replica');
    const recoveredAt = performance.now();

    // The viewer keeps its video (media never crossed Redis) in the same session.
    const packets = viewer.summary().packets;
    await until(() => viewer.summary().packets >= packets + 30, 10_000, 'more video for the viewer after the failover');
    expect(watch.sessionId).toBe(firstSession);

    // A new camera connects to A; its card reaches B, and a viewer on B watches it through A (watch B → A, answer A → B).
    const camera2 = new SimulatedCamera({ deviceId: 'cam2', secret: cam2, connect: nodeConnector(a.mqttUrl), backoff: FAST_BACKOFF });
    onTestFinished(() => camera2.stop());
    await camera2.start();
    await next(camera2.keeper, 'session-connected', () => true, 15_000);
    await until(() => viewer.client.devices.get('cam2')?.status?.state === 'online', 10_000, "the new camera's card on node B");
    const cardAt = performance.now();
    const viewer2 = new NodeViewer({ url: b.mqttUrl, user: 'alice', password, deviceId: 'cam2', backoff: FAST_BACKOFF });
    onTestFinished(() => viewer2.stop());
    await viewer2.start();
    await until(() => viewer2.summary().keyframes > 0 && viewer2.summary().packets >= 30, 20_000, "video from A's new camera to a viewer on B");
    expect(a.answerer.sessions.has('cam2')).toBe(true);
    expect(b.answerer.sessions.has('cam2')).toBe(false);

    expect(offline).toEqual([]);
    expect(viewer.client.devices.get('cam1')?.status?.state).toBe('online');
    expect(camera.keeper.counters.opened).toBe(1);
    console.info(
      JSON.stringify({
        sentinelFailover: {
          killToSwitchMs: Math.round(failover.at - killedAt),
          switchToNodesAvailableMs: Math.round(recoveredAt - failover.at),
          killToNewCardOnOtherNodeMs: Math.round(cardAt - killedAt),
        },
      }),
    );
  });

  it('a switch while the old primary stays up (SENTINEL FAILOVER): the nodes leave it for the new one at once', { timeout: 60_000 }, async () => {
    const group = await startSentinelGroup();
    const dataDir = await tempDir();
    const a = await startNode(group.clusterUrl, dataDir, 'node-a');
    const b = await startNode(group.clusterUrl, dataDir, 'node-b');
    const cam1 = await a.credentials.add('cam1', 'device', { replace: true });
    const password = await a.credentials.add('alice', 'viewer', { replace: true });
    const tali = async (port: number) => (await group.clientNames(port)).filter((name) => name.startsWith('tali-')).sort();
    const all = ['tali-db', 'tali-db', 'tali-pub', 'tali-pub', 'tali-sub', 'tali-sub'];
    expect(await tali(group.primary.port)).toEqual(all);

    const { switched } = await group.watchFailover();
    await group.failover();
    expect((await switched).port).toBe(group.replica.port);
    // The demoted primary still answers (as a replica): publishing there would reach only the nodes still on it.
    await eventually(async () => (await tali(group.replica.port)).length === all.length, 10_000, "every node's connections on the new primary");
    expect(await tali(group.replica.port)).toEqual(all);
    expect(await tali(group.primary.port)).toEqual([]);
    const backends = [a.embedded!.backend!, b.embedded!.backend!];
    await until(() => backends.every((backend) => backend.available), 10_000, 'both nodes available');

    // Messages cross nodes through the new primary: a camera on A, its card seen by a viewer on B.
    const viewer = new NodeViewer({ url: b.mqttUrl, user: 'alice', password, deviceId: 'cam1', backoff: FAST_BACKOFF });
    onTestFinished(() => viewer.stop());
    await viewer.start();
    const camera = new SimulatedCamera({ deviceId: 'cam1', secret: cam1, connect: nodeConnector(a.mqttUrl), backoff: FAST_BACKOFF });
    onTestFinished(() => camera.stop());
    await camera.start();
    await until(() => viewer.client.devices.get('cam1')?.status?.state === 'online', 10_000, "A's camera card on node B");
    await until(() => viewer.summary().keyframes > 0 && viewer.summary().packets >= 30, 20_000, "video from A's camera to the viewer on B");
  });

  it('all of Redis gone (primary, replica, sentinels): SIGTERM still exits within shutdownTimeoutMs', { timeout: 90_000 }, async () => {
    const group = await startSentinelGroup();
    const dataDir = await tempDir();
    const tali = startTali([
      ...['--cluster', group.clusterUrl, '--host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--data-dir', dataDir],
      ...['--record', '*', '--shutdown-timeout-ms', String(SHUTDOWN_TIMEOUT_MS), '--log-level', 'info'],
    ]);
    const { mqttPort, httpPort } = await tali.ready();
    const secret = await new CredentialStore(dataDir).add('cam1', 'device');
    const camera = await startStreamingCamera({ url: `mqtt://127.0.0.1:${mqttPort}`, id: 'cam1', secret, codec: 'VP8' });
    await tali.log((r) => r.msg === 'recording file started', 'recording to start');
    const target = camera.video.framesSent + 30;
    await until(() => camera.video.framesSent >= target, 10_000, '1 s of media');

    await Promise.all([group.primary, group.replica, ...group.sentinels].map((service) => service.kill()));
    await withTimeout(
      (async () => {
        while (((await (await fetch(`http://127.0.0.1:${httpPort}/readyz`)).json()) as { ready: boolean }).ready) {
          await new Promise((resolve) => setTimeout(resolve, 50)); // polling /readyz, as a load balancer would
        }
      })(),
      15_000,
      'the node to notice that Redis is gone',
    );
    const signalledAt = performance.now();
    tali.child.kill('SIGTERM');
    const exit = await withTimeout(tali.exited, SHUTDOWN_TIMEOUT_MS + 10_000, 'tali to exit');
    console.info(JSON.stringify({ sigtermWithAllRedisDown: { exitMs: Math.round(exit.at - signalledAt), budgetMs: SHUTDOWN_TIMEOUT_MS } }));
    expect(exit.at - signalledAt).toBeLessThan(SHUTDOWN_TIMEOUT_MS);
    expect(exit).toMatchObject({ code: 0, signal: null });
    const names = await readdir(join(dataDir, 'recordings', 'cam1'));
    expect(names).toEqual([expect.stringMatching(/^cam1-\d{8}T\d{9}Z\.webm$/)]);
  });
});
