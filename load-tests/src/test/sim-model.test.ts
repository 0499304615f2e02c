// The simulator takes every timer and limit from the services' code (sim/constants.ts):
// a constant that disappears from the source must stop the model, not leave it on an
// old number. Bug pinned here: the model kept modelling the swarm of before the send
// gates, the long-poll schedule and the per-child frontier cap (it read none of
// SEED_SENDS_AT_ONCE, PEER_SENDS_AT_ONCE, SEND_DRAIN_PROGRESS_MS, SCHEDULE_WAIT_MS,
// MAX_FRONTIER_CLAIMS_PER_CHILD) and predicted 1.67 × S/B where bench:swarm measured
// 1.38. And with no proxy fallback the registry sends each byte once, by construction
// of the back-to-source.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { DEFAULT_FIRST_BYTE_TIMEOUT_MS } from '@shoal/proxy';
import { ModelOutOfDateError, modelConstants, sourceConstant } from '../sim/constants.js';
import { simulate, TCP_GOODPUT, tcpGoodput } from '../sim/simulation.js';
import { layerSizes } from '../lib/image-shape.js';

test('the model reads its constants from the code', (t) => {
  const k = modelConstants();
  t.is(k.firstByteTimeoutMs, DEFAULT_FIRST_BYTE_TIMEOUT_MS);
  t.true(k.idlePollMinMs > 0 && k.idlePollMaxMs >= k.idlePollMinMs);
  t.true(k.frontierTtlMs > 0);
});

test('the model reads the send gates, the long-poll and the frontier caps from the code', (t) => {
  const k = modelConstants();
  t.is(k.seedSendsAtOnce, sourceConstant('services/supernode/src/routes/blobs.ts', 'SEED_SENDS_AT_ONCE'));
  t.true(k.seedSendsAtOnce >= 1 && k.peerSendsAtOnce >= 1);
  t.true(k.sendDrainProgressMs > 0 && k.sendProgressEveryMs > 0);
  t.true(k.scheduleWaitMs > 0);
  t.true(k.maxFrontierClaimsPerChild >= 1);
  // FRONTIER_HORIZON_MS = PIECE_WAIT_MS / 2: a known constant over a number.
  t.is(k.frontierHorizonMs, k.pieceWaitMs / 2);
});

test("the model reads a peer's relay rule from the code: relays outside its send slots", (t) => {
  const k = modelConstants();
  t.is(k.relaysAtOnce, sourceConstant('services/peer/src/routes/blobs.ts', 'RELAYS_AT_ONCE'));
  t.true(k.relaysAtOnce >= 1);
});

test('an image in K equal layers (bench:swarm --layers) adds up to its size', (t) => {
  const total = 64 * 1024 * 1024 + 7;
  const ten = layerSizes(total, 10);
  t.is(ten.length, 10);
  t.is(ten.reduce((a, b) => a + b, 0), total);
  t.true(Math.max(...ten) - Math.min(...ten) < 10, 'equal but for the remainder');
  t.deepEqual(layerSizes(total), layerSizes(total, undefined), 'no count: the five-layer shape');
  t.is(layerSizes(total).length, 5);
  t.throws(() => layerSizes(total, 0), { instanceOf: RangeError });
});

test('a constant gone from the source is a ModelOutOfDateError', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-sim-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'x.ts'), 'const OTHER_MS = 5;\n');
  t.throws(() => sourceConstant(join(dir, 'x.ts'), 'GONE_MS'), { instanceOf: ModelOutOfDateError });
  t.is(sourceConstant(join(dir, 'x.ts'), 'OTHER_MS'), 5);
  writeFileSync(join(dir, 'y.ts'), 'const HALF_MS = PIECE_WAIT_MS / 2;\nconst TWICE_MS = PIECE_WAIT_MS * 2;\n');
  t.is(sourceConstant(join(dir, 'y.ts'), 'HALF_MS') * 4, sourceConstant(join(dir, 'y.ts'), 'TWICE_MS'));
});

test('without fallbacks the registry sends the image once and every node finishes', (t) => {
  const layerBytes = layerSizes(16 * 1024 * 1024);
  const r = simulate({ nodes: 8, layerBytes, rateBitsPerSec: 100e6, rttMs: 0.2, seed: 1, scheduler: {}, constants: modelConstants(), proxyFallback: false });
  t.is(r.registryEgressBytes, layerBytes.reduce((a, b) => a + b, 0));
  t.is(r.completionMs.length, 8);
  t.true((r.completionMs[0] as number) >= r.lineRateMs * 0.99, 'no node beats its own line rate');
  t.is(r.seedEgressBytes + r.peerEgressBytes, 8 * r.sizeBytes, 'every node received each byte once');
});

