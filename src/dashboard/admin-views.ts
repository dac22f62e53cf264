/**
 * The admin pages: devices (add: the secret shown once, with a link and QR code that open the browser camera filled
 * in; re-key; remove; online and last seen) and users (add with a role, re-key, remove; a shareable link that lets
 * one camera be watched until it expires). Everything goes through the bridge's admin API (src/web/api/).
 */
import type { ViewerClient } from '../viewer/viewer-client.ts';
import { ago, byId, el } from './dom.ts';
import { naturalCompare } from './natural.ts';
import { drawQr } from './qr.ts';
import type { DashboardSession } from './session.ts';

interface DeviceRow {
  id: string;
  created: string;
  online: boolean;
  lastSeen: string | null;
}

interface UserRow {
  id: string;
  role: string;
  created: string;
}

/** The browser camera's URL with the device filled in; the #fragment never reaches a server. */
export function cameraPageUrl(deviceId: string, secret: string): string {
  return new URL(`camera#${new URLSearchParams({ id: deviceId, secret })}`, location.href).href;
}

/** Runs `run`, showing its error (the bridge's message) in the page's `errorId` element instead of throwing. */
async function guarded(errorId: string, run: () => Promise<void>): Promise<void> {
  try {
    byId(errorId).textContent = '';
    await run();
  } catch (err) {
    byId(errorId).textContent = (err as Error).message;
  }
}

function action(label: string, run: () => Promise<void>, confirmText?: string): HTMLElement {
  const button = el('button', { type: 'button', 'data-action': label.toLowerCase() }, label);
  button.addEventListener('click', () => {
    if (confirmText && !confirm(confirmText)) return;
    void run();
  });
  return button;
}

export class DevicesView {
  readonly #session: DashboardSession;
  readonly #client: ViewerClient;
  readonly #form = byId<HTMLFormElement>('add-device');
  readonly #onSubmit = (event: SubmitEvent) => {
    event.preventDefault();
    const id = String(new FormData(this.#form).get('id') ?? '');
    void guarded('devices-error', async () => {
      const added = await this.#session.json<{ id: string; secret: string }>('api/devices', { method: 'POST', body: { id } });
      this.#form.reset();
      this.#showSecret(added.id, added.secret);
      await this.#load();
    });
  };
  readonly #unsubscribe: () => void;

  constructor(session: DashboardSession, client: ViewerClient) {
    this.#session = session;
    this.#client = client;
    byId('devices-error').textContent = '';
    byId('secret-box').hidden = true;
    this.#form.addEventListener('submit', this.#onSubmit);
    byId('secret-done').onclick = () => {
      byId('secret-box').hidden = true;
      byId('secret-value').textContent = '';
    };
    // Cards tell when a device comes or goes: the list follows without polling.
    this.#unsubscribe = client.on('device', () => void this.#load());
    void this.#load();
  }

  close(): void {
    this.#form.removeEventListener('submit', this.#onSubmit);
    this.#unsubscribe();
    byId('secret-box').hidden = true;
    byId('secret-value').textContent = '';
  }

  #showSecret(id: string, secret: string): void {
    const url = cameraPageUrl(id, secret);
    byId('secret-for').textContent = id;
    byId('secret-value').textContent = secret;
    (byId('secret-link') as HTMLAnchorElement).href = url;
    drawQr(byId<HTMLCanvasElement>('secret-qr'), url);
    byId('secret-box').hidden = false;
  }

  async #load(): Promise<void> {
    await guarded('devices-error', async () => {
      const { devices } = await this.#session.json<{ devices: DeviceRow[] }>('api/devices');
      devices.sort((a, b) => naturalCompare(a.id, b.id));
      byId('devices-table').querySelector('tbody')?.replaceChildren(...devices.map((d) => this.#row(d)));
    });
  }

  #row(d: DeviceRow): HTMLElement {
    // The bridge's presence (this node), or the device's card, whichever says online.
    const card = this.#client.devices.get(d.id)?.status;
    const online = d.online || card?.state === 'online';
    const seen = online ? 'now' : d.lastSeen ? ago(Date.parse(d.lastSeen)) : card ? ago(card.ts) : 'never';
    return el(
      'tr',
      { 'data-device': d.id, 'data-state': online ? 'online' : 'offline' },
      el('td', {}, el('a', { href: `#/camera/${encodeURIComponent(d.id)}` }, d.id)),
      el('td', {}, online ? 'online' : 'offline'),
      el('td', {}, seen),
      el('td', {}, new Date(d.created).toLocaleString()),
      el(
        'td',
        {},
        action('Re-key', async () => guarded('devices-error', async () => {
          const { secret } = await this.#session.json<{ secret: string }>(`api/devices/${encodeURIComponent(d.id)}/secret`, { method: 'POST' });
          this.#showSecret(d.id, secret);
        }), `Give ${d.id} a new secret? Its old one stops working and its connection is closed.`),
        ' ',
        action('Remove', async () => guarded('devices-error', async () => {
          await this.#session.json(`api/devices/${encodeURIComponent(d.id)}`, { method: 'DELETE' });
          await this.#load();
        }), `Remove ${d.id}? Its connection is closed and its secret stops working.`),
      ),
    );
  }
}

