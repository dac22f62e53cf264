/**
 * Size limits of protocol v1, in bytes of the UTF-8 JSON payload.
 *
 * A real camera's offer is 1–3 KB; firmware MQTT stacks often have a 4 KB receive buffer. So the bridge never sends a
 * device a payload over MAX_DOWN_BYTES (it moves ICE candidates out of a large answer into trickle messages), and
 * accepts device payloads up to a configurable limit that defaults to DEFAULT_MAX_UP_BYTES.
 */
export const MAX_DOWN_BYTES = 4096;
export const DEFAULT_MAX_UP_BYTES = 16 * 1024;
export const MAX_SDP_CHARS = 64 * 1024;
export const MAX_CANDIDATE_CHARS = 512;
/** Default acceptance window for `ts` (ms either side of the receiver's clock). */
export const DEFAULT_MAX_AGE_MS = 60_000;
