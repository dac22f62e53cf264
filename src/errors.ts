/**
 * Stable codes of process and command-line errors, in one table (protocol errors sent to devices are in
 * src/protocol/errors.ts). docs/security.md lists them; test/security/errors.test.ts keeps the two in step.
 */
export const PROCESS_ERRORS = {
  TALI_ERR_USAGE: 'the command line is wrong (exit code 2)',
  TALI_ERR_CONFIG: 'an option has an invalid value (tali start)',
  TALI_ERR_INVALID_ID: 'a device ID or user name is not 1–64 of A–Z a–z 0–9 . _ - starting with a letter or digit',
  TALI_ERR_IDENTITY_EXISTS: 'an identity with that name exists already (remove it first, or --replace to re-key it)',
  TALI_ERR_IDENTITY_NOT_FOUND: 'no identity with that name in the data directory',
  TALI_ERR_WRONG_ROLE: 'the identity exists with another role (a device is not a user, and the reverse)',
  TALI_ERR_TOKEN: 'a token could not be issued: bad --devices or --ttl, or the user is not a viewer or admin',
  TALI_ERR_CERT_EXISTS: 'tali cert: the certificate or key file exists already (--force replaces them)',
  TALI_ERR_ACL_FILE: 'the operator rule file (aclFile) cannot be read, or has a line tali does not understand',
  TALI_ERR_TLS_FILES: 'the TLS certificate or key cannot be read, or they do not belong together',
  TALI_ERR_DATA_DIR: 'the data directory or its identities.json cannot be read or written',
  TALI_ERR_STATE_DB: 'the state file (retained cards, stored sessions) is in use by another process, is not a readable database, or cannot be written; nothing in it is deleted',
  TALI_ERR_LISTEN: 'a port cannot be listened on: in use (EADDRINUSE) or not allowed (EACCES); pick others with --http-port, --mqtt-port, --mqtts-port',
} as const;

export type ProcessErrorCode = keyof typeof PROCESS_ERRORS;

/**
 * Codes of the HTTP API's JSON errors (`{"error": CODE, "message": …}`): /api/token, /api/recordings, the
 * dashboard's API (src/web/api/) and WHEP (src/profiles/whep/, which also answers with protocol codes:
 * TALI_ERR_INVALID_SDP 400, TALI_ERR_NO_COMMON_CODEC 422, TALI_ERR_SESSION_LIMIT and TALI_ERR_UNAVAILABLE 503). Some
 * are the protocol's codes (src/protocol/errors.ts) with the same meaning: 403 answers TALI_ERR_FORBIDDEN, too many
 * failed logins or requests 429 TALI_ERR_RATE_LIMITED, a still that cannot be made or a login that cannot be checked
 * now 503 TALI_ERR_UNAVAILABLE.
 */
export const HTTP_ERRORS = {
  TALI_ERR_BAD_REQUEST: '400: the body or a parameter is malformed',
  TALI_ERR_UNAUTHORIZED: '401: no credentials, wrong ones, or an expired token',
  TALI_ERR_NOT_FOUND: '404: no such device or user',
  TALI_ERR_METHOD: '405: the method is not one the path takes (see the Allow header)',
  TALI_ERR_CONFLICT: '409: a device or user with that name exists already',
  TALI_ERR_RECORDING_CONFIGURED: '409: the device is recorded by the `record` option; change the option instead',
  TALI_ERR_RECORDING_CLOSED: '503: the bridge is shutting down',
  TALI_ERR_MEDIA_TYPE: '415: WHEP: the body is not application/sdp (POST) or application/trickle-ice-sdpfrag (PATCH)',
  TALI_ERR_NOT_STREAMING: '409 (with Retry-After): WHEP: the camera is offline, or did not start streaming in time',
  TALI_ERR_PRECONDITION: '428 / 412: WHEP PATCH without If-Match, or with another ETag than the session\'s',
  TALI_ERR_ICE_RESTART: '422: WHEP: ICE restarts are not supported (DELETE the session, POST a new offer)',
} as const;

export class TaliError extends Error {
  readonly code: ProcessErrorCode;
  constructor(code: ProcessErrorCode, message: string) {
    super(message);
    this.name = 'TaliError';
    this.code = code;
  }
}
