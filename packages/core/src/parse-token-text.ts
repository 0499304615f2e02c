import { MAX_LISTED_TOKENS, MIN_TOKEN_LENGTH } from './cluster-auth.js';

/** How to make a token, in every problem about one. */
const HOW_TO_MAKE_ONE = '(e.g. openssl rand -hex 32)';

/**
 * Checks a token file's text: one token a line (surrounding whitespace and
 * blank lines ignored), 1 to MAX_LISTED_TOKENS of them, each of at least
 * MIN_TOKEN_LENGTH characters, none twice. The first signs, every one is
 * accepted (see ClusterAuth). The tokens in file order, or the problem with the
 * file, which never quotes a token.
 */
export function parseTokenText(text: string): { tokens: [string, ...string[]] } | { problem: string } {
  const lines = text.split('\n').map((line, i) => ({ token: line.trim(), line: i + 1 })).filter((l) => l.token !== '');
  const [first] = lines;
  if (first === undefined) return { problem: `holds no token; write one of at least ${MIN_TOKEN_LENGTH} characters ${HOW_TO_MAKE_ONE}` };
  if (lines.length > MAX_LISTED_TOKENS) return { problem: `holds ${lines.length} tokens; list at most ${MAX_LISTED_TOKENS} (one a line, the first signs)` };
  for (const { token, line } of lines) {
    if (token.length >= MIN_TOKEN_LENGTH) continue;
    // A one-token file (the usual case) is spoken of without line numbers.
    const where = lines.length === 1 ? '' : `line ${line} `;
    return { problem: `${where}holds ${token.length} characters; use at least ${MIN_TOKEN_LENGTH} ${HOW_TO_MAKE_ONE}` };
  }
  for (const [i, a] of lines.entries()) {
    const twin = lines.slice(i + 1).find((b) => b.token === a.token);
    if (twin !== undefined) return { problem: `lists the same token twice (lines ${a.line} and ${twin.line})` };
  }
  return { tokens: [first.token, ...lines.slice(1).map((l) => l.token)] };
}
