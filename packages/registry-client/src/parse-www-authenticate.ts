/**
 * Parsing of `WWW-Authenticate` (RFC 9110 §11.6.1). The header comes from the
 * registry, so it is untrusted: the parser never throws, bounds its input and
 * returns the challenges it could read before anything malformed.
 */

export interface AuthChallenge {
  /** Auth scheme, lowercased (`bearer`, `basic`). */
  scheme: string;
  /** Auth params with lowercased names and unquoted values; the first of a repeated name wins. */
  params: Record<string, string>;
  /** A token68 credential in place of params (rare; `Negotiate abc==`). */
  token68?: string;
}

/** Longest header we look at: registries send a few hundred bytes. */
export const MAX_WWW_AUTHENTICATE_LENGTH = 8 * 1024;

const TOKEN_RE = /[!#$%&'*+.^_`|~0-9A-Za-z-]+/y;
const TOKEN68_RE = /[A-Za-z0-9._~+/-]+=*(?=[ \t]*(?:,|$))/y;
const OWS_RE = /[ \t]*/y;

/**
 * Parses every challenge of a `WWW-Authenticate` value (several headers joined
 * with ', ' are fine). Returns [] for an absent, empty or oversized header.
 */
export function parseWwwAuthenticate(header: string | undefined): AuthChallenge[] {
  if (header === undefined || header.length > MAX_WWW_AUTHENTICATE_LENGTH) return [];
  const challenges: AuthChallenge[] = [];
  let pos = 0;

  const skipOws = (): void => {
    OWS_RE.lastIndex = pos;
    OWS_RE.exec(header);
    pos = OWS_RE.lastIndex;
  };
  const readToken = (): string | undefined => {
    TOKEN_RE.lastIndex = pos;
    const m = TOKEN_RE.exec(header);
    if (m === null) return undefined;
    pos = TOKEN_RE.lastIndex;
    return m[0];
  };
  const readQuoted = (): string | undefined => {
    // pos is at the opening quote.
    let out = '';
    for (let i = pos + 1; i < header.length; i++) {
      const c = header[i];
      if (c === '\\') {
        i++;
        if (i >= header.length) return undefined;
        out += header[i];
      } else if (c === '"') {
        pos = i + 1;
        return out;
      } else {
        out += c;
      }
    }
    return undefined;
  };

  outer: while (pos < header.length) {
    // Empty list elements are allowed: `, , Basic realm="x"`.
    skipOws();
    if (header[pos] === ',') {
      pos++;
      continue;
    }
    if (pos >= header.length) break;
    const scheme = readToken();
    if (scheme === undefined) break;
    const challenge: AuthChallenge = { scheme: scheme.toLowerCase(), params: {} };
    challenges.push(challenge);
    skipOws();
    TOKEN68_RE.lastIndex = pos;
    const t68 = TOKEN68_RE.exec(header);
    if (t68 !== null) {
      challenge.token68 = t68[0];
      pos = TOKEN68_RE.lastIndex;
      continue;
    }
    for (;;) {
      skipOws();
      if (pos >= header.length) break outer;
      if (header[pos] === ',') {
        pos++;
        continue;
      }
      const start = pos;
      const name = readToken();
      if (name === undefined) break outer;
      skipOws();
      if (header[pos] !== '=') {
        // Not a param: the next challenge's scheme.
        pos = start;
        continue outer;
      }
      pos++;
      skipOws();
      const value = header[pos] === '"' ? readQuoted() : readToken();
      if (value === undefined) break outer;
      const key = name.toLowerCase();
      if (!Object.hasOwn(challenge.params, key)) challenge.params[key] = value;
    }
  }
  return challenges;
}

/** The first challenge of the given scheme (case-insensitive), if any. */
export function findChallenge(challenges: readonly AuthChallenge[], scheme: string): AuthChallenge | undefined {
  const wanted = scheme.toLowerCase();
  return challenges.find((c) => c.scheme === wanted);
}
