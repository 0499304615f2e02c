/**
 * A refused request says why, where the operator looks: the refusing service counts it by
 * reason (`token_rejections_total{reason}`) and logs it at warn with what the reason means,
 * once a minute per address and reason. The client still gets a bare 401.
 */
import test from 'ava';
import Fastify from 'fastify';
import { ClusterAuth, HEADER, SIGNATURE_MAX_SKEW_MS } from '@shoal/core';
import { errorRenderingPlugin, explainAuthFailure, opsPlugin, RefusalLog, REFUSAL_LOG_INTERVAL_MS, tokenAuthPlugin } from '../src/index.js';

const TOKEN = 'refusals-test-token-0123456789abcdef';
const OTHER_TOKEN = 'another-cluster-token-0123456789abcdef';
const PATH = '/api/v1/status';

interface Line {
  level: number;
  msg: string;
  remote?: string;
  reason?: string;
  notLoggedSince?: number;
}

async function service(): Promise<{ app: ReturnType<typeof Fastify>; lines: Line[] }> {
  const lines: Line[] = [];
  const stream = { write: (text: string) => void lines.push(JSON.parse(text) as Line) };
  const app = Fastify({ logger: { level: 'info', stream } });
  await app.register(opsPlugin, { metricsPrefix: 'shoal_test_' });
  await app.register(errorRenderingPlugin);
  await app.register(tokenAuthPlugin, { auth: new ClusterAuth({}, { token: TOKEN }), isMe: (audience) => audience === 'supernode' });
  app.get(PATH, async () => ({ ok: true }));
  await app.ready();
  return { app, lines };
}

async function rejections(app: ReturnType<typeof Fastify>): Promise<Map<string, number>> {
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  const byReason = new Map<string, number>();
  for (const m of text.matchAll(/^shoal_test_token_rejections_total\{transport="http",reason="([a-z-]+)"\} (\d+)$/gm)) byReason.set(m[1] as string, Number(m[2]));
  return byReason;
}

const refusedLines = (lines: readonly Line[]): Line[] => lines.filter((l) => l.msg.startsWith('request refused'));

test('each refusal is counted by its reason and explained at warn; the client gets a bare 401', async (t) => {
  const { app, lines } = await service();
  t.teardown(() => app.close());
  const signedBy = (auth: ClusterAuth): Record<string, string> => auth.sign('GET', PATH, { kind: 'supernode' });

  // The route works when signed with the cluster's token: a 401 below is the check.
  t.is((await app.inject({ method: 'GET', url: PATH, headers: signedBy(new ClusterAuth({}, { token: TOKEN })) })).statusCode, 200);

  const cases: Array<[string, Record<string, string>]> = [
    ['missing', {}],
    ['unknown-key', signedBy(new ClusterAuth({}, { token: OTHER_TOKEN }))],
    ['expired', signedBy(new ClusterAuth({ clock: { now: () => Date.now() - 2 * SIGNATURE_MAX_SKEW_MS } }, { token: TOKEN }))],
    ['future', signedBy(new ClusterAuth({ clock: { now: () => Date.now() + 2 * SIGNATURE_MAX_SKEW_MS } }, { token: TOKEN }))],
    ['wrong-token', { [HEADER.token]: OTHER_TOKEN }],
  ];
  const bodies = new Set<string>();
  for (const [reason, headers] of cases) {
    const response = await app.inject({ method: 'GET', url: PATH, headers });
    t.is(response.statusCode, 401, reason);
    bodies.add(response.body);
  }
  t.deepEqual([...bodies], [JSON.stringify({ code: 'SHOAL_UNAUTHORIZED', message: 'missing or wrong cluster token' })], 'every refusal gets the same answer: it does not say why');
  t.deepEqual(Object.fromEntries(await rejections(app)), { missing: 1, 'unknown-key': 1, expired: 1, future: 1, 'wrong-token': 1 });

  const refused = refusedLines(lines);
  t.deepEqual(
    refused.map((l) => l.reason),
    cases.map(([reason]) => reason),
  );
  for (const line of refused) {
    t.is(line.level, 40, 'warn');
    t.is(line.msg, `request refused: ${explainAuthFailure(line.reason as never)}`);
  }
  t.regex(refused[1]?.msg ?? '', /another cluster token/);
  t.regex(refused[2]?.msg ?? '', /clocks are out of step/);
  // Logged once, where it is checked: the error renderer adds no line of its own.
  t.is(lines.filter((l) => l.msg.includes('refused')).length, cases.length);
});

test('a node refused for every request is logged once a minute per reason, with the count between', async (t) => {
  const { app, lines } = await service();
  t.teardown(() => app.close());
  for (let i = 0; i < 50; i++) t.is((await app.inject({ method: 'GET', url: PATH })).statusCode, 401);
  t.is((await rejections(app)).get('missing'), 50);
  t.is(refusedLines(lines).length, 1);
});

test('RefusalLog: per address and reason, at most once per interval, then with how many it did not log', (t) => {
  const logged: Array<{ fields: Record<string, unknown>; message: string }> = [];
  const log = new RefusalLog({ warn: (fields, message) => void logged.push({ fields, message }) });
  const t0 = 1_000_000;
  log.refused('10.0.0.1', 'unknown-key', 'request', t0);
  log.refused('10.0.0.1', 'unknown-key', 'request', t0 + 1);
  log.refused('10.0.0.1', 'unknown-key', 'request', t0 + 2);
  log.refused('10.0.0.1', 'expired', 'request', t0 + 3);
  log.refused('10.0.0.2', 'unknown-key', 'peer session', t0 + 4);
  t.deepEqual(
    logged.map((l) => [l.fields['remote'], l.fields['reason'], l.fields['notLoggedSince']]),
    [
      ['10.0.0.1', 'unknown-key', undefined],
      ['10.0.0.1', 'expired', undefined],
      ['10.0.0.2', 'unknown-key', undefined],
    ],
  );
  t.true(logged[2]?.message.startsWith('peer session refused: '));
  log.refused('10.0.0.1', 'unknown-key', 'request', t0 + REFUSAL_LOG_INTERVAL_MS - 1);
  t.is(logged.length, 3);
  log.refused('10.0.0.1', 'unknown-key', 'request', t0 + REFUSAL_LOG_INTERVAL_MS);
  t.is(logged.length, 4);
  t.is(logged[3]?.fields['notLoggedSince'], 3);
});

test('RefusalLog forgets the oldest address first and keeps a bounded memory', (t) => {
  const logged: string[] = [];
  const log = new RefusalLog({ warn: (fields) => void logged.push(String(fields['remote'])) });
  for (let i = 0; i < 5_000; i++) log.refused(`10.1.${i >> 8}.${i & 255}`, 'missing', 'request', 0);
  t.is(logged.length, 5_000);
  // The first address was forgotten, so it is logged again at once; the last one is remembered.
  log.refused('10.1.0.0', 'missing', 'request', 1);
  log.refused(`10.1.${4_999 >> 8}.${4_999 & 255}`, 'missing', 'request', 1);
  t.deepEqual(logged.slice(5_000), ['10.1.0.0']);
});
