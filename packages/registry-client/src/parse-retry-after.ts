/**
 * Parses a `Retry-After` value (RFC 9110 §10.2.3): delay-seconds or an
 * HTTP-date. Returns the wait in milliseconds (0 for a date in the past), or
 * undefined when absent or unparseable. The caller applies its own cap.
 */
export function parseRetryAfter(header: string | undefined, nowMs: number = Date.now()): number | undefined {
  if (header === undefined) return undefined;
  const text = header.trim();
  if (text === '' || text.length > 100) return undefined;
  if (/^\d+$/.test(text)) {
    const seconds = Number(text);
    return Number.isSafeInteger(seconds) ? seconds * 1000 : undefined;
  }
  // HTTP-date always names a weekday and GMT; refuse the looser forms Date.parse accepts.
  if (!/GMT$/.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}
