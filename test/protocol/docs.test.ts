/**
 * Keeps docs/protocol.md and docs/protocol.schema.json in step with src/protocol: the generated parts must be
 * current, and every JSON example in the document must decode (or fail with the code its marker names).
 *
 * Every ```json block in the document must sit directly under a marker line:
 *   <!-- example: up|down|status|bridge|metrics|viewer-up|viewer-down --> must decode on that channel
 *   <!-- example: up|down|status|bridge invalid TALI_ERR_… --> must be rejected with that code
 */
import { readFileSync } from 'node:fs';
import Schema from 'typebox/schema';
import { OPTIONS } from '../../src/config/options.ts';
import { describe, expect, it } from 'vitest';
import { DOC_PATH, renderSchema, SCHEMA_PATH, withErrorTable } from '../../scripts/gen-schema.ts';
import {
  BYE_REASONS,
  CHANNEL_TYPES,
  decode,
  DEFAULT_MAX_UP_BYTES,
  DEVICE_CHANNELS,
  encodeForDevice,
  ERROR_CODES,
  MAX_CANDIDATE_CHARS,
  MAX_DOWN_BYTES,
  MAX_SDP_CHARS,
  MESSAGE_SCHEMAS,
  parseCandidate,
  ProtocolError,
  Topics,
  type Channel,
  type Message,
  type MessageType,
} from '../../src/protocol/index.ts';

const doc = readFileSync(DOC_PATH, 'utf8');
const MARKER = /^<!-- example: (up|down|status|bridge|metrics|viewer-up|viewer-down)(?: invalid (TALI_ERR_[A-Z_]+))? -->$/;

interface Example {
  line: number;
  channel: Channel;
  invalid: string | undefined;
  text: string;
}

function examples(markdown: string): Example[] {
  const lines = markdown.split('\n');
  const found: Example[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== '```json') continue;
    const marker = MARKER.exec(lines[i - 1] ?? '');
    if (marker === null) throw new Error(`docs/protocol.md:${i + 1}: json block without an example marker above it`);
    const end = lines.indexOf('```', i + 1);
    if (end < 0) throw new Error(`docs/protocol.md:${i + 1}: unterminated json block`);
    found.push({ line: i + 1, channel: marker[1] as Channel, invalid: marker[2], text: lines.slice(i + 1, end).join('\n') });
    i = end;
  }
  return found;
}

