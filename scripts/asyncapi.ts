/**
 * docs/protocol.asyncapi.yaml: the protocol as an AsyncAPI 3.0 document, generated from the same TypeBox schemas as
 * docs/protocol.schema.json (MESSAGE_SCHEMAS), the message types each channel allows (CHANNEL_TYPES), the addresses
 * that src/protocol/topics.ts builds and the QoS and retain of each channel (./protocol-channels.ts). scripts/gen-schema.ts
 * writes it (`npm run docs`) and checks it with --check; test/protocol/asyncapi.test.ts parses it with @asyncapi/parser.
 *
 * The application it describes is the bridge: it receives on the devices' `up` and `status` and the viewers' `up`,
 * and sends on `down`, `metrics`, its own card and the viewers' `down`. A device implements the other side of the
 * device channels. Payload schemas are the TypeBox output as is (JSON Schema draft-07 vocabulary, which is what an
 * AsyncAPI Schema Object extends); the JSON Schema document converts the same schemas to 2020-12.
 */
import { stringify } from 'yaml';
import { DEFAULT_MAX_UP_BYTES, MAX_DOWN_BYTES } from '../src/protocol/limits.ts';
import { CHANNEL_TYPES, MESSAGE_SCHEMAS, type Channel, type MessageType } from '../src/protocol/messages.ts';
import { CONNECTION_PATTERN, DEFAULT_ROOT, ID_PATTERN, PROTOCOL_VERSION } from '../src/protocol/topics.ts';
import { CHANNELS } from './protocol-channels.ts';

export const ASYNCAPI_PATH = new URL('../docs/protocol.asyncapi.yaml', import.meta.url);

/** MQTT bindings version (github.com/asyncapi/bindings/tree/master/mqtt): QoS and retain on operations. */
const MQTT_BINDING_VERSION = '0.2.0';

const PARAMETERS: Record<string, string> = {
  root: `topic root configured on the bridge (default "${DEFAULT_ROOT}"); one or more levels, no wildcards`,
  deviceId: `the device's ID: its MQTT user name and client ID (${ID_PATTERN.source})`,
  bridgeId: `the bridge node's ID (${ID_PATTERN.source})`,
  viewerId: `the viewer's (or admin's) user name (${ID_PATTERN.source})`,
  clientId: `the viewer connection's MQTT client ID: each connection has its own topics (${CONNECTION_PATTERN.source})`,
};

