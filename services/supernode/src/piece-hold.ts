import { PIECE_WAIT_MS, type Digest } from '@shoal/core';

/**
 * The first piece of `digest` the store lacks, looking no further than `upTo`: the
 * piece arriving now while the registry fetch runs (it lands pieces in order).
 */
export function fillPoint(store: { hasPiece(digest: Digest, index: number): boolean }, digest: Digest, upTo: number): number {
  let next = 0;
  while (next < upTo && store.hasPiece(digest, next)) next++;
  return next;
}

/**
 * The hold on a request for a piece still on its way from the registry: PIECE_WAIT_MS,
 * and longer for the piece arriving now (the fetch lands pieces in order) as long as
 * bytes of the blob keep coming: it ends when PIECE_WAIT_MS pass without one. A fetch
 * that the registry's link starves is slow, not dead: 3.2 MiB layers took 58–61 s
 * beside others' 10–22 s (bench:swarm, 20 layers at 10 Mbit/s), fifteen nodes'
 * requests for their first pieces ran out their 30 s together, and the supernode then
 * sent 1.76 × S. A piece further ahead is left to the deadline: its child may find
 * it at a peer first.
 */
export function holdWhileFetching(
  tasks: { fetchQuietMs(digest: Digest): number | undefined },
  store: { hasPiece(digest: Digest, index: number): boolean },
  digest: Digest,
  index: number,
  waitMs: number = PIECE_WAIT_MS,
): { signal: AbortSignal; clear: () => void } {
  const hold = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const arrivingNow = (): boolean => fillPoint(store, digest, index) === index;
  const arm = (ms: number): void => {
    timer = setTimeout(() => {
      const quietMs = tasks.fetchQuietMs(digest);
      if (quietMs !== undefined && quietMs < waitMs && arrivingNow()) arm(waitMs - quietMs);
      else hold.abort(new DOMException(`piece ${index} of ${digest} did not arrive within ${waitMs} ms`, 'TimeoutError'));
    }, ms);
    timer.unref();
  };
  arm(waitMs);
  return { signal: hold.signal, clear: () => clearTimeout(timer) };
}
