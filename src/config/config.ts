/**
 * Configuration, validated once at the edge and frozen. Precedence: flags > environment > config file > defaults.
 * Every problem is reported at once, each with the option, where the value came from and what is expected.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import type { IceServer } from '../protocol/messages.ts';
import { assertValidLibpeerPrefix, ID_PATTERN } from '../protocol/topics.ts';
import { envOf, flagOf, OPTIONS, type OptionName, type OptionSpec } from './options.ts';

type ValueOf<S extends OptionSpec> = S extends { type: 'integer' }
  ? number
  : S extends { type: 'boolean' }
    ? boolean
    : S extends { type: 'portRange' }
      ? readonly [number, number] | null
      : S extends { type: 'iceServers' }
        ? readonly IceServer[]
        : S extends { type: 'idList' }
          ? '*' | readonly string[]
          : S extends { type: 'addressList' } | { type: 'turnUrls' }
            ? readonly string[]
            : string;

export type BridgeConfig = { readonly [K in OptionName]: ValueOf<(typeof OPTIONS)[K]> };

export class ConfigError extends Error {
  readonly code = 'TALI_ERR_CONFIG';
  readonly problems: readonly string[];
  constructor(problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export interface ConfigSources {
  /** Values from flags, already keyed by option name (strings, or true for bare boolean flags). */
  flags?: Partial<Record<OptionName, string | boolean>>;
  env?: Record<string, string | undefined>;
  /** Path of a JSON config file. */
  file?: string | undefined;
  /** Values given programmatically (tests, embedding); same precedence as flags. */
  overrides?: Partial<Record<OptionName, unknown>>;
}

export function loadConfig(sources: ConfigSources = {}): BridgeConfig {
  const problems: string[] = [];
  const fileValues = sources.file ? readConfigFile(sources.file, problems) : {};
  const result: Record<string, unknown> = {};
  for (const name of Object.keys(OPTIONS) as OptionName[]) {
    const spec: OptionSpec = OPTIONS[name];
    const envValue = sources.env?.[envOf(name)];
    const candidates: [unknown, string][] = [
      [sources.overrides?.[name], 'options'],
      [sources.flags?.[name], `--${flagOf(name)}`],
      [envValue === '' ? undefined : envValue, envOf(name)],
      [fileValues[name], sources.file ?? 'file'],
    ];
    const found = candidates.find(([value]) => value !== undefined);
    if (found === undefined) {
      result[name] = spec.default;
      continue;
    }
    const [raw, from] = found;
    const parsed = parseValue(spec, raw);
    if (typeof parsed === 'object' && parsed !== null && 'problem' in parsed) {
      problems.push(`${name}: ${parsed.problem} (got ${JSON.stringify(raw)?.slice(0, 80)} from ${from})`);
    } else {
      result[name] = parsed;
    }
  }
  checkTogether(result, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  if (result.bridgeId === '') result.bridgeId = defaultBridgeId();
  return Object.freeze(result) as BridgeConfig;
}

/** Validates a config file without starting anything (`tali config check FILE`). */
export function checkConfigFile(file: string): BridgeConfig {
  return loadConfig({ file });
}

function readConfigFile(file: string, problems: string[]): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    problems.push(`${file}: ${(err as Error).message}`);
    return {};
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    problems.push(`${file}: must be a JSON object of options`);
    return {};
  }
  for (const key of Object.keys(value)) {
    if (Object.hasOwn(OPTIONS, key)) continue;
    const near = nearestOption(key);
    problems.push(`${key}: unknown option in ${file}${near ? ` (did you mean ${near}?)` : ''}`);
  }
  return value as Record<string, unknown>;
}

type Parsed = unknown | { problem: string };

