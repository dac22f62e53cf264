/**
 * One camera's page: live video with fullscreen, picture-in-picture and unmute, a line saying why the picture is
 * black when it is, the camera's health (frame rate, bitrate, uptime, from the bridge), the negotiation timelines,
 * the signaling log, and for admins Record/Stop and a shareable link. A camera this login cannot see, or that does not
 * exist, is said so instead of being watched (a watch for nothing would hold a session on the bridge).
 */
import type { TaliPlayerElement } from '../player/tali-player.ts';
import type { ViewerClient } from '../viewer/viewer-client.ts';
import type { WatchSession } from '../viewer/watch-session.ts';
import { ago, byId, clock, setBadge } from './dom.ts';
import { duration, type HealthPoller } from './health.ts';
import { Player } from './player.ts';
import type { DashboardSession } from './session.ts';
import type { SignalLog } from './signal-log.ts';
import type { StatsChart } from './stats-chart.ts';
import { renderCameraTimeline, renderWatchTimeline } from './timeline-view.ts';
import { whyBlack } from './why-black.ts';

/** Retained cards arrive right after SUBSCRIBE; a camera with none by then is not one this login knows. */
const CARDS_SETTLE_MS = 1500;

export interface CameraViewContext {
  client: ViewerClient;
  session: DashboardSession;
  health: HealthPoller;
  chart: StatsChart;
  log: SignalLog;
  /** When the MQTT connection (re)connected: cards are current some time after it. */
  connectedAt: () => number | undefined;
}

export class CameraView {
  readonly deviceId: string;
  readonly #ctx: CameraViewContext;
  readonly #element = byId<TaliPlayerElement>('player');
  readonly #video = byId<HTMLVideoElement>('video');
  #player: Player | undefined;
  #error: { code: string; message: string } | undefined;
  #registered: boolean | undefined;
  #settleTimer: ReturnType<typeof setTimeout> | undefined;
  #tick: ReturnType<typeof setInterval>;
  readonly #release: () => void;
  readonly #cleanup: (() => void)[] = [];
  #closed = false;

