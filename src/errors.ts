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
  TALI_ERR_TLS_FILES: 'the TLS certificate or key cannot be read, or they do not belong together',
  TALI_ERR_DATA_DIR: 'the data directory or its identities.json cannot be read or written',
} as const;

export type ProcessErrorCode = keyof typeof PROCESS_ERRORS;

export class TaliError extends Error {
  readonly code: ProcessErrorCode;
  constructor(code: ProcessErrorCode, message: string) {
    super(message);
    this.name = 'TaliError';
    this.code = code;
  }
}
