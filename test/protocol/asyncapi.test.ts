/**
 * docs/protocol.asyncapi.yaml: current (regenerated from src/protocol by scripts/gen-schema.ts), valid for the
 * maintained AsyncAPI parser (@asyncapi/parser, which runs the AsyncAPI 3.0 JSON Schema and its Spectral rules), and
 * in agreement with what the hand-written protocol document says per topic: its messages, QoS and retain flag.
 */
import { Parser, type AsyncAPIDocumentInterface } from '@asyncapi/parser';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { ASYNCAPI_PATH, renderAsyncApi } from '../../scripts/asyncapi.ts';
import { DOC_PATH, SCHEMA_PATH } from '../../scripts/gen-schema.ts';
import { MESSAGE_SCHEMAS, type MessageType } from '../../src/protocol/messages.ts';
import { VERSION } from '../../src/version.ts';

const text = readFileSync(fileURLToPath(ASYNCAPI_PATH), 'utf8');
let document: AsyncAPIDocumentInterface;
let diagnostics: { severity: number; code: string | number; message: string }[];

beforeAll(async () => {
  const parsed = await new Parser().parse(text);
  diagnostics = parsed.diagnostics;
  if (parsed.document === undefined) throw new Error(`not parsed: ${JSON.stringify(parsed.diagnostics, null, 1)}`);
  document = parsed.document;
});

/** The topic table of docs/protocol.md §2: address → [types listed, QoS, retained?]. */
function topicTable(): Map<string, { types: string[]; qos: number; retained: boolean }> {
  const rows = readFileSync(DOC_PATH, 'utf8').split('\n').filter((line) => line.startsWith('| `{root}/v1/'));
  return new Map(
    rows.map((row) => {
      const cells = row.split('|').map((c) => c.trim());
      const address = cells[1]!.replace(/`/g, '');
      return [address, { types: [...cells[3]!.matchAll(/`([a-z-]+)`/g)].map((m) => m[1]!), qos: Number(cells[4]), retained: cells[5] === 'yes' }];
    }),
  );
}

describe('docs/protocol.asyncapi.yaml', () => {
  it('is up to date (npm run docs)', () => {
    expect(text).toBe(renderAsyncApi(VERSION));
  });

  it('is a valid AsyncAPI 3.0 document: @asyncapi/parser reports no error or warning', () => {
    expect(document.version()).toBe('3.0.0');
    // Severity 0 = error, 1 = warning; 2 (information) is only "3.1.0 exists".
    expect(diagnostics.filter((d) => d.severity < 2)).toEqual([]);
  });

  it('has each channel of the protocol, with the messages, QoS and retain flag docs/protocol.md gives its topic', () => {
    const table = topicTable();
    const channels = document.channels().all();
    expect(channels.map((c) => c.address()).sort()).toEqual([...table.keys()].sort());
    for (const channel of channels) {
      const row = table.get(channel.address()!)!;
      expect(channel.messages().all().map((m) => m.name()).sort(), channel.address()!).toEqual([...row.types].sort());
      const operations = channel.operations().all();
      expect(operations).toHaveLength(1);
      const mqtt = operations[0]!.bindings().get('mqtt')?.value() as { qos: number; retain: boolean };
      expect(mqtt, channel.address()!).toMatchObject({ qos: row.qos, retain: row.retained });
    }
  });

  it('carries the same payload schemas as docs/protocol.schema.json (both come from MESSAGE_SCHEMAS)', () => {
    const jsonSchema = JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')) as { $defs: Record<string, { required?: string[]; properties: object }> };
    const messages = document.components().messages().all();
    expect(messages.map((m) => m.name()).sort()).toEqual(Object.keys(MESSAGE_SCHEMAS).sort());
    for (const message of messages) {
      const type = message.name() as MessageType;
      const payload = message.payload()!.json() as { required?: string[]; properties: Record<string, unknown> };
      // The parser adds its own `x-parser-*` keys; compare what a validator reads.
      const strip = (value: unknown): unknown => JSON.parse(JSON.stringify(value, (key, v: unknown) => (key.startsWith('x-parser-') ? undefined : v)));
      expect(strip(payload), type).toEqual(JSON.parse(JSON.stringify(MESSAGE_SCHEMAS[type])));
      expect(payload.required, type).toEqual(jsonSchema.$defs[type]!.required);
      expect(Object.keys(payload.properties), type).toEqual(Object.keys(jsonSchema.$defs[type]!.properties));
    }
  });
});
