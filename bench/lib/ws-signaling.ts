/**
 * The wire-bytes baseline: a plain-WebSocket JSON signaling server, as many camera projects build one. One
 * WebSocket per camera (device ID in the URL, no authentication, no acknowledgements), the same JSON messages as
 * protocol v1, answered by the same Session class the bridge uses.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { WebSocketServer } from 'ws';
import { Session } from '../../src/answerer/session.ts';
import type { Bye, Candidate, Offer } from '../../src/protocol/messages.ts';

export interface WsSignalingServer {
  url: string;
  close(): Promise<void>;
}

export async function startWsSignaling(): Promise<WsSignalingServer> {
  const server: Server = createServer();
  const wss = new WebSocketServer({ server, perMessageDeflate: false });
  const sessions = new Set<Session>();
  wss.on('connection', (ws, req) => {
    const deviceId = new URL(req.url ?? '/', 'http://x').searchParams.get('device') ?? 'unknown';
    let session: Session | undefined;
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString()) as Offer | Candidate | Bye;
      if (m.type === 'offer') {
        session = new Session({
          deviceId,
          sessionId: m.sessionId,
          peer: { iceServers: [] },
          connectTimeoutMs: 15_000,
          mediaTimeoutMs: 10_000,
          logger: pino({ level: 'silent' }),
          send: (message) => ws.send(JSON.stringify(message)),
        });
        sessions.add(session);
        void session.open(m);
      } else if (m.type === 'candidate') session?.addCandidate(m);
      else if (m.type === 'bye') void session?.close('normal', { notify: false });
    });
    ws.on('close', () => void session?.close('offline', { notify: false }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/signal`,
    close: async () => {
      await Promise.all([...sessions].map((s) => s.close('shutdown', { notify: false })));
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
