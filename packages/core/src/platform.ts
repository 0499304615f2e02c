/**
 * Platforms of multi-arch images (`os/architecture[/variant]`), shared by the
 * commands and services that pick manifests from an index.
 */

/** `os/architecture[/variant]`, lowercase, as in an index's `platform` field. */
export const PLATFORM_PATTERN = '^[a-z0-9._-]{1,32}/[a-z0-9._-]{1,32}(?:/[a-z0-9._-]{1,32})?$';
const PLATFORM_RE = new RegExp(PLATFORM_PATTERN);

export interface Platform {
  os: string;
  architecture: string;
  variant?: string | undefined;
}

/** Whether `text` is a platform as flags and requests name it (PLATFORM_PATTERN). */
export function isPlatformText(text: string): boolean {
  return PLATFORM_RE.test(text);
}

const ARCH_ALIASES: Readonly<Record<string, Platform>> = {
  x86_64: { os: '', architecture: 'amd64' },
  'x86-64': { os: '', architecture: 'amd64' },
  aarch64: { os: '', architecture: 'arm64' },
  armhf: { os: '', architecture: 'arm', variant: 'v7' },
  armel: { os: '', architecture: 'arm', variant: 'v6' },
  i386: { os: '', architecture: '386' },
};

/**
 * The platform in containerd's normal form (platforms.Normalize): architecture
 * aliases resolved, `arm64/v8` is `arm64`, a bare `arm` is `arm/v7`. Both the
 * request and the index entries are normalised before they are compared.
 */
export function normalizePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase();
  let architecture = p.architecture.toLowerCase();
  let variant = p.variant === undefined || p.variant === '' ? undefined : p.variant.toLowerCase();
  const alias = ARCH_ALIASES[architecture];
  if (alias !== undefined) {
    architecture = alias.architecture;
    variant = variant ?? alias.variant;
  }
  if (architecture === 'arm64' && variant === 'v8') variant = undefined;
  if (architecture === 'arm' && variant === undefined) variant = 'v7';
  return variant === undefined ? { os, architecture } : { os, architecture, variant };
}

/** `os/arch[/variant]`, already checked with isPlatformText. */
export function parsePlatform(text: string): Platform {
  const [os = '', architecture = '', variant] = text.split('/');
  return { os, architecture, variant };
}

export function platformText(p: Platform): string {
  return p.variant === undefined || p.variant === '' ? `${p.os}/${p.architecture}` : `${p.os}/${p.architecture}/${p.variant}`;
}

/**
 * The one platform-matching rule: an index entry matches a wanted platform
 * when both, in normal form (normalizePlatform), have the same OS and
 * architecture, and the same variant when the wanted one names a variant.
 * So `linux/arm64/v8` matches an entry `linux/arm64`, `linux/arm` matches
 * `linux/arm/v7` and not `linux/arm/v6`.
 */
export function platformMatches(entry: Platform, wanted: Platform): boolean {
  const e = normalizePlatform(entry);
  const w = normalizePlatform(wanted);
  return e.os === w.os && e.architecture === w.architecture && (w.variant === undefined || e.variant === w.variant);
}
