/**
 * CPU cost of request signing (docs/security.md): signs and then verifies 200,000 piece
 * requests with ClusterAuth, and prints the CPU time per request of each. Run with
 * `npx tsc -b && node load-tests/dist/bench-signing.js`.
 */
import { ClusterAuth, peerAudienceCheck } from '@shoal/core';

const N = 200_000;
const auth = new ClusterAuth({}, { token: 'bench-signing-token-0123456789abcdef', maxNonces: N });
const path = `/api/v1/blobs/sha256:${'a'.repeat(64)}/pieces/123`;
const audience = { kind: 'peer', host: '10.0.0.5:65002' } as const;
const isMe = peerAudienceCheck(['10.0.0.5:65002']);

for (let i = 0; i < 20_000; i++) auth.sign('GET', path, audience); // warm-up
const signatures: string[] = [];
let cpu = process.cpuUsage();
for (let i = 0; i < N; i++) signatures.push(auth.sign('GET', path, audience)['x-shoal-signature'] ?? '');
const signCpu = process.cpuUsage(cpu);
cpu = process.cpuUsage();
let accepted = 0;
for (const signature of signatures) if (auth.check({ method: 'GET', url: path, signature, token: undefined }, isMe).ok) accepted++;
const verifyCpu = process.cpuUsage(cpu);
if (accepted !== N) throw new Error(`only ${accepted} of ${N} signatures verified`);
const perRequest = (u: NodeJS.CpuUsage): string => ((u.user + u.system) / N).toFixed(1);
process.stdout.write(`sign ${perRequest(signCpu)} µs CPU per request; verify ${perRequest(verifyCpu)} µs CPU per request (${N} requests)\n`);
