/**
 * tali nodes on a Redis Cluster (issue 17, item 4): three primaries with a replica each (Debian's redis-server,
 * slots assigned by redis-cli), tali configured with `redis-cluster://…`. A camera on node A streams to a viewer on
 * node B; then the primary that holds the slot of a camera's card not yet published is killed (SIGKILL): once its
 * replica is promoted, that camera connects to A, its card reaches B, a viewer on B watches it through A, and a
 * fresh subscriber reads both retained cards (a wildcard lookup scans every primary). No restart, the first viewer
 * keeps its video and session, nothing is marked offline. Times are printed. With every Redis node gone, a node says
 * so on /readyz and SIGTERM still exits within shutdownTimeoutMs.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it, onTestFinished } from 'vitest';
import { SimulatedCamera } from '../../devices/camera/simulated-camera.ts';
import { nodeConnector } from '../../src/client/node-connector.ts';
import { NodeViewer } from '../../src/viewer/node-viewer.ts';
import { primaryOf, replicationOf, startRedisCluster } from '../helpers/redis-ha.ts';
import { describeWith } from '../helpers/services.ts';
import { startTali } from '../helpers/tali-process.ts';
import { eventually, until, withTimeout } from '../helpers/wait.ts';
import { FAST_BACKOFF, next } from '../devices/helpers.ts';
import { startNode, streamAcrossNodes } from './across-nodes.ts';

const SHUTDOWN_TIMEOUT_MS = 5000;


describeWith(['redis-server', 'redis-cli'], 'tali nodes on a Redis Cluster', () => {
  it('serves across nodes, and goes on by itself when a primary is killed and its replica takes over', { timeout: 90_000 }, async () => {
    const group = await startRedisCluster();
    const dataDir = await mkdtemp(join(tmpdir(), 'tali-redis-cluster-'));
    onTestFinished(() => rm(dataDir, { recursive: true, force: true }));
    const { a, b, cam2, password, camera, viewer, watch, firstSession, offline } = await streamAcrossNodes(group.clusterUrl, dataDir);

    // aedes-persistence-redis keeps each retained message under its own key in a Redis Cluster.
    const victimPort = await primaryOf(group.nodes[0]!.port, `retained:${encodeURIComponent('tali/v1/device/cam2/status')}`);
    const victim = group.nodes.find((node) => node.port === victimPort)!;
    let replicaPort = 0;
    for (const node of group.nodes) if ((await replicationOf(node.port)).includes(`master_port:${victimPort}`)) replicaPort = node.port;
    expect(replicaPort).not.toBe(0);
    const killedAt = performance.now();
    await victim.kill();
    await eventually(async () => (await replicationOf(replicaPort)).includes('role:master'), 20_000, 'the replica promoted');
    const promotedAt = performance.now();

    const packets = viewer.summary().packets;
    await until(() => viewer.summary().packets >= packets + 30, 10_000, 'more video for the viewer after the failover');
    expect(watch.sessionId).toBe(firstSession);

    const camera2 = new SimulatedCamera({ deviceId: 'cam2', secret: cam2, connect: nodeConnector(a.mqttUrl), backoff: FAST_BACKOFF });
    onTestFinished(() => camera2.stop());
    await camera2.start();
    await next(camera2.keeper, 'session-connected', () => true, 20_000);
    await until(() => viewer.client.devices.get('cam2')?.status?.state === 'online', 10_000, "the new camera's card on node B");
    const cardAt = performance.now();
    const viewer2 = new NodeViewer({ url: b.mqttUrl, user: 'alice', password, deviceId: 'cam2', backoff: FAST_BACKOFF });
    onTestFinished(() => viewer2.stop());
    await viewer2.start();
    await until(() => viewer2.summary().keyframes > 0 && viewer2.summary().packets >= 30, 20_000, "video from A's new camera to a viewer on B");
    expect(a.answerer.sessions.has('cam2') && !b.answerer.sessions.has('cam2')).toBe(true);
    // A fresh subscriber on the other node reads both retained cards, cam2's from the promoted replica.
    const late = new NodeViewer({ url: b.mqttUrl, user: 'alice', password, deviceId: 'cam1', backoff: FAST_BACKOFF });
    onTestFinished(() => late.stop());
    await late.start();
    await until(
      () => late.client.devices.get('cam1')?.status?.state === 'online' && late.client.devices.get('cam2')?.status?.state === 'online',
      10_000,
      'both retained cards for a new subscriber',
    );

    expect(offline).toEqual([]);
    expect(camera.keeper.counters.opened).toBe(1);
    console.info(JSON.stringify({ redisClusterFailover: { killToPromotedMs: Math.round(promotedAt - killedAt), killToNewCardOnOtherNodeMs: Math.round(cardAt - killedAt) } }));
  });

  it('the whole Redis Cluster gone: the node says so on /readyz, and SIGTERM exits within shutdownTimeoutMs', { timeout: 60_000 }, async () => {
    const group = await startRedisCluster();
    const dataDir = await mkdtemp(join(tmpdir(), 'tali-redis-cluster-'));
    onTestFinished(() => rm(dataDir, { recursive: true, force: true }));
    const tali = startTali([
      ...['--cluster', group.clusterUrl, '--host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--data-dir', dataDir],
      ...['--shutdown-timeout-ms', String(SHUTDOWN_TIMEOUT_MS), '--log-level', 'info'],
    ]);
    const { httpPort } = await tali.ready();
    const readyz = async () => ((await (await fetch(`http://127.0.0.1:${httpPort}/readyz`)).json()) as { ready: boolean; reason?: string });
    expect((await readyz()).ready).toBe(true);
    await Promise.all(group.nodes.map((node) => node.kill()));
    await eventually(async () => !(await readyz()).ready, 15_000, 'the node to say the cluster backend is unavailable');
    const signalledAt = performance.now();
    tali.child.kill('SIGTERM');
    const exit = await withTimeout(tali.exited, SHUTDOWN_TIMEOUT_MS + 10_000, 'tali to exit');
    expect(exit.at - signalledAt).toBeLessThan(SHUTDOWN_TIMEOUT_MS);
    expect(exit).toMatchObject({ code: 0, signal: null });
  });
});
