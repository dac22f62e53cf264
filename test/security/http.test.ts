/**
 * The HTTP(S) server under one hostile address (issue 11, findings 10 and 16): thousands of half-sent requests from
 * one address do not take /healthz or /api/token from others; a request head or body that never completes loses its
 * socket at the configured deadline; a malformed escape is a 400; every response says nosniff; a web page from
 * another origin cannot open MQTT over WebSocket; /metrics and /readyz can require a token.
 *
 * Other addresses are real: the attacker connects from 127.0.0.1, the good client from 127.0.0.2 (Linux routes all
 * of 127/8 to the loopback interface), so per-address limits are tested as they work in production.
 */
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { WebSocket } from 'ws';
import { connectMqtt } from '../../src/mqtt/connect.ts';
import { startBridge, type TestBridge } from '../helpers/bridge.ts';
import { until, withTimeout } from '../helpers/wait.ts';

const GOOD_ADDRESS = '127.0.0.2';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP request from `localAddress`, without keep-alive. */
function fetchFrom(tb: TestBridge, path: string, options: { method?: string; headers?: Record<string, string>; body?: string; localAddress?: string } = {}): Promise<Reply> {
  return withTimeout(
    new Promise<Reply>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port: tb.bridge.httpPort, path, method: options.method ?? 'GET', headers: { connection: 'close', ...options.headers }, localAddress: options.localAddress, agent: false },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        },
      );
      req.on('error', reject);
      req.end(options.body);
    }),
    10_000,
    `${options.method ?? 'GET'} ${path}`,
  );
}

/** `count` sockets from 127.0.0.1, each with half a request head; resolves once each is connected or closed. */
async function halfSentRequests(tb: TestBridge, count: number): Promise<Socket[]> {
  const sockets: Socket[] = [];
  onTestFinished(() => sockets.forEach((s) => s.destroy()));
  const settled: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const socket = connect({ host: '127.0.0.1', port: tb.bridge.httpPort, localAddress: '127.0.0.1' });
    sockets.push(socket);
    socket.on('error', () => {});
    socket.resume(); // read what the server says (408), and so see it close
    settled.push(
      new Promise<void>((resolve) => {
        socket.once('connect', () => {
          socket.write('GET /healthz HTTP/1.1\r\nHost: tali\r\nX-Slow: ');
          resolve();
        });
        socket.once('close', () => resolve());
      }),
    );
  }
  await withTimeout(Promise.all(settled), 30_000, 'the attacking sockets to connect');
  return sockets;
}

/** Resolves once `socket` has closed, also when that happened before anyone waits for it. */
function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => (socket.closed ? resolve() : socket.once('close', () => resolve())));
}

describe('HTTP server against one hostile address', () => {
  it('5 400 half-sent requests from one address: /healthz and /api/token still answer others (finding 10)', async () => {
    const tb = await startBridge();
    const password = await tb.bridge.credentials.add('alice', 'viewer');
    const sockets = await halfSentRequests(tb, 5400);
    for (let i = 0; i < 14; i++) expect((await fetchFrom(tb, '/healthz', { localAddress: GOOD_ADDRESS })).status).toBe(200);
    const basic = `Basic ${Buffer.from(`alice:${password}`).toString('base64')}`;
    const token = await fetchFrom(tb, '/api/token', { method: 'POST', headers: { authorization: basic }, localAddress: GOOD_ADDRESS });
    expect(token.status).toBe(200);
    // The server closed what was over the address's cap at once; the rest it holds until their deadline.
    const cap = tb.bridge.config.maxConnectionsPerAddress + tb.bridge.config.maxHttpSocketsPerAddress;
    await until(() => sockets.filter((s) => !s.destroyed && !s.closed).length <= cap, 10_000, 'the sockets over the cap to be closed');
    expect(tb.bridge.http.refusedSockets).toBeGreaterThan(0);
  });

  it('a request head that never completes loses its socket at httpHeadersTimeoutMs; a body at httpRequestTimeoutMs', async () => {
    const tb = await startBridge({ httpHeadersTimeoutMs: 1000, httpRequestTimeoutMs: 2000 });
    const [head] = await halfSentRequests(tb, 1);
    const headClosed = closed(head!);
    const silent = connect({ host: '127.0.0.1', port: tb.bridge.httpPort });
    onTestFinished(() => void silent.destroy());
    silent.on('error', () => {}).resume();
    // Either may close first: the server accepts the silent socket and reads the head's bytes in either order, and
    // those bytes restart the head's deadline.
    const silentClosed = closed(silent);
    await withTimeout(headClosed, 5000, 'the half-sent head to be closed');
    await withTimeout(silentClosed, 5000, 'a socket that sends nothing to be closed');
    const body = connect({ host: '127.0.0.1', port: tb.bridge.httpPort });
    onTestFinished(() => void body.destroy());
    body.on('error', () => {});
    const bodyClosed = closed(body);
    body.write('POST /api/token HTTP/1.1\r\nHost: tali\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"ttlS"');
    let reply = '';
    body.on('data', (c: Buffer) => (reply += c.toString()));
    await withTimeout(bodyClosed, 6000, 'the half-sent body to be closed');
    expect(reply).toMatch(/^HTTP\/1\.1 408/);
  });
});

