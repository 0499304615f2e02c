import test from 'ava';
import fc from 'fast-check';
import {
  DOCKER_HUB_API,
  MAX_REPOSITORY_LENGTH,
  isDigest,
  parseDigest,
  parseImageReference,
  parseRegistryHost,
  parseRegistryPath,
  parseRepository,
  parseTag,
  type RegistryRoute,
} from '../src/index.js';
import {
  ADVERSARIAL_BUDGET_MS,
  STRESS_PATTERNS,
  adversarialInputs,
  anyString,
  attempt,
  describeInput,
  hex64,
  runs,
  slowest,
  tokenString,
} from './helpers/fuzz.js';

// Valid names, generated from the grammar the parsers implement (distribution/reference).
const component = fc.stringMatching(/^[a-z0-9]{1,8}(?:(?:[._]|__|-{1,3})[a-z0-9]{1,8}){0,3}$/);
const repository = fc
  .array(component, { minLength: 1, maxLength: 6 })
  .map((parts) => parts.join('/'))
  .filter((name) => name.length <= MAX_REPOSITORY_LENGTH);
const tag = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/);
const digest = hex64.map((hex) => `sha256:${hex}`);
const label = fc.stringMatching(/^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?$/);
const host = fc
  .tuple(fc.array(label, { minLength: 1, maxLength: 4 }), fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }))
  .map(([labels, port]) => `${labels.join('.')}${port === undefined ? '' : `:${port}`}`);

const PATH_TOKENS = ['/v2', '/v2/', '/', 'blobs', '/blobs/', 'manifests', '/manifests/', 'sha256:', 'sha256%3A', 'a', 'B', '0', '-', '_', '.', '..', '%', '%2F', '%E0%A4%A', '%00', ':', '@', '?', '#', 'é', '\u{1F600}', '\ud800', 'latest'];
const HOST_TOKENS = ['a', 'Z', '0', '-', '.', ':', '[', ']', '::1', '5000', '99999', '0', 'docker.io', 'localhost', '%', '/', '@', ' ', 'é'];
const REF_TOKENS = ['docker.io', 'index.docker.io', 'localhost', 'localhost:5000', 'ghcr.io', '/', ':', '@', 'sha256:', 'library', 'a', 'B', '-', '_', '__', '.', 'latest', '[::1]', '%', ' ', 'é'];

function checkRoute(route: RegistryRoute): boolean {
  if (route.kind === 'ping') return true;
  if (parseRepository(route.repository) !== route.repository) return false;
  if (route.kind === 'blob') return isDigest(route.digest);
  return route.digest === undefined ? parseTag(route.reference) === route.reference : route.reference === route.digest && isDigest(route.digest);
}

test('parseRegistryPath: any path gives a valid route or a ShoalError', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.oneof(anyString, tokenString(PATH_TOKENS), tokenString(PATH_TOKENS).map((s) => `/v2/${s}`)), (path) => {
        const outcome = attempt(() => parseRegistryPath(path));
        return !outcome.ok || checkRoute(outcome.value);
      }),
      runs(5_000),
    ),
  );
});

test('parseRegistryPath: valid blob and manifest paths parse to their parts (digests also percent-encoded)', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(repository, digest, tag, fc.boolean(), (repo, dig, tg, encode) => {
        const shownDigest = encode ? dig.replace(':', '%3A') : dig;
        const blob = parseRegistryPath(`/v2/${repo}/blobs/${shownDigest}`);
        const byDigest = parseRegistryPath(`/v2/${repo}/manifests/${shownDigest}`);
        const byTag = parseRegistryPath(`/v2/${repo}/manifests/${tg}`);
        return (
          blob.kind === 'blob' &&
          blob.repository === repo &&
          blob.digest === dig &&
          byDigest.kind === 'manifest' &&
          byDigest.repository === repo &&
          byDigest.digest === dig &&
          byTag.kind === 'manifest' &&
          byTag.repository === repo &&
          byTag.reference === tg &&
          byTag.digest === undefined
        );
      }),
      runs(1_000),
    ),
  );
});

