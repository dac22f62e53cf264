/**
 * docker-compose.yml and the Dockerfile, checked structurally (no Docker engine runs on these machines): they parse,
 * the files they reference exist, and their ports, paths, user and healthcheck agree with the bridge's defaults in
 * src/config/options.ts. The healthcheck command itself runs against a real bridge.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { envOf, OPTIONS } from '../../src/config/options.ts';
import { startBridge } from '../helpers/bridge.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);

interface Instruction {
  op: string;
  args: string;
}

/** Dockerfile instructions with line continuations joined and comments dropped. */
function dockerfile(): Instruction[] {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [op, ...rest] = line.split(/\s+/);
      return { op: op!.toUpperCase(), args: rest.join(' ') };
    });
}

interface Service {
  build?: string | { context: string; dockerfile?: string };
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  stop_grace_period?: string;
  profiles?: string[];
}

const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')) as { services: Record<string, Service>; volumes: Record<string, unknown> };
const instructions = dockerfile();
const args = (op: string) => instructions.filter((i) => i.op === op).map((i) => i.args);
const defaults = { mqtt: OPTIONS.mqttPort.default, http: OPTIONS.httpPort.default, mqtts: OPTIONS.mqttsPort.default };

describe('Dockerfile', () => {
  it('builds from a Node ≥ 22.18 image, installs runtime dependencies only, and copies files that exist', () => {
    const from = args('FROM');
    expect(from).toHaveLength(1);
    expect(Number(/^node:(\d+)/.exec(from[0]!)?.[1])).toBeGreaterThanOrEqual(24);
    expect(args('RUN').join('\n')).toMatch(/npm ci --omit=dev/);
    // The dashboard's stills are decoded by ffmpeg (option ffmpegPath, default `ffmpeg` on the PATH).
    expect(args('RUN').join('\n')).toMatch(/apt-get install [^&]*\bffmpeg\b/);
    for (const copy of args('COPY')) {
      const sources = copy.split(/\s+/).filter((a) => !a.startsWith('--')).slice(0, -1);
      for (const source of sources) expect(existsSync(join(ROOT, source)), `COPY ${source}`).toBe(true);
    }
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n');
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'data']));
  });

  it('runs as a non-root user, bin/tali.js start, with the data directory on a volume', () => {
    const user = args('USER');
    expect(user).toHaveLength(1);
    expect(['root', '0', '0:0']).not.toContain(user[0]);
    const order = instructions.map((i) => i.op);
    expect(order.indexOf('USER')).toBeLessThan(order.indexOf('ENTRYPOINT'));
    expect(JSON.parse(args('ENTRYPOINT')[0]!)).toEqual(['node', 'bin/tali.js']);
    expect(JSON.parse(args('CMD')[0]!)).toEqual(['start']);
    expect(existsSync(join(ROOT, 'bin/tali.js'))).toBe(true);
    const env = args('ENV').join(' ');
    expect(env).toContain(`${envOf('dataDir')}=/data`);
    expect(args('VOLUME')[0]).toContain('/data');
  });

  it('exposes the default ports and checks /healthz on the HTTP port', () => {
    const exposed = args('EXPOSE').join(' ').split(/\s+/);
    for (const port of Object.values(defaults)) expect(exposed).toContain(String(port));
    const udp = /TALI_UDP_PORT_RANGE=(\d+)-(\d+)/.exec(args('ENV').join(' '));
    expect(exposed).toContain(`${udp?.[1]}-${udp?.[2]}/udp`);
    const healthcheck = args('HEALTHCHECK')[0]!;
    expect(healthcheck).toContain('/healthz');
    expect(healthcheck).toContain(`${envOf('httpPort')} || ${defaults.http}`);
    expect(args('STOPSIGNAL')).toEqual(['SIGTERM']);
  });
});

