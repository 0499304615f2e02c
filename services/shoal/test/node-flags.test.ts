import { readFile } from 'node:fs/promises';
import test from 'ava';
import { NODE_FLAGS } from '../src/node-flags.js';

const root = new URL('../../../../', import.meta.url);

// The flags are written out where a process starts (V8 reads them only then):
// every place must carry the same ones.
test('bin/shoal.js and npm start run node with NODE_FLAGS', async (t) => {
  const shebang = (await readFile(new URL('services/shoal/bin/shoal.js', root), 'utf8')).split('\n', 1)[0];
  t.is(shebang, `#!/usr/bin/env -S node ${NODE_FLAGS.join(' ')}`);
  const scripts = (JSON.parse(await readFile(new URL('package.json', root), 'utf8')) as { scripts: Record<string, string> }).scripts;
  t.true(scripts.start?.startsWith(`node ${NODE_FLAGS.join(' ')} `), scripts.start);
});
