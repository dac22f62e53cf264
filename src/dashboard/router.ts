/**
 * The dashboard's places, in the URL's #fragment so that a link or a reload opens the same view (the fragment never
 * reaches the server, which also keeps a shared link's token out of its logs):
 *
 *   #/                       the grid of cameras
 *   #/camera/cam1[?token=…]  one camera's player (a token signs in first: a shared link)
 *   #/live[/cam1,cam2,…]     up to four cameras playing at once (2×2)
 *   #/recordings[/cam1]      recordings
 *   #/devices  #/users       admin pages
 *
 * `#cam1` (the old form) still opens the camera.
 */
export type Route =
  | { view: 'grid' }
  | { view: 'camera'; deviceId: string }
  | { view: 'live'; deviceIds: string[] }
  | { view: 'recordings'; deviceId: string | undefined }
  | { view: 'devices' }
  | { view: 'users' };

export interface ParsedHash {
  route: Route;
  /** A token carried by the link (`?token=`), to sign in with. */
  token: string | undefined;
}

export function parseHash(hash: string): ParsedHash {
  const raw = hash.replace(/^#/, '');
  const [path = '', query = ''] = raw.split('?');
  const token = new URLSearchParams(query).get('token') ?? undefined;
  const parts = path.split('/').filter(Boolean).map((p) => safeDecode(p));
  const [head, arg] = parts;
  if (!path.startsWith('/') && head !== undefined) return { route: { view: 'camera', deviceId: head }, token };
  switch (head) {
    case 'camera':
      return arg ? { route: { view: 'camera', deviceId: arg }, token } : { route: { view: 'grid' }, token };
    case 'live':
      return { route: { view: 'live', deviceIds: (arg ?? '').split(',').filter(Boolean).slice(0, 4) }, token };
    case 'recordings':
      return { route: { view: 'recordings', deviceId: arg }, token };
    case 'devices':
    case 'users':
      return { route: { view: head }, token };
    default:
      return { route: { view: 'grid' }, token };
  }
}

export function hashOf(route: Route): string {
  switch (route.view) {
    case 'grid':
      return '#/';
    case 'camera':
      return `#/camera/${encodeURIComponent(route.deviceId)}`;
    case 'live':
      return `#/live${route.deviceIds.length > 0 ? `/${route.deviceIds.map(encodeURIComponent).join(',')}` : ''}`;
    case 'recordings':
      return `#/recordings${route.deviceId ? `/${encodeURIComponent(route.deviceId)}` : ''}`;
    default:
      return `#/${route.view}`;
  }
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