// Bug pinned here: the model judged the proxy's fallback on each layer's own progress,
// where the proxy waits while any byte of any of the node's layers arrives. With 10 layers
// fetched at once a layer waiting its turn fell back, and the model sent the image from
// the registry 3–8 times where bench:swarm sent it once.
test("a layer waiting its turn while the node's other layers progress is not fetched from the registry", (t) => {
  const layerBytes = layerSizes(64 * 1024 * 1024, 10);
  for (const seed of [1, 2, 3, 4]) {
    const r = simulate({ nodes: 16, layerBytes, rateBitsPerSec: 10e6, rttMs: 1, seed, scheduler: {}, constants: modelConstants() });
    t.is(r.fallbacks, 0, `seed ${seed}`);
    t.is(r.registryEgressBytes, r.sizeBytes, `seed ${seed}: the registry sends the image once`);
  }
});

// bench:swarm's nodes ask for every layer at once, and the supernode hears of them in no
// fixed order: which layer waits for one of the registry's four fetch slots varies from run
// to run. The model asks in the manifest's order unless told to shuffle it.
test('layers reach the supernode in the manifest order, or shuffled once per seed; the fifth waits for a fetch slot', (t) => {
  const layerBytes = layerSizes(16 * 1024 * 1024);
  const base = { nodes: 4, layerBytes, rateBitsPerSec: 100e6, rttMs: 0.2, scheduler: {}, constants: modelConstants() };
  const waiting = (r: { layerFetchStartMs: number[] }): number[] => r.layerFetchStartMs.flatMap((ms, layer) => (ms > 0 ? [layer] : []));
  t.deepEqual(waiting(simulate({ ...base, seed: 1 })), [4], 'in manifest order the last layer waits');
  const waiters = new Set<number>();
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    const r = simulate({ ...base, seed, arrivalOrder: 'shuffled' });
    const w = waiting(r);
    t.is(w.length, 1, `seed ${seed}: one layer waits`);
    waiters.add(w[0] as number);
    t.deepEqual(simulate({ ...base, seed, arrivalOrder: 'shuffled' }).layerFetchStartMs, r.layerFetchStartMs, `seed ${seed}: the same order again`);
  }
  t.true(waiters.size >= 3, `the waiting layer varies with the seed: ${[...waiters].join(', ')}`);
});

// A preheated supernode (shoal preheat, or an earlier wave of nodes) holds the whole image
// when the nodes ask (bench:swarm --preheat): the model fetches it first and starts the
// nodes once it is whole, and their times count from then.
test("preheated: the nodes start once the supernode's cache holds the image, and their times count from their start", (t) => {
  const layerBytes = layerSizes(16 * 1024 * 1024);
  const base = { nodes: 4, layerBytes, rateBitsPerSec: 100e6, rttMs: 0.2, seed: 1, scheduler: {}, constants: modelConstants() };
  const cold = simulate(base);
  const warm = simulate({ ...base, preheated: true });
  t.is(warm.registryEgressBytes, cold.registryEgressBytes, 'the preheat fetched the image once, and no node went to the registry');
  t.deepEqual(
    warm.layerFetchStartMs.map((ms) => ms === 0),
    [true, true, true, true, false],
    'the preheat began the layers at once, the fifth when a fetch slot freed',
  );
  // Counted from the nodes' start, a warm pull is no shorter than one node's own link allows, and far shorter than the preheat and the pull together.
  const first = warm.completionMs[0] as number;
  t.true(first >= (warm.lineRateMs / TCP_GOODPUT) * 0.999, `${first} ms`);
  t.true((warm.completionMs[3] as number) < 2 * warm.lineRateMs, `${warm.completionMs[3]} ms`);
});

test('links carry TCP payload only: no node beats S/B at the goodput', (t) => {
  const layerBytes = layerSizes(16 * 1024 * 1024);
  const r = simulate({ nodes: 4, layerBytes, rateBitsPerSec: 100e6, rttMs: 0.2, seed: 1, scheduler: {}, constants: modelConstants(), proxyFallback: false });
  t.true((r.completionMs[0] as number) >= (r.lineRateMs / TCP_GOODPUT) * 0.999);
});

test("a link's TCP framing follows its MTU: jumbo frames carry more payload, and a faster pull", (t) => {
  t.is(TCP_GOODPUT, 1448 / 1514);
  t.is(tcpGoodput(9000), 8948 / 9014);
  const layerBytes = layerSizes(16 * 1024 * 1024);
  const run = (goodput: number): number =>
    simulate({ nodes: 4, layerBytes, rateBitsPerSec: 100e6, rttMs: 0.2, seed: 1, scheduler: {}, constants: modelConstants(), proxyFallback: false, goodput }).completionMs[0] as number;
  t.true(run(tcpGoodput(9000)) < run(TCP_GOODPUT));
});

