/**
 * DTLS authenticates the peer, not only its certificate (patches/werift+0.25.2.patch, [werift-dtls-verify];
 * docs/werift-patches.md). A camera's certificate crosses the network in clear in every DTLS 1.2 handshake, so anyone
 * on the media path has it. Before the patch werift checked only that the certificate matched the SDP fingerprint:
 * an impostor that presented it without the private key (signing with a key of its own) and did ECDHE with its own
 * keys was connected, and its media went into that camera's session. The same held with the bridge as DTLS client
 * (libpeer cameras answer as DTLS servers, with RSA certificates): a server's ServerKeyExchange signature and
 * Finished were not checked either.
 *
 * The impostor here is werift's own peer connection given the camera's certificate with another key (its
 * CertificateVerify or ServerKeyExchange is then signed with that key), or the right key and a Finished that does not
 * match the handshake (a transcript someone altered on the way). It does the signalling itself with the camera's
 * credentials: what is under test is only what the bridge's DTLS accepts, which is the same whoever sent the offer.
 * Every case has an honest twin through the same harness that streams.
 */
import { execFile } from 'node:child_process';
import { createECDH, generateKeyPairSync } from 'node:crypto';
import { promisify } from 'node:util';
import { CipherContext, HashAlgorithm, NamedCurveAlgorithm, RTCPeerConnection, SignatureAlgorithm, type DtlsKeys } from 'werift';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { CameraSession as Session } from '../../src/answerer/session.ts';
import type { ByeReason } from '../../src/protocol/messages.ts';
import { codecParameters } from '../../src/webrtc/codecs.ts';
import { withoutDefaultStun } from '../../src/webrtc/default-stun.ts';
import { VideoSource } from '../../devices/camera/media/video-source.ts';
import { startBridge, type TestBridge } from '../helpers/bridge.ts';
import { connectRawDevice } from '../helpers/raw-device.ts';
import { waitFor, withTimeout } from '../helpers/wait.ts';

/** ECDSA P-256 (Chromium, aiortc), werift's RSA-2048, RSA-1024 as libpeer's mbedTLS makes it. */
type KeyType = 'ecdsa' | 'rsa' | 'rsa-1024';
/** The camera's DTLS role: client with an actpass offer (the bridge answers as server), server with a passive one (libpeer). */
type Role = 'client' | 'server';

interface Pair {
  /** The camera's certificate and key. */
  camera: DtlsKeys;
  /** The impostor's: the camera's certificate (so the SDP fingerprint is the camera's), a key of its own. */
  impostor: DtlsKeys;
}

/** werift makes only 2048-bit RSA keys: the 1024-bit one comes from Debian's openssl (.ci/run installs it). */
async function rsa1024(): Promise<DtlsKeys> {
  const args = ['req', '-x509', '-newkey', 'rsa:1024', '-nodes', '-keyout', '-', '-subj', '/CN=libpeer', '-days', '1', '-sha256'];
  const { stdout } = await promisify(execFile)('openssl', args);
  const pem = (label: string) => new RegExp(`-----BEGIN ${label}-----[^-]+-----END ${label}-----`).exec(stdout)?.[0] ?? '';
  return { certPem: pem('CERTIFICATE'), keyPem: pem('PRIVATE KEY'), signatureHash: { signature: SignatureAlgorithm.rsa_1, hash: HashAlgorithm.sha256_4 } };
}

async function keyPair(type: KeyType): Promise<Pair> {
  const make = () =>
    type === 'ecdsa'
      ? CipherContext.createSelfSignedCertificateWithKey({ signature: SignatureAlgorithm.ecdsa_3, hash: HashAlgorithm.sha256_4 }, NamedCurveAlgorithm.secp256r1_23)
      : type === 'rsa'
        ? CipherContext.createSelfSignedCertificateWithKey({ signature: SignatureAlgorithm.rsa_1, hash: HashAlgorithm.sha256_4 })
        : rsa1024();
  const [camera, other] = await Promise.all([make(), make()]);
  return { camera, impostor: { ...camera, keyPem: other.keyPem } };
}

