import test from 'ava';
import { HEADER } from '@shoal/core';
import { FakeSwarmFromRegistry, FakeSwarmRejecting } from './helpers/fake-swarm.js';
import { blobPath, fetchAll, layoutBlob, startProxy, startUpstream } from './helpers/fixture.js';

test('Range: 206 with the exact bytes (from the swarm and from the registry), 416 when unsatisfiable', async (t) => {
  const upstream = await startUpstream();
  t.teardown(() => upstream.stop());
  const layer = upstream.image.layers[0];
  if (layer === undefined) throw new Error('image has no layer');
  const content = await layoutBlob(upstream, layer.digest);
  const size = content.length;

  const fromSwarm = await startProxy({ blobs: new FakeSwarmFromRegistry(upstream.client), plainHttpHosts: [upstream.registry.host] });
  t.teardown(() => fromSwarm.close());
  const fromRegistry = await startProxy({ blobs: new FakeSwarmRejecting(), plainHttpHosts: [upstream.registry.host] });
  t.teardown(() => fromRegistry.close());

  const cases: Array<{ range: string; start: number; end: number }> = [
    { range: 'bytes=0-1', start: 0, end: 1 },
    { range: 'bytes=1000-', start: 1000, end: size - 1 },
    { range: 'bytes=-500', start: size - 500, end: size - 1 },
    { range: `bytes=100-199,5000-5099`, start: 100, end: 5099 },
    { range: `bytes=${size - 10}-${size + 1000}`, start: size - 10, end: size - 1 },
  ];
  for (const [proxy, source] of [[fromSwarm, 'peer'], [fromRegistry, 'upstream']] as const) {
    for (const c of cases) {
      const response = await fetchAll(`${proxy.url}${blobPath(upstream, layer.digest)}`, { headers: { range: c.range } });
      t.is(response.statusCode, 206, `${source} ${c.range}`);
      t.is(response.headers['content-range'], `bytes ${c.start}-${c.end}/${size}`, `${source} ${c.range}`);
      t.is(response.headers['content-length'], String(c.end - c.start + 1));
      t.is(response.headers[HEADER.source], source);
      t.true(response.body.equals(content.subarray(c.start, c.end + 1)), `${source} ${c.range}`);
    }
    const unsatisfiable = await fetchAll(`${proxy.url}${blobPath(upstream, layer.digest)}`, { headers: { range: `bytes=${size}-` } });
    t.is(unsatisfiable.statusCode, 416);
    t.is(unsatisfiable.headers['content-range'], `bytes */${size}`);
    t.is((JSON.parse(unsatisfiable.body.toString()) as { errors: Array<{ code: string }> }).errors[0]?.code, 'RANGE_INVALID');
  }
});