function parseValue(spec: OptionSpec, raw: unknown): Parsed {
  switch (spec.type) {
    case 'string': {
      if (typeof raw !== 'string') return { problem: 'must be a string' };
      if (spec.pattern && !spec.pattern.test(raw)) return { problem: `must be ${spec.hint ?? spec.pattern}` };
      const problem = spec.check?.(raw);
      return problem === undefined ? raw : { problem };
    }
    case 'integer': {
      const n = typeof raw === 'string' && /^-?\d+$/.test(raw.trim()) ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < spec.min || n > spec.max) {
        return { problem: `must be an integer from ${spec.min} to ${spec.max}${spec.unit ? ` (${spec.unit})` : ''}` };
      }
      return n;
    }
    case 'boolean': {
      if (typeof raw === 'boolean') return raw;
      if (raw === 'true' || raw === '1') return true;
      if (raw === 'false' || raw === '0') return false;
      return { problem: 'must be true or false' };
    }
    case 'enum':
      return typeof raw === 'string' && spec.values.includes(raw) ? raw : { problem: `must be one of ${spec.values.join(', ')}` };
    case 'portRange':
      return parsePortRange(raw);
    case 'iceServers':
      return parseIceServers(raw);
    case 'idList':
      return parseIdList(raw);
    case 'addressList':
      return parseAddressList(raw, spec.interfaces);
    case 'turnUrls':
      return parseTurnUrls(raw);
  }
}

/** "192.0.2.1,2001:db8::1" or a JSON array; with `interfaces`, names like eth0 too (resolved at start). */
function parseAddressList(raw: unknown, interfaces: boolean): Parsed {
  const list = typeof raw === 'string' ? raw.split(',').map((s) => s.trim()).filter((s) => s !== '') : raw;
  const ok = (entry: unknown) => typeof entry === 'string' && (isIP(entry) !== 0 || (interfaces && /^[A-Za-z0-9_.-]{1,15}$/.test(entry)));
  if (!Array.isArray(list) || list.length > 16 || !list.every(ok)) {
    return { problem: `must be ${interfaces ? 'interface names or ' : ''}IP addresses separated by commas (at most 16)` };
  }
  return Object.freeze([...new Set(list as string[])]);
}

/** "*" (every device), "" (none), "cam1,cam2", or a JSON array of IDs. */
function parseIdList(raw: unknown): Parsed {
  if (raw === '*' || (Array.isArray(raw) && raw.length === 1 && raw[0] === '*')) return '*';
  const list = typeof raw === 'string' ? raw.split(',').map((s) => s.trim()).filter((s) => s !== '') : raw;
  if (!Array.isArray(list) || !list.every((id) => typeof id === 'string' && ID_PATTERN.test(id))) {
    return { problem: 'must be * or device IDs separated by commas (each 1–64 of A–Z a–z 0–9 . _ -)' };
  }
  return Object.freeze([...new Set(list as string[])]);
}

/** "turn:a:3478?transport=udp,turns:a:5349" or a JSON array of such URLs (RFC 7065). */
function parseTurnUrls(raw: unknown): Parsed {
  const list = typeof raw === 'string' ? raw.split(',').map((s) => s.trim()).filter((s) => s !== '') : raw;
  if (!Array.isArray(list) || list.length > 8 || !list.every((u) => typeof u === 'string' && u.length <= 256 && /^turns?:[^\s,]+$/.test(u))) {
    return { problem: 'must be at most 8 turn: or turns: URLs separated by commas' };
  }
  return Object.freeze([...list] as string[]);
}

function parsePortRange(raw: unknown): Parsed {
  if (raw === null || raw === '') return null;
  const pair =
    typeof raw === 'string' ? raw.split('-').map((s) => (/^\d+$/.test(s.trim()) ? Number(s) : NaN)) : Array.isArray(raw) ? raw : [];
  const [min, max] = pair as number[];
  const ok =
    pair.length === 2 && Number.isInteger(min) && Number.isInteger(max) && min! >= 1024 && max! <= 65535 && min! < max!;
  // werift needs two distinct ports at least: "Minimum port and Maximum port must not be the same value".
  return ok ? ([min, max] as const) : { problem: 'must be "MIN-MAX" with 1024 ≤ MIN < MAX ≤ 65535' };
}

