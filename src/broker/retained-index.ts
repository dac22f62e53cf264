/**
 * Retained messages indexed by topic level, for the embedded broker's in-memory persistence.
 *
 * aedes-persistence 11 answers every SUBSCRIBE by testing every retained message against the filter
 * (`asyncPersistence.js` `retainedMessagesByPattern`). Every tali device retains a status card and subscribes, so N
 * devices connecting cost O(N²): measured, connects fell from 382/s at 1 000 devices to 58/s at 10 000, and a
 * reconnect storm after a restart took minutes. Walking a tree of topic levels visits only what a filter can match:
 * an exact filter is one path, `tali/v1/device/+/status` the device level's children and no deeper.
 *
 * Cluster mode keeps aedes-persistence-redis (its retained messages live in Redis): this is for the embedded default.
 */
import { Readable } from 'node:stream';

interface RetainedPacket {
  topic: string;
  payload: Buffer;
}

interface LevelNode {
  children: Map<string, LevelNode>;
  packet: RetainedPacket | undefined;
}

const newNode = (): LevelNode => ({ children: new Map(), packet: undefined });

export class RetainedIndex {
  readonly #root = newNode();
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** Stores a copy of `packet`; an empty payload deletes the topic's retained message (MQTT-3.3.1-10). */
  store(packet: RetainedPacket): void {
    const levels = packet.topic.split('/');
    if (packet.payload.length === 0) {
      this.#delete(this.#root, levels, 0);
      return;
    }
    let node = this.#root;
    for (const level of levels) {
      let child = node.children.get(level);
      if (child === undefined) {
        child = newNode();
        node.children.set(level, child);
      }
      node = child;
    }
    if (node.packet === undefined) this.#size++;
    node.packet = { ...packet };
  }

  /** The retained messages a topic filter matches (MQTT 3.1.1 §4.7). */
  *match(filter: string): Generator<RetainedPacket> {
    yield* this.#walk(this.#root, filter.split('/'), 0);
  }

  *#walk(node: LevelNode, levels: string[], i: number): Generator<RetainedPacket> {
    if (i === levels.length) {
      if (node.packet) yield node.packet;
      return;
    }
    const level = levels[i]!;
    if (level === '#') {
      // `#` also matches the parent level: `sport/#` matches `sport` (§4.7.1.2).
      if (node.packet) yield node.packet;
      for (const [name, child] of node.children) if (!(i === 0 && name.startsWith('$'))) yield* this.#all(child);
    } else if (level === '+') {
      // Wildcards in the first level do not match topics beginning with `$` (MQTT-4.7.2-1).
      for (const [name, child] of node.children) if (!(i === 0 && name.startsWith('$'))) yield* this.#walk(child, levels, i + 1);
    } else {
      const child = node.children.get(level);
      if (child) yield* this.#walk(child, levels, i + 1);
    }
  }

  *#all(node: LevelNode): Generator<RetainedPacket> {
    if (node.packet) yield node.packet;
    for (const child of node.children.values()) yield* this.#all(child);
  }

  /** Removes the topic's message and prunes the levels left empty; whether `node` is now empty. */
  #delete(node: LevelNode, levels: string[], i: number): boolean {
    if (i === levels.length) {
      if (node.packet !== undefined) this.#size--;
      node.packet = undefined;
    } else {
      const child = node.children.get(levels[i]!);
      if (child !== undefined && this.#delete(child, levels, i + 1)) node.children.delete(levels[i]!);
    }
    return node.packet === undefined && node.children.size === 0;
  }
}

/** The three retained-message methods of Aedes's persistence interface (aedes-persistence 11). */
interface RetainedPersistence {
  storeRetained(packet: RetainedPacket, cb?: (err: Error | null) => void): Promise<void> | void;
  createRetainedStream(pattern: string): Readable;
  createRetainedStreamCombi(patterns: string[]): Readable;
}

/** Points an in-memory persistence's retained-message methods at an index; the rest of it is untouched. */
export function indexRetained(persistence: RetainedPersistence, index = new RetainedIndex()): RetainedIndex {
  persistence.storeRetained = (packet, cb) => {
    index.store(packet);
    if (cb) return void process.nextTick(cb, null);
    return Promise.resolve();
  };
  persistence.createRetainedStream = (pattern) => Readable.from(index.match(pattern));
  persistence.createRetainedStreamCombi = (patterns) =>
    Readable.from(
      (function* () {
        for (const pattern of patterns) yield* index.match(pattern);
      })(),
    );
  return index;
}
