import test from 'ava';
import { parseDigest } from '@shoal/core';
import { parseCtrDebugLog, servedBlobs } from '../src/index.js';

// Lines as ctr 1.6.20 --debug writes them (captured here), one mirror refused, one 404, then the registry.
const D = parseDigest('sha256:94a103c7036ce97b075baf139ae8a6a547bae5c6b67a5b6cd357b5b43149cb9a');
const log = [
  'time="2026-11-22T07:35:36Z" level=debug msg="do request" host="127.0.0.1:1" request.header.accept="application/vnd.oci.image.index.v1+json, */*" request.header.user-agent="containerd/1.6.20~ds1" request.method=HEAD url="http://127.0.0.1:1/v2/test/app/manifests/v1?ns=127.0.0.1%3A40631"',
  'time="2026-11-22T07:35:36Z" level=info msg="trying next host" error="failed to do request: Head \\"http://127.0.0.1:1/v2/test/app/manifests/v1?ns=127.0.0.1%3A40631\\": dial tcp 127.0.0.1:1: connect: connection refused" host="127.0.0.1:1"',
  `time="2026-11-22T07:35:36Z" level=debug msg="do request" digest="${D}" mediatype=application/vnd.oci.image.layer.v1.tar+gzip request.header.accept="application/vnd.oci.image.layer.v1.tar+gzip, */*" request.header.user-agent="containerd/1.6.20~ds1" request.method=GET size=1049063 url="http://127.0.0.1:43557/v2/test/app/blobs/${D}?ns=127.0.0.1%3A40631"`,
  `time="2026-11-22T07:35:36Z" level=debug msg="do request" digest="${D}" mediatype=application/vnd.oci.image.layer.v1.tar+gzip request.method=GET size=1049063 url="http://127.0.0.1:40631/v2/test/app/blobs/${D}"`,
  `time="2026-11-22T07:35:36Z" level=debug msg="fetch response received" digest="${D}" mediatype=application/vnd.oci.image.layer.v1.tar+gzip response.header.content-length=2 response.header.x-shoal-source=upstream response.status="404 Not Found" size=1049063 url="http://127.0.0.1:43557/v2/test/app/blobs/${D}?ns=127.0.0.1%3A40631"`,
  `time="2026-11-22T07:35:36Z" level=debug msg="fetch response received" digest="${D}" mediatype=application/vnd.oci.image.layer.v1.tar+gzip response.header.content-length=1049063 response.header.etag="\\"${D}\\"" response.status="200 OK" size=1049063 url="http://127.0.0.1:40631/v2/test/app/blobs/${D}"`,
  'time="2026-11-22T07:35:36Z" level=debug msg=unpacking image="127.0.0.1:40631/test/app:v1"',
].join('\n');

test('parses requests, statuses, headers and connection errors from ctr --debug', (t) => {
  const requests = parseCtrDebugLog(log);
  t.is(requests.length, 3);
  const [head, mirror, registry] = requests;
  t.is(head?.method, 'HEAD');
  t.is(head?.status, undefined);
  t.regex(head?.error ?? '', /connection refused/);
  t.is(mirror?.host, '127.0.0.1:43557');
  t.is(mirror?.status, 404);
  t.is(mirror?.headers?.['x-shoal-source'], 'upstream');
  t.is(mirror?.digest, D);
  t.is(registry?.status, 200);
  t.is(registry?.headers?.etag, `"${D}"`);
  t.is(servedBlobs(requests).get(D)?.host, '127.0.0.1:40631');
});
