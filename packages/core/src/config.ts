import { parseArgs } from 'node:util';
import { ConfigError } from './errors.js';

/**
 * Flags and SHOAL_* environment variables, loaded once per process, validated
 * with every problem reported at once, then frozen. A flag `proxyListen` is
 * `--proxy-listen` on the command line and `SHOAL_PROXY_LISTEN` in the
 * environment; the flag wins over the variable, the variable over the default.
 * List flags may repeat and take comma-separated values (and so do their variables).
 */

export type FlagKind = 'string' | 'path' | 'url' | 'hostPort' | 'integer' | 'boolean' | 'urlList' | 'hostPortList' | 'stringList';

interface KindType {
  string: string;
  path: string;
  url: string;
  hostPort: string;
  integer: number;
  boolean: boolean;
  urlList: string[];
  hostPortList: string[];
  stringList: string[];
}

export interface FlagSpec<K extends FlagKind = FlagKind> {
  kind: K;
  help: string;
  default?: KindType[K];
  required?: boolean;
  /** For integers: inclusive bounds. */
  min?: number;
  max?: number;
}

export type FlagSpecs = Record<string, FlagSpec>;

type ValueOf<S extends FlagSpec> = S extends FlagSpec<infer K> ? KindType[K] : never;
/** Whether a loaded config always holds the flag: it has a default or is required. */
type AlwaysSet<F> = F extends { default: unknown } | { required: true } ? true : false;
/**
 * The frozen config loadConfig returns for specs `S`: a flag with a default or
 * `required` is always present with its kind's type; any other flag is an
 * optional key (absent when neither the flag nor its variable was given).
 */
export type ConfigOf<S extends FlagSpecs> = {
  readonly [N in keyof S as AlwaysSet<S[N]> extends true ? N : never]: ValueOf<S[N]>;
} & {
  readonly [N in keyof S as AlwaysSet<S[N]> extends true ? never : N]?: ValueOf<S[N]> | undefined;
};

export function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

export function envName(key: string): string {
  return `SHOAL_${flagName(key).replace(/-/g, '_').toUpperCase()}`;
}

const isList = (kind: FlagKind): boolean => kind.endsWith('List');

export function splitHostPort(text: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]*):(\d{1,5})$/.exec(text);
  if (m === null || m[1] === undefined || m[2] === undefined) throw new Error(`expected HOST:PORT, got ${JSON.stringify(text)}`);
  const port = Number(m[2]);
  if (port > 65535) throw new Error(`port out of range in ${JSON.stringify(text)}`);
  const host = m[1].startsWith('[') ? m[1].slice(1, -1) : m[1];
  return { host: host === '' ? '0.0.0.0' : host, port };
}

function checkOne(kind: FlagKind, raw: string, spec: FlagSpec): unknown {
  switch (kind) {
    case 'string':
    case 'path':
    case 'stringList':
      if (raw === '') throw new Error('must not be empty');
      return raw;
    case 'hostPort':
    case 'hostPortList':
      splitHostPort(raw);
      return raw;
    case 'url':
    case 'urlList': {
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        throw new Error(`not a URL: ${JSON.stringify(raw)}`);
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`expected an http(s) URL, got ${JSON.stringify(raw)}`);
      return trimTrailingSlashes(raw);
    }
    case 'integer': {
      if (!/^-?\d+$/.test(raw)) throw new Error(`expected an integer, got ${JSON.stringify(raw)}`);
      const n = Number(raw);
      if (spec.min !== undefined && n < spec.min) throw new Error(`must be ≥ ${spec.min}`);
      if (spec.max !== undefined && n > spec.max) throw new Error(`must be ≤ ${spec.max}`);
      return n;
    }
    case 'boolean':
      if (/^(1|true|yes|on)$/i.test(raw)) return true;
      if (/^(0|false|no|off)$/i.test(raw)) return false;
      throw new Error(`expected true or false, got ${JSON.stringify(raw)}`);
  }
}

/**
 * `raw` without its trailing slashes. A loop, not `/\/+$/`: that regex is
 * retried from every slash of a run and took seconds on a URL with 40k slashes.
 */
function trimTrailingSlashes(raw: string): string {
  let end = raw.length;
  while (end > 0 && raw.charCodeAt(end - 1) === 0x2f) end--;
  return raw.slice(0, end);
}

