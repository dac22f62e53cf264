/**
 * Several cameras playing at once: a 2×2 grid of players, each with its camera picker (by default the first four
 * cameras online, in natural order). The choice is in the URL (#/live/cam1,cam2,…), so a wall screen reopens it.
 * Each cell is a Player of its own (a `<tali-player>` with its <video> child): its own watch and peer over the
 * dashboard's one MQTT connection, muted (browsers autoplay muted video only).
 */
import type { TaliPlayerElement } from '../player/tali-player.ts';
import type { ViewerClient } from '../viewer/viewer-client.ts';
import { byId, el, setBadge } from './dom.ts';
import { naturalCompare } from './natural.ts';
import { Player } from './player.ts';
import { hashOf } from './router.ts';

const CELLS = 4;

interface Cell {
  root: HTMLElement;
  select: HTMLSelectElement;
  element: TaliPlayerElement;
  state: HTMLElement;
  player: Player | undefined;
}

export class LiveView {
  readonly #client: ViewerClient;
  readonly #cells: Cell[] = [];
  readonly #unsubscribe: () => void;

  constructor(client: ViewerClient, wanted: string[]) {
    this.#client = client;
    const grid = byId('live-grid');
    grid.replaceChildren();
    const chosen = wanted.length > 0 ? wanted : this.#online().slice(0, CELLS);
    for (let i = 0; i < CELLS; i++) {
      const select = el('select', { 'aria-label': `camera ${i + 1}` }) as HTMLSelectElement;
      const video = el('video', { autoplay: '', playsinline: '', muted: '' }) as HTMLVideoElement;
      video.muted = true;
      const element = el('tali-player', {}, video) as TaliPlayerElement;
      const state = el('span', { class: 'badge' });
      const root = el('div', { class: 'live-cell', 'data-cell': String(i) }, el('div', { class: 'live-head' }, select, state), element);
      grid.append(root);
      const cell: Cell = { root, select, element, state, player: undefined };
      this.#cells.push(cell);
      select.addEventListener('change', () => {
        this.#play(cell, select.value || undefined);
        history.replaceState(null, '', hashOf({ view: 'live', deviceIds: this.#cells.map((c) => c.select.value).filter(Boolean) }));
      });
      this.#options(cell, chosen[i]);
      this.#play(cell, chosen[i]);
    }
    this.#unsubscribe = client.on('device', () => {
      for (const cell of this.#cells) this.#options(cell, cell.select.value || undefined);
    });
  }

  async close(): Promise<void> {
    this.#unsubscribe();
    await Promise.all(this.#cells.map((c) => c.player?.close()));
    byId('live-grid').replaceChildren();
  }

  #online(): string[] {
    return this.#client.devices.list().filter((e) => e.status?.state === 'online').map((e) => e.deviceId).sort(naturalCompare);
  }

  #options(cell: Cell, selected: string | undefined): void {
    const ids = new Set(this.#client.devices.list().map((e) => e.deviceId));
    if (selected) ids.add(selected);
    const options = [el('option', { value: '' }, '—'), ...[...ids].sort(naturalCompare).map((id) => el('option', { value: id }, id))];
    cell.select.replaceChildren(...options);
    cell.select.value = selected ?? '';
  }

  #play(cell: Cell, deviceId: string | undefined): void {
    void cell.player?.close();
    cell.player = undefined;
    cell.root.dataset.device = deviceId ?? '';
    setBadge(cell.state, undefined);
    if (deviceId === undefined) return;
    const player = new Player(this.#client, deviceId, cell.element);
    cell.player = player;
    player.on('watch', (watch) => {
      setBadge(cell.state, watch.state);
      watch.on('state', (state) => setBadge(cell.state, state));
    });
    player.on('change', () => (cell.root.dataset.playing = String(player.playing)));
  }
}
