/**
 * The smallest TURN client that tells whether a TURN server takes a credential: one Allocate over UDP with the
 * long-term credential mechanism (RFC 5766 §6, RFC 5389 §10.2), written from the RFCs, without werift in between.
 * The allocation is released at once (Refresh, lifetime 0). The bridge probes its TURN server with it (./probe.ts);
 * tests check minted credentials against coturn with it.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';

const MAGIC = 0x2112a442;
const ALLOCATE = 0x0003;
const REFRESH = 0x0004;
const ATTR = { USERNAME: 0x0006, MESSAGE_INTEGRITY: 0x0008, ERROR_CODE: 0x0009, LIFETIME: 0x000d, REALM: 0x0014, NONCE: 0x0015, XOR_RELAYED_ADDRESS: 0x0016, REQUESTED_TRANSPORT: 0x0019 } as const;

/** Signed Allocates sent at most on one client port while the server keeps answering 438 (Stale Nonce). */
const STALE_NONCE_TRIES = 3;
/** Client ports tried at most while the server answers 437 (Allocation Mismatch). */
const MISMATCH_TRIES = 2;

export type AllocateResult = { ok: true; relayed: string } | { ok: false; code: number; reason: string };

/**
 * Tries to allocate a UDP relay on `server` with `username`/`password`; rejects when the server does not answer.
 * `fromPort`: the client port of the first try (default: one the OS picks).
 */
export async function tryAllocate(
  server: { address: string; port: number },
  username: string,
  password: string,
  timeoutMs = 3000,
  fromPort = 0,
): Promise<AllocateResult> {
  for (let tries = 1; ; tries++) {
    const result = await allocateFrom(tries === 1 ? fromPort : 0, server, username, password, timeoutMs);
    // RFC 8656 §7.4: 437 says the server still holds this 5-tuple (coturn keeps a session after its allocation is
    // released, and the OS hands out ephemeral ports again: 4 to 7 in 600 allocations against one coturn here); the
    // client may try from another transport address.
    if (result.ok || result.code !== 437 || tries === MISMATCH_TRIES) return result;
  }
}

async function allocateFrom(port: number, server: { address: string; port: number }, username: string, password: string, timeoutMs: number): Promise<AllocateResult> {
  const socket = createSocket('udp4');
  socket.on('error', () => {}); // a send failing shows as no answer
  await new Promise<void>((resolve) => socket.bind(port, resolve));
  try {
    const transport: [number, Buffer][] = [[ATTR.REQUESTED_TRANSPORT, Buffer.from([17, 0, 0, 0])]]; // UDP (RFC 5766 §14.7)
    // First without credentials: the server answers 401 with its realm and a nonce (RFC 5389 §10.2.1).
    const challenge = await request(socket, server, encode(ALLOCATE, transport), timeoutMs);
    const realm = challenge.attrs.get(ATTR.REALM);
    let nonce = challenge.attrs.get(ATTR.NONCE);
    if (challenge.type !== 0x0113) throw new Error(`unexpected first answer type 0x${challenge.type.toString(16)}`);
    if (realm === undefined || nonce === undefined) return refusal(challenge);
    const key = createHash('md5').update(`${username}:${realm.toString()}:${password}`).digest();
    const signed = (method: number, attrs: [number, Buffer][]) =>
      encode(method, [[ATTR.USERNAME, Buffer.from(username)], [ATTR.REALM, realm], [ATTR.NONCE, nonce!], ...attrs], key);
    for (let tries = 1; ; tries++) {
      const answer = await request(socket, server, signed(ALLOCATE, transport), timeoutMs);
      if (answer.type === 0x0103) {
        await request(socket, server, signed(REFRESH, [[ATTR.LIFETIME, Buffer.from([0, 0, 0, 0])]]), timeoutMs).catch(() => {});
        return { ok: true, relayed: xorAddress(answer.attrs.get(ATTR.XOR_RELAYED_ADDRESS)) };
      }
      const result = refusal(answer);
      // RFC 8489 §9.2.5: on 438 (Stale Nonce) the client MUST retry with the new NONCE. coturn answers it when a
      // client's second request reaches another of its relay threads than the first, which a fresh coturn does for
      // a moment (the first allocation after start: 3 in 20 with 2 relay threads, 6 in 20 with 8 here).
      const fresh = answer.attrs.get(ATTR.NONCE);
      if (result.code !== 438 || fresh === undefined || tries === STALE_NONCE_TRIES) return result;
      nonce = fresh;
    }
  } finally {
    socket.close();
  }
}

