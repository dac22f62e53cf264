/**
 * Preloaded into a `tali start` (NODE_OPTIONS=--import=<this file>), where it runs in the main thread and again in
 * every worker thread: writes `x509 loaded in thread <threadId>` to stderr where werift's certificate generator,
 * @peculiar/x509, is imported. test/media/prestart.test.ts reads which threads paid for it.
 */
import module from 'node:module';
import { threadId } from 'node:worker_threads';

module.registerHooks({
  resolve(specifier, context, nextResolve) {
    if (specifier === '@peculiar/x509') process.stderr.write(`x509 loaded in thread ${threadId}\n`);
    return nextResolve(specifier, context);
  },
});
