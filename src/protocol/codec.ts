/**
 * The edge: bytes from MQTT in, typed messages out (or a ProtocolError naming what is wrong). Nothing past this
 * module handles unvalidated payloads.
 */
import { Compile } from 'typebox/compile';
import { parseCandidate } from './candidate.ts';
import { ProtocolError } from './errors.ts';
import { checkDownSize } from './limits.ts';
import {
  CHANNEL_TYPES,
  MESSAGE_SCHEMAS,
  SESSION_ID_PATTERN,
  type Channel,
  type Message,
  type MessageOnChannel,
  type MessageType,
} from './messages.ts';
import { PROTOCOL_VERSION } from './topics.ts';

const validators = Object.fromEntries(
  Object.entries(MESSAGE_SCHEMAS).map(([type, schema]) => [type, Compile(schema)]),
) as { [T in MessageType]: ReturnType<typeof Compile<(typeof MESSAGE_SCHEMAS)[T]>> };

const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();
const sessionIdPattern = new RegExp(SESSION_ID_PATTERN);

/** Decodes one payload received on `channel`. Throws ProtocolError; never anything else. */
export function decode<C extends Channel>(
  channel: C,
  payload: Uint8Array | string,
  maxBytes = Number.POSITIVE_INFINITY,
): MessageOnChannel<C> {
  const size = typeof payload === 'string' ? utf8Encoder.encode(payload).byteLength : payload.byteLength;
  if (size > maxBytes) throw new ProtocolError('TALI_ERR_PAYLOAD_TOO_LARGE', `payload is ${size} bytes; limit ${maxBytes}`);

  let value: unknown;
  try {
    value = JSON.parse(typeof payload === 'string' ? payload : utf8.decode(payload));
  } catch {
    throw new ProtocolError('TALI_ERR_MALFORMED_JSON', 'payload is not valid UTF-8 JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ProtocolError('TALI_ERR_MALFORMED_JSON', 'payload must be a JSON object');
  }
  const obj = value as Record<string, unknown>;
  const ref = refOf(obj);

  if (obj.v === undefined) throw new ProtocolError('TALI_ERR_INVALID_MESSAGE', 'missing "v"', ref);
  if (obj.v !== PROTOCOL_VERSION) {
    // Clipped: the text goes back to the device in an error (message ≤ 256 chars, payload ≤ MAX_DOWN_BYTES).
    const shown = JSON.stringify(obj.v)?.slice(0, 40);
    throw new ProtocolError('TALI_ERR_UNSUPPORTED_VERSION', `version ${shown}; this bridge speaks ${PROTOCOL_VERSION}`, ref);
  }
  const type = obj.type;
  if (typeof type !== 'string' || !Object.hasOwn(MESSAGE_SCHEMAS, type)) {
    throw new ProtocolError('TALI_ERR_UNKNOWN_TYPE', `unknown type ${JSON.stringify(type)?.slice(0, 40)}`, ref);
  }
  if (!(CHANNEL_TYPES[channel] as readonly string[]).includes(type)) {
    throw new ProtocolError('TALI_ERR_UNEXPECTED_TYPE', `"${type}" is not allowed on the ${channel} channel`, ref);
  }
  const validator = validators[type as MessageType];
  if (!validator.Check(obj)) {
    const first = validator.Errors(obj)[0];
    const where = first?.instancePath || '/';
    throw new ProtocolError('TALI_ERR_INVALID_MESSAGE', `${where} ${first?.message ?? 'is invalid'}`, ref);
  }
  if (type === 'candidate') checkCandidate(obj, ref);
  return obj as unknown as MessageOnChannel<C>;
}

function checkCandidate(obj: Record<string, unknown>, ref: ReturnType<typeof refOf>): void {
  const hasCandidate = typeof obj.candidate === 'string';
  if (hasCandidate === (obj.endOfCandidates === true)) {
    throw new ProtocolError('TALI_ERR_INVALID_MESSAGE', 'exactly one of "candidate" and "endOfCandidates" is required', ref);
  }
  if (hasCandidate) {
    try {
      parseCandidate(obj.candidate as string);
    } catch (err) {
      throw new ProtocolError('TALI_ERR_INVALID_CANDIDATE', (err as Error).message, ref);
    }
  }
}

/** Whatever of the envelope can be trusted, so an error reply can point at the message it rejects. */
function refOf(obj: Record<string, unknown>): { sessionId?: string; seq?: number; type?: string } {
  const ref: { sessionId?: string; seq?: number; type?: string } = {};
  if (typeof obj.sessionId === 'string' && sessionIdPattern.test(obj.sessionId)) ref.sessionId = obj.sessionId;
  if (Number.isSafeInteger(obj.seq) && (obj.seq as number) >= 1 && (obj.seq as number) <= 2_147_483_647) {
    ref.seq = obj.seq as number;
  }
  if (typeof obj.type === 'string' && obj.type.length <= 64) ref.type = obj.type;
  return ref;
}

export function encode(message: Message): string {
  return JSON.stringify(message);
}

/** Encodes a bridge → device message and enforces the 4 KB rule (a bug, not bad input, if it trips). */
export function encodeForDevice(message: Message): string {
  const text = encode(message);
  checkDownSize(message.type, text);
  return text;
}

export function byteLength(text: string): number {
  return utf8Encoder.encode(text).byteLength;
}
