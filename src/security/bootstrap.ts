/**
 * First start: with no admin in the credential store, create one and leave its secret in a file only the owner can
 * read, so the newcomer's first run needs no setup step and still refuses anonymous clients.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CredentialStore } from './credentials.ts';

export async function ensureAdmin(store: CredentialStore, dataDir: string): Promise<string | undefined> {
  const identities = await store.list();
  if (identities.some((i) => i.role === 'admin')) return undefined;
  const secret = await store.add('admin', 'admin', { replace: true });
  const file = join(dataDir, 'admin.secret');
  await writeFile(file, `${secret}\n`, { mode: 0o600 });
  return file;
}
