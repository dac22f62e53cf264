/**
 * The live camera list: one card per device from the retained status cards and metrics (online/offline, last seen,
 * model, codecs, viewers), updated in place as cards arrive, so cameras appear, go offline and come back without a
 * reload. Clicking a card selects it.
 */
import { lastSeen, type DeviceEntry } from '../viewer/device-directory.ts';
import { ago, el, setBadge } from './dom.ts';

export class DeviceList {
  readonly #list: HTMLElement;
  readonly #empty: HTMLElement;
  readonly #onSelect: (deviceId: string) => void;
  readonly #cards = new Map<string, HTMLElement>();
  readonly #entries = new Map<string, DeviceEntry>();
  #selected: string | undefined;
  readonly #timer: ReturnType<typeof setInterval>;

  constructor(list: HTMLElement, empty: HTMLElement, onSelect: (deviceId: string) => void) {
    this.#list = list;
    this.#empty = empty;
    this.#onSelect = onSelect;
    // "12 s ago" goes stale by itself: refresh the relative times now and then.
    this.#timer = setInterval(() => {
      for (const [id, entry] of this.#entries) this.#fill(this.#cards.get(id), entry);
    }, 10_000);
  }

  update(deviceId: string, entry: DeviceEntry | undefined): void {
    let card = this.#cards.get(deviceId);
    if (entry === undefined) {
      card?.remove();
      this.#cards.delete(deviceId);
      this.#entries.delete(deviceId);
    } else {
      if (card === undefined) {
        card = this.#create(deviceId);
        this.#cards.set(deviceId, card);
        const after = [...this.#cards.keys()].sort().find((id) => id > deviceId);
        this.#list.insertBefore(card, after === undefined ? null : (this.#cards.get(after) ?? null));
      }
      this.#entries.set(deviceId, entry);
      this.#fill(card, entry);
    }
    this.#empty.hidden = this.#cards.size > 0;
  }

  select(deviceId: string | undefined): void {
    this.#selected = deviceId;
    for (const [id, card] of this.#cards) card.setAttribute('aria-selected', String(id === deviceId));
  }

  close(): void {
    clearInterval(this.#timer);
    this.#list.replaceChildren();
    this.#cards.clear();
    this.#entries.clear();
  }

  #create(deviceId: string): HTMLElement {
    const card = el('li', { class: 'device', role: 'button', tabindex: '0', 'data-device': deviceId, 'aria-selected': String(deviceId === this.#selected) });
    const choose = () => this.#onSelect(deviceId);
    card.addEventListener('click', choose);
    card.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        choose();
      }
    });
    return card;
  }

  #fill(card: HTMLElement | undefined, entry: DeviceEntry): void {
    if (card === undefined) return;
    const state = entry.status?.state ?? 'unknown';
    card.dataset.state = state;
    const badge = el('span', { class: 'badge' });
    setBadge(badge, state);
    const seen = lastSeen(entry);
    const codecs = [...(entry.status?.codecs?.video ?? []), ...(entry.status?.codecs?.audio ?? [])].join(', ');
    const viewers = entry.metrics?.viewers;
    const lines = [
      state === 'online' ? `online since ${seen === undefined ? '?' : ago(entry.status?.ts ?? seen)}` : `last seen ${seen === undefined ? 'never' : ago(seen)}`,
      [entry.status?.model, entry.status?.firmware].filter(Boolean).join(' '),
      codecs && `codecs ${codecs}`,
      viewers === undefined ? '' : `${viewers} viewer${viewers === 1 ? '' : 's'}`,
    ].filter(Boolean);
    card.replaceChildren(el('span', { class: 'name' }, entry.deviceId, badge), ...lines.map((line) => el('span', { class: 'meta' }, line)));
    if (viewers !== undefined) card.dataset.viewers = String(viewers);
  }
}
