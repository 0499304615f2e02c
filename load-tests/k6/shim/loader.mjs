// @ts-check
// Module hooks for the k6 shim: `k6` and `k6/*` resolve to the shim's own
// modules; any other k6 module fails loudly (the shim implements only what
// the scripts in load-tests/k6 use).
const MODULES = {
  k6: 'k6.mjs',
  'k6/http': 'http.mjs',
  'k6/metrics': 'metrics.mjs',
  'k6/crypto': 'crypto.mjs',
};

/**
 * @param {string} specifier
 * @param {unknown} context
 * @param {(specifier: string, context: unknown) => Promise<{ url: string }>} next
 */
export async function resolve(specifier, context, next) {
  if (specifier === 'k6' || specifier.startsWith('k6/')) {
    const file = /** @type {Record<string, string>} */ (MODULES)[specifier];
    if (file === undefined) throw new Error(`the k6 shim does not implement module ${specifier} (only ${Object.keys(MODULES).join(', ')})`);
    return { url: new URL(`./modules/${file}`, import.meta.url).href, shortCircuit: true };
  }
  return next(specifier, context);
}
