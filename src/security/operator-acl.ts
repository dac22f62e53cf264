/**
 * The operator's rule file (option `aclFile`): topics beyond tali's protocol that clients may use, for operators who
 * run one broker for everything their devices do (telemetry, commands). Mosquitto's `acl_file` syntax:
 *
 *   # a comment
 *   topic read sensors/public/#          lines before any `user` line: clients that logged in anonymously
 *   user cam1                            the following `topic` lines: the identity cam1 (a device ID or user name)
 *   topic write telemetry/cam1/#
 *   topic readwrite commands/cam1
 *   topic deny telemetry/cam1/secret
 *   pattern write telemetry/%u/#         every client; %u its identity ID, %c its client ID
 *
 * Access is `read` (subscribe and receive), `write` (publish, retain included, and last wills), `readwrite` (the
 * default when omitted) or `deny` (wins over any grant in the file). Anything the file does not grant is denied.
 *
 * The file only adds: the broker asks it after tali's own rules (src/security/access.ts), and never for a topic under
 * the protocol root (`{root}/…`) nor for a publish to `$SYS/…`. No line can give a client another device's
 * signaling, or let it pose as the bridge. A `read #` lets a client subscribe to `#`, but what it receives is still
 * decided per message (src/broker/broker.ts, authorizeForward).
 */
import { readFile, stat } from 'node:fs/promises';
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';
import { covers } from './access.ts';

export type AclAccess = 'read' | 'write';
type RuleAccess = AclAccess | 'readwrite' | 'deny';

interface Rule {
  access: RuleAccess;
  topic: string;
}

/** Who asks: the identity ID it logged in as (undefined: anonymous) and its client ID. */
export interface AclSubject {
  username: string | undefined;
  clientId: string;
}

export class AclSyntaxError extends Error {
  constructor(file: string, line: number, message: string) {
    super(`${file}:${line}: ${message}`);
    this.name = 'AclSyntaxError';
  }
}

const ACCESS = new Set<string>(['read', 'write', 'readwrite', 'deny']);

export class OperatorAcl {
  readonly #anonymous: Rule[];
  readonly #users: Map<string, Rule[]>;
  readonly #patterns: Rule[];

  private constructor(anonymous: Rule[], users: Map<string, Rule[]>, patterns: Rule[]) {
    this.#anonymous = anonymous;
    this.#users = users;
    this.#patterns = patterns;
  }

  /** Parses the file's text; throws AclSyntaxError naming the line of the first thing it does not understand. */
  static parse(text: string, file = 'aclFile'): OperatorAcl {
    const anonymous: Rule[] = [];
    const users = new Map<string, Rule[]>();
    const patterns: Rule[] = [];
    let current = anonymous;
    const lines = text.split(/\r?\n/);
    for (let i = 0; i < lines.length; i++) {
      const line = (lines[i] as string).trim();
      if (line === '' || line.startsWith('#')) continue;
      const [keyword = '', ...rest] = line.split(/\s+/);
      if (keyword === 'user') {
        const name = line.slice(keyword.length).trim();
        if (name === '') throw new AclSyntaxError(file, i + 1, '`user` without a name');
        current = users.get(name) ?? [];
        users.set(name, current);
        continue;
      }
      if (keyword !== 'topic' && keyword !== 'pattern') throw new AclSyntaxError(file, i + 1, `unknown line ${JSON.stringify(line.slice(0, 40))}`);
      const explicit = rest.length > 1 && ACCESS.has(rest[0] as string);
      const access = (explicit ? rest[0] : 'readwrite') as RuleAccess;
      const topic = line.slice(keyword.length).trim().slice(explicit ? (rest[0] as string).length : 0).trim();
      if (topic === '') throw new AclSyntaxError(file, i + 1, `\`${keyword}\` without a topic`);
      (keyword === 'topic' ? current : patterns).push({ access, topic });
    }
    return new OperatorAcl(anonymous, users, patterns);
  }

