import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { EVENT_LOOP_MONITORING_PRECISION_MS } from '@shoal/core';

/**
 * A new registry with Node's process metrics (CPU, memory, event loop lag,
 * handles) under `prefix`, e.g. `shoal_peer_`: one per service process; the
 * service's own metrics are then registered on it with the helpers below.
 */
export function processMetricsRegistry(prefix: string): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix, eventLoopMonitoringPrecision: EVENT_LOOP_MONITORING_PRECISION_MS });
  return registry;
}

/**
 * One way to register a Shoal metric. Several apps may share one registry (a
 * node agent, tests that run many apps in one process), so each helper returns
 * the metric already registered under that name instead of throwing.
 *
 * Labels must have a bounded set of values (a source, a result, a kind): never
 * a digest, a peer id or a URL. docs/operations.md lists every metric; a test
 * holds that list to what the services really export.
 */
export function counter<T extends string = never>(registry: Registry, name: string, help: string, labelNames: readonly T[] = []): Counter<T> {
  const existing = registry.getSingleMetric(name);
  if (existing instanceof Counter) return existing as Counter<T>;
  return new Counter({ name, help, labelNames, registers: [registry] });
}

/** A gauge; `collect` (when given) sets its value at each scrape. */
export function gauge<T extends string = never>(registry: Registry, name: string, help: string, options: { labelNames?: readonly T[]; collect?: (this: Gauge<T>) => void } = {}): Gauge<T> {
  const existing = registry.getSingleMetric(name);
  if (existing instanceof Gauge) return existing as Gauge<T>;
  return new Gauge({ name, help, labelNames: options.labelNames ?? [], registers: [registry], ...(options.collect === undefined ? {} : { collect: options.collect }) });
}

export function histogram<T extends string = never>(registry: Registry, name: string, help: string, labelNames: readonly T[], buckets: readonly number[]): Histogram<T> {
  const existing = registry.getSingleMetric(name);
  if (existing instanceof Histogram) return existing as Histogram<T>;
  return new Histogram({ name, help, labelNames, buckets: [...buckets], registers: [registry] });
}

/** Seconds: from 10 ms (a cached config blob) to 10 min (a large layer over a slow link). */
export const TRANSFER_DURATION_BUCKETS_SECONDS: readonly number[] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/** How a request was refused for want of the cluster token. */
export type TokenRejectionTransport = 'http' | 'websocket';

/** `<prefix>token_rejections_total{transport,reason}`: requests refused for a missing or wrong cluster signature or token; `reason` is the AuthFailure (unknown-key, expired, ...). */
export function tokenRejections(registry: Registry, prefix: string): Counter<'transport' | 'reason'> {
  return counter(registry, `${prefix}token_rejections_total`, 'Requests refused for a missing or wrong cluster signature or token, by transport and reason (unknown-key: another token; expired or future: clocks out of step; see docs/operations.md)', ['transport', 'reason']);
}