test('parseRepository and parseTag: valid names parse to themselves, anything else is a ShoalError', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(repository, tag, (repo, tg) => parseRepository(repo) === repo && parseTag(tg) === tg),
      runs(1_000),
    ),
  );
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.oneof(anyString, tokenString(PATH_TOKENS)), (text) => {
        const repo = attempt(() => parseRepository(text));
        const tg = attempt(() => parseTag(text));
        return (!repo.ok || repo.value === text) && (!tg.ok || tg.value === text);
      }),
      runs(5_000),
    ),
  );
});

test('parseRegistryHost: valid hosts parse to their lowercase form (docker.io to its API host), idempotently', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(host, (h) => {
        const parsed = parseRegistryHost(h);
        const expected = ['docker.io', 'index.docker.io'].includes(h.toLowerCase()) ? DOCKER_HUB_API : h.toLowerCase();
        return parsed === expected && parseRegistryHost(parsed) === parsed;
      }),
      runs(1_000),
    ),
  );
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.oneof(anyString, tokenString(HOST_TOKENS, 12)), (text) => {
        const outcome = attempt(() => parseRegistryHost(text));
        return !outcome.ok || (outcome.value.length > 0 && parseRegistryHost(outcome.value) === outcome.value);
      }),
      runs(5_000),
    ),
  );
});

test('parseImageReference: any text gives a valid reference or a ShoalError; valid references round-trip', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.oneof(anyString, tokenString(REF_TOKENS, 20)), (text) => {
        const outcome = attempt(() => parseImageReference(text));
        if (!outcome.ok) return true;
        const ref = outcome.value;
        return (
          parseRegistryHost(ref.registryName) === ref.registry &&
          parseRepository(ref.repository) === ref.repository &&
          (ref.tag === undefined || parseTag(ref.tag) === ref.tag) &&
          (ref.digest === undefined || isDigest(ref.digest)) &&
          (ref.tag !== undefined || ref.digest !== undefined)
        );
      }),
      runs(5_000),
    ),
  );
  t.notThrows(() =>
    fc.assert(
      fc.property(host.filter((h) => (h.includes('.') || h.includes(':')) && !['docker.io', 'index.docker.io'].includes(h.toLowerCase())), repository, fc.option(tag, { nil: undefined }), fc.option(digest, { nil: undefined }), (h, repo, tg, dig) => {
        const text = `${h}/${repo}${tg === undefined ? '' : `:${tg}`}${dig === undefined ? '' : `@${dig}`}`;
        const ref = parseImageReference(text);
        return ref.registryName === h && ref.repository === repo && ref.tag === (tg ?? (dig === undefined ? 'latest' : undefined)) && ref.digest === dig;
      }),
      runs(1_000),
    ),
  );
});

test('reference parsers stay linear on 100k-character adversarial inputs', (t) => {
  const validDigest = parseDigest(`sha256:${'a'.repeat(64)}`);
  const cases: Array<{ name: string; inputs: string[]; parse: (input: string) => unknown }> = [
    {
      name: 'parseRegistryPath',
      inputs: adversarialInputs(['/v2/', '/v2/a/', '/v2/a/manifests/', '/v2/a/blobs/'], STRESS_PATTERNS, ['', '!', `/blobs/${validDigest}`, '/manifests/latest', '/manifests/%']),
      parse: parseRegistryPath,
    },
    { name: 'parseRepository', inputs: adversarialInputs(['', 'a/'], STRESS_PATTERNS, ['', '!', 'A']), parse: parseRepository },
    { name: 'parseTag', inputs: adversarialInputs(['', 'a'], STRESS_PATTERNS, ['', '!']), parse: parseTag },
    { name: 'parseRegistryHost', inputs: adversarialInputs(['', 'a.', '['], STRESS_PATTERNS, ['', '!', ':5000', ']:1']), parse: parseRegistryHost },
    { name: 'parseImageReference', inputs: adversarialInputs(['', 'docker.io/', 'a:'], STRESS_PATTERNS, ['', '!', ':latest', `@${validDigest}`]), parse: parseImageReference },
  ];
  for (const c of cases) {
    const worst = slowest(c.inputs, c.parse);
    t.true(worst.ms < ADVERSARIAL_BUDGET_MS, `${c.name} took ${worst.ms.toFixed(1)} ms on ${describeInput(worst.input)}`);
  }
});
