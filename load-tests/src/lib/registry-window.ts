/**
 * The registry's part of a pull, from its access log: when it began and ended sending
 * blobs, and each large blob's own window. Which layer waited for one of the supernode's
 * registry fetch slots, and which ended last, set much of a pull's time (docs/benchmarks.md,
 * "Which layer waits for a registry fetch slot").
 */

/** A blob GET the registry answered with a body: when it began and ended (Unix ms), its bytes. */
export interface BlobGet {
  digest?: string | undefined;
  bytes: number;
  startedAtUnixMs: number;
  endedAtUnixMs: number;
}

export interface BlobWindow {
  digest: string;
  /** Body bytes the registry sent for it (all its GETs). */
  bytes: number;
  /** Seconds from the barrier to its first GET and to its last byte. */
  firstGetS: number;
  lastByteS: number;
}

export interface RegistryWindow {
  /** Seconds from the barrier to the first blob GET the registry answered and to the last byte of any. */
  firstGetS: number;
  lastByteS: number;
  /** Blobs of more than `largeBytes` (an image's layers, not its config), by first GET. */
  blobs: BlobWindow[];
}

/** The window of `gets` (those with both times) from `barrierAtUnixMs`; undefined when there are none. */
export function registryWindow(gets: readonly BlobGet[], barrierAtUnixMs: number, largeBytes: number): RegistryWindow | undefined {
  const timed = gets.filter((g) => Number.isFinite(g.startedAtUnixMs) && Number.isFinite(g.endedAtUnixMs));
  if (timed.length === 0) return undefined;
  const s = (unixMs: number): number => (unixMs - barrierAtUnixMs) / 1000;
  const byDigest = new Map<string, BlobWindow>();
  for (const g of timed) {
    if (g.digest === undefined) continue;
    const w = byDigest.get(g.digest);
    if (w === undefined) byDigest.set(g.digest, { digest: g.digest, bytes: g.bytes, firstGetS: s(g.startedAtUnixMs), lastByteS: s(g.endedAtUnixMs) });
    else {
      w.bytes += g.bytes;
      w.firstGetS = Math.min(w.firstGetS, s(g.startedAtUnixMs));
      w.lastByteS = Math.max(w.lastByteS, s(g.endedAtUnixMs));
    }
  }
  return {
    firstGetS: s(Math.min(...timed.map((g) => g.startedAtUnixMs))),
    lastByteS: s(Math.max(...timed.map((g) => g.endedAtUnixMs))),
    blobs: [...byDigest.values()].filter((w) => w.bytes > largeBytes).sort((a, b) => a.firstGetS - b.firstGetS),
  };
}

/** "4.0 MiB +0.39–1.40 s, 32.0 MiB +0.72–23.14 s, …; the 32.0 MiB one ended last" for the report. */
export function describeBlobWindows(blobs: readonly BlobWindow[]): string {
  if (blobs.length === 0) return '';
  const mib = (b: BlobWindow): string => `${(b.bytes / (1024 * 1024)).toFixed(1)} MiB`;
  const last = blobs.reduce((a, b) => (b.lastByteS > a.lastByteS ? b : a));
  return `${blobs.map((b) => `${mib(b)} +${b.firstGetS.toFixed(2)}–${b.lastByteS.toFixed(2)} s`).join(', ')}; the ${mib(last)} one ended last`;
}