/** camelCase names for channels and operations: `viewer-up` → `viewerUp`. */
const KEYS: Record<Channel, string> = {
  status: 'deviceStatus',
  up: 'deviceUp',
  down: 'deviceDown',
  metrics: 'deviceMetrics',
  bridge: 'bridgeStatus',
  'viewer-up': 'viewerUp',
  'viewer-down': 'viewerDown',
};

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export function buildAsyncApi(version: string): { [key: string]: Json } {
  const channels: { [key: string]: Json } = {};
  const operations: { [key: string]: Json } = {};
  for (const [channel, spec] of Object.entries(CHANNELS) as [Channel, (typeof CHANNELS)[Channel]][]) {
    const key = KEYS[channel];
    const types: readonly MessageType[] = CHANNEL_TYPES[channel];
    const parameters = [...spec.address.matchAll(/\{(\w+)\}/g)].map((m) => m[1] as string);
    channels[key] = {
      address: spec.address,
      title: `${spec.from} → ${spec.to}`,
      description: `${spec.summary}. QoS ${spec.qos}, ${spec.retain ? 'retained' : 'not retained'}; docs/protocol.md ${spec.section}.`,
      parameters: Object.fromEntries(parameters.map((name) => [name, { $ref: `#/components/parameters/${name}` }])),
      messages: Object.fromEntries(types.map((type) => [messageKey(type), { $ref: `#/components/messages/${messageKey(type)}` }])),
    };
    const sends = spec.from === 'bridge';
    operations[`${sends ? 'send' : 'receive'}${key[0]!.toUpperCase()}${key.slice(1)}`] = {
      action: sends ? 'send' : 'receive',
      channel: { $ref: `#/channels/${key}` },
      summary: sends ? `The bridge publishes ${spec.summary}.` : `The bridge receives ${spec.summary}.`,
      messages: types.map((type) => ({ $ref: `#/channels/${key}/messages/${messageKey(type)}` })),
      bindings: { mqtt: { qos: spec.qos, retain: spec.retain, bindingVersion: MQTT_BINDING_VERSION } },
    };
  }
  const messages: { [key: string]: Json } = {};
  const schemas: { [key: string]: Json } = {};
  for (const [type, schema] of Object.entries(MESSAGE_SCHEMAS) as [MessageType, unknown][]) {
    // A JSON round trip keeps exactly what a schema consumer sees (TypeBox may carry symbols).
    const plain = JSON.parse(JSON.stringify(schema)) as { [key: string]: Json };
    schemas[messageKey(type)] = plain;
    messages[messageKey(type)] = {
      name: type,
      title: type,
      ...(typeof plain.description === 'string' && { summary: plain.description }),
      contentType: 'application/json',
      payload: { $ref: `#/components/schemas/${messageKey(type)}` },
    };
  }
  return {
    asyncapi: '3.0.0',
    id: `urn:tali:protocol:v${PROTOCOL_VERSION}`,
    info: {
      title: `tali signaling protocol v${PROTOCOL_VERSION}`,
      version,
      description: [
        'MQTT ⇄ WebRTC signaling between IoT cameras (devices), viewers and the tali bridge, described from the',
        "bridge's side: it receives what devices and viewers publish and sends the rest. Every payload is one UTF-8",
        'JSON object; receivers ignore fields they do not know. Rules a schema cannot express (exactly one of',
        '`candidate`/`endOfCandidates`, the candidate grammar, the clock window, sequence numbers, the session state',
        'machine) are in docs/protocol.md. Generated by scripts/gen-schema.ts from src/protocol; do not edit.',
        '',
        `Payload limits: device → bridge ≤ the bridge card's maxMessageBytes (default ${DEFAULT_MAX_UP_BYTES} bytes);`,
        `bridge → device ≤ ${MAX_DOWN_BYTES} bytes, so a 4096-byte MQTT receive buffer holds every packet.`,
      ].join('\n'),
      license: { name: 'Apache-2.0', url: 'https://www.apache.org/licenses/LICENSE-2.0' },
    },
    defaultContentType: 'application/json',
    servers: {
      mqtt: server('localhost:1883', 'mqtt', 'MQTT 3.1.1 over TCP (plain only when no certificate is configured)'),
      mqtts: server('localhost:8883', 'secure-mqtt', 'MQTT 3.1.1 over TLS'),
      ws: { ...server('localhost:8080', 'ws', 'MQTT 3.1.1 over WebSocket (subprotocol "mqtt"), for browsers; wss with TLS'), pathname: '/mqtt' },
    },
    channels,
    operations,
    components: {
      messages,
      schemas,
      parameters: Object.fromEntries(
        Object.entries(PARAMETERS).map(([name, description]): [string, Json] => [name, name === 'root' ? { description, default: DEFAULT_ROOT } : { description }]),
      ),
      securitySchemes: {
        identity: {
          type: 'userPassword',
          description:
            'MQTT user name and password: a device ID and the secret `tali device add` issued (the client ID must equal ' +
            'the user name), or a viewer/admin user name and its password or viewer token. Anonymous clients are refused.',
        },
      },
    },
  };
}

function server(host: string, protocol: string, description: string): { [key: string]: Json } {
  return {
    host,
    protocol,
    protocolVersion: '3.1.1',
    description,
    security: [{ $ref: '#/components/securitySchemes/identity' }],
    bindings: {
      mqtt: {
        cleanSession: true,
        keepAlive: 30,
        // The bridge's own connection: its card, offline, is its will (as a device's offline card is the device's).
        lastWill: { topic: CHANNELS.bridge.address, qos: 1, retain: true },
        bindingVersion: MQTT_BINDING_VERSION,
      },
    },
  };
}

/** Component keys: `bridge-status` → `bridgeStatus` (keys must match ^[a-zA-Z0-9.\-_]+$; camelCase reads better). */
function messageKey(type: MessageType): string {
  return type.replace(/-(\w)/g, (_, c: string) => c.toUpperCase());
}

export function renderAsyncApi(version: string): string {
  const header = '# Generated by scripts/gen-schema.ts from src/protocol (npm run docs); do not edit.\n';
  return header + stringify(buildAsyncApi(version), { lineWidth: 0, aliasDuplicateObjects: false });
}
