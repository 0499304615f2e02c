import type { Registry } from 'prom-client';
import type { FailureKindWire } from '@shoal/core';
import { counter, histogram, TRANSFER_DURATION_BUCKETS_SECONDS } from '@shoal/service-kit';

/** How a blob was filled on this node: the swarm (supernode's scheduler), peers found in the DHT, or the registry itself. */
export type FillKind = 'swarm' | 'dht' | 'registry';

/**
 * The swarm-side metrics of a node's peer. Labels take a few fixed values
 * each (fill kind, result, parent kind, failure kind): no digest, no peer id.
 */
export interface PeerMetrics {
  /** A fill of one blob ended. */
  fillDone(fill: FillKind, result: 'ok' | 'failed', seconds: number): void;
  /** A download went STALL_REPORT_MS without a byte arriving (counted at most once per report). */
  stalled(): void;
  /** A parent failed a piece: bad bytes, stalled, refused... */
  parentFailed(parent: 'peer' | 'supernode', kind: FailureKindWire): void;
}

export function createPeerMetrics(registry: Registry): PeerMetrics {
  const fills = histogram(
    registry,
    'shoal_peer_fill_duration_seconds',
    "Time to fill one blob into this node's store, by how (swarm, dht, registry) and result",
    ['fill', 'result'],
    TRANSFER_DURATION_BUCKETS_SECONDS,
  );
  const stalls = counter(registry, 'shoal_peer_download_stalls_total', 'Times a download with pieces missing went 5 s without a byte arriving');
  const failures = counter(registry, 'shoal_peer_parent_failures_total', 'Pieces a parent failed to deliver, by parent kind (peer, supernode) and failure kind (bad-piece, stalled, ...)', ['parent', 'kind']);
  return {
    fillDone: (fill, result, seconds) => fills.observe({ fill, result }, seconds),
    stalled: () => stalls.inc(),
    parentFailed: (parent, kind) => failures.inc({ parent, kind }),
  };
}
