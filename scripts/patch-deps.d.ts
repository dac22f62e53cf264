// Types of scripts/patch-deps.js (plain JavaScript so it runs inside an app's node_modules), for its tests.
export interface Hunk {
  oldStart: number;
  before: string[];
  after: string[];
}
export function parsePatch(text: string): Map<string, Hunk[]>;
export function applyHunks(text: string, hunks: Hunk[], name: string): { text: string; state: 'patched' | 'applied' };
