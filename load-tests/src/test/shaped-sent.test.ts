import test from 'ava';
import { parseShapedClasses, parseShapedSent } from '../netns/shaping.js';

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

test("a shaped link's classes are read from tc -s class show, by class id", (t) => {
  const text = [
    'class htb 1:1 root rate 25Mbit ceil 25Mbit burst 1600b cburst 1600b ',
    ' Sent 72717411 bytes 50012 pkt (dropped 0, overlimits 0 requeues 0) ',
    ' backlog 0b 0p requeues 0',
    ' lended: 0 borrowed: 0 giants: 0',
    '',
    'class htb 1:101 parent 1:1 leaf bbc7: prio 0 rate 1470Kbit ceil 25Mbit burst 1600b cburst 1600b ',
    ' Sent 70385722 bytes 48011 pkt (dropped 12, overlimits 0 requeues 0) ',
    ' backlog 0b 0p requeues 0',
  ].join('\n');
  const classes = parseShapedClasses(text);
  t.deepEqual([...classes.keys()], ['1:1', '1:101']);
  t.deepEqual(classes.get('1:101'), { bytes: 70_385_722, packets: 48_011 });
});

test('tc class output without counters is an error', (t) => {
  t.throws(() => parseShapedClasses('Cannot find device "eth9"\n'), { message: /no htb class/ });
});
