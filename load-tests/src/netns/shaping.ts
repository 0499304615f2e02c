/**
 * Link shaping with htb, the only shaper besides tbf this kernel has (no netem, fq,
 * fq_codel or sfq). One FIFO per link would share it unevenly between flows, so each
 * link gets one class per peer host:
 *
 *   1:   htb root, unclassified traffic (ARP) → 1:ff
 *   1:1  rate B ceil B                   the link
 *   1:X  rate B/hosts ceil B             one per peer (u32 on the peer's address),
 *                                        X = 0x100 + the peer's last octet
 *   1:ff rate 1 Mbit ceil B              the rest
 *
 * Every peer class is guaranteed an equal share and may borrow the whole link when the
 * others are idle. Each leaf is a byte FIFO of about 40 ms at rate B, not the default
 * 1000-packet FIFO: a bridge port receives segmentation-offload super-packets (up to
 * 64 KiB each) with no TCP small-queue back-pressure, and 1000 of them would queue
 * seconds of traffic in front of every request to the same peer.
 */

import { runInChecked } from './exec.js';

/** htb quantum for every class: one 64 KiB offload packet (the default, rate/r2q, is far too big at 200 Mbit/s). */
export const QUANTUM_BYTES = 65_536;
/** Leaf FIFO length in time at rate B. */
const LEAF_QUEUE_MS = 40;
/** Never shorter than this many bytes (a few offload packets). */
const MIN_LEAF_QUEUE_BYTES = 256 * 1024;

export interface HtbOptions {
  dev: string;
  rateMbit: number;
  /** The peers' addresses (a.b.c.d), one class each. */
  peers: readonly string[];
  /** Classify by destination (a host's upload) or by source (a bridge port: the host's download). */
  match: 'dst' | 'src';
  /** Hosts on the LAN: each peer class gets rate B/hostCount. */
  hostCount: number;
}

export function classIdFor(address: string): string {
  const octet = Number(address.split('.').at(-1));
  return `1:${(0x100 + octet).toString(16)}`;
}

/** `tc -batch` lines (no leading `tc`). */
export function htbBatch(o: HtbOptions): string[] {
  const rate = `${o.rateMbit}mbit`;
  const share = `${Math.max(1, Math.floor((o.rateMbit * 1000) / o.hostCount))}kbit`;
  const queueBytes = Math.max(MIN_LEAF_QUEUE_BYTES, Math.round((o.rateMbit * 1e6 * LEAF_QUEUE_MS) / 8000));
  const lines = [
    `qdisc replace dev ${o.dev} root handle 1: htb default ff`,
    `class add dev ${o.dev} parent 1: classid 1:1 htb rate ${rate} ceil ${rate} quantum ${QUANTUM_BYTES}`,
    `class add dev ${o.dev} parent 1:1 classid 1:ff htb rate 1mbit ceil ${rate} quantum ${QUANTUM_BYTES}`,
  ];
  for (const peer of o.peers) {
    const id = classIdFor(peer);
    lines.push(
      `class add dev ${o.dev} parent 1:1 classid ${id} htb rate ${share} ceil ${rate} quantum ${QUANTUM_BYTES}`,
      `qdisc add dev ${o.dev} parent ${id} bfifo limit ${queueBytes}`,
      `filter add dev ${o.dev} parent 1: protocol ip prio 1 u32 match ip ${o.match} ${peer}/32 flowid ${id}`,
    );
  }
  return lines;
}

/**
 * What a link's root htb qdisc has sent: bytes as the link carries them, and packets.
 * Unlike the interface's own counters, which count an offload packet's headers once
 * however many segments it holds, the qdisc charges every segment its headers (as the
 * shaping does) and counts every segment a packet.
 */
export interface ShapedSent {
  bytes: number;
  packets: number;
}

/** The root qdisc's `Sent N bytes M pkt` in `tc -s qdisc show dev X root` output. */
export function parseShapedSent(text: string): ShapedSent {
  const m = /^\s*Sent (\d+) bytes (\d+) pkt/m.exec(text);
  if (m === null) throw new Error(`no "Sent … bytes … pkt" line in tc's output: ${JSON.stringify(text.slice(0, 200))}`);
  return { bytes: Number(m[1]), packets: Number(m[2]) };
}

/** Every htb class's `Sent N bytes M pkt` in `tc -s class show dev X` output, by class id (`1:10a`). */
export function parseShapedClasses(text: string): Map<string, ShapedSent> {
  const classes = new Map<string, ShapedSent>();
  const re = /^class htb (\S+) .*\n\s*Sent (\d+) bytes (\d+) pkt/gm;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) classes.set(m[1] as string, { bytes: Number(m[2]), packets: Number(m[3]) });
  if (classes.size === 0) throw new Error(`no htb class with a "Sent … bytes … pkt" line in tc's output: ${JSON.stringify(text.slice(0, 200))}`);
  return classes;
}

/** The counters of every class of a shaped link `dev` in namespace `ns`. */
export async function shapedClassesIn(ns: string, dev: string): Promise<Map<string, ShapedSent>> {
  return parseShapedClasses((await runInChecked(ns, 'tc', ['-s', 'class', 'show', 'dev', dev])).stdout);
}

/** The shaped uplink's counters of `dev` in namespace `ns`. */
export async function shapedSentIn(ns: string, dev: string): Promise<ShapedSent> {
  return parseShapedSent((await runInChecked(ns, 'tc', ['-s', 'qdisc', 'show', 'dev', dev, 'root'])).stdout);
}