/** An error answer's ERROR-CODE (RFC 5389 §15.6). */
function refusal(answer: { type: number; attrs: Map<number, Buffer> }): { ok: false; code: number; reason: string } {
  const error = answer.attrs.get(ATTR.ERROR_CODE);
  if (error === undefined) throw new Error(`answer type 0x${answer.type.toString(16)} without ERROR-CODE`);
  return { ok: false, code: (error[2]! & 7) * 100 + error[3]!, reason: error.subarray(4).toString().replace(/\0+$/, '') };
}

function encode(method: number, attrs: [number, Buffer][], key?: Buffer): Buffer {
  const body = Buffer.concat(attrs.map(([type, value]) => attribute(type, value)));
  const header = Buffer.alloc(20);
  header.writeUInt16BE(method, 0);
  header.writeUInt32BE(MAGIC, 4);
  randomBytes(12).copy(header, 8);
  if (key === undefined) {
    header.writeUInt16BE(body.length, 2);
    return Buffer.concat([header, body]);
  }
  // MESSAGE-INTEGRITY covers everything before it, with the length already counting it (RFC 5389 §15.4).
  header.writeUInt16BE(body.length + 24, 2);
  const mac = createHmac('sha1', key).update(Buffer.concat([header, body])).digest();
  return Buffer.concat([header, body, attribute(ATTR.MESSAGE_INTEGRITY, mac)]);
}

function attribute(type: number, value: Buffer): Buffer {
  const out = Buffer.alloc(4 + Math.ceil(value.length / 4) * 4);
  out.writeUInt16BE(type, 0);
  out.writeUInt16BE(value.length, 2);
  value.copy(out, 4);
  return out;
}

function request(socket: Socket, server: { address: string; port: number }, message: Buffer, timeoutMs: number): Promise<{ type: number; attrs: Map<number, Buffer> }> {
  const id = message.subarray(8, 20);
  return new Promise((resolve, reject) => {
    const onMessage = (data: Buffer) => {
      if (data.length < 20 || !data.subarray(8, 20).equals(id)) return;
      done();
      const attrs = new Map<number, Buffer>();
      for (let at = 20; at + 4 <= data.length; ) {
        const type = data.readUInt16BE(at);
        const length = data.readUInt16BE(at + 2);
        attrs.set(type, data.subarray(at + 4, at + 4 + length));
        at += 4 + Math.ceil(length / 4) * 4;
      }
      resolve({ type: data.readUInt16BE(0), attrs });
    };
    // RFC 5389 §7.2.1 retransmits from 500 ms on; a local server answers at once, one resend covers a lost packet.
    const resend = setTimeout(() => socket.send(message, server.port, server.address), 500);
    const timeout = setTimeout(() => (done(), reject(new Error(`no answer from the TURN server within ${timeoutMs} ms`))), timeoutMs);
    const done = () => {
      clearTimeout(resend);
      clearTimeout(timeout);
      socket.off('message', onMessage);
    };
    socket.on('message', onMessage);
    socket.send(message, server.port, server.address, (err) => err && (done(), reject(err)));
  });
}

/** XOR-MAPPED/RELAYED-ADDRESS (RFC 5389 §15.2), IPv4. */
function xorAddress(value: Buffer | undefined): string {
  if (value === undefined || value[1] !== 1) return '?';
  const port = value.readUInt16BE(2) ^ (MAGIC >>> 16);
  const ip = (value.readUInt32BE(4) ^ MAGIC) >>> 0;
  return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}:${port}`;
}
