/**
 * The TOML file reading `shoal doctor`'s file checks share: a bounded read
 * that turns every failure into a sentence, and a parse that reports where
 * the file stops being TOML (containerd ignores such a file silently).
 *
 * TOML is parsed by smol-toml (TOML 1.0, no dependencies) rather than by hand:
 * the verdict "parseable or not" is the point of these checks, and real
 * containerd configs use quoted and dotted keys, literal strings, inline
 * tables and multi-line arrays, exactly where a small hand-written parser
 * would disagree with containerd's.
 */
import { readFile, realpath, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import { isRecord } from '@shoal/core';

/** containerd's config and any hosts.toml are small; anything larger is refused rather than read. */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

export type Table = Record<string, unknown>;

/** A TOML table: a JSON-like object, and not one of smol-toml's date values. */
export function isTable(value: unknown): value is Table {
  return isRecord(value) && !(value instanceof Date);
}

export function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

export function quote(text: string): string {
  return JSON.stringify(text);
}

export type FileText = { ok: true; text: string } | { ok: false; missing: boolean; reason: string };

/** Reads a small text file, turning every way it can fail into a sentence. */
export async function readSmallFile(path: string): Promise<FileText> {
  try {
    const info = await stat(path);
    if (info.isDirectory()) return { ok: false, missing: false, reason: `${path} is a directory, not a file` };
    if (info.size > MAX_CONFIG_BYTES) return { ok: false, missing: false, reason: `${path} is ${info.size} bytes, too large for a config file (limit ${MAX_CONFIG_BYTES})` };
    return { ok: true, text: await readFile(path, 'utf8') };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { ok: false, missing: true, reason: `${path} does not exist` };
    if (code === 'EACCES' || code === 'EPERM') return { ok: false, missing: false, reason: `cannot read ${path}: permission denied (run shoal doctor as root, like containerd)` };
    return { ok: false, missing: false, reason: `cannot read ${path}: ${(err as Error).message}` };
  }
}

export type Parsed = { ok: true; table: Table } | { ok: false; error: string };

export function parseTomlText(text: string): Parsed {
  try {
    return { ok: true, table: parseToml(text) };
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    const what = (err.message.split('\n')[0] ?? '').replace(/^Invalid TOML document: /, '');
    return { ok: false, error: `line ${err.line}, column ${err.column}: ${what}` };
  }
}

/**
 * Absolute path (relative ones taken from `base`) with symlinks resolved where
 * the path exists, so `/etc/containerd/certs.d` matches a link to it.
 */
export async function canonicalPath(path: string, base: string): Promise<string> {
  const absolute = resolve(base, path);
  try {
    return await realpath(absolute);
  } catch {
    return absolute;
  }
}
