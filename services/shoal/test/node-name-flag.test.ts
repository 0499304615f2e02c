/**
 * `shoal node --node-name` / SHOAL_NODE_NAME: the name preheat --nodes
 * selects a node by. Default: the host name in lowercase (as kubelet names
 * a node). A name given must be a Kubernetes node name.
 */
import test from 'ava';
import { ConfigError, loadConfig } from '@shoal/core';
import { nodeNameFlag, resolveNodeName } from '../src/flags.js';

const flags = { nodeName: nodeNameFlag };

test('--node-name and SHOAL_NODE_NAME set the node name; without them it is the host name in lowercase', (t) => {
  const fromFlag = loadConfig(flags, ['--node-name', 'node-a'], {}).config.nodeName;
  t.is(resolveNodeName(fromFlag, 'ignored'), 'node-a');
  const fromEnv = loadConfig(flags, [], { SHOAL_NODE_NAME: 'ip-10-0-0-7.ec2.internal' }).config.nodeName;
  t.is(resolveNodeName(fromEnv, 'ignored'), 'ip-10-0-0-7.ec2.internal');
  t.is(resolveNodeName(undefined, 'Worker-01.Example.COM'), 'worker-01.example.com');
});

test('a given name that is no Kubernetes node name is a ConfigError naming the flag; an odd host name gives none', (t) => {
  for (const name of ['Node-A', 'node_a', '-a', 'a-', 'a..b', 'x'.repeat(254)]) {
    const err = t.throws(() => resolveNodeName(name, 'host'), { instanceOf: ConfigError });
    t.regex(err?.message ?? '', /--node-name: expected a Kubernetes node name/);
  }
  t.is(resolveNodeName('x'.repeat(253), 'host'), 'x'.repeat(253));
  // A host name that is no node name: no node name at all (the peer goes by its peer id), not a refusal to start.
  t.is(resolveNodeName(undefined, 'my_host'), undefined);
});