export interface LoadedConfig<S extends FlagSpecs> {
  config: ConfigOf<S>;
  positionals: string[];
}

export function loadConfig<S extends FlagSpecs>(
  specs: S,
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  options: { positionals?: { min: number; max: number; names: string } } = {},
): LoadedConfig<S> {
  const problems: string[] = [];
  const parseOptions: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {};
  for (const [key, spec] of Object.entries(specs)) {
    parseOptions[flagName(key)] = spec.kind === 'boolean' ? { type: 'boolean' } : { type: 'string', multiple: isList(spec.kind) };
  }
  let parsed: { values: Record<string, unknown>; positionals: string[] } = { values: {}, positionals: [] };
  let argvParsed = true;
  try {
    parsed = parseArgs({ args: [...argv], options: parseOptions, allowPositionals: true, strict: true }) as typeof parsed;
  } catch (err) {
    problems.push((err as Error).message.split('\n')[0] ?? String(err));
    argvParsed = false;
    // Parse again leniently, keeping only well-typed known flags: otherwise one bad
    // flag hides every other problem and flags that were given are reported missing.
    const loose = parseArgs({ args: [...argv], options: parseOptions, allowPositionals: true, strict: false });
    for (const [name, value] of Object.entries(loose.values)) {
      const option = parseOptions[name];
      if (option === undefined) continue;
      if (option.type === 'boolean') {
        if (typeof value === 'boolean') parsed.values[name] = value;
      } else if (Array.isArray(value)) {
        const strings = value.filter((v): v is string => typeof v === 'string');
        if (strings.length > 0) parsed.values[name] = strings;
      } else if (typeof value === 'string') {
        parsed.values[name] = value;
      }
    }
  }
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(specs)) {
    const flag = `--${flagName(key)}`;
    const variable = envName(key);
    const fromFlag = parsed.values[flagName(key)];
    let raws: string[] | undefined;
    let origin = flag;
    if (fromFlag !== undefined) {
      if (typeof fromFlag === 'boolean') {
        out[key] = fromFlag;
        continue;
      }
      raws = Array.isArray(fromFlag) ? (fromFlag as string[]) : [fromFlag as string];
    } else if (env[variable] !== undefined && env[variable] !== '') {
      raws = [env[variable] as string];
      origin = variable;
    }
    if (raws === undefined) {
      if (spec.default !== undefined) out[key] = Array.isArray(spec.default) ? [...spec.default] : spec.default;
      else if (spec.required === true) problems.push(`${flag} (or ${variable}) is required: ${spec.help}`);
      continue;
    }
    if (isList(spec.kind)) {
      const items = raws.flatMap((r) => r.split(',')).map((s) => s.trim()).filter((s) => s !== '');
      const values: unknown[] = [];
      for (const item of items) {
        try {
          values.push(checkOne(spec.kind, item, spec));
        } catch (err) {
          problems.push(`${origin}: ${(err as Error).message}`);
        }
      }
      if (spec.required === true && values.length === 0) problems.push(`${flag} (or ${variable}) needs at least one value`);
      out[key] = values;
    } else {
      try {
        out[key] = checkOne(spec.kind, raws[raws.length - 1] as string, spec);
      } catch (err) {
        problems.push(`${origin}: ${(err as Error).message}`);
      }
    }
  }
  const positionals = parsed.positionals;
  const p = options.positionals ?? { min: 0, max: 0, names: '' };
  // After a parse error, which words are flag values and which are arguments is a guess: do not report on them.
  if (argvParsed && positionals.length < p.min) problems.push(`missing argument: ${p.names}`);
  if (argvParsed && positionals.length > p.max) problems.push(`unexpected argument(s): ${positionals.slice(p.max).join(' ')}`);
  if (problems.length > 0) throw new ConfigError(problems);
  return { config: Object.freeze(out) as ConfigOf<S>, positionals };
}

/** Help text for a set of flags, one line each. */
export function describeFlags(specs: FlagSpecs): string {
  return Object.entries(specs)
    .map(([key, spec]) => {
      const def = spec.default === undefined ? '' : ` (default ${Array.isArray(spec.default) ? spec.default.join(',') || 'none' : String(spec.default)})`;
      return `  --${flagName(key).padEnd(22)} ${spec.help}${def}  [${envName(key)}]`;
    })
    .join('\n');
}
