/**
 * Loaded first in a child process (node --import) when its parent asked for a lower priority (Child option `nice`):
 * every thread the process has by now, its main thread first, runs BENCH_NICE nice values lower. Linux applies a
 * nice value per thread (setpriority(PRIO_PROCESS, tid)), and threads made later inherit their creator's.
 */
import { readdirSync } from 'node:fs';
import { setPriority } from 'node:os';

const nice = Number(process.env.BENCH_NICE ?? 0);
if (nice > 0) for (const tid of readdirSync('/proc/self/task')) setPriority(Number(tid), nice);
