import { readFile } from 'node:fs/promises';
import { parseTokenText, type ClusterAuth, type Logger, type TokenChange } from '@shoal/core';

/** How often the token file is read for a rotation. Milliseconds: 2 s (a read of a few bytes). */
export const TOKEN_FILE_POLL_MS = 2_000;

export interface TokenFileWatch {
  /** Reads the file now (also what every poll does); resolves once done. */
  poll(): Promise<void>;
  close(): void;
}

/** One log line per change; key ids only (they are on the wire anyway), never a token. */
function logChange(log: Logger, path: string, c: TokenChange): void {
  switch (c.change) {
    case 'signing':
      // A token put back first before its successor signed goes on signing at once.
      log.warn(
        { path, kid: c.kid, signFrom: new Date(c.signFromMs).toISOString(), wasAccepted: c.wasAccepted },
        c.signFromMs <= Date.now() ? 'cluster token file: the first token changed back to the one signing; it goes on signing' : 'cluster token file: the first token changed; it signs after the grace period, the previous one until then',
      );
      return;
    case 'added':
      log.warn({ path, kid: c.kid, position: c.position }, 'cluster token file: token added; accepted, not signing');
      return;
    case 'removed':
      log.warn({ path, kid: c.kid, acceptUntil: new Date(c.acceptUntilMs).toISOString() }, 'cluster token file: token removed; accepted for two grace periods, then refused');
      return;
  }
}

/**
 * Follows a token file for rotations. Kubernetes updates a mounted Secret by
 * swapping a symlink (`..data`) in the volume's directory, so neither the
 * file's inode nor a watch on it can be relied on: the file is simply read
 * again every `intervalMs` (unref'd) and its list of tokens, when valid, is
 * handed to `auth.setTokens`. A file that is missing, unreadable or malformed
 * for a moment (mid-swap) keeps the current tokens and is logged once per problem.
 */
export function watchTokenFile(
  components: { log: Logger },
  auth: ClusterAuth,
  init: { path: string; intervalMs?: number | undefined; onChange?: (changes: readonly TokenChange[]) => void },
): TokenFileWatch {
  const log = components.log.child({ module: 'token-file' });
  const abort = new AbortController();
  let lastProblem: string | undefined;
  let running: Promise<void> | undefined;
  const read = async (): Promise<void> => {
    let text: string;
    try {
      text = await readFile(init.path, { encoding: 'utf8', signal: abort.signal });
    } catch (err) {
      if (abort.signal.aborted) return;
      report(`cannot read it: ${(err as Error).message}`);
      return;
    }
    const parsed = parseTokenText(text);
    if ('problem' in parsed) {
      report(parsed.problem);
      return;
    }
    lastProblem = undefined;
    const changes = auth.setTokens(parsed.tokens);
    if (changes.length === 0) return;
    for (const c of changes) logChange(log, init.path, c);
    init.onChange?.(changes);
  };
  const report = (problem: string): void => {
    if (problem === lastProblem) return;
    lastProblem = problem;
    log.warn({ path: init.path, problem }, 'token file unusable; keeping the current tokens');
  };
  const poll = (): Promise<void> => {
    running ??= read().finally(() => {
      running = undefined;
    });
    return running;
  };
  const timer = setInterval(() => void poll(), init.intervalMs ?? TOKEN_FILE_POLL_MS);
  timer.unref();
  return {
    poll,
    close() {
      clearInterval(timer);
      abort.abort();
    },
  };
}
