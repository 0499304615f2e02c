import test from 'ava';
import { requireTools, startRegistry } from '../src/index.js';

// Another registry already answers on the port: the new one cannot bind it, and
// its start must fail rather than take the other's answers for its own (an open
// registry standing in for an htpasswd one once let an anonymous pull through).
test('a registry whose port another registry holds does not start, however well the other answers', async (t) => {
  await requireTools(['docker-registry']);
  const open = await startRegistry();
  t.teardown(() => open.stop());
  const answer = await fetch(`${open.url}/v2/`);
  await answer.arrayBuffer();
  t.is(answer.status, 200, 'the port answers /v2/ as a registry');

  const error = await t.throwsAsync(startRegistry({ htpasswd: { username: 'u', password: 'p' }, port: open.port, readyTimeoutMs: 10_000 }));
  t.regex(error?.message ?? '', /docker-registry exited/);
  t.regex(error?.message ?? '', /address already in use/);
});
