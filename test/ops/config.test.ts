/**
 * One schema for every option: precedence of flags, environment, file and defaults; `tali config check FILE` with
 * one clear line per problem and its exit codes; and docs/configuration.md's table in step with OPTIONS.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it, onTestFinished } from 'vitest';
import { CONFIG_DOC_PATH, withOptionsTable } from '../../scripts/options-table.ts';
import { main } from '../../src/cli/main.ts';
import { ConfigError, loadConfig } from '../../src/config/config.ts';
import { envOf, flagOf, OPTIONS, type OptionName } from '../../src/config/options.ts';

async function configFile(content: unknown): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tali-config-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'tali.json');
  await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (c: Buffer) => out.push(c));
  stderr.on('data', (c: Buffer) => err.push(c));
  const code = await main(argv, { stdout, stderr });
  return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

describe('configuration', () => {
  it('precedence: flags > environment > file > defaults, per option', async () => {
    const file = await configFile({ mqttPort: 1001, httpPort: 1002, wsPath: '/from-file', record: ['cam1', 'cam2'] });
    const config = loadConfig({
      file,
      env: { TALI_MQTT_PORT: '2001', TALI_HTTP_PORT: '2002', TALI_RECORD_SEGMENT_MS: '' },
      flags: { mqttPort: '3001' },
    });
    expect(config.mqttPort).toBe(3001);
    expect(config.httpPort).toBe(2002);
    expect(config.wsPath).toBe('/from-file');
    expect(config.record).toEqual(['cam1', 'cam2']);
    expect(config.recordSegmentMs).toBe(OPTIONS.recordSegmentMs.default); // empty variable = unset
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('record accepts "*", comma-separated IDs and JSON arrays; the default records nothing', () => {
    expect(loadConfig({}).record).toEqual([]);
    expect(loadConfig({ env: { TALI_RECORD: '*' } }).record).toBe('*');
    expect(loadConfig({ flags: { record: 'cam1, cam-2,cam1' } }).record).toEqual(['cam1', 'cam-2']);
    expect(() => loadConfig({ flags: { record: 'cam 1' } })).toThrow(/record: must be \* or device IDs/);
  });

  it('mediaAddresses takes interfaces and addresses, announceAddresses addresses only', () => {
    expect(loadConfig({}).mediaAddresses).toEqual([]);
    expect(loadConfig({ flags: { mediaAddresses: 'eth0, 192.0.2.1,2001:db8::1' } }).mediaAddresses).toEqual(['eth0', '192.0.2.1', '2001:db8::1']);
    expect(loadConfig({ env: { TALI_ANNOUNCE_ADDRESSES: '203.0.113.7' } }).announceAddresses).toEqual(['203.0.113.7']);
    expect(() => loadConfig({ flags: { announceAddresses: 'eth0' } })).toThrow(/announceAddresses: must be IP addresses/);
    expect(() => loadConfig({ flags: { mediaAddresses: 'eth 0' } })).toThrow(/mediaAddresses: must be interface names or IP addresses/);
  });

  it('every option has a flag and an environment variable derived from its name, a doc and a valid default', () => {
    for (const name of Object.keys(OPTIONS) as OptionName[]) {
      expect(flagOf(name)).toMatch(/^[a-z][a-z0-9-]*$/);
      expect(envOf(name)).toMatch(/^TALI_[A-Z0-9_]+$/);
      expect(OPTIONS[name].doc.length, name).toBeGreaterThan(10);
    }
    expect(() => loadConfig({})).not.toThrow();
  });

  it('config check: a valid file passes with exit 0', async () => {
    const file = await configFile({ mqttPort: 1883, record: '*', recordSegmentMs: 60000, bridgeId: 'edge-1' });
    const { code, stdout, stderr } = await cli('config', 'check', file);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toBe(`${file}: ok (bridge edge-1, MQTT port 1883, HTTP port 8080)\n`);
  });

  it('config check: each unknown key and bad value gives one line naming it, and exit 1', async () => {
    const file = await configFile({
      mqttPort: 70000,
      recordSegmentMS: 60000,
      logLevel: 'loud',
      allowAnonymous: 'yes',
      udpPortRange: '5000-4000',
      iceServers: [{ urls: 'http://stun.example' }],
      record: 'cam 1',
      frobnicate: true,
    });
    const { code, stdout, stderr } = await cli('config', 'check', file);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    const lines = stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(8);
    for (const line of lines) expect(line.startsWith(`${file}: `)).toBe(true);
    const problems = lines.map((l) => l.slice(file.length + 2));
    expect(problems).toEqual([
      `recordSegmentMS: unknown option in ${file} (did you mean recordSegmentMs?)`,
      `frobnicate: unknown option in ${file}`,
      `mqttPort: must be an integer from 0 to 65535 (got 70000 from ${file})`,
      `allowAnonymous: must be true or false (got "yes" from ${file})`,
      `logLevel: must be one of fatal, error, warn, info, debug, trace, silent (got "loud" from ${file})`,
      `iceServers: each server needs urls starting with stun:, stuns:, turn: or turns: (got [{"urls":"http://stun.example"}] from ${file})`,
      `udpPortRange: must be "MIN-MAX" with 1024 ≤ MIN < MAX ≤ 65535 (got "5000-4000" from ${file})`,
      `record: must be * or device IDs separated by commas (each 1–64 of A–Z a–z 0–9 . _ -) (got "cam 1" from ${file})`,
    ]);
  });

  it('config check: not JSON, not an object, a missing file: one line each, exit 1', async () => {
    const broken = await configFile('{"mqttPort": 1883,}');
    const list = await configFile('[1, 2]');
    for (const [file, problem] of [
      [broken, /JSON|property name/],
      [list, /must be a JSON object of options/],
      [join(tmpdir(), 'tali-no-such-dir', 'tali.json'), /ENOENT/],
    ] as const) {
      const { code, stderr } = await cli('config', 'check', file);
      expect(code, file).toBe(1);
      expect(stderr.trimEnd().split('\n'), file).toHaveLength(1);
      expect(stderr).toMatch(problem);
    }
  });

  it('config check: cross-option rules are checked too', async () => {
    const file = await configFile({ tlsCert: '/etc/tali/cert.pem' });
    const { code, stderr } = await cli('config', 'check', file);
    expect(code).toBe(1);
    expect(stderr).toBe(`${file}: tlsCert and tlsKey: give both or neither\n`);
  });

  it('config: usage errors exit 2; help and the options table exit 0', async () => {
    expect((await cli('config')).code).toBe(2);
    expect((await cli('config', 'check')).code).toBe(2);
    expect((await cli('config', 'check', 'a.json', 'b.json')).code).toBe(2);
    expect((await cli('config', 'frobnicate')).code).toBe(2);
    expect((await cli('config', '--help')).code).toBe(0);
    const options = await cli('config', 'options');
    expect(options.code).toBe(0);
    for (const name of Object.keys(OPTIONS)) expect(options.stdout).toContain(`| \`${name}\` |`);
  });

  it('a ConfigError lists every problem at once, with a stable code', () => {
    try {
      loadConfig({ env: { TALI_MQTT_PORT: 'x', TALI_MAX_SESSIONS: '0' } });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).code).toBe('TALI_ERR_CONFIG');
      expect((err as ConfigError).problems).toHaveLength(2);
    }
  });

  it('docs/configuration.md has the current table of options (node_modules/.bin/node scripts/options-table.ts)', async () => {
    const doc = await readFile(CONFIG_DOC_PATH, 'utf8');
    expect(withOptionsTable(doc)).toBe(doc);
  });
});