/** werift internals, for the impostor only: its DTLS socket, created when its transport starts. */
interface DtlsTransportInternals {
  dtls: { cipher: { verifyData: (transcript: Buffer) => Buffer } } | undefined;
}

/** Makes the Finished this peer sends one bit off: encrypted with the right keys, over the wrong handshake. */
function corruptFinished(pc: RTCPeerConnection): void {
  const transport = pc.dtlsTransports[0] as unknown as DtlsTransportInternals;
  let socket = transport.dtls;
  Object.defineProperty(transport, 'dtls', {
    configurable: true,
    get: () => socket,
    set: (value: DtlsTransportInternals['dtls']) => {
      socket = value;
      if (value === undefined) return;
      const honest = value.cipher.verifyData.bind(value.cipher);
      value.cipher.verifyData = (transcript) => {
        const data = Buffer.from(honest(transcript));
        data[0]! ^= 1;
        return data;
      };
    },
  });
}

interface Attempt {
  session: Session;
  /** First of: the bridge's session connected, or it closed (with its bye reason). */
  outcome: Promise<'connected' | `closed: ${ByeReason}`>;
  /** RTP packets the bridge's session accepted. */
  packets(): number;
  /** Whether the camera's own side connected (it then streams). */
  cameraConnected(): boolean;
  /** Copies of a key exchange message added to the camera's datagrams (`inject`). */
  injected(): number;
  /** DTLS alert records the bridge sent the camera: level and description when in clear (epoch 0). */
  alerts: Alert[];
  /** Resolves once the first alert is in (a datagram may be on its way when the session closes). */
  alerted(): Promise<void>;
}

type Alert = { epoch: 0; level: number; description: number } | { epoch: number };
/** RFC 5246 §7.2: alert levels and the descriptions used here. */
const FATAL = 2;
const DECRYPT_ERROR = 51;

/** The alert records (content type 21, RFC 6347 §4.1) among the DTLS records of one datagram. */
function alertRecords(datagram: Buffer): Alert[] {
  const alerts: Alert[] = [];
  for (let at = 0; at + 13 <= datagram.length; at += 13 + datagram.readUInt16BE(at + 11)) {
    if (datagram[at] !== 21) continue;
    const epoch = datagram.readUInt16BE(at + 3);
    alerts.push(epoch === 0 ? { epoch, level: datagram[at + 13]!, description: datagram[at + 14]! } : { epoch });
  }
  return alerts;
}

/** The key exchange messages (RFC 5246 §7.4.3, §7.4.7) and where their ECDHE public key (length byte, key) begins. */
const KEY_EXCHANGE = { ServerKeyExchange: { type: 12, at: 3 }, ClientKeyExchange: { type: 16, at: 0 } } as const;
type KeyExchange = keyof typeof KEY_EXCHANGE;

