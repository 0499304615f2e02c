import test from 'ava';
import { parseShapedSent } from '../netns/shaping.js';

test("a shaped link's root qdisc counters are read from tc -s", (t) => {
  const text = [
    'qdisc htb 1: root refcnt 3 r2q 10 default 0xff direct_packets_stat 0 direct_qlen 1000',
    ' Sent 130789041 bytes 90456 pkt (dropped 0, overlimits 6871 requeues 0) ',
    ' backlog 0b 0p requeues 0',
  ].join('\n');
  t.deepEqual(parseShapedSent(text), { bytes: 130_789_041, packets: 90_456 });
});

test('tc output without the counters is an error that quotes it', (t) => {
  const err = t.throws(() => parseShapedSent('Cannot find device "eth9"\n'));
  t.regex(err?.message ?? '', /no "Sent … bytes … pkt" line.*Cannot find device/);
});