  /** Whether the file grants `access` to a topic (write, and read for delivery) or a filter (read, for SUBSCRIBE). */
  allows(subject: AclSubject, access: AclAccess, topicOrFilter: string): boolean {
    const rules = [...(subject.username === undefined ? this.#anonymous : (this.#users.get(subject.username) ?? []))];
    for (const rule of this.#patterns) {
      if (rule.topic.includes('%u') && subject.username === undefined) continue;
      rules.push({ access: rule.access, topic: rule.topic.replaceAll('%u', subject.username ?? '').replaceAll('%c', subject.clientId) });
    }
    if (rules.some((rule) => rule.access === 'deny' && covers(rule.topic, topicOrFilter))) return false;
    return rules.some((rule) => (rule.access === access || rule.access === 'readwrite') && covers(rule.topic, topicOrFilter));
  }
}

export interface AclFileOptions {
  file: string;
  logger: Logger;
  /** Poll period, ms (default 5000), for file systems where watching does not work. */
  pollMs?: number;
}

/**
 * The rule file, read at start (an unreadable or invalid file stops the start) and again whenever it changes (a
 * bad edit is logged and the rules before it stay in force). `rules` is always the last good version.
 */
export class AclFile {
  rules: OperatorAcl;
  readonly #options: AclFileOptions;
  readonly #watcher: FSWatcher | undefined;
  readonly #poll: NodeJS.Timeout;
  #version: string;
  /** The version of the file that failed to parse, so one bad edit is logged once, not at every poll. */
  #rejected = '';
  #reading: Promise<void> | undefined;
  #settle: NodeJS.Timeout | undefined;
  #again = false;
  #closed = false;

  private constructor(options: AclFileOptions, rules: OperatorAcl, version: string) {
    this.#options = options;
    this.rules = rules;
    this.#version = version;
    let watcher: FSWatcher | undefined;
    try {
      // The directory, not the file: editors and config tools replace the file by a rename.
      // A write in place comes as several events, the file half written in between: read once it settled.
      watcher = watch(dirname(options.file), { persistent: false }, (_event, name) => {
        if (name !== null && name !== basename(options.file)) return;
        clearTimeout(this.#settle);
        this.#settle = setTimeout(() => void this.reload(), SETTLE_MS).unref();
      });
      watcher.on('error', () => {});
    } catch {
      options.logger.warn({ file: options.file }, 'cannot watch the ACL file; polling it');
    }
    this.#watcher = watcher;
    this.#poll = setInterval(() => void this.reload(), options.pollMs ?? 5000).unref();
  }

  static async open(options: AclFileOptions): Promise<AclFile> {
    const { rules, version } = await readRules(options.file);
    return new AclFile(options, rules, version);
  }

  /** Re-reads the file if it changed. Resolves when done; never rejects. */
  reload(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#reading) {
      this.#again = true;
      return this.#reading;
    }
    this.#reading = (async () => {
      do {
        this.#again = false;
        let version = '';
        try {
          version = await versionOf(this.#options.file);
          if (version === this.#version || version === this.#rejected) continue;
          const read = await readRules(this.#options.file);
          this.rules = read.rules;
          this.#version = read.version;
          this.#options.logger.info({ event: 'acl_reloaded', file: this.#options.file }, 'ACL file reloaded');
        } catch (err) {
          if (version !== '' && version === this.#rejected) continue;
          this.#rejected = version;
          this.#options.logger.error({ event: 'acl_invalid', file: this.#options.file, err: (err as Error).message }, 'ACL file not reloaded: the previous rules stay');
        }
      } while (this.#again && !this.#closed);
    })().finally(() => (this.#reading = undefined));
    return this.#reading;
  }

  /** Idempotent. */
  close(): void {
    this.#closed = true;
    this.#watcher?.close();
    clearInterval(this.#poll);
    clearTimeout(this.#settle);
  }
}

const SETTLE_MS = 100;

async function versionOf(file: string): Promise<string> {
  const s = await stat(file);
  return `${s.mtimeMs}:${s.ino}:${s.size}`;
}

/** Reads and parses the file; read again if it changed meanwhile, so rules and version belong together. */
async function readRules(file: string): Promise<{ rules: OperatorAcl; version: string }> {
  for (;;) {
    const version = await versionOf(file);
    const text = await readFile(file, 'utf8');
    if ((await versionOf(file)) === version) return { rules: OperatorAcl.parse(text, file), version };
  }
}
