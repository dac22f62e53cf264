/**
 * The dashboard: sign in as a viewer or admin, see every camera live (from the retained cards), click one to watch
 * it through the bridge with its stats, negotiation timeline and signaling log. Plain DOM; the bridge bundles this
 * file with esbuild and serves it at `/` (src/web/).
 */
import { browserConnector, mqttUrlFor } from '../client/browser-connector.ts';
import { ConnectRefusedError } from '../client/mqtt-link.ts';
import { ViewerClient } from '../viewer/viewer-client.ts';
import { BrowserViewerPeer } from './browser-viewer-peer.ts';
import { DeviceList } from './device-list.ts';
import { byId, meta, setBadge } from './dom.ts';
import { Player } from './player.ts';
import { SignalLog } from './signal-log.ts';
import { StatsChart } from './stats-chart.ts';
import { SignInError, tokenLogin } from './tokens.ts';
import { renderCameraTimeline, renderWatchTimeline } from './timeline-view.ts';

const MQTT_URL = mqttUrlFor(location, meta('tali-mqtt-path', '/mqtt'));
const ROOT = meta('tali-root', 'tali');

const form = byId<HTMLFormElement>('login');
const loginError = byId('login-error');
const app = byId('app');
const connection = byId('connection');
const signOut = byId<HTMLButtonElement>('sign-out');
const viewerSection = byId('viewer');
const video = byId<HTMLVideoElement>('video');
const chart = new StatsChart(byId<HTMLCanvasElement>('chart'), byId('numbers'));
const log = new SignalLog(byId('log'));

interface SignedIn {
  client: ViewerClient;
  list: DeviceList;
  player: Player | undefined;
  selected: string | undefined;
}
let current: SignedIn | undefined;

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const data = new FormData(form);
  void signIn(String(data.get('user') ?? ''), String(data.get('password') ?? ''), data.get('keep') === 'on');
});
signOut.addEventListener('click', () => void leave());

const rememberedUser = sessionStorage.getItem('tali-user');
if (rememberedUser) (form.elements.namedItem('user') as HTMLInputElement).value = rememberedUser;

async function signIn(user: string, password: string, keepPassword: boolean): Promise<void> {
  loginError.textContent = '';
  setBadge(connection, 'connecting', 'connecting…');
  let client: ViewerClient;
  try {
    // Short-lived tokens unless asked to keep the password (tokens log in as viewers, even an admin's), or the
    // bridge issues none. `?ttl=S` asks for S-second tokens (to see refreshes happen).
    const ttl = Number(new URLSearchParams(location.search).get('ttl')) || undefined;
    const credential = keepPassword ? undefined : await tokenLogin(user, password, ttl);
    client = new ViewerClient({ user, password: credential ?? password, root: ROOT, connect: browserConnector(MQTT_URL) });
    byId('who').dataset.login = credential ? 'token' : 'password';
  } catch (err) {
    loginError.textContent = (err as Error).message;
    setBadge(connection, 'signed-out', 'signed out');
    return;
  }
  const list = new DeviceList(byId('device-list'), byId('no-devices'), (deviceId) => void select(deviceId));
  const session: SignedIn = { client, list, player: undefined, selected: undefined };
  client.on('device', (deviceId, entry) => {
    list.update(deviceId, entry);
    if (deviceId === session.selected) renderCameraTimeline(byId('camera-timeline'), entry?.metrics);
  });
  client.on('bridge', () => {
    const bridge = client.onlineBridge;
    setBadge(byId('bridge'), bridge ? 'online' : 'offline', bridge ? `bridge ${bridge.bridgeId} ${bridge.version}` : 'bridge offline');
  });
  client.on('connected', () => setBadge(connection, 'connected', `connected`));
  client.on('warning', (text) => void (byId('no-devices').textContent = text));
  client.on('refreshed', (credential) => {
    if (typeof credential !== 'string') byId('who').dataset.expires = new Date(credential.expiresAt).toISOString();
  });
  client.on('disconnected', (err) => {
    // A token chain that cannot be extended any more (tokenMaxTtlS, a removed user): back to the sign-in form.
    if (err instanceof SignInError) void leave().then(() => void (loginError.textContent = err.message));
  });
  client.on('reconnecting', ({ delayMs }) => setBadge(connection, 'retrying', `reconnecting in ${(delayMs / 1000).toFixed(1)} s`));
  client.on('signal', (record) => {
    if (record.deviceId !== undefined && record.deviceId === session.selected) log.add(record);
  });
  try {
    await client.start();
  } catch (err) {
    loginError.textContent = err instanceof ConnectRefusedError ? 'Wrong user name or password.' : (err as Error).message;
    setBadge(connection, 'signed-out', 'signed out');
    list.close();
    await client.stop();
    return;
  }
  current = session;
  BrowserViewerPeer.warmUp().catch(() => {}); // only an optimisation
  sessionStorage.setItem('tali-user', user);
  byId('who').textContent = user;
  form.hidden = true;
  app.hidden = false;
  signOut.hidden = false;
  const wanted = decodeURIComponent(location.hash.slice(1));
  if (wanted) void select(wanted);
}

async function select(deviceId: string): Promise<void> {
  const session = current;
  if (session === undefined || session.selected === deviceId) return;
  if (session.selected !== undefined) session.client.unfollowSignaling(session.selected);
  session.selected = deviceId; // first: a second click while the old player closes must win
  const previous = session.player;
  session.player = undefined;
  await previous?.close();
  if (session.selected !== deviceId || current !== session) return;
  session.list.select(deviceId);
  history.replaceState(null, '', `#${encodeURIComponent(deviceId)}`);
  viewerSection.hidden = false;
  byId('watching').textContent = deviceId;
  log.clear();
  renderCameraTimeline(byId('camera-timeline'), session.client.devices.get(deviceId)?.metrics);
  const scope = byId('log-scope');
  scope.textContent = '';
  // Admins may read the camera's own topics; for a viewer the broker refuses, and the log shows its own sessions.
  session.client.followSignaling(deviceId).then(
    () => void (scope.textContent = '(camera topics and your sessions)'),
    () => void (scope.textContent = '(your sessions)'),
  );
  const player = new Player(session.client, deviceId, video, chart);
  session.player = player;
  const watch = player.watch;
  renderWatchTimeline(byId('timeline'), watch.timeline);
  watch.on('timeline', (timeline) => renderWatchTimeline(byId('timeline'), timeline));
  watch.on('state', (state) => {
    setBadge(byId('watch-state'), state);
    if (state === 'starting') renderWatchTimeline(byId('timeline'), watch.timeline);
  });
  watch.on('stream', (state) => setBadge(byId('stream-state'), state, `camera ${state}`));
  setBadge(byId('watch-state'), watch.state);
  setBadge(byId('stream-state'), undefined);
}

async function leave(): Promise<void> {
  const session = current;
  current = undefined;
  if (session === undefined) return;
  await session.player?.close();
  session.list.close();
  await session.client.stop();
  chart.stop();
  log.clear();
  app.hidden = true;
  viewerSection.hidden = true;
  signOut.hidden = true;
  form.hidden = false;
  byId('who').textContent = '';
  setBadge(connection, 'signed-out', 'signed out');
  history.replaceState(null, '', location.pathname);
}