describe('docker-compose.yml', () => {
  const { bridge, redis } = compose.services;
  const cameras = Object.entries(compose.services).filter(([, s]) => s.command?.[0] === 'camera');
  const nodes = Object.entries(compose.services).filter(([, s]) => s.image === bridge?.image && s.command === undefined);

  it('has the bridge built from this repository, Redis, and two simulated cameras', () => {
    expect(bridge?.build).toBe('.');
    expect(existsSync(join(ROOT, 'Dockerfile'))).toBe(true);
    expect(redis?.image).toMatch(/^redis:/);
    expect(cameras).toHaveLength(2);
    expect(new Set(cameras.map(([, s]) => s.command![s.command!.indexOf('--id') + 1])).size).toBe(2);
  });

  it("publishes the bridge's default ports and its media range, and keeps its data in a named volume", () => {
    expect(bridge!.ports).toEqual(
      expect.arrayContaining([`${defaults.mqtt}:${defaults.mqtt}`, `${defaults.http}:${defaults.http}`]),
    );
    const range = bridge!.environment![envOf('udpPortRange')];
    expect(bridge!.ports).toContain(`${range}:${range}/udp`);
    expect(bridge!.volumes).toContain('tali-data:/data');
    expect(compose.volumes).toHaveProperty('tali-data');
    for (const name of Object.keys(bridge!.environment!)) {
      expect(Object.keys(OPTIONS).map((o) => envOf(o as keyof typeof OPTIONS)), name).toContain(name);
    }
  });

  it('health-checks /healthz on the default HTTP port, and lets a SIGTERM drain finish before SIGKILL', () => {
    const test = bridge!.healthcheck!.test.join(' ');
    expect(test).toContain(`http://127.0.0.1:${defaults.http}/healthz`);
    const grace = Number(/^(\d+)s$/.exec(bridge!.stop_grace_period ?? '')?.[1]) * 1000;
    expect(grace).toBeGreaterThan(OPTIONS.shutdownTimeoutMs.default);
  });

  it('cameras reach a bridge node by its service name on the default MQTT port, once it is healthy', () => {
    const names = nodes.map(([name]) => name);
    for (const [name, camera] of cameras) {
      expect(camera.image, name).toBe(bridge!.image);
      const url = camera.command![camera.command!.indexOf('--url') + 1];
      const node = /^mqtt:\/\/([\w-]+):(\d+)$/.exec(url ?? '');
      expect(names, name).toContain(node?.[1]);
      expect(Number(node?.[2]), name).toBe(defaults.mqtt);
      expect(camera.depends_on?.[node![1]!]?.condition, name).toBe('service_healthy');
      expect(camera.volumes, name).toContain('tali-data:/data');
    }
  });

  it('runs two nodes in cluster mode on the Redis service, each with its own ID, host ports and media ports', () => {
    expect(nodes.map(([name]) => name)).toEqual(['bridge', 'bridge-2']);
    expect(redis?.profiles).toBeUndefined(); // always on: the nodes need it
    expect(redis?.command?.join(' ')).toContain('--appendonly yes');
    const env = (s: Service) => s.environment!;
    const ids = nodes.map(([, s]) => env(s)[envOf('bridgeId')]);
    expect(new Set(ids).size).toBe(2);
    const ranges: number[][] = [];
    const hostPorts = new Set<string>();
    for (const [name, node] of nodes) {
      expect(env(node)[envOf('cluster')], name).toBe('redis://redis:6379');
      expect(node.depends_on?.redis?.condition, name).toBe('service_healthy');
      expect(node.volumes, name).toContain('tali-data:/data');
      for (const key of Object.keys(env(node))) expect(Object.keys(OPTIONS).map((o) => envOf(o as keyof typeof OPTIONS)), key).toContain(key);
      const range = env(node)[envOf('udpPortRange')]!;
      expect(node.ports, name).toContain(`${range}:${range}/udp`);
      ranges.push(range.split('-').map(Number));
      for (const port of node.ports ?? []) {
        const host = port.split(':')[0]!;
        expect(hostPorts.has(host), `${name} host port ${host}`).toBe(false);
        hostPorts.add(host);
      }
      expect(node.ports, name).toEqual(expect.arrayContaining([expect.stringMatching(new RegExp(`:${defaults.mqtt}$`)), expect.stringMatching(new RegExp(`:${defaults.http}$`))]));
    }
    const [first, second] = ranges as [number[], number[]];
    expect(first[1]! < second[0]! || second[1]! < first[0]!).toBe(true); // media ranges do not overlap
    // the second node starts after the first, which creates the admin identity in the shared volume
    expect(compose.services['bridge-2']?.depends_on?.bridge?.condition).toBe('service_healthy');
  });

  it("the healthcheck command answers 0 against a running bridge and 1 once it is gone", async () => {
    const tb = await startBridge();
    const [, , , script] = bridge!.healthcheck!.test as [string, string, string, string]; // CMD node -e SCRIPT
    const pointed = script.replace(`:${defaults.http}/`, `:${tb.bridge.httpPort}/`);
    await expect(run(process.execPath, ['-e', pointed])).resolves.toBeDefined();
    // The Dockerfile's variant reads the port from the environment.
    const dockerfileScript = JSON.parse(args('HEALTHCHECK')[0]!.replace(/^.*?CMD\s+/, '')) as string[];
    const env = { ...process.env, [envOf('httpPort')]: String(tb.bridge.httpPort) };
    await expect(run(process.execPath, [dockerfileScript[1]!, dockerfileScript[2]!], { env })).resolves.toBeDefined();
    await tb.bridge.close();
    await expect(run(process.execPath, ['-e', pointed])).rejects.toMatchObject({ code: 1 });
  });
});
