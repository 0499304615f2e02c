import test from 'ava';
import { describeBlobWindows, registryWindow } from '../lib/registry-window.js';

const MiB = 1024 * 1024;
const at = 1_000_000;

test("the registry's window spans every timed GET; each large blob's own window covers all its GETs, in the order they began", (t) => {
  const w = registryWindow(
    [
      { digest: 'sha256:config', bytes: 1023, startedAtUnixMs: at + 300, endedAtUnixMs: at + 310 },
      { digest: 'sha256:big', bytes: 20 * MiB, startedAtUnixMs: at + 900, endedAtUnixMs: at + 15_000 },
      // A resumed fetch of the same blob (206) extends its window and adds its bytes.
      { digest: 'sha256:big', bytes: 12 * MiB, startedAtUnixMs: at + 15_500, endedAtUnixMs: at + 23_000 },
      { digest: 'sha256:small', bytes: 4 * MiB, startedAtUnixMs: at + 500, endedAtUnixMs: at + 4_000 },
      { digest: 'sha256:untimed', bytes: 8 * MiB, startedAtUnixMs: Number.NaN, endedAtUnixMs: at + 9_000 },
    ],
    at,
    MiB,
  );
  t.deepEqual(w, {
    firstGetS: 0.3,
    lastByteS: 23,
    blobs: [
      { digest: 'sha256:small', bytes: 4 * MiB, firstGetS: 0.5, lastByteS: 4 },
      { digest: 'sha256:big', bytes: 32 * MiB, firstGetS: 0.9, lastByteS: 23 },
    ],
  });
  t.is(describeBlobWindows(w?.blobs ?? []), '4.0 MiB +0.50–4.00 s, 32.0 MiB +0.90–23.00 s; the 32.0 MiB one ended last');
});

test('no timed GET gives no window', (t) => {
  t.is(registryWindow([{ digest: 'sha256:x', bytes: 1, startedAtUnixMs: Number.NaN, endedAtUnixMs: Number.NaN }], at, MiB), undefined);
  t.is(describeBlobWindows([]), '');
});
