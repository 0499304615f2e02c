import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { buildImage, makeTempDir, pushImage, removeTempDir, startRegistry, type BuiltImage, type LayerSpec, type RunningRegistry } from '@shoal/testkit';

/** What a test's processes and files hang on: torn down with the test, `closers` last first, then `dir`. */
export interface PushedImage {
  dir: string;
  /** Stops for what the test starts; each runs once at teardown, in reverse order, errors ignored. */
  closers: Array<() => Promise<void>>;
  registry: RunningRegistry;
  image: BuiltImage;
}

/**
 * A temp dir, a real docker-registry and an uncompressed image of `layers` pushed to
 * it as `repository:v1`, all torn down with the test.
 */
export async function pushedImage(t: ExecutionContext, options: { dirPrefix: string; repository: string; layers: LayerSpec[] }): Promise<PushedImage> {
  const dir = await makeTempDir(options.dirPrefix);
  const closers: Array<() => Promise<void>> = [];
  t.teardown(async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
    await removeTempDir(dir);
  });
  const registry = await startRegistry({});
  closers.push(() => registry.stop());
  const image = await buildImage({ dir: join(dir, 'layout'), tag: 'v1', layers: options.layers, gzipLevel: 0 });
  await pushImage({ layoutDir: image.layoutDir, tag: 'v1', registry: registry.host, repository: options.repository });
  return { dir, closers, registry, image };
}
