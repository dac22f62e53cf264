/**
 * Media worker threads of this process (tali-media-N, the Worker `name` the OS shows as the thread's name), to check
 * that a bridge started what it should and that closing it left none behind.
 */
import { readdirSync, readFileSync } from 'node:fs';

export function mediaThreads(): string[] {
  return mediaThreadIds().map((t) => t.name);
}

/** The same threads with their kernel thread IDs. */
export function mediaThreadIds(): { name: string; tid: number }[] {
  return readdirSync('/proc/self/task').flatMap((task) => {
    try {
      const name = readFileSync(`/proc/self/task/${task}/comm`, 'utf8').trim();
      return name.startsWith('tali-media') ? [{ name, tid: Number(task) }] : [];
    } catch {
      return []; // the thread ended while we looked
    }
  });
}

/** A thread's nice value as the kernel schedules it: field 19 of /proc/<pid>/task/<tid>/stat (proc(5)). */
export function threadNice(tid: number): number {
  const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
  // Fields from 3 on follow the last ')' (the thread's name may hold spaces and parentheses).
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19 - 3]);
}
