/**
 * The Node.js flags Shoal's processes are meant to run with. They are applied by
 * `bin/shoal.js`'s shebang and by `npm start`; a container image sets them in
 * NODE_OPTIONS. Benchmarks and tests start processes with them too, so they measure
 * what is deployed. V8 reads them only at process start.
 *
 * `--max-semi-space-size=4`: V8's young generation grows to 2 × 16 MiB by default.
 * With 4 MiB a node agent serving a 1 GiB blob to 4 clients peaked at 124–131 MiB
 * RSS instead of 158, with no measurable CPU cost. 2 MiB saved 10 MiB more but cost
 * about 0.6 CPU-s per 256 MiB on a cold pull (`docs/benchmarks.md`).
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];