test("what the model does not carry (ACKs, requests, resent segments) is taken off the uplinks: a node alone is held to what the seed's uplink has left", (t) => {
  const layerBytes = layerSizes(16 * 1024 * 1024);
  const run = (uplinkOverhead: number): { done: number; lineRateMs: number } => {
    const r = simulate({ nodes: 1, layerBytes, rateBitsPerSec: 100e6, rttMs: 0.2, seed: 1, scheduler: {}, constants: modelConstants(), proxyFallback: false, uplinkOverhead });
    return { done: r.completionMs[0] as number, lineRateMs: r.lineRateMs };
  };
  const none = run(0);
  const fifth = run(0.2);
  // The seed passes on what it receives at 0.8 B at most.
  t.true(fifth.done >= (fifth.lineRateMs / (TCP_GOODPUT * 0.8)) * 0.999, `${fifth.done} ms`);
  t.true(none.done < fifth.done);
  t.throws(() => run(1), { instanceOf: RangeError });
});

test('the seed sends each piece about once at N=16 on slow links (send gates, frontier caps)', (t) => {
  const layerBytes = layerSizes(16 * 1024 * 1024);
  const r = simulate({ nodes: 16, layerBytes, rateBitsPerSec: 10e6, rttMs: 0.2, seed: 1, scheduler: {}, constants: modelConstants() });
  t.is(r.fallbacks, 0);
  t.true(r.seedEgressBytes <= 1.25 * r.sizeBytes, `seed egress ${(r.seedEgressBytes / r.sizeBytes).toFixed(2)} × S`);
});

test('a slower node downlink slows the swarm down (per-host rates are modelled)', (t) => {
  const layerBytes = layerSizes(16 * 1024 * 1024);
  const base = { nodes: 4, layerBytes, rateBitsPerSec: 100e6, rttMs: 0.2, seed: 1, scheduler: {}, constants: modelConstants(), proxyFallback: false };
  const fast = simulate(base);
  const slow = simulate({ ...base, links: { nodeDown: 50e6 } });
  // Half the downlink: S/B doubles, no node beats it, and every node is later than with the full link.
  t.is(slow.lineRateMs, fast.lineRateMs * 2);
  t.true((slow.completionMs[0] as number) >= slow.lineRateMs * 0.99);
  t.true((slow.completionMs[0] as number) > (fast.completionMs[0] as number) * 1.2);
});

test('peer cut-through relays pieces while they arrive, sends each byte once and finishes sooner', (t) => {
  const layerBytes = layerSizes(16 * 1024 * 1024);
  const run = (peerCutThrough: boolean) =>
    simulate({ nodes: 16, layerBytes, rateBitsPerSec: 10e6, rttMs: 0.2, seed: 1, scheduler: {}, constants: modelConstants(), proxyFallback: false, peerCutThrough });
  const off = run(false);
  const on = run(true);
  const size = layerBytes.reduce((a, b) => a + b, 0);
  t.is(on.completionMs.length, 16);
  t.is(on.registryEgressBytes, size);
  // Every node receives every piece exactly once: relays do not duplicate bytes.
  t.is(on.seedEgressBytes + on.peerEgressBytes, 16 * size);
  const p50 = (r: typeof on) => r.completionMs[8] as number;
  t.true(p50(on) < p50(off), `p50 ${p50(on).toFixed(0)} ms with peer cut-through vs ${p50(off).toFixed(0)} ms without`);
});

test('paced cut-through: sends of a piece still arriving move at its arrival pace; every node finishes and each byte crosses once', (t) => {
  const layerBytes = layerSizes(16 * 1024 * 1024);
  const size = layerBytes.reduce((a, b) => a + b, 0);
  for (const rateBitsPerSec of [10e6, 25e6, 100e6]) {
    const run = (pacedCutThrough: boolean) =>
      simulate({ nodes: 16, layerBytes, rateBitsPerSec, rttMs: 0.2, seed: 1, scheduler: {}, constants: modelConstants(), proxyFallback: false, arrivalOrder: 'shuffled', pacedCutThrough });
    const free = run(false);
    const paced = run(true);
    t.is(paced.completionMs.length, 16);
    t.is(paced.registryEgressBytes, size);
    t.is(paced.seedEgressBytes + paced.peerEgressBytes, 16 * size);
    t.is(free.pacedSends, 0);
    // Most pieces go out from the seed while they arrive, and relays follow them.
    t.true(paced.pacedSends > paced.pieceCount, `${rateBitsPerSec / 1e6} Mbit/s: ${paced.pacedSends} paced sends for ${paced.pieceCount} pieces`);
    t.not(paced.completionMs[8], free.completionMs[8]);
  }
});

