/**
 * Which media worker a new device goes to. A device's cost is not known when it is placed: a camera that has just
 * connected has sent nothing yet, and its viewers (most of its cost) come later, to the same worker. And a worker's
 * measured load (event-loop utilisation over the last ~1 s tick) moves by a few percent on idle threads from tick to
 * tick, so "least load" alone sent 3 of 4 cameras that connected together to one worker (bench/lib/relay-gc.ts run,
 * docs/benchmarks.md sigload "Fourth round"). So: a worker clearly less busy than the others (by more than
 * LOAD_SLACK of a core) is taken; among workers within that margin of the least busy, the one with the fewest devices;
 * ties to the lower load, then the lower index. A slot whose thread has not started counts as idle and empty.
 */

/** How much more event-loop utilisation (0..1) than the least busy worker still counts as "as busy". */
export const LOAD_SLACK = 0.25;

export interface SlotLoad {
  /** Event-loop utilisation over the last tick, 0..1. */
  load: number;
  /** Devices with live objects on it. */
  devices: number;
}

/** The index of the slot a new device goes to. `slots` is not empty. */
export function placeDevice(slots: readonly SlotLoad[]): number {
  const least = Math.min(...slots.map((s) => s.load));
  let best = -1;
  slots.forEach((slot, i) => {
    if (slot.load > least + LOAD_SLACK) return;
    const current = slots[best];
    if (current === undefined || slot.devices < current.devices || (slot.devices === current.devices && slot.load < current.load)) best = i;
  });
  return best;
}
