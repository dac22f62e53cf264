/**
 * `tali cert`: a self-signed certificate and key for local TLS (MQTT over TLS, HTTPS/WSS), made in JavaScript
 * (@peculiar/x509 on WebCrypto; no openssl needed). ECDSA P-256, valid for localhost, 127.0.0.1, ::1, this host's
 * name and any --host given. Clients trust it by taking the certificate itself as their CA (`tali camera --ca`).
 *
 *   tali cert [--data-dir DIR] [--out DIR] [--host NAME]… [--days N] [--force]
 *
 * Writes DIR/tls/cert.pem and DIR/tls/key.pem (0600), and prints the flags that turn TLS on.
 */
import * as x509 from '@peculiar/x509';
import { randomBytes, webcrypto } from 'node:crypto';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { OPTIONS } from '../config/options.ts';
import { TaliError } from '../errors.ts';
import type { CliIo } from './main.ts';

const USAGE = `usage: tali cert [--data-dir DIR] [--out DIR] [--host NAME]… [--days N] [--force]

Makes a self-signed certificate and key for local TLS: MQTT over TLS (mqtts://, port 8883) and HTTPS/WSS.

  --data-dir DIR   the bridge's data directory (default $TALI_DATA_DIR or ./data); files go to DIR/tls
  --out DIR        write cert.pem and key.pem here instead
  --host NAME      another DNS name or IP address the certificate is valid for (repeatable)
  --days N         validity in days (default 825)
  --force          replace existing files
`;

export interface SelfSigned {
  cert: string;
  key: string;
}

/** A self-signed ECDSA P-256 certificate for the given names (DNS names or IP addresses), as PEM. */
export async function selfSigned(names: readonly string[], days: number): Promise<SelfSigned> {
  x509.cryptoProvider.set(webcrypto as unknown as Crypto);
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    // A positive 128-bit serial (RFC 5280 §4.1.2.2).
    serialNumber: `01${randomBytes(15).toString('hex')}`,
    name: 'CN=tali local',
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + days * 86_400_000),
    signingAlgorithm: alg,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      // keyCertSign too: the certificate is its own trust anchor for clients that load it as their CA.
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names.map((n) => ({ type: isIP(n) ? ('ip' as const) : ('dns' as const), value: n }))),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey as unknown as webcrypto.CryptoKey));
  const key = `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END PRIVATE KEY-----\n`;
  return { cert: cert.toString('pem').replace(/\r\n/g, '\n').trimEnd() + '\n', key };
}

export async function runCert(argv: string[], io: CliIo): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args: argv,
      options: {
        'data-dir': { type: 'string' },
        out: { type: 'string' },
        host: { type: 'string', multiple: true },
        days: { type: 'string' },
        force: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (err) {
    io.stderr.write(`tali cert: TALI_ERR_USAGE: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  const days = Number(values.days ?? 825);
  if (!Number.isInteger(days) || days < 1 || days > 3650) {
    io.stderr.write(`tali cert: TALI_ERR_USAGE: --days must be a whole number from 1 to 3650\n`);
    return 2;
  }
  const dir = values.out ?? join(values['data-dir'] ?? process.env.TALI_DATA_DIR ?? OPTIONS.dataDir.default, 'tls');
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  try {
    if (!values.force) {
      for (const file of [certFile, keyFile]) {
        if (await stat(file).then(() => true, () => false)) throw new TaliError('TALI_ERR_CERT_EXISTS', `${file} exists (--force replaces it)`);
      }
    }
    const names = [...new Set(['localhost', '127.0.0.1', '::1', hostname(), ...(values.host ?? [])])];
    const pair = await selfSigned(names, days);
    await mkdir(dir, { recursive: true });
    await writeFile(keyFile, pair.key, { mode: 0o600 });
    await writeFile(certFile, pair.cert, { mode: 0o644 });
    io.stdout.write(
      `Wrote ${certFile} and ${keyFile} (self-signed, ${days} days, for ${names.join(', ')}).\n\n` +
        `Start with TLS:   npx tali start --tls-cert ${certFile} --tls-key ${keyFile}\n` +
        `A camera on it:   npx tali camera --url mqtts://localhost:8883 --ca ${certFile}\n`,
    );
    return 0;
  } catch (err) {
    if (!(err instanceof TaliError)) throw err;
    io.stderr.write(`tali cert: ${err.code}: ${err.message}\n`);
    return 1;
  }
}