test('one node pulling on its own on a slow link keeps pace with the registry (claims in every layer)', (t) => {
  // With all of a lone node's frontier claims in the first layer it asked for, the model gave
  // 1.11 × S/B here: the other layers' pieces crossed its link only after arriving whole.
  const layerBytes = layerSizes(64 * 1024 * 1024);
  const r = simulate({ nodes: 1, layerBytes, rateBitsPerSec: 10e6, rttMs: 0.2, seed: 1, scheduler: {}, constants: modelConstants() });
  const ratio = (r.completionMs[0] as number) / r.lineRateMs;
  t.true(ratio <= 1.08, `one node took ${ratio.toFixed(3)} × S/B`);
});

test("the chain what-if: each layer's first node alone gets it from the supernode, the rest from the node before them, and each hop's delay adds up", (t) => {
  const layerBytes = layerSizes(16 * 1024 * 1024);
  const size = layerBytes.reduce((a, b) => a + b, 0);
  const run = (hopMs: number) =>
    simulate({ nodes: 8, layerBytes, rateBitsPerSec: 25e6, rttMs: 0.2, seed: 1, scheduler: {}, constants: modelConstants(), proxyFallback: false, pacedCutThrough: true, chain: { window: 2, hopMs } });
  const quick = run(0);
  t.is(quick.completionMs.length, 8);
  t.is(quick.registryEgressBytes, size);
  t.is(quick.seedEgressBytes, size, 'the supernode sends each piece once');
  t.is(quick.peerEgressBytes, 7 * size, 'every other copy comes from a peer');
  t.is(quick.scheduleCalls, 0, 'the chain asks no schedule');
  // A piece reaches the chain's last node seven hops after its first: the delay counts once per
  // hop (a delay applied once, or not at all, would add 200 ms or nothing).
  const slow = run(200);
  const last = (r: typeof quick) => r.completionMs[7] as number;
  t.true(last(slow) >= last(quick) + 5 * 200, `last node ${last(quick).toFixed(0)} ms, with 200 ms per hop ${last(slow).toFixed(0)} ms`);
});

test("the scheduler's chain (chainMembers): the seed sends each piece once, the members pass it on down the chain, requests ahead wait at their link, and N = 16 on slow links finishes sooner than rarest first", (t) => {
  const layerBytes = layerSizes(16 * 1024 * 1024);
  const size = layerBytes.reduce((a, b) => a + b, 0);
  const run = (chainMembers: number) =>
    simulate({ nodes: 16, layerBytes, rateBitsPerSec: 10e6, rttMs: 0.2, seed: 1, scheduler: { chainMembers }, constants: modelConstants(), proxyFallback: false, pacedCutThrough: true });
  const rarest = run(0);
  const chain = run(16);
  t.is(chain.completionMs.length, 16);
  t.is(chain.registryEgressBytes, size);
  t.is(chain.seedEgressBytes + chain.peerEgressBytes, 16 * size, 'every node receives every piece once');
  t.true(chain.seedEgressBytes <= 1.05 * size, `seed egress ${(chain.seedEgressBytes / size).toFixed(3)} × S`);
  t.is(chain.aheadMisses, 0, 'no request ahead ran out at its link');
  const p50 = (r: typeof chain) => r.completionMs[8] as number;
  t.true(p50(chain) < p50(rarest), `p50 ${p50(chain).toFixed(0)} ms in a chain vs ${p50(rarest).toFixed(0)} ms rarest first`);
});

test("a chain's requests ahead that wait too long at their link are answered 'missing', and the swarm still finishes", (t) => {
  const layerBytes = layerSizes(16 * 1024 * 1024);
  const size = layerBytes.reduce((a, b) => a + b, 0);
  const r = simulate({
    nodes: 8,
    layerBytes,
    rateBitsPerSec: 10e6,
    rttMs: 0.2,
    seed: 1,
    scheduler: { chainMembers: 16 },
    constants: { ...modelConstants(), relayWaitMaxMs: 50 },
    proxyFallback: false,
    pacedCutThrough: true,
  });
  t.true(r.aheadMisses > 0);
  t.is(r.completionMs.length, 8);
  t.is(r.seedEgressBytes + r.peerEgressBytes, 8 * size);
});