/** The text of the section whose heading contains `` `type` ``, up to the next heading. */
function section(markdown: string, type: string): string {
  const start = markdown.search(new RegExp(`^###? .*\`${type}\``, 'm'));
  if (start < 0) throw new Error(`no section for ${type}`);
  const body = markdown.indexOf('\n', start) + 1;
  const next = markdown.slice(body).search(/^##/m);
  return next < 0 ? markdown.slice(start) : markdown.slice(start, body + next);
}

/** The text of the numbered top-level section `## n.`. */
function chapter(markdown: string, n: number): string {
  const start = markdown.indexOf(`\n## ${n}. `);
  const end = markdown.indexOf(`\n## ${n + 1}. `);
  if (start < 0 || end < start) throw new Error(`no section ${n}`);
  return markdown.slice(start, end);
}

/** Every property name in a schema, at any depth (array items included). */
function propertyNames(schema: unknown, into = new Set<string>()): Set<string> {
  if (typeof schema !== 'object' || schema === null) return into;
  const node = schema as { properties?: Record<string, unknown>; items?: unknown; anyOf?: unknown[] };
  for (const [name, child] of Object.entries(node.properties ?? {})) {
    into.add(name);
    propertyNames(child, into);
  }
  for (const child of [node.items, ...(node.anyOf ?? [])].flat()) propertyNames(child, into);
  return into;
}

const all = examples(doc);

describe('generated files', () => {
  it('docs/protocol.schema.json is up to date (node_modules/.bin/node scripts/gen-schema.ts)', () => {
    expect(readFileSync(SCHEMA_PATH, 'utf8')).toBe(renderSchema());
  });

  it('the error table in docs/protocol.md is up to date', () => {
    expect(withErrorTable(doc)).toBe(doc);
  });

  it('docs/protocol.md names every error code', () => {
    for (const code of Object.keys(ERROR_CODES)) expect(doc, code).toContain(`\`${code}\``);
  });

  it('the schema document is JSON Schema 2020-12 with a $def and a oneOf entry per type', () => {
    const schema = JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')) as Record<string, unknown>;
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(typeof schema.$id).toBe('string');
    expect(Object.keys(schema.$defs as object).sort()).toEqual(Object.keys(MESSAGE_SCHEMAS).sort());
    expect((schema.oneOf as unknown[]).length).toBe(Object.keys(MESSAGE_SCHEMAS).length);
    // The draft-07 tuple form is invalid in 2020-12; the generator must have rewritten it.
    expect(JSON.stringify(schema)).not.toMatch(/"additionalItems"|"items":\[/);
  });
});

describe('docs/protocol.md examples', () => {
  it('has examples, each under a marker', () => {
    expect(all.length).toBeGreaterThan(10);
  });

  it('has a valid example of every message type', () => {
    const types = new Set(all.filter((e) => e.invalid === undefined).map((e) => (JSON.parse(e.text) as Message).type));
    expect([...types].sort()).toEqual(Object.keys(MESSAGE_SCHEMAS).sort());
  });

  const validator = Schema.Compile(JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')));

  for (const example of all) {
    const what = `line ${example.line} (${example.channel}${example.invalid ? `, invalid ${example.invalid}` : ''})`;
    it(`${what} decodes as marked`, () => {
      if (example.invalid !== undefined) {
        expect(() => decode(example.channel, example.text)).toThrow(ProtocolError);
        try {
          decode(example.channel, example.text);
        } catch (err) {
          expect((err as ProtocolError).code).toBe(example.invalid);
        }
        return;
      }
      const message = decode(example.channel, example.text);
      expect(validator.Check(message), 'matches docs/protocol.schema.json').toBe(true);
      // What the bridge sends a device must fit the 4 KB rule in its compact wire form.
      if (example.channel === 'down' || example.channel === 'bridge') expect(() => encodeForDevice(message)).not.toThrow();
      if ('sdp' in message) {
        expect(message.sdp, 'SDP lines end in CRLF').not.toMatch(/(^|[^\r])\n/);
        for (const line of message.sdp.split('\r\n').filter((l) => l.startsWith('a=candidate:'))) {
          expect(() => parseCandidate(line), line).not.toThrow();
        }
      }
    });
  }
});

describe('docs/protocol.md text', () => {
  it('documents every field of every message type in its section', () => {
    for (const [type, schema] of Object.entries(MESSAGE_SCHEMAS) as [MessageType, unknown][]) {
      const text = section(doc, type);
      const mentioned = new Set([...text.matchAll(/`([^`]+)`/g)].flatMap((m) => (m[1] as string).split(/[.[\]]+/)));
      for (const name of propertyNames(schema)) expect(mentioned.has(name), `${type}.${name}`).toBe(true);
    }
  });

  it('lists every bye reason', () => {
    const text = section(doc, 'bye');
    for (const reason of BYE_REASONS) expect(text).toContain(`| \`${reason}\` |`);
  });

  it('shows the topics exactly as Topics builds them', () => {
    const t = new Topics('{root}');
    for (const channel of DEVICE_CHANNELS) expect(doc).toContain(`\`${t.device('{deviceId}', channel)}\``);
    expect(doc).toContain(`\`${t.bridge('{bridgeId}')}\``);
    expect(doc).toContain(`\`${t.allBridges()}\``);
  });

  it('lists for each channel exactly the types CHANNEL_TYPES allows', () => {
    const rows = doc.split('\n').filter((line) => line.startsWith('| `{root}/v1/'));
    const rowOf = (suffix: string) => rows.find((row) => row.startsWith(`| \`{root}/v1/${suffix}\``)) ?? '';
    const cells: Record<Channel, string> = {
      up: rowOf('device/{deviceId}/up'),
      down: rowOf('device/{deviceId}/down'),
      status: rowOf('device/{deviceId}/status'),
      bridge: rowOf('bridge/{bridgeId}/status'),
      metrics: rowOf('device/{deviceId}/metrics'),
      'viewer-up': rowOf('viewer/{viewerId}/{clientId}/up'),
      'viewer-down': rowOf('viewer/{viewerId}/{clientId}/down'),
    };
    for (const [channel, types] of Object.entries(CHANNEL_TYPES) as [Channel, readonly string[]][]) {
      const listed = [...(cells[channel].split('|')[3] ?? '').matchAll(/`([a-z-]+)`/g)].map((m) => m[1]);
      expect(listed.sort(), channel).toEqual([...types].sort());
    }
  });

  it('states the size limits of src/protocol/limits.ts, and the broker\'s packet limit', () => {
    const text = chapter(doc, 10);
    for (const limit of [MAX_DOWN_BYTES, DEFAULT_MAX_UP_BYTES, MAX_CANDIDATE_CHARS, MAX_SDP_CHARS, OPTIONS.maxPacketBytes.default]) {
      expect(text, String(limit)).toContain(String(limit));
    }
    expect(text).toContain('`maxPacketBytes`');
  });

  it('tells a viewer how to connect (section 16): CONNECT fields, its topics as Topics builds them, no `error` sent', () => {
    const text = chapter(doc, 16);
    expect(text).toContain('| CONNECT field | Value |');
    for (const field of ['Client ID', 'User name', 'Password', 'Will topic / QoS / retain', 'Will payload']) expect(text).toContain(`| ${field} |`);
    const t = new Topics('{root}');
    for (const topic of [t.viewer('{viewerId}', '{clientId}', 'up'), t.viewer('{viewerId}', '{clientId}', 'down'), t.allDevices('status'), t.allBridges()]) {
      expect(text, topic).toContain(`\`${topic}\``);
    }
    expect(CHANNEL_TYPES['viewer-up']).not.toContain('error');
    expect(text).toContain('A viewer never sends `error`');
  });
});
