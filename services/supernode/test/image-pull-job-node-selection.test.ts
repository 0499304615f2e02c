import test from 'ava';
import { labelsMatch, selectNodes, type KubeNode } from '../src/controller/select.js';
import { MAX_NODES_PER_JOB } from '../src/controller/spec.js';

const nodes: KubeNode[] = [
  { name: 'n1', labels: { pool: 'warm', zone: 'a' } },
  { name: 'n2', labels: { pool: 'cold', zone: 'a' } },
  { name: 'n3', labels: { pool: 'warm', zone: 'b', spot: 'true' } },
  { name: 'n4', labels: {} },
];

test('label selectors follow Kubernetes semantics (matchLabels and every operator)', (t) => {
  t.true(labelsMatch({ a: '1', b: '2' }, { a: '1' }, []));
  t.false(labelsMatch({ a: '2' }, { a: '1' }, []));
  t.true(labelsMatch({ a: '1' }, {}, [{ key: 'a', operator: 'In', values: ['1', '2'] }]));
  t.false(labelsMatch({}, {}, [{ key: 'a', operator: 'In', values: ['1'] }]), 'In needs the label');
  t.true(labelsMatch({}, {}, [{ key: 'a', operator: 'NotIn', values: ['1'] }]), 'NotIn holds without the label');
  t.false(labelsMatch({ a: '1' }, {}, [{ key: 'a', operator: 'NotIn', values: ['1'] }]));
  t.true(labelsMatch({ a: '' }, {}, [{ key: 'a', operator: 'Exists', values: [] }]));
  t.false(labelsMatch({ a: '' }, {}, [{ key: 'a', operator: 'DoesNotExist', values: [] }]));
  t.false(labelsMatch({ toString: 'x' } as Record<string, string>, {}, [{ key: 'constructor', operator: 'Exists', values: [] }]), 'prototype keys are not labels');
});

test('a label selector picks matching Kubernetes nodes and splits them by whether a Shoal peer registered', (t) => {
  const selection = selectNodes({ kind: 'labels', matchLabels: { pool: 'warm' }, matchExpressions: [] }, nodes, new Set(['n1', 'n2']));
  t.deepEqual(selection, { withPeer: ['n1'], withoutPeer: ['n3'], truncated: false });
  const noSpot = selectNodes({ kind: 'labels', matchLabels: {}, matchExpressions: [{ key: 'spot', operator: 'DoesNotExist', values: [] }] }, nodes, new Set(['n1', 'n2', 'n3', 'n4']));
  t.deepEqual(noSpot.withPeer, ['n1', 'n2', 'n4']);
});

test('names select those nodes, whatever the Kubernetes node list says', (t) => {
  const selection = selectNodes({ kind: 'names', names: ['n9', 'n1', 'n1'] }, [], new Set(['n1']));
  t.deepEqual(selection, { withPeer: ['n1'], withoutPeer: ['n9'], truncated: false });
});

test('at most MAX_NODES_PER_JOB nodes are selected', (t) => {
  const many = Array.from({ length: MAX_NODES_PER_JOB + 5 }, (_, i) => ({ name: `node-${String(i).padStart(5, '0')}`, labels: { all: 'yes' } }));
  const selection = selectNodes({ kind: 'labels', matchLabels: { all: 'yes' }, matchExpressions: [] }, many, new Set());
  t.is(selection.withoutPeer.length, MAX_NODES_PER_JOB);
  t.true(selection.truncated);
});
