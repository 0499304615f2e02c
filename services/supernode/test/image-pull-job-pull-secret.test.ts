import test from 'ava';
import { parseImageReference } from '@shoal/core';
import { authorizationFromDockerConfig } from '../src/controller/credentials.js';

function secretData(config: unknown): Record<string, string> {
  return { '.dockerconfigjson': Buffer.from(JSON.stringify(config)).toString('base64') };
}

test('a dockerconfigjson Secret gives the image registry\'s credential as a Basic authorization', (t) => {
  const data = secretData({ auths: { 'other.example': { auth: 'b3RoZXI6eA==' }, 'https://registry.example:5000/v2/': { username: 'alice', password: 's3cret' } } });
  t.is(authorizationFromDockerConfig(data, parseImageReference('registry.example:5000/app:v1')), `Basic ${Buffer.from('alice:s3cret').toString('base64')}`);
  t.is(authorizationFromDockerConfig(data, parseImageReference('other.example/app:v1')), 'Basic b3RoZXI6eA==');
  t.is(authorizationFromDockerConfig(data, parseImageReference('third.example/app:v1')), undefined);
});

test('Docker Hub images match the usual Docker Hub keys', (t) => {
  const data = secretData({ auths: { 'https://index.docker.io/v1/': { auth: 'aHViOng=' } } });
  t.is(authorizationFromDockerConfig(data, parseImageReference('library/nginx:1')), 'Basic aHViOng=');
});

test('a malformed Secret is refused without quoting its content', (t) => {
  const err = t.throws(() => authorizationFromDockerConfig({ '.dockerconfigjson': Buffer.from('{"auths": "hunter2"').toString('base64') }, parseImageReference('a.example/b:1')));
  t.is(err?.message, 'its .dockerconfigjson is not JSON');
  t.throws(() => authorizationFromDockerConfig({}, parseImageReference('a.example/b:1')), { message: 'it has no .dockerconfigjson key' });
});