function parseIceServers(raw: unknown): Parsed {
  let value = raw;
  if (typeof raw === 'string') {
    const text = raw.trim();
    if (text === '') return [];
    try {
      value = text.startsWith('[') ? JSON.parse(text) : text.split(',').map((urls) => ({ urls: urls.trim() }));
    } catch {
      return { problem: 'must be a JSON array or comma-separated stun:/turn: URLs' };
    }
  }
  if (!Array.isArray(value) || value.length > 8) return { problem: 'must be a list of at most 8 servers' };
  for (const server of value as unknown[]) {
    const urls = (server as { urls?: unknown })?.urls;
    const list = Array.isArray(urls) ? urls : [urls];
    if (list.length === 0 || !list.every((u) => typeof u === 'string' && /^(stun|stuns|turn|turns):\S+$/.test(u))) {
      return { problem: 'each server needs urls starting with stun:, stuns:, turn: or turns:' };
    }
  }
  return value as IceServer[];
}

/** The option a misspelt key most likely meant: same letters ignoring case, dashes and underscores, or 2 edits away. */
function nearestOption(key: string): string | undefined {
  const flat = (s: string) => s.toLowerCase().replace(/[-_]/g, '');
  let best: [string, number] | undefined;
  for (const name of Object.keys(OPTIONS)) {
    const d = flat(name) === flat(key) ? 0 : editDistance(flat(name), flat(key));
    if (d <= 2 && (best === undefined || d < best[1])) best = [name, d];
  }
  return best?.[0];
}

function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min((row[j] as number) + 1, (next[j - 1] as number) + 1, (row[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length] as number;
}

function checkTogether(config: Record<string, unknown>, problems: string[]): void {
  if (Boolean(config.tlsCert) !== Boolean(config.tlsKey)) problems.push('tlsCert and tlsKey: give both or neither');
  // A payload at the limit must still arrive to be refused with TALI_ERR_PAYLOAD_TOO_LARGE, not cut the connection.
  if ((config.maxPacketBytes as number) < (config.maxMessageBytes as number) + 1024) problems.push('maxPacketBytes: must be at least maxMessageBytes + 1024');
  for (const prefix of libpeerPrefixes(String(config.libpeerPrefixes ?? ''))) {
    try {
      assertValidLibpeerPrefix(prefix);
    } catch (err) {
      problems.push(`libpeerPrefixes: ${(err as Error).message}`);
    }
  }
  checkTurn(config, problems);
}

/** The `libpeerPrefixes` option as a list. */
export function libpeerPrefixes(option: string): string[] {
  return option === '' ? [] : option.split(',');
}

function checkTurn(config: Record<string, unknown>, problems: string[]): void {
  // A value that failed to parse is missing here: its own problem is reported already.
  const secret = typeof config.turnSecret === 'string' && config.turnSecret !== '';
  const urls = ((config.turnUrls as readonly string[] | undefined) ?? []).length > 0;
  if (secret && !urls) problems.push('turnSecret: give turnUrls too (the TURN server the credentials are for)');
  if (urls && !secret) problems.push('turnUrls: give turnSecret too (static TURN credentials go in iceServers instead)');
  const staticTurn = ((config.iceServers as readonly IceServer[] | undefined) ?? []).some(
    (s) => s.username !== undefined && (Array.isArray(s.urls) ? s.urls : [s.urls]).some((u: string) => /^turns?:/.test(u)),
  );
  const relay = config.iceTransportPolicy === 'relay' || config.relayDevices === '*' || ((config.relayDevices as readonly string[] | undefined) ?? []).length > 0;
  if (relay && !secret && !staticTurn) {
    problems.push('iceTransportPolicy/relayDevices: relay-only needs a TURN server (turnSecret and turnUrls, or a turn: entry with credentials in iceServers)');
  }
}

function defaultBridgeId(): string {
  const host = hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 56);
  return `bridge-${host || 'local'}`;
}
