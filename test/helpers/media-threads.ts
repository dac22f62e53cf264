/**
 * Media worker threads of this process (tali-media-N, the Worker `name` the OS shows as the thread's name), to check
 * that a bridge started what it should and that closing it left none behind.
 */
import { readdirSync, readFileSync } from 'node:fs';

export function mediaThreads(): string[] {
  return readdirSync('/proc/self/task').flatMap((task) => {
    try {
      const name = readFileSync(`/proc/self/task/${task}/comm`, 'utf8').trim();
      return name.startsWith('tali-media') ? [name] : [];
    } catch {
      return []; // the thread ended while we looked
    }
  });
}