/** A public key on the same curve as `key` (X25519 or P-256, by its length) whose private key nobody here keeps. */
function otherPublicKey(key: Buffer): Buffer {
  if (key.length === 65) return createECDH('prime256v1').generateKeys();
  return Buffer.from(generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' }).x!, 'base64url');
}

/**
 * What someone on the path can add to a datagram of the camera's: after its `kind` record (a plaintext handshake
 * record, RFC 6347 §4.1/§4.2.2), a copy carrying another ECDHE public key.
 */
function withSecondKeyExchange(datagram: Buffer, kind: KeyExchange): Buffer {
  const { type, at } = KEY_EXCHANGE[kind];
  const records: Buffer[] = [];
  for (let start = 0; start + 13 <= datagram.length; ) {
    const end = start + 13 + datagram.readUInt16BE(start + 11);
    const record = datagram.subarray(start, end);
    records.push(record);
    if (record[0] === 22 && record.readUInt16BE(3) === 0 && record[13] === type) {
      const copy = Buffer.from(record);
      const key = 13 + 12 + at; // record header, handshake header, then the message up to its key
      otherPublicKey(copy.subarray(key + 1, key + 1 + copy[key]!)).copy(copy, key + 1);
      records.push(copy);
    }
    start = end;
  }
  return Buffer.concat(records);
}

interface OfferOptions {
  /** The camera's Finished is one bit off. */
  corruptFinished?: boolean;
  /** Each datagram with this message of the camera's carries a second copy with another ECDHE key. */
  inject?: KeyExchange;
}

/** A camera offers VP8 to the bridge with these DTLS keys and role; streams as soon as its side connects. */
async function offer(tb: TestBridge, id: string, keys: DtlsKeys, role: Role, options: OfferOptions = {}): Promise<Attempt> {
  const device = await connectRawDevice(tb, 'mqtt', id);
  const pc = new RTCPeerConnection({ codecs: { video: [codecParameters('VP8')] }, dtls: { keys } });
  onTestFinished(() => pc.close());
  const video = pc.addTransceiver('video', { direction: 'sendonly' });
  const ours = await pc.createOffer();
  withoutDefaultStun(pc);
  await pc.setLocalDescription(ours);
  if (options.corruptFinished) corruptFinished(pc);
  const connection = pc.dtlsTransports[0]!.iceTransport.connection;
  const { inject } = options;
  let injected = 0;
  if (inject) {
    const send = connection.send.bind(connection);
    connection.send = (datagram: Buffer) => {
      const sent = withSecondKeyExchange(datagram, inject);
      if (sent.length > datagram.length) injected++;
      return send(sent);
    };
  }
  const alerts: Alert[] = [];
  const alerted = new Promise<void>((resolve) => {
    connection.onData.subscribe((datagram: Buffer) => {
      if (datagram[0]! < 20 || datagram[0]! > 63) return; // RFC 7983 §7: not DTLS
      alerts.push(...alertRecords(datagram));
      if (alerts.length > 0) resolve();
    });
  });
  // The bridge answers actpass as DTLS server (src/webrtc/peer.ts); a passive offer makes it the client, as libpeer's do.
  const local = pc.localDescription?.sdp ?? '';
  const sdp = role === 'server' ? local.replaceAll('a=setup:actpass', 'a=setup:passive') : local;
  const sessionId = `${id}-0001`;
  const opened = waitFor<[Session]>(tb.bridge.answerer, 'session', (s) => s.sessionId === sessionId);
  await device.send(device.message('offer', sessionId, 1, { sdp }));
  const [session] = await opened;
  const outcome = withTimeout(
    new Promise<'connected' | `closed: ${ByeReason}`>((resolve) => {
      session.on('state', (state) => state === 'connected' && resolve('connected'));
      session.on('closed', (reason) => resolve(`closed: ${reason}`));
    }),
    10_000,
    `session ${sessionId} to connect or close`,
  );
  let connected = false;
  const source = new VideoSource({ codec: 'VP8' });
  onTestFinished(() => source.stop());
  pc.connectionStateChange.subscribe((state) => {
    if (state !== 'connected' || connected) return;
    connected = true;
    source.start((packet) => void video.sender.sendRtp(packet));
  });
  const answer = await device.down.next((m) => m.type === 'answer' && m.sessionId === sessionId, 5000, 'answer');
  await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp as string });
  return { session, outcome, packets: () => session.stats.tracks.reduce((sum, track) => sum + track.packets, 0), cameraConnected: () => connected, injected: () => injected, alerts, alerted: () => withTimeout(alerted, 5000, 'an alert from the bridge') };
}

