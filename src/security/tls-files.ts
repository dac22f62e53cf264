/**
 * The TLS certificate and key of `tali start`, read once at start and checked to belong together, so a wrong path
 * or a mismatched pair stops the start with TALI_ERR_TLS_FILES instead of failing at the first client.
 */
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import { TaliError } from '../errors.ts';

export async function loadTlsFiles(certFile: string, keyFile: string): Promise<{ cert: Buffer; key: Buffer }> {
  let cert: Buffer;
  let key: Buffer;
  try {
    [cert, key] = await Promise.all([readFile(certFile), readFile(keyFile)]);
  } catch (err) {
    throw new TaliError('TALI_ERR_TLS_FILES', `cannot read the TLS certificate or key: ${(err as Error).message} (make a pair with: tali cert)`);
  }
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new TaliError('TALI_ERR_TLS_FILES', `${certFile} and ${keyFile} are not a PEM certificate and its key: ${(err as Error).message}`);
  }
  return { cert, key };
}
