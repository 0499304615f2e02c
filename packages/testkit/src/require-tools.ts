/**
 * End-to-end tests need real components. The rule is simple and honest: they are
 * always required. A missing tool fails the test with an error naming the Debian
 * package to install; nothing is ever skipped silently (a skipped e2e suite looks
 * green and proves nothing). `.ci/run` installs them all.
 */
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';

/** Debian (bookworm) package providing each tool. */
export const TOOL_PACKAGES = {
  containerd: 'containerd',
  ctr: 'containerd',
  'docker-registry': 'docker-registry',
  skopeo: 'skopeo',
  htpasswd: 'apache2-utils',
  podman: 'podman',
  ip: 'iproute2',
  tc: 'iproute2',
  mmdebstrap: 'mmdebstrap',
} as const;

export type Tool = keyof typeof TOOL_PACKAGES;

export class MissingToolError extends Error {
  readonly code = 'SHOAL_MISSING_TOOL';
  readonly tools: readonly string[];
  constructor(tools: readonly Tool[]) {
    const packages = [...new Set(tools.map((t) => TOOL_PACKAGES[t]))];
    super(
      `required tool(s) not found on PATH: ${tools.join(', ')}. ` +
        `Install with: apt-get install -y --no-install-recommends ${packages.join(' ')} (or run .ci/run)`,
    );
    this.name = 'MissingToolError';
    this.tools = tools;
  }
}

/** The absolute path of an executable on PATH, or undefined. */
export async function whichTool(name: string): Promise<string | undefined> {
  const dirs = (process.env.PATH ?? '').split(delimiter).concat(['/usr/sbin', '/sbin']);
  for (const dir of dirs) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

const checked = new Map<Tool, Promise<boolean>>();

/**
 * Throws a `MissingToolError` (naming the apt packages) unless every tool is on PATH.
 * Returns true so it reads well as `await requireTools([...])` at the top of a test.
 */
export async function requireTools(tools: readonly Tool[]): Promise<true> {
  const present = await Promise.all(
    tools.map((tool) => {
      let p = checked.get(tool);
      if (p === undefined) {
        p = whichTool(tool).then((path) => path !== undefined);
        checked.set(tool, p);
      }
      return p;
    }),
  );
  const missing = tools.filter((_, i) => present[i] !== true);
  if (missing.length > 0) throw new MissingToolError(missing);
  return true;
}