describe('HTTP details (finding 16)', () => {
  it('a malformed percent-escape is a 400, for any route', async () => {
    const tb = await startBridge();
    const secret = await tb.bridge.credentials.add('root', 'admin');
    const basic = `Basic ${Buffer.from(`root:${secret}`).toString('base64')}`;
    for (const path of ['/api/recordings/%E0%A4%A', '/api/recordings/cam%', '/api/recordings/%ZZ']) {
      const reply = await fetchFrom(tb, path, { headers: { authorization: basic } });
      expect(reply.status, path).toBe(400);
      expect(JSON.parse(reply.body)).toMatchObject({ error: 'TALI_ERR_BAD_REQUEST' });
    }
    expect((await fetchFrom(tb, '/api/recordings/cam1', { headers: { authorization: basic } })).status).toBe(200);
  });

  it('every response says X-Content-Type-Options: nosniff', async () => {
    const tb = await startBridge();
    for (const [path, method] of [['/api/token', 'POST'], ['/api/recordings', 'GET'], ['/readyz', 'GET'], ['/healthz', 'GET'], ['/metrics', 'GET'], ['/nothing', 'GET']] as const) {
      const reply = await fetchFrom(tb, path, { method });
      expect(reply.headers['x-content-type-options'], path).toBe('nosniff');
    }
  });

  it('/mqtt: a page from another origin is refused (403); its own origin, a listed one and non-browser clients are not', async () => {
    const tb = await startBridge({ allowedOrigins: 'https://dash.example.com, http://ops.example:8443' });
    const secret = await tb.bridge.credentials.add('cam1', 'device');
    const handshake = (origin?: string) =>
      withTimeout(
        new Promise<number>((resolve) => {
          const ws = new WebSocket(tb.bridge.wsUrl, 'mqtt', origin === undefined ? {} : { origin });
          ws.on('open', () => (resolve(101), ws.close()));
          ws.on('unexpected-response', (_req, res) => (resolve(res.statusCode ?? 0), ws.terminate()));
          ws.on('error', () => {});
        }),
        5000,
        `the handshake with Origin ${origin}`,
      );
    expect(await handshake('http://evil.example')).toBe(403);
    expect(await handshake('null')).toBe(403);
    expect(await handshake(`http://localhost:${tb.bridge.httpPort}`)).toBe(403); // not the Host the request names
    expect(await handshake(`http://127.0.0.1:${tb.bridge.httpPort}`)).toBe(101);
    expect(await handshake('https://dash.example.com')).toBe(101);
    expect(await handshake('http://ops.example:8443')).toBe(101);
    expect(await handshake(undefined)).toBe(101);
    // A client without Origin (a device over WebSocket) logs in as before.
    const cam = await connectMqtt({ target: tb.bridge.wsUrl, clientId: 'cam1', username: 'cam1', password: secret });
    await cam.endAsync();
  });

  it('/metrics and /readyz are public by default; with metricsToken they need it, /healthz never does', async () => {
    const open = await startBridge();
    expect((await fetchFrom(open, '/metrics')).status).toBe(200);
    expect((await fetchFrom(open, '/readyz')).status).toBe(200);
    const tb = await startBridge({ metricsToken: 'scrape-me-please' });
    for (const path of ['/metrics', '/readyz']) {
      expect((await fetchFrom(tb, path)).status, path).toBe(401);
      expect((await fetchFrom(tb, path, { headers: { authorization: 'Bearer wrong' } })).status, path).toBe(401);
      expect((await fetchFrom(tb, path, { headers: { authorization: 'Bearer scrape-me-please' } })).status, path).toBe(200);
    }
    expect((await fetchFrom(tb, '/healthz')).status).toBe(200);
    expect(JSON.stringify(tb.logs)).not.toContain('scrape-me-please');
  });
});
