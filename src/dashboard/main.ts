/**
 * The dashboard: sign in (a password, a token, or a shared link), then a grid of every camera with stills, one
 * camera's player, a 2×2 live view, recordings, and for admins the devices and users pages. Plain DOM; the bridge
 * bundles this file with esbuild and serves it at `/` (src/web/). The session (a refreshed token) survives a reload
 * (./session.ts); the place is in the URL's #fragment (./router.ts).
 */
import { browserConnector, mqttUrlFor } from '../client/browser-connector.ts';
import { ConnectRefusedError } from '../client/mqtt-link.ts';
import { ViewerClient } from '../viewer/viewer-client.ts';
import { DevicesView, UsersView } from './admin-views.ts';
import { BrowserViewerPeer } from '../player/browser-viewer-peer.ts';
import { CameraView } from './camera-view.ts';
import { byId, meta, setBadge } from './dom.ts';
import { FleetGrid } from './fleet-grid.ts';
import { HealthPoller } from './health.ts';
import { LiveView } from './live-view.ts';
import { RecordingsView } from './recordings-view.ts';
import { hashOf, parseHash, type Route } from './router.ts';
import { DashboardSession, SignInError } from './session.ts';
import { SignalLog } from './signal-log.ts';
import { StatsChart } from './stats-chart.ts';
import { StillsLoader } from './stills.ts';

const MQTT_URL = mqttUrlFor(location, meta('tali-mqtt-path', '/mqtt'));
const ROOT = meta('tali-root', 'tali');
/** `?ttl=S` asks for S-second tokens (to see refreshes happen). */
const TTL_S = Number(new URLSearchParams(location.search).get('ttl')) || undefined;

const SECTIONS: Record<Route['view'], string> = {
  grid: 'grid-view',
  camera: 'viewer',
  live: 'live-view',
  recordings: 'recordings-view',
  devices: 'devices-view',
  users: 'users-view',
};
const ADMIN_VIEWS: Route['view'][] = ['recordings', 'devices', 'users'];

const form = byId<HTMLFormElement>('login');
const loginError = byId('login-error');
const connection = byId('connection');
const chart = new StatsChart(byId<HTMLCanvasElement>('chart'), byId('numbers'));
const log = new SignalLog(byId('log'));

interface SignedIn {
  session: DashboardSession;
  client: ViewerClient;
  health: HealthPoller;
  stills: StillsLoader;
  grid: FleetGrid;
  connectedAt: number | undefined;
  view: { close(): unknown } | undefined;
  releaseHealth: (() => void) | undefined;
}
let current: SignedIn | undefined;

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const data = new FormData(form);
  void signIn(String(data.get('user') ?? '').trim(), String(data.get('password') ?? ''), data.get('keep') === 'on');
});
byId('sign-out').addEventListener('click', () => void leave());
addEventListener('hashchange', () => void route());

void boot();

/** A shared link's token, else the session this tab kept, else the sign-in form. */
async function boot(): Promise<void> {
  const { route: wanted, token } = parseHash(location.hash);
  if (token !== undefined) {
    history.replaceState(null, '', `${location.pathname}${location.search}${hashOf(wanted)}`); // the token leaves the URL
    try {
      await start(await DashboardSession.withToken(token, TTL_S));
    } catch (err) {
      showForm((err as Error).message);
    }
    return;
  }
  const kept = DashboardSession.restore(TTL_S);
  if (kept) await start(kept).catch((err: Error) => showForm(err.message));
  else showForm('');
}

function showForm(error: string): void {
  form.hidden = false;
  loginError.textContent = error;
  const remembered = localStorage.getItem('tali-user');
  const user = form.elements.namedItem('user') as HTMLInputElement;
  if (remembered && user.value === '') user.value = remembered;
}

async function signIn(user: string, password: string, keepPassword: boolean): Promise<void> {
  loginError.textContent = '';
  setBadge(connection, 'connecting', 'connecting…');
  try {
    let session: DashboardSession | undefined;
    if (password.startsWith('tali1.')) {
      // A token names its user: the user field (maybe filled in from the last sign-in) does not matter.
      session = await DashboardSession.withToken(password, TTL_S);
    } else {
      if (user === '') throw new SignInError('Enter your user name (or paste a token as the password).');
      session = (await DashboardSession.withPassword(user, password, TTL_S)) ?? DashboardSession.passwordOnly(user, password);
    }
    await start(session, keepPassword && !password.startsWith('tali1.') ? password : undefined);
    localStorage.setItem('tali-user', session.user);
    form.reset();
  } catch (err) {
    loginError.textContent = err instanceof ConnectRefusedError ? 'Wrong user name or password.' : (err as Error).message;
    setBadge(connection, 'signed-out', 'signed out');
  }
}

