/**
 * The grid of cameras: one tile per device from the retained status cards and metrics, with its latest still, state,
 * model, rates and uptime (from the bridge, ./health.ts), in natural order (cam2 before cam10), searchable by ID or
 * model and filterable by state. Tiles update in place as cards arrive. While the bridge is unreachable every tile
 * says "unknown since …": its last card may no longer be true.
 */
import { lastSeen, type DeviceEntry } from '../viewer/device-directory.ts';
import { ago, clock, el, setBadge } from './dom.ts';
import { rateLine, type HealthPoller } from './health.ts';
import { naturalCompare } from './natural.ts';
import type { StillsLoader } from './stills.ts';

export interface GridControls {
  list: HTMLElement;
  empty: HTMLElement;
  search: HTMLInputElement;
  stateFilter: HTMLSelectElement;
  count: HTMLElement;
}

export class FleetGrid {
  readonly #ui: GridControls;
  readonly #health: HealthPoller;
  readonly #stills: StillsLoader;
  readonly #onSelect: (deviceId: string) => void;
  readonly #tiles = new Map<string, HTMLElement>();
  readonly #entries = new Map<string, DeviceEntry>();
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #onHealth = () => this.#refreshAll();
  readonly #onFilter = () => this.#applyFilter();

  constructor(ui: GridControls, health: HealthPoller, stills: StillsLoader, onSelect: (deviceId: string) => void) {
    this.#ui = ui;
    this.#health = health;
    this.#stills = stills;
    this.#onSelect = onSelect;
    health.on('update', this.#onHealth);
    ui.search.addEventListener('input', this.#onFilter);
    ui.stateFilter.addEventListener('change', this.#onFilter);
    // "12 s ago" goes stale by itself.
    this.#timer = setInterval(this.#onHealth, 10_000);
  }

  update(deviceId: string, entry: DeviceEntry | undefined): void {
    let tile = this.#tiles.get(deviceId);
    if (entry === undefined) {
      tile?.remove();
      this.#tiles.delete(deviceId);
      this.#entries.delete(deviceId);
      this.#stills.detach(deviceId);
    } else {
      if (tile === undefined) {
        tile = this.#create(deviceId);
        this.#tiles.set(deviceId, tile);
        const after = [...this.#tiles.keys()].sort(naturalCompare).find((id) => naturalCompare(id, deviceId) > 0);
        this.#ui.list.insertBefore(tile, after === undefined ? null : (this.#tiles.get(after) ?? null));
      }
      this.#entries.set(deviceId, entry);
      this.#fill(tile, entry);
    }
    this.#applyFilter();
  }

  close(): void {
    clearInterval(this.#timer);
    this.#health.off('update', this.#onHealth);
    this.#ui.search.removeEventListener('input', this.#onFilter);
    this.#ui.stateFilter.removeEventListener('change', this.#onFilter);
    this.#ui.list.replaceChildren();
    this.#tiles.clear();
    this.#entries.clear();
  }

  #refreshAll(): void {
    for (const [id, entry] of this.#entries) this.#fill(this.#tiles.get(id), entry);
    this.#applyFilter();
  }

  #create(deviceId: string): HTMLElement {
    const img = el('img', { class: 'still', alt: `still of ${deviceId}`, loading: 'lazy' }) as HTMLImageElement;
    const tile = el('li', { class: 'device', role: 'button', tabindex: '0', 'data-device': deviceId }, el('div', { class: 'still-box' }, img), el('div', { class: 'info' }));
    this.#stills.attach(deviceId, img);
    const choose = () => this.#onSelect(deviceId);
    tile.addEventListener('click', choose);
    tile.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        choose();
      }
    });
    return tile;
  }

  #fill(tile: HTMLElement | undefined, entry: DeviceEntry): void {
    if (tile === undefined) return;
    const since = this.#health.unreachableSince;
    const cardState = entry.status?.state ?? 'unknown';
    const state = since === undefined ? cardState : 'unknown';
    tile.dataset.state = state;
    const badge = el('span', { class: 'badge' });
    setBadge(badge, state);
    const seen = lastSeen(entry);
    const health = this.#health.cameras.get(entry.deviceId);
    const codecs = [...(entry.status?.codecs?.video ?? []), ...(entry.status?.codecs?.audio ?? [])].join(', ');
    const viewers = entry.metrics?.viewers;
    const known = cardState === 'online' ? `online since ${seen === undefined ? '?' : ago(entry.status?.ts ?? seen)}` : `last seen ${seen === undefined ? 'never' : ago(seen)}`;
    const lines = [
      since === undefined ? known : `unknown since ${clock(since)}: the bridge is unreachable`,
      since === undefined ? '' : `last known: ${known}`,
      [entry.status?.model, entry.status?.firmware].filter(Boolean).join(' '),
      codecs && `codecs ${codecs}`,
      since === undefined && cardState === 'online' ? rateLine(health) : '',
      viewers === undefined ? '' : `${viewers} viewer${viewers === 1 ? '' : 's'}`,
    ].filter(Boolean);
    tile.querySelector('.info')?.replaceChildren(el('span', { class: 'name' }, entry.deviceId, badge), ...lines.map((line) => el('span', { class: 'meta' }, line)));
    tile.dataset.model = entry.status?.model ?? '';
    if (viewers !== undefined) tile.dataset.viewers = String(viewers);
    if (health) {
      tile.dataset.fps = String(health.fps);
      tile.dataset.bitrate = String(health.bitrate);
    }
  }

  #applyFilter(): void {
    const text = this.#ui.search.value.trim().toLowerCase();
    const wanted = this.#ui.stateFilter.value;
    let shown = 0;
    for (const [id, tile] of this.#tiles) {
      const entry = this.#entries.get(id);
      const matches =
        (text === '' || id.toLowerCase().includes(text) || (entry?.status?.model ?? '').toLowerCase().includes(text)) &&
        (wanted === 'all' || (entry?.status?.state ?? 'unknown') === wanted);
      tile.hidden = !matches;
      if (matches) shown++;
    }
    this.#ui.count.textContent = this.#tiles.size === 0 ? '' : `${shown} of ${this.#tiles.size}`;
    this.#ui.empty.hidden = this.#tiles.size > 0;
  }
}
