import test from 'ava';
import { MAX_LISTED_TOKENS, MIN_TOKEN_LENGTH, parseTokenText } from '../src/index.js';

const A = 'token-file-a-0123456789abcdef';
const B = 'token-file-b-fedcba9876543210';
const C = 'token-file-c-00112233445566778899';

test('a one-token file reads as it always has: the token, trimmed', (t) => {
  t.deepEqual(parseTokenText(`${A}\n`), { tokens: [A] });
  t.deepEqual(parseTokenText(`  ${A}\r\n\n`), { tokens: [A] });
  t.deepEqual(parseTokenText(A), { tokens: [A] });
  // Only the line's ends are trimmed; what is inside a line is the token.
  t.deepEqual(parseTokenText(`${A} x\n`), { tokens: [`${A} x`] });
});

test('one token a line, in file order; surrounding whitespace and blank lines ignored', (t) => {
  t.deepEqual(parseTokenText(`${A}\n${B}\n`), { tokens: [A, B] });
  t.deepEqual(parseTokenText(`\n  ${B}  \r\n\n\t${A}\n${C}\n\n`), { tokens: [B, A, C] });
  t.is(MAX_LISTED_TOKENS, 3);
});

test('a file with no token, or too many, says so', (t) => {
  t.deepEqual(parseTokenText(''), { problem: `holds no token; write one of at least ${MIN_TOKEN_LENGTH} characters (e.g. openssl rand -hex 32)` });
  t.deepEqual(parseTokenText(' \n\r\n\t\n'), { problem: `holds no token; write one of at least ${MIN_TOKEN_LENGTH} characters (e.g. openssl rand -hex 32)` });
  t.deepEqual(parseTokenText(`${A}\n${B}\n${C}\n${C}x\n`), { problem: 'holds 4 tokens; list at most 3 (one a line, the first signs)' });
});

test('a short token is named by its line (when there are several), never quoted', (t) => {
  t.deepEqual(parseTokenText('short\n'), { problem: 'holds 5 characters; use at least 16 (e.g. openssl rand -hex 32)' });
  t.deepEqual(parseTokenText(`${A}\nshort\n`), { problem: 'line 2 holds 5 characters; use at least 16 (e.g. openssl rand -hex 32)' });
  // Line numbers are the file's, blank lines counted.
  const problem = parseTokenText(`${A}\n\n${B}\n  fifteen-chars!!\n`);
  t.deepEqual(problem, { problem: 'line 4 holds 15 characters; use at least 16 (e.g. openssl rand -hex 32)' });
  t.false(JSON.stringify(problem).includes('fifteen'));
});

test('the same token twice is refused, with both lines', (t) => {
  const problem = parseTokenText(`${A}\n${B}\n  ${A}\n`);
  t.deepEqual(problem, { problem: 'lists the same token twice (lines 1 and 3)' });
  t.false(JSON.stringify(problem).includes(A));
});