describe('the bridge authenticates a camera over DTLS', () => {
  const pairs = {} as Record<KeyType, Pair>;
  beforeAll(async () => {
    for (const type of ['ecdsa', 'rsa', 'rsa-1024'] as const) pairs[type] = await keyPair(type);
  });

  // Chromium and aiortc cameras are DTLS clients with ECDSA P-256 certificates; libpeer (mbedTLS) is a server with
  // RSA-1024.
  const roles = [
    { role: 'client', keyType: 'ecdsa', signed: 'CertificateVerify' },
    { role: 'client', keyType: 'rsa', signed: 'CertificateVerify' },
    { role: 'server', keyType: 'rsa-1024', signed: 'ServerKeyExchange' },
    { role: 'server', keyType: 'ecdsa', signed: 'ServerKeyExchange' },
  ] as const;

  it.each(roles)('the camera as DTLS $role ($keyType) streams', async ({ role, keyType }) => {
    const tb = await startBridge();
    const attempt = await offer(tb, `honest-${role}-${keyType}`, pairs[keyType].camera, role);
    expect(await attempt.outcome).toBe('connected');
    if (attempt.session.state !== 'streaming') await waitFor(attempt.session, 'state', (state: string) => state === 'streaming');
    expect(attempt.packets()).toBeGreaterThan(0);
    expect(attempt.alerts).toEqual([]);
  });

  it.each(roles)(
    "an impostor as DTLS $role with the camera's $keyType certificate and another key ($signed signed with it) is refused, none of its media taken",
    async ({ role, keyType }) => {
      const tb = await startBridge();
      const attempt = await offer(tb, `impostor-${role}-${keyType}`, pairs[keyType].impostor, role);
      // ICE connected, then the DTLS handshake failed at the signature: the session ends at once, never connected.
      expect(await attempt.outcome).toBe('closed: ice-failed');
      expect(attempt.packets()).toBe(0);
      // RFC 5246 §7.2.2: a signature that does not verify is a fatal decrypt_error, sent before any key is in use.
      await attempt.alerted();
      expect(attempt.alerts).toEqual([{ epoch: 0, level: FATAL, description: DECRYPT_ERROR }]);
    },
  );

  // werift ran a message's handler again for every copy that came, while its transcript kept the first: a second
  // ServerKeyExchange or ClientKeyExchange with an ECDHE key of someone else's replaced the key after the signed or
  // verified one, and whoever holds that key can compute the master secret (the transcript is in clear) and so a
  // Finished. Here the injected key is nobody's: the handshake must go on with the camera's key and connect.
  it.each([
    { role: 'server', inject: 'ServerKeyExchange' },
    { role: 'client', inject: 'ClientKeyExchange' },
  ] as const)('a second $inject with another key, added after the camera\'s (DTLS $role), changes nothing: the camera streams', async ({ role, inject }) => {
    const tb = await startBridge();
    const attempt = await offer(tb, `inject-${role}`, pairs.ecdsa.camera, role, { inject });
    expect(await attempt.outcome).toBe('connected');
    expect(attempt.injected()).toBeGreaterThan(0);
    if (attempt.session.state !== 'streaming') await waitFor(attempt.session, 'state', (state: string) => state === 'streaming');
    expect(attempt.packets()).toBeGreaterThan(0);
    expect(attempt.alerts).toEqual([]);
  });

  it.each(['client', 'server'] as const)('a camera as DTLS %s whose Finished does not match the handshake is refused, none of its media taken', async (role) => {
    const tb = await startBridge();
    const attempt = await offer(tb, `finished-${role}`, pairs.ecdsa.camera, role, { corruptFinished: true });
    expect(await attempt.outcome).toBe('closed: ice-failed');
    expect(attempt.packets()).toBe(0);
    await attempt.alerted();
    if (role === 'client') {
      // The bridge (server) has not changed cipher spec yet: its decrypt_error goes in clear.
      expect(attempt.alerts).toEqual([{ epoch: 0, level: FATAL, description: DECRYPT_ERROR }]);
    } else {
      // The bridge (client) already writes under the new keys: one encrypted alert. The camera sends its Finished
      // last and counts itself connected: it starts streaming, and nothing of it is taken.
      expect(attempt.alerts).toEqual([{ epoch: 1 }]);
      expect(attempt.cameraConnected()).toBe(true);
    }
  });
});
