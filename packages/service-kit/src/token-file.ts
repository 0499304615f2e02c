import { readFile } from 'node:fs/promises';
import { parseTokenText, type ClusterAuth, type Logger } from '@shoal/core';

/** How often the token file is read for a rotation. Milliseconds: 2 s (a read of a few bytes). */
export const TOKEN_FILE_POLL_MS = 2_000;

export interface TokenFileWatch {
  /** Reads the file now (also what every poll does); resolves once done. */
  poll(): Promise<void>;
  close(): void;
}

/**
 * Follows a token file for rotations. Kubernetes updates a mounted Secret by
 * swapping a symlink (`..data`) in the volume's directory, so neither the
 * file's inode nor a watch on it can be relied on: the file is simply read
 * again every `intervalMs` (unref'd) and a changed, valid token is handed to
 * `auth.rotate`. A file that is missing, unreadable or too short for a moment
 * (mid-swap) keeps the current token and is logged once per problem.
 */
export function watchTokenFile(components: { log: Logger }, auth: ClusterAuth, init: { path: string; intervalMs?: number | undefined; onRotate?: () => void }): TokenFileWatch {
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
    if (auth.rotate(parsed.token)) {
      log.warn({ path: init.path }, 'cluster token changed: accepting the old and the new one, signing with the new one after the grace period');
      init.onRotate?.();
    }
  };
  const report = (problem: string): void => {
    if (problem === lastProblem) return;
    lastProblem = problem;
    log.warn({ path: init.path, problem }, 'token file unusable; keeping the current token');
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
