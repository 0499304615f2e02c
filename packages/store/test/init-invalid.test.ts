import test from 'ava';
import { ConfigError, silentLogger } from '@shoal/core';
import { PieceStore } from '../src/index.js';
import { tempDir } from './fixtures.js';

test('open reports every invalid quota setting at once', async (t) => {
  const dir = await tempDir(t);
  const error = await t.throwsAsync(PieceStore.open({ log: silentLogger() }, { dir, quotaBytes: -1, highWatermark: 1.5, lowWatermark: 0 }), { instanceOf: ConfigError });
  t.is(error?.problems.length, 3);
});
