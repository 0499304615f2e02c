import test from 'ava';
import { parseImagePullJobSpec } from '../src/controller/spec.js';
import { InvalidImagePullJobError } from '../src/errors.js';

function problems(spec: unknown): string {
  const err = t_throws(spec);
  return err.problems.join('\n');
}

function t_throws(spec: unknown): InvalidImagePullJobError {
  try {
    parseImagePullJobSpec(spec);
  } catch (err) {
    if (err instanceof InvalidImagePullJobError) return err;
    throw err;
  }
  throw new Error('expected an invalid spec');
}

test('a minimal spec gets OpenKruise\'s defaults', (t) => {
  const spec = parseImagePullJobSpec({ image: 'registry.example:5000/app:v1', selector: { names: ['node-a', 'node-a', 'node-b'] } });
  t.is(spec.image.registryName, 'registry.example:5000');
  t.is(spec.image.repository, 'app');
  t.deepEqual(spec.selector, { kind: 'names', names: ['node-a', 'node-b'] });
  t.is(spec.parallelism, 1);
  t.is(spec.timeoutSeconds, 600);
  t.is(spec.backoffLimit, 3);
  t.deepEqual(spec.pullSecrets, []);
  t.deepEqual(spec.completionPolicy, { type: 'Always', activeDeadlineSeconds: undefined, ttlSecondsAfterFinished: undefined });
  t.is(spec.imagePullPolicy, 'Always');
  t.is(spec.platforms, undefined);
});

test('every field is read: label selector, pull policy, secrets, completion policy, platforms', (t) => {
  const spec = parseImagePullJobSpec({
    image: 'app:v2',
    selector: { matchLabels: { 'kubernetes.io/os': 'linux' }, matchExpressions: [{ key: 'pool', operator: 'In', values: ['a', 'b'] }, { key: 'spot', operator: 'DoesNotExist' }] },
    parallelism: 0,
    pullPolicy: { timeoutSeconds: 30, backoffLimit: 0 },
    pullSecrets: ['regcred'],
    completionPolicy: { type: 'Always', activeDeadlineSeconds: 120, ttlSecondsAfterFinished: 0 },
    imagePullPolicy: 'IfNotPresent',
    platforms: ['linux/arm64', 'linux/arm/v7'],
  });
  t.deepEqual(spec.selector, {
    kind: 'labels',
    matchLabels: { 'kubernetes.io/os': 'linux' },
    matchExpressions: [{ key: 'pool', operator: 'In', values: ['a', 'b'] }, { key: 'spot', operator: 'DoesNotExist', values: [] }],
  });
  t.is(spec.parallelism, 0, '0 pauses the job');
  t.is(spec.timeoutSeconds, 30);
  t.is(spec.backoffLimit, 0);
  t.deepEqual(spec.pullSecrets, ['regcred']);
  t.deepEqual(spec.completionPolicy, { type: 'Always', activeDeadlineSeconds: 120, ttlSecondsAfterFinished: 0 });
  t.is(spec.imagePullPolicy, 'IfNotPresent');
  t.deepEqual(spec.platforms, [{ os: 'linux', architecture: 'arm64', variant: undefined }, { os: 'linux', architecture: 'arm', variant: 'v7' }]);
});

test('every problem of an invalid spec is reported at once, each naming its field', (t) => {
  const text = problems({
    image: '',
    selector: { names: ['Node_A'] },
    parallelism: 1.5,
    pullPolicy: { timeoutSeconds: 0, backoffLimit: 'three' },
    pullSecrets: ['ok', 'NOT OK'],
    completionPolicy: { type: 'Sometimes' },
    imagePullPolicy: 'Never',
    platforms: ['linux'],
    podSelector: { matchLabels: { 'bad key!': 'x' } },
    extra: 1,
  });
  for (const expected of [
    'spec.extra is not a field of ImagePullJob',
    'spec.image is required',
    'spec.platforms: "linux" is not a platform',
    'give spec.selector or spec.podSelector, not both',
    'spec.selector.names: "Node_A" is not a node name',
    'spec.parallelism must be an integer from 0 to 1000, not 1.5',
    'spec.pullPolicy.timeoutSeconds must be an integer from 1 to 86400, not 0',
    'spec.pullPolicy.backoffLimit must be an integer from 0 to 100, not "three"',
    'spec.pullSecrets: "NOT OK" is not a Secret name',
    'spec.completionPolicy.type must be Always or Never, not "Sometimes"',
    'spec.imagePullPolicy must be Always or IfNotPresent, not "Never"',
  ]) {
    t.true(text.includes(expected), `${expected}\nin:\n${text}`);
  }
});

test('selectors: required, names or labels but not both, well-formed requirements', (t) => {
  t.regex(problems({ image: 'a:1' }), /spec\.selector is required/);
  t.regex(problems({ image: 'a:1', selector: {} }), /spec\.selector must hold names or matchLabels/);
  t.regex(problems({ image: 'a:1', selector: { names: ['a'], matchLabels: { x: 'y' } } }), /not both/);
  t.regex(problems({ image: 'a:1', selector: { names: [] } }), /spec\.selector\.names must be a list of 1 to 1000 node names/);
  t.regex(problems({ image: 'a:1', selector: { matchExpressions: [{ key: 'k', operator: 'In', values: [] }] } }), /matchExpressions\[0\]\.values must not be empty for In/);
  t.regex(problems({ image: 'a:1', selector: { matchExpressions: [{ key: 'k', operator: 'Exists', values: ['v'] }] } }), /matchExpressions\[0\]\.values must be empty for Exists/);
  t.regex(problems({ image: 'a:1', selector: { matchExpressions: [{ key: 'k', operator: 'Gt', values: ['1'] }] } }), /operator must be In, NotIn, Exists or DoesNotExist, not "Gt"/);
  t.regex(problems({ image: 'a:1', selector: { matchLabels: { 'bad key!': 'v' } } }), /"bad key!" is not a label key/);
  t.regex(problems({ image: 'a:1', selector: { names: ['a'] }, completionPolicy: { type: 'Never', ttlSecondsAfterFinished: 5 } }), /apply only to type Always/);
});

test('things that are not a spec at all are refused, not thrown about', (t) => {
  for (const raw of [undefined, null, 'spec', 42, [], { image: 7, selector: 'all' }]) {
    const err = t_throws(raw);
    t.true(err.message.startsWith('invalid spec: '));
  }
});
