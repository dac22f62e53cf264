/**
 * Generates the parts of the protocol documentation that must not drift from src/protocol:
 *
 *   docs/protocol.schema.json   JSON Schema 2020-12 of every message, from MESSAGE_SCHEMAS
 *   docs/protocol.md            the error-code table between the `generated:error-codes` markers, from ERROR_CODES
 *   docs/protocol.asyncapi.yaml AsyncAPI 3.0 from the same schemas, channels and topics (./asyncapi.ts)
 *
 * Usage: node_modules/.bin/node scripts/gen-schema.ts [--check]
 * With --check nothing is written; the exit status is 1 if any of them is out of date (for CI).
 *
 * The render functions are exported so that test/protocol/docs.test.ts compares in-process without writing files.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES } from '../src/protocol/errors.ts';
import { CHANNEL_TYPES, MESSAGE_SCHEMAS, type Channel, type MessageType } from '../src/protocol/messages.ts';
import { PROTOCOL_VERSION } from '../src/protocol/topics.ts';
import { VERSION } from '../src/version.ts';
import { ASYNCAPI_PATH, renderAsyncApi } from './asyncapi.ts';
import { whereSent } from './protocol-channels.ts';

export const SCHEMA_PATH = fileURLToPath(new URL('../docs/protocol.schema.json', import.meta.url));
export const DOC_PATH = fileURLToPath(new URL('../docs/protocol.md', import.meta.url));

const TABLE_BEGIN = '<!-- generated:error-codes by scripts/gen-schema.ts; do not edit -->';
const TABLE_END = '<!-- /generated:error-codes -->';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export function buildSchemaDocument(): { [key: string]: Json } {
  const defs: { [key: string]: Json } = {};
  for (const [type, schema] of Object.entries(MESSAGE_SCHEMAS) as [MessageType, unknown][]) {
    // A JSON round trip keeps exactly what a JSON Schema consumer would see (TypeBox may carry symbols/functions).
    const plain = toDraft2020(JSON.parse(JSON.stringify(schema)) as Json);
    if (!isObject(plain)) throw new TypeError(`schema of ${type} is not an object`);
    const own = typeof plain.description === 'string' ? `${plain.description}. ` : '';
    const { title: _title, description: _description, ...rest } = plain;
    defs[type] = { title: type, description: `${own}Sent as: ${channelsOf(type).join('; ')}.`, ...rest };
  }
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: `urn:tali:protocol:v${PROTOCOL_VERSION}`,
    title: `tali protocol v${PROTOCOL_VERSION} message`,
    description:
      'One MQTT payload (UTF-8 JSON object) of the tali MQTT ⇄ WebRTC signaling protocol. Receivers ignore unknown ' +
      'fields. Generated from src/protocol/messages.ts by scripts/gen-schema.ts; see docs/protocol.md.',
    $defs: defs,
    oneOf: Object.keys(defs).map((type) => ({ $ref: `#/$defs/${type}` })),
  };
}

export function renderSchema(): string {
  return `${JSON.stringify(buildSchemaDocument(), null, 2)}\n`;
}

function channelsOf(type: MessageType): string[] {
  return (Object.entries(CHANNEL_TYPES) as [Channel, readonly string[]][])
    .filter(([, types]) => types.includes(type))
    .map(([channel]) => whereSent(channel));
}

/**
 * TypeBox writes tuples in the draft-07 form (`items: [...]`, `additionalItems: false`); 2020-12 spells that
 * `prefixItems: [...]`, `items: false`, and a 2020-12 validator would reject the array-valued `items`.
 */
function toDraft2020(node: Json): Json {
  if (Array.isArray(node)) return node.map(toDraft2020);
  if (!isObject(node)) return node;
  const out: { [key: string]: Json } = {};
  for (const [key, value] of Object.entries(node)) out[key] = toDraft2020(value);
  if (Array.isArray(out.items)) {
    const { items, additionalItems, ...rest } = out;
    return { ...rest, prefixItems: items, ...(additionalItems === undefined ? {} : { items: additionalItems }) };
  }
  return out;
}

function isObject(value: Json): value is { [key: string]: Json } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The error-code table as it appears in docs/protocol.md, markers included. */
export function renderErrorTable(): string {
  const rows = Object.entries(ERROR_CODES).map(([code, { retry, text }]) => `| \`${code}\` | ${retry} | ${text} |`);
  return [TABLE_BEGIN, '| Code | Retry | Meaning |', '|---|---|---|', ...rows, TABLE_END].join('\n');
}

/** `doc` with its generated table replaced; throws if the markers are missing (the table would silently vanish). */
export function withErrorTable(doc: string): string {
  const begin = doc.indexOf(TABLE_BEGIN);
  const end = doc.indexOf(TABLE_END);
  if (begin < 0 || end < begin) throw new Error(`docs/protocol.md: markers ${TABLE_BEGIN} … ${TABLE_END} not found`);
  return doc.slice(0, begin) + renderErrorTable() + doc.slice(end + TABLE_END.length);
}

function main(check: boolean): number {
  const outputs: [path: string, wanted: string][] = [
    [SCHEMA_PATH, renderSchema()],
    [DOC_PATH, withErrorTable(readFileSync(DOC_PATH, 'utf8'))],
    [fileURLToPath(ASYNCAPI_PATH), renderAsyncApi(VERSION)],
  ];
  let stale = 0;
  for (const [path, wanted] of outputs) {
    let current: string | undefined;
    try {
      current = readFileSync(path, 'utf8');
    } catch {
      current = undefined;
    }
    if (current === wanted) continue;
    if (check) {
      console.error(`${path} is out of date; run: node_modules/.bin/node scripts/gen-schema.ts`);
      stale++;
    } else {
      writeFileSync(path, wanted);
      console.log(`wrote ${path}`);
    }
  }
  return stale === 0 ? 0 : 1;
}

if (import.meta.main) process.exitCode = main(process.argv.includes('--check'));
