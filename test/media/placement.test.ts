/**
 * Which media worker a new device goes to (src/media/placement.ts): the fewest devices among workers within
 * LOAD_SLACK of the least busy, so cameras that connect together spread evenly whatever the idle threads' load
 * noise, while a worker clearly busier is passed over. (test/media/workers.test.ts: placement in a running bridge.)
 */
import { expect, it } from 'vitest';
import { LOAD_SLACK, placeDevice, type SlotLoad } from '../../src/media/placement.ts';

/** Places `count` devices one after another, loads unchanged (they arrive within one tick); devices per slot. */
function placeAll(loads: number[], count: number, devices = loads.map(() => 0)): number[] {
  const slots: SlotLoad[] = loads.map((load, i) => ({ load, devices: devices[i]! }));
  for (let n = 0; n < count; n++) slots[placeDevice(slots)]!.devices++;
  return slots.map((s) => s.devices);
}

it('cameras that connect together spread evenly over idle workers whose load differs by noise', () => {
  // The bench's case: 4 cameras, two warm workers at 5 % and 2 % (the old rule, load + 0.01 per object, put 3 on one).
  expect(placeAll([0.05, 0.02], 4)).toEqual([2, 2]);
  expect(placeAll([0.2, 0.0, 0.1], 9)).toEqual([3, 3, 3]);
  // Slots not started count as idle and empty: the first devices start every thread before doubling up.
  expect(placeAll([0, 0, 0, 0], 4)).toEqual([1, 1, 1, 1]);
});

it('a worker busier than the least busy by more than the slack gets no new device, whatever its count', () => {
  expect(placeAll([0.9, 0.2], 5, [1, 10])).toEqual([1, 15]);
  // Just within the slack it is "as busy", and counts decide.
  expect(placeAll([0.2 + LOAD_SLACK, 0.2], 2, [0, 1])).toEqual([1, 2]);
});

it('ties go to the lower load, then the lower index', () => {
  expect(placeDevice([{ load: 0.1, devices: 2 }, { load: 0.05, devices: 2 }])).toBe(1);
  expect(placeDevice([{ load: 0.1, devices: 2 }, { load: 0.1, devices: 2 }])).toBe(0);
});
