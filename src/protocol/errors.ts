import type { ErrorMessage } from './messages.ts';
import { PROTOCOL_VERSION } from './topics.ts';

/**
 * Stable error codes. Every code that can reach a client or an operator is listed here, once; docs/protocol.md and
 * the README's error table are written from this list (a test checks that they stay in step).
 *
 * `retry` says what a device should do when it receives the code in an `error` message.
 */
export const ERROR_CODES = {
  TALI_ERR_MALFORMED_JSON: { retry: 'fix', text: 'payload is not a UTF-8 JSON object' },
  TALI_ERR_PAYLOAD_TOO_LARGE: { retry: 'fix', text: 'payload exceeds the size limit' },
  TALI_ERR_UNSUPPORTED_VERSION: { retry: 'fix', text: 'protocol version `v` is not supported' },
  TALI_ERR_UNKNOWN_TYPE: { retry: 'fix', text: 'message `type` is unknown' },
  TALI_ERR_UNEXPECTED_TYPE: { retry: 'fix', text: 'message type is not allowed on this topic or in this state' },
  TALI_ERR_INVALID_MESSAGE: { retry: 'fix', text: 'a field is missing, of the wrong type or out of range' },
  TALI_ERR_INVALID_SDP: { retry: 'fix', text: 'the SDP could not be parsed or applied' },
  TALI_ERR_NO_COMMON_CODEC: { retry: 'fix', text: 'the offer has no media the bridge can receive' },
  TALI_ERR_INVALID_CANDIDATE: { retry: 'fix', text: 'the ICE candidate could not be parsed' },
  TALI_ERR_UNKNOWN_SESSION: { retry: 'offer', text: 'no live session with this sessionId' },
  TALI_ERR_UNKNOWN_DEVICE: { retry: 'fix', text: 'no such device: a viewer watched a camera the bridge does not know' },
  TALI_ERR_FORBIDDEN: { retry: 'fix', text: "not allowed for this login, e.g. a camera outside a viewer token's devices; the connection stays up" },
  TALI_ERR_STALE: { retry: 'offer', text: 'message timestamp is outside the accepted window (check the clock)' },
  TALI_ERR_RATE_LIMITED: { retry: 'later', text: 'too many messages; slow down' },
  TALI_ERR_SESSION_LIMIT: { retry: 'later', text: 'too many sessions' },
  TALI_ERR_UNAVAILABLE: { retry: 'later', text: 'the bridge cannot take sessions right now' },
  TALI_ERR_INTERNAL: { retry: 'later', text: 'unexpected bridge error' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}

/** A rejected message: what to tell the sender, and enough of the message to correlate it. */
export class ProtocolError extends Error {
  readonly code: ErrorCode;
  readonly sessionId: string | undefined;
  readonly seq: number | undefined;
  readonly type: string | undefined;

  constructor(code: ErrorCode, message: string, ref: { sessionId?: string; seq?: number; type?: string } = {}) {
    super(message);
    this.name = 'ProtocolError';
    this.code = code;
    this.sessionId = ref.sessionId;
    this.seq = ref.seq;
    this.type = ref.type;
  }
}

/** The `error` message that tells a sender why its message was rejected. */
export function toErrorMessage(error: ProtocolError, ts: number): ErrorMessage {
  const message: ErrorMessage = { v: PROTOCOL_VERSION, type: 'error', ts, code: error.code, message: error.message.slice(0, 256) };
  if (error.sessionId !== undefined) message.sessionId = error.sessionId;
  if (error.type !== undefined || error.seq !== undefined) {
    message.ref = {};
    if (error.type !== undefined) message.ref.type = error.type.slice(0, 64);
    if (error.seq !== undefined) message.ref.seq = error.seq;
  }
  return message;
}
