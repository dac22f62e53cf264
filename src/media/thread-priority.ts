/**
 * A media worker's scheduling priority: the worker lowers its own thread's priority (a higher nice value) so that,
 * when the CPUs are busy, the main thread (broker, MQTT, signaling) is scheduled before media. Linux applies
 * setpriority(PRIO_PROCESS, tid) to one thread (man 2 setpriority, "Bugs": threads do not share a nice value), which
 * os.setPriority(tid) calls; a thread learns its tid from /proc/thread-self. Raising a nice value needs no privilege;
 * lowering it does (CAP_SYS_NICE or RLIMIT_NICE), which is why only workers move and the main thread stays where it is.
 * Elsewhere (no /proc/thread-self) the call would renice the whole process, so it is not made.
 */
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

export type Lowered = { ok: true; tid: number; nice: number } | { ok: false; reason: string };

/** The calling thread's kernel thread ID (Linux), or undefined without /proc/thread-self. */
export function ownThreadId(): number | undefined {
  try {
    // "/proc/thread-self" → "<pid>/task/<tid>"
    const tid = Number(readlinkSync('/proc/thread-self').split('/').at(-1));
    return Number.isInteger(tid) && tid > 0 ? tid : undefined;
  } catch {
    return undefined;
  }
}

/** Nice values Linux has: -20 (first) … 19 (last). */
export const LOWEST_PRIORITY = 19;

/**
 * Lowers the calling thread's priority by `steps` nice values below what it inherited (its creator's, the main
 * thread's), at most to 19: relative, so a bridge started under `nice` keeps its workers below its main thread and
 * never asks for a raise it may not have. 0 leaves it. Never throws: says why it could not.
 */
export function lowerOwnThread(steps: number): Lowered {
  const tid = ownThreadId();
  if (tid === undefined) return { ok: false, reason: 'no /proc/thread-self (not Linux): a per-thread nice value cannot be set' };
  try {
    const inherited = getPriority(tid);
    if (steps > 0) setPriority(tid, Math.min(LOWEST_PRIORITY, inherited + steps));
    return { ok: true, tid, nice: getPriority(tid) };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}