export class UsersView {
  readonly #session: DashboardSession;
  readonly #client: ViewerClient;
  readonly #form = byId<HTMLFormElement>('add-user');
  readonly #mint = byId<HTMLFormElement>('mint-link');
  readonly #onSubmit = (event: SubmitEvent) => {
    event.preventDefault();
    const data = new FormData(this.#form);
    void guarded('users-error', async () => {
      const added = await this.#session.json<{ id: string; secret: string }>('api/users', { method: 'POST', body: { id: String(data.get('id')), role: String(data.get('role')) } });
      this.#form.reset();
      this.#showSecret(added.id, added.secret);
      await this.#load();
    });
  };
  readonly #onMint = (event: SubmitEvent) => {
    event.preventDefault();
    const data = new FormData(this.#mint);
    void guarded('users-error', async () => {
      const link = await this.#session.json<{ url: string; expiresAt: string }>('api/links', {
        method: 'POST',
        body: { deviceId: String(data.get('deviceId')), user: String(data.get('user')), ttlS: Number(data.get('ttlS')) },
      });
      const out = byId<HTMLInputElement>('mint-url');
      out.value = link.url;
      out.hidden = false;
      byId('mint-expires').textContent = `valid until ${new Date(link.expiresAt).toLocaleString()}`;
    });
  };

  constructor(session: DashboardSession, client: ViewerClient) {
    this.#session = session;
    this.#client = client;
    byId('users-error').textContent = '';
    byId('user-secret-box').hidden = true;
    byId<HTMLInputElement>('mint-url').hidden = true;
    byId('mint-expires').textContent = '';
    this.#form.addEventListener('submit', this.#onSubmit);
    this.#mint.addEventListener('submit', this.#onMint);
    byId('user-secret-done').onclick = () => {
      byId('user-secret-box').hidden = true;
      byId('user-secret-value').textContent = '';
    };
    void this.#load();
  }

  close(): void {
    this.#form.removeEventListener('submit', this.#onSubmit);
    this.#mint.removeEventListener('submit', this.#onMint);
    byId('user-secret-value').textContent = '';
  }

  #showSecret(id: string, secret: string): void {
    byId('user-secret-for').textContent = id;
    byId('user-secret-value').textContent = secret;
    byId('user-secret-box').hidden = false;
  }

  async #load(): Promise<void> {
    await guarded('users-error', async () => {
      const { users } = await this.#session.json<{ users: UserRow[] }>('api/users');
      users.sort((a, b) => naturalCompare(a.id, b.id));
      byId('users-table').querySelector('tbody')?.replaceChildren(...users.map((u) => this.#row(u)));
      const userSelect = this.#mint.elements.namedItem('user') as HTMLSelectElement;
      userSelect.replaceChildren(...users.map((u) => el('option', { value: u.id }, `${u.id} (${u.role})`)));
      userSelect.value = this.#session.user;
      const cameras = this.#client.devices.list().map((e) => e.deviceId).sort(naturalCompare);
      (this.#mint.elements.namedItem('deviceId') as HTMLSelectElement).replaceChildren(...cameras.map((id) => el('option', { value: id }, id)));
    });
  }

  #row(u: UserRow): HTMLElement {
    const self = u.id === this.#session.user;
    return el(
      'tr',
      { 'data-user': u.id },
      el('td', {}, u.id, self ? ' (you)' : ''),
      el('td', {}, u.role),
      el('td', {}, new Date(u.created).toLocaleString()),
      el(
        'td',
        {},
        ...(self
          ? []
          : [
              action('Re-key', async () => guarded('users-error', async () => {
                const { secret } = await this.#session.json<{ secret: string }>(`api/users/${encodeURIComponent(u.id)}/secret`, { method: 'POST' });
                this.#showSecret(u.id, secret);
              }), `Give ${u.id} a new password? The old one and its tokens stop working.`),
              ' ',
              action('Remove', async () => guarded('users-error', async () => {
                await this.#session.json(`api/users/${encodeURIComponent(u.id)}`, { method: 'DELETE' });
                await this.#load();
              }), `Remove ${u.id}? Its connections close and its tokens stop working.`),
            ]),
      ),
    );
  }
}
