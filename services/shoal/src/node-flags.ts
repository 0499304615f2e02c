/**
 * The Node.js flags Shoal's processes are meant to run with. They are applied by
 * `bin/shoal.js`'s shebang and by `npm start`; a container image runs `shoal` (the
 * shebang) and also sets the first in NODE_OPTIONS, which refuses the second.
 * Benchmarks and tests start processes with them too, so they measure what is
 * deployed. V8 reads them only at process start.
 *
 * `--max-semi-space-size=4`: V8's young generation grows to 2 × 16 MiB by default.
 * With 4 MiB a node agent serving a 1 GiB blob to 4 clients peaked at 124–131 MiB
 * RSS instead of 158, with no measurable CPU cost. 2 MiB saved 10 MiB more but cost
 * about 0.6 CPU-s per 256 MiB on a cold pull (`docs/benchmarks.md`).
 *
 * `--initial-old-space-size=64`: with V8's own start (a limit a little above the ~24 MB
 * a service holds) a process streaming pieces ran a full mark-compact every 100–200 ms,
 * each freeing about 1 MB: 155 in the supernode and 214 in the node agent over one cold
 * 2 GiB blob (`bench:cpu`), 20 and 56 with this, and 3.2 and 1.7 CPU-s per GiB less
 * (supernode 9.7 → 6.5, node agent 7.1 → 5.4). Peak anonymous memory stayed where it
 * was (321 and 197 MiB against 317 and 199).
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4', '--initial-old-space-size=64'];