/** Connects with the session (or the kept password), then shows the place the URL names. */
async function start(session: DashboardSession, password?: string): Promise<void> {
  setBadge(connection, 'connecting', 'connecting…');
  const client = new ViewerClient({ user: session.user, password: password ?? session.credentials(), root: ROOT, connect: browserConnector(MQTT_URL), devices: session.devices });
  const health = new HealthPoller(session);
  const stills = new StillsLoader(session, () => health.stills !== false);
  health.on('update', () => {
    byId('stills-note').textContent = health.stills === false ? 'No stills: this bridge has no ffmpeg (option ffmpegPath).' : '';
  });
  const grid = new FleetGrid(
    { list: byId('device-list'), empty: byId('no-devices'), search: byId<HTMLInputElement>('search'), stateFilter: byId<HTMLSelectElement>('state-filter'), count: byId('grid-count') },
    health,
    stills,
    (deviceId) => void (location.hash = hashOf({ view: 'camera', deviceId })),
  );
  const signedIn: SignedIn = { session, client, health, stills, grid, connectedAt: undefined, view: undefined, releaseHealth: undefined };
  byId('who').dataset.login = session.usesTokens && password === undefined ? 'token' : 'password';
  client.on('device', (deviceId, entry) => grid.update(deviceId, entry));
  client.on('bridge', () => {
    const bridge = client.onlineBridge;
    setBadge(byId('bridge'), bridge ? 'online' : 'offline', bridge ? `bridge ${bridge.bridgeId} ${bridge.version}` : 'bridge offline');
  });
  client.on('connected', () => {
    signedIn.connectedAt = Date.now();
    health.connectionBack();
    setBadge(connection, 'connected', 'connected');
  });
  client.on('warning', (text) => void (byId('no-devices').textContent = text));
  client.on('refreshed', (credential) => {
    if (typeof credential !== 'string') byId('who').dataset.expires = new Date(credential.expiresAt).toISOString();
  });
  client.on('disconnected', (err) => {
    if (current !== signedIn) return;
    // A token chain that cannot be extended any more (tokenMaxTtlS, an expired link, a removed user): sign in again.
    if (err instanceof SignInError) return void leave().then(() => showForm(err.message));
    health.connectionLost();
    setBadge(connection, 'offline', 'bridge unreachable');
  });
  client.on('reconnecting', ({ delayMs }) => {
    health.connectionLost();
    setBadge(byId('bridge'), 'unknown', 'bridge unknown');
    setBadge(connection, 'retrying', `unreachable: retrying in ${(delayMs / 1000).toFixed(1)} s`);
  });
  try {
    await client.start();
  } catch (err) {
    grid.close();
    stills.close();
    health.close();
    await client.stop();
    if (err instanceof ConnectRefusedError || err instanceof SignInError) session.end();
    throw err;
  }
  current = signedIn;
  BrowserViewerPeer.warmUp().catch(() => {}); // only an optimisation
  byId('who').textContent = session.user;
  form.hidden = true;
  byId('app').hidden = false;
  byId('nav').hidden = false;
  byId('sign-out').hidden = false;
  for (const node of document.querySelectorAll<HTMLElement>('[data-admin]')) node.hidden = !session.admin;
  await route();
}

/** Shows the view the URL's #fragment names (closing the one before). */
async function route(): Promise<void> {
  const s = current;
  if (s === undefined) return;
  let { route: next } = parseHash(location.hash);
  if (ADMIN_VIEWS.includes(next.view) && !s.session.admin) next = { view: 'grid' };
  const previous = s.view;
  s.view = undefined;
  s.releaseHealth?.();
  s.releaseHealth = undefined;
  await previous?.close();
  if (current !== s) return;
  for (const [view, id] of Object.entries(SECTIONS)) byId(id).hidden = view !== next.view;
  for (const link of document.querySelectorAll<HTMLElement>('#nav a')) link.setAttribute('aria-current', String(link.dataset.view === next.view));
  if (next.view === 'grid') s.stills.start();
  else s.stills.stop();
  switch (next.view) {
    case 'grid':
      s.releaseHealth = s.health.use();
      break;
    case 'camera':
      s.view = new CameraView({ client: s.client, session: s.session, health: s.health, chart, log, connectedAt: () => s.connectedAt }, next.deviceId);
      // On a phone the player is the page: show it from its top, not where the grid was scrolled to.
      scrollTo(0, 0);
      byId('stage').scrollIntoView({ block: 'nearest' });
      break;
    case 'live':
      s.view = new LiveView(s.client, next.deviceIds);
      break;
    case 'recordings':
      s.view = new RecordingsView(s.session, next.deviceId);
      break;
    case 'devices':
      s.view = new DevicesView(s.session, s.client);
      break;
    case 'users':
      s.view = new UsersView(s.session, s.client);
      break;
  }
}

async function leave(): Promise<void> {
  const s = current;
  current = undefined;
  if (s === undefined) return;
  s.session.end();
  await s.view?.close();
  s.releaseHealth?.();
  s.grid.close();
  s.stills.close();
  s.health.close();
  await s.client.stop();
  chart.stop();
  log.clear();
  byId('app').hidden = true;
  byId('nav').hidden = true;
  byId('sign-out').hidden = true;
  byId('who').textContent = '';
  setBadge(byId('bridge'), undefined);
  setBadge(connection, 'signed-out', 'signed out');
  history.replaceState(null, '', location.pathname + location.search);
  showForm('');
}
