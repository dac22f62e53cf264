/**
 * The browser camera: the device SDK (DeviceClient + SessionKeeper) on the browser's RTCPeerConnection and
 * getUserMedia. Log in with a device ID and secret and the page streams to the bridge exactly like an IoT camera: a
 * second, independent implementation of the device side next to the werift one. The bridge serves it at `/camera`.
 */
import { browserConnector, mqttUrlFor } from '../../src/client/browser-connector.ts';
import { ConnectRefusedError } from '../../src/client/mqtt-link.ts';
import type { SessionInfo } from '../sdk/camera-session.ts';
import { DeviceClient } from '../sdk/device-client.ts';
import { SessionKeeper } from '../sdk/session-keeper.ts';
import { BrowserCameraPeer, type BrowserVideoCodec } from './browser-peer.ts';

const byId = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const meta = (name: string, fallback: string) => {
  const value = document.querySelector<HTMLMetaElement>(`meta[name="${name}"]`)?.content;
  return value && !value.startsWith('{{') ? value : fallback;
};
const MQTT_URL = mqttUrlFor(location, meta('tali-mqtt-path', '/mqtt'));
const ROOT = meta('tali-root', 'tali');

const form = byId<HTMLFormElement>('device');
const stopButton = byId<HTMLButtonElement>('stop');
const preview = byId<HTMLVideoElement>('preview');
const errorLine = byId('error');

let running: { client: DeviceClient; keeper: SessionKeeper; media: MediaStream } | undefined;

function badge(id: string, state: string, text = state): void {
  const node = byId(id);
  node.textContent = text;
  node.dataset.state = state;
}

function log(text: string): void {
  const list = byId('log');
  const row = document.createElement('li');
  row.textContent = `${new Date().toISOString().slice(11, 23)} ${text}`;
  list.append(row);
  while (list.childElementCount > 200) list.firstElementChild?.remove();
  list.scrollTop = list.scrollHeight;
}

function showTimeline(info: SessionInfo): void {
  const steps: [keyof SessionInfo['timeline'], string][] = [
    ['offerSent', 'offer sent'],
    ['answerReceived', 'answer'],
    ['connected', 'connected (ICE + DTLS)'],
    ['closed', 'closed'],
  ];
  byId('timeline').replaceChildren(
    ...steps
      .filter(([k]) => info.timeline[k] !== undefined)
      .map(([k, label]) => {
        const li = document.createElement('li');
        li.dataset.step = k;
        li.textContent = `${label}: ${info.timeline[k]?.toFixed(1)} ms`;
        return li;
      }),
  );
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const data = new FormData(form);
  void start(String(data.get('deviceId')), String(data.get('secret')), String(data.get('codec')) as BrowserVideoCodec, data.get('audio') === 'on');
});
stopButton.addEventListener('click', () => void stop());
prefill();

/**
 * `/camera#id=cam1&secret=…` (the dashboard's "add device" link and QR code) fills the form in. The #fragment never
 * reaches a server; it is taken out of the address bar once read, so the secret does not stay in the tab's history.
 */
function prefill(): void {
  const params = new URLSearchParams(location.hash.slice(1));
  const id = params.get('id');
  const secret = params.get('secret');
  if (id === null && secret === null) return;
  if (id !== null) (form.elements.namedItem('deviceId') as HTMLInputElement).value = id;
  if (secret !== null) (form.elements.namedItem('secret') as HTMLInputElement).value = secret;
  history.replaceState(null, '', location.pathname + location.search);
}
addEventListener('pagehide', () => void stop());

async function start(deviceId: string, secret: string, codec: BrowserVideoCodec, audio: boolean): Promise<void> {
  errorLine.textContent = '';
  let media: MediaStream;
  try {
    media = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 } }, audio });
  } catch (err) {
    errorLine.textContent = `No camera: ${(err as Error).message}`;
    return;
  }
  preview.srcObject = media;
  let client: DeviceClient;
  try {
    client = new DeviceClient({
      deviceId,
      secret,
      root: ROOT,
      connect: browserConnector(MQTT_URL),
      card: {
        model: 'browser camera',
        sdk: `tali device SDK in ${navigator.userAgent.match(/(Chrome|Firefox|Safari)\/[\d.]+/)?.[0] ?? 'a browser'}`.slice(0, 64),
        codecs: { video: [codec], audio: audio ? ['opus'] : [] },
      },
    });
  } catch (err) {
    errorLine.textContent = (err as Error).message;
    for (const track of media.getTracks()) track.stop();
    return;
  }
  const keeper = new SessionKeeper({ client, createPeer: (iceServers, { iceTransportPolicy }) => new BrowserCameraPeer(media, iceServers, codec, iceTransportPolicy) });
  client.on('connected', ({ reconnect }) => (badge('mqtt', 'connected', 'MQTT connected'), log(reconnect ? 'reconnected' : 'connected to the broker')));
  client.on('reconnecting', ({ delayMs }) => (badge('mqtt', 'retrying', 'MQTT reconnecting'), log(`reconnecting in ${delayMs} ms`)));
  client.on('bridge', (card) => log(`bridge ${card.bridgeId} ${card.state}`));
  client.on('start', () => log('bridge asks for media (start)'));
  client.on('error', (m) => log(`bridge error ${m.code}: ${m.message}`));
  keeper.on('session-open', (s) => (badge('session', 'offering'), log(`offering, session ${s.sessionId}`), showTimeline(s)));
  keeper.on('session-connected', (s) => (badge('session', 'connected', 'streaming'), log('connected: streaming'), showTimeline(s)));
  keeper.on('session-closed', (s) => (badge('session', 'closed', `idle (${s.closeReason})`), log(`session closed: ${s.closeReason}`), showTimeline(s)));
  keeper.on('retry-scheduled', (r) => log(`offering again in ${r.delayMs} ms (${r.reason})`));
  keeper.start();
  running = { client, keeper, media };
  form.querySelector<HTMLButtonElement>('#start')!.hidden = true;
  stopButton.hidden = false;
  try {
    await client.start();
  } catch (err) {
    errorLine.textContent = err instanceof ConnectRefusedError ? 'Wrong device ID or secret.' : (err as Error).message;
    await stop();
  }
}

async function stop(): Promise<void> {
  const r = running;
  running = undefined;
  if (r === undefined) return;
  await r.keeper.stop(); // bye
  await r.client.stop(); // offline card, DISCONNECT
  for (const track of r.media.getTracks()) track.stop();
  preview.srcObject = null;
  badge('mqtt', 'offline', 'stopped');
  form.querySelector<HTMLButtonElement>('#start')!.hidden = false;
  stopButton.hidden = true;
  log('stopped');
}