  constructor(ctx: CameraViewContext, deviceId: string) {
    this.#ctx = ctx;
    this.deviceId = deviceId;
    this.#release = ctx.health.use();
    byId('watching').textContent = deviceId;
    ctx.log.clear();
    byId('timeline').replaceChildren(); // the previous camera's, until this one's watch starts
    byId('numbers').replaceChildren();
    setBadge(byId('watch-state'), undefined);
    setBadge(byId('stream-state'), undefined);
    byId('share-box').hidden = true;
    (byId('camera-recordings') as HTMLAnchorElement).href = `#/recordings/${encodeURIComponent(deviceId)}`;
    this.#controls();
    this.#cleanup.push(ctx.health.on('update', () => this.#render()));
    this.#cleanup.push(ctx.client.on('device', (id) => {
      if (id !== deviceId) return;
      renderCameraTimeline(byId('camera-timeline'), ctx.client.devices.get(deviceId)?.metrics);
      this.#maybeWatch();
      this.#render();
    }));
    this.#cleanup.push(ctx.client.on('signal', (record) => {
      if (record.deviceId === deviceId) ctx.log.add(record);
    }));
    this.#cleanup.push(ctx.client.on('connected', () => this.#settle()));
    renderCameraTimeline(byId('camera-timeline'), ctx.client.devices.get(deviceId)?.metrics);
    this.#tick = setInterval(() => this.#render(), 1000);
    if (ctx.session.admin) void this.#checkRegistered();
    this.#settle();
    this.#maybeWatch();
    this.#render();
    void this.#followSignaling();
    if (ctx.session.admin) void this.#recordButton();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#tick);
    clearTimeout(this.#settleTimer);
    for (const undo of this.#cleanup) undo();
    this.#release();
    this.#ctx.client.unfollowSignaling(this.deviceId);
    this.#ctx.chart.stop();
    await this.#player?.close();
  }

  /** Whether the camera is one to watch: it has a card, or (admins) it is registered; scoped logins: it is in scope. */
  #known(): boolean | undefined {
    const scope = this.#ctx.session.devices;
    if (scope !== undefined && !scope.includes(this.deviceId)) return false;
    if (this.#ctx.client.devices.get(this.deviceId) !== undefined || this.#registered === true) return true;
    const at = this.#ctx.connectedAt();
    if (this.#registered === false || (at !== undefined && Date.now() - at >= CARDS_SETTLE_MS)) return false;
    return undefined;
  }

  #settle(): void {
    clearTimeout(this.#settleTimer);
    const at = this.#ctx.connectedAt();
    if (at === undefined) return;
    this.#settleTimer = setTimeout(() => this.#render(), Math.max(0, at + CARDS_SETTLE_MS - Date.now()) + 10);
  }

  async #checkRegistered(): Promise<void> {
    // The list rather than /api/devices/{id}: a 404 would be a console error for a question with a normal "no".
    const listed = await this.#ctx.session.json<{ devices: { id: string }[] }>('api/devices').catch(() => undefined);
    if (listed === undefined || this.#closed) return;
    this.#registered = listed.devices.some((d) => d.id === this.deviceId);
    this.#maybeWatch();
    this.#render();
  }

  #maybeWatch(): void {
    if (this.#closed || this.#player !== undefined || this.#known() !== true) return;
    const player = new Player(this.#ctx.client, this.deviceId, this.#element, this.#ctx.chart);
    this.#player = player;
    player.on('watch', (watch) => this.#follow(watch));
    player.on('change', () => this.#render());
    setBadge(byId('watch-state'), undefined);
  }

  #follow(watch: WatchSession): void {
    renderWatchTimeline(byId('timeline'), watch.timeline);
    watch.on('timeline', (timeline) => renderWatchTimeline(byId('timeline'), timeline));
    watch.on('state', (state) => {
      setBadge(byId('watch-state'), state);
      if (state === 'starting') renderWatchTimeline(byId('timeline'), watch.timeline);
      if (state === 'connected') this.#error = undefined;
      this.#render();
    });
    watch.on('stream', (state) => {
      setBadge(byId('stream-state'), state, `camera ${state}`);
      this.#render();
    });
    watch.on('error', (m) => {
      this.#error = { code: m.code, message: m.message };
      this.#render();
    });
    setBadge(byId('watch-state'), watch.state);
    if (watch.stream !== undefined) setBadge(byId('stream-state'), watch.stream, `camera ${watch.stream}`);
    this.#render();
  }

  #render(): void {
    if (this.#closed) return;
    const { client, health } = this.#ctx;
    const entry = client.devices.get(this.deviceId);
    const player = this.#player;
    const why = whyBlack({
      deviceId: this.deviceId,
      unreachableSince: health.unreachableSince,
      entry,
      unknown: this.#known() === false,
      watch: player?.watch?.state,
      stream: player?.watch?.stream,
      error: this.#error,
      playing: player?.playing ?? false,
      autoplayBlocked: player?.autoplayBlocked ?? false,
    });
    const line = byId('why');
    line.textContent = why;
    line.hidden = why === '';
    line.dataset.reason = this.#known() === false ? 'unknown' : health.unreachableSince !== undefined ? 'unreachable' : why === '' ? 'playing' : 'other';
    byId('play').hidden = !(player?.autoplayBlocked ?? false);
    const unmute = byId<HTMLButtonElement>('unmute');
    unmute.textContent = this.#video.muted ? 'Unmute' : 'Mute';
    unmute.disabled = !(player?.hasAudio ?? false);
    const h = health.cameras.get(this.deviceId);
    const rows: [string, string][] = [
      ['state', health.unreachableSince !== undefined ? `unknown since ${clock(health.unreachableSince)}` : (entry?.status?.state ?? 'no card')],
      ['frame rate', h ? `${h.fps.toFixed(1)} fps` : '–'],
      ['bitrate', h ? `${Math.round(h.bitrate / 1000)} kbit/s` : '–'],
      ['uptime', h?.streamingSince !== undefined ? duration(Date.now() - h.streamingSince) : '–'],
      ['model', [entry?.status?.model, entry?.status?.firmware].filter(Boolean).join(' ') || '–'],
      ['last seen', entry?.status?.state === 'online' ? 'now' : entry?.status ? ago(entry.status.ts) : '–'],
    ];
    const dl = byId('health');
    dl.replaceChildren(...rows.flatMap(([k, v]) => [Object.assign(document.createElement('dt'), { textContent: k }), Object.assign(document.createElement('dd'), { textContent: v })]));
    if (h) {
      dl.dataset.fps = String(h.fps);
      dl.dataset.bitrate = String(h.bitrate);
    }
  }

  #controls(): void {
    const video = this.#video;
    const stage = byId('stage');
    const click = (id: string, action: () => unknown) => {
      const button = byId<HTMLButtonElement>(id);
      const handler = () => void Promise.resolve(action()).catch((err: Error) => (byId('why').textContent = err.message));
      button.addEventListener('click', handler);
      this.#cleanup.push(() => button.removeEventListener('click', handler));
    };
    click('play', () => video.play().then(() => this.#render())); // the element hears the play too (autoplayBlocked)
    click('unmute', () => {
      video.muted = !video.muted;
      if (!video.muted) void video.play().catch(() => {});
      this.#render();
    });
    click('fullscreen', () => (document.fullscreenElement ? document.exitFullscreen() : stage.requestFullscreen()));
    click('pip', () => (document.pictureInPictureElement ? document.exitPictureInPicture() : video.requestPictureInPicture()));
    byId<HTMLButtonElement>('pip').disabled = !document.pictureInPictureEnabled;
    byId<HTMLButtonElement>('fullscreen').disabled = !document.fullscreenEnabled;
    click('share', () => (byId('share-box').hidden = !byId('share-box').hidden));
    click('share-make', async () => {
      const ttlS = Number(byId<HTMLSelectElement>('share-ttl').value);
      const link = await this.#ctx.session.json<{ url: string; expiresAt: string }>('api/links', { method: 'POST', body: { deviceId: this.deviceId, ttlS } });
      byId<HTMLInputElement>('share-url').value = link.url;
      byId('share-expires').textContent = `valid until ${new Date(link.expiresAt).toLocaleString()}`;
    });
    click('record', async () => {
      const recording = byId('record').dataset.recording === 'true';
      await this.#ctx.session.json(`api/recordings/${encodeURIComponent(this.deviceId)}`, { method: recording ? 'DELETE' : 'POST' });
      await this.#recordButton();
    });
  }

  async #recordButton(): Promise<void> {
    const button = byId<HTMLButtonElement>('record');
    try {
      // The list names every device recorded or waiting to be (the per-device answer cannot tell "not wanted").
      const all = await this.#ctx.session.json<{ recordings: { deviceId: string; mode: string; recording: boolean }[] }>('api/recordings');
      const status = all.recordings.find((r) => r.deviceId === this.deviceId);
      const on = status !== undefined;
      button.dataset.recording = String(on);
      button.textContent = on ? (status.recording ? 'Stop recording ●' : 'Stop recording (waiting for video)') : 'Record';
      button.disabled = status?.mode === 'always';
      button.title = status?.mode === 'always' ? "recorded by the bridge's record option" : '';
    } catch (err) {
      button.textContent = 'Record';
      button.title = (err as Error).message;
    }
  }

  async #followSignaling(): Promise<void> {
    const scope = byId('log-scope');
    scope.textContent = '';
    // Admins with the password may read the camera's own topics; for tokens the broker refuses.
    await this.#ctx.client.followSignaling(this.deviceId).then(
      () => void (scope.textContent = '(camera topics and your sessions)'),
      () => void (scope.textContent = '(your sessions)'),
    );
  }
}
