/** The few DOM helpers the dashboard needs instead of a framework. */

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`#${id} is missing from the page`);
  return found as T;
}

/** Creates an element with attributes (strings) and children (nodes or text). */
export function el(tag: string, attributes: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElement {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

/** A badge's text and its data-state (which the stylesheet colours). */
export function setBadge(node: HTMLElement, state: string | undefined, text = state ?? ''): void {
  node.textContent = text;
  if (state === undefined) delete node.dataset.state;
  else node.dataset.state = state;
}

export function meta(name: string, fallback: string): string {
  const value = document.querySelector<HTMLMetaElement>(`meta[name="${name}"]`)?.content;
  return value && !value.startsWith('{{') ? value : fallback;
}

/** "12 s ago", "3 min ago", or a date for anything older than a day. */
export function ago(ms: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86_400) return `${Math.round(s / 3600)} h ago`;
  return new Date(ms).toLocaleString();
}

/** "21:40:06": a time of day, the same on every machine's locale. */
export function clock(ms: number): string {
  return new Date(ms).toTimeString().slice(0, 8);
}
