/**
 * Size limits of protocol v1, in bytes of the UTF-8 JSON payload.
 *
 * A real camera's offer is 1–3 KB; firmware MQTT stacks often have a 4 KB receive buffer that holds the whole
 * PUBLISH packet. So the bridge never sends a device a payload over MAX_DOWN_BYTES: with the packet header (≤ 3
 * bytes), the topic (≤ 210 bytes for a 128-character root) and the packet identifier (2), every packet stays within
 * 4096 bytes. A large answer has its ICE candidates moved into trickle messages to stay under it. Device payloads
 * are accepted up to a configurable limit that defaults to DEFAULT_MAX_UP_BYTES.
 */
export const MAX_DOWN_BYTES = 3840;
export const DEFAULT_MAX_UP_BYTES = 16 * 1024;
export const MAX_SDP_CHARS = 64 * 1024;
export const MAX_CANDIDATE_CHARS = 512;
/** Default acceptance window for `ts` (ms either side of the receiver's clock). */
export const DEFAULT_MAX_AGE_MS = 60_000;

/**
 * The 4 KB rule for an encoded bridge → device message: throws RangeError over MAX_DOWN_BYTES (a bug, not bad input,
 * if it trips; a session catches it to trickle its candidates instead). Here rather than in ./codec.ts so that a media
 * worker can check it without loading the validators.
 */
export function checkDownSize(type: string, text: string): void {
  const size = Buffer.byteLength(text, 'utf8');
  if (size > MAX_DOWN_BYTES) throw new RangeError(`${type} is ${size} bytes; devices get at most ${MAX_DOWN_BYTES}`);
}
