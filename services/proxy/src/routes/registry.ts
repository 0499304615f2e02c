import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { NameInvalidError, parseRegistryHost, parseRegistryPath, type RegistryRoute } from '@shoal/core';
import { serveBlob } from '../blobs.js';
import { MirrorNamespaceMissingError } from '../errors.js';
import { serveManifest } from '../manifests.js';
import { API_VERSION, API_VERSION_HEADER, sendOciError } from '../oci-reply.js';
import type { ProxyContext } from '../plugins/context.js';

const READ_METHODS = ['GET', 'HEAD'] as const;
// A pull-only mirror: everything that would write is refused.
const OTHER_METHODS = ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/**
 * The registry API containerd uses through hosts.toml:
 * `GET|HEAD /v2/<repo>/(manifests|blobs)/<ref>?ns=<registry host>`.
 * One catch-all route; the path is parsed here (untrusted input at the edge).
 */
export const registryRoutes: FastifyPluginAsync = async (app) => {
  // Nothing here reads a request body; never fail a request on one.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined));

  for (const url of ['/v2', '/v2/*']) {
    app.route({ method: [...READ_METHODS], url, handler: (request, reply) => handle(app.shoalProxy, request, reply) });
    app.route({
      method: [...OTHER_METHODS],
      url,
      handler: async (request, reply) => {
        request.shoalKind = 'other';
        return sendOciError(reply, 405, 'UNSUPPORTED', `${request.method} is not supported: this is a pull-only registry mirror`, {
          allow: READ_METHODS.join(', '),
        });
      },
    });
  }
};

function parseRoute(path: string): RegistryRoute {
  try {
    return parseRegistryPath(path);
  } catch (err) {
    // decodeURIComponent on a malformed escape
    if (err instanceof URIError) throw new NameInvalidError(`malformed escape in ${path.slice(0, 100)}`);
    throw err;
  }
}

async function handle(ctx: ProxyContext, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const queryAt = request.url.indexOf('?');
  const path = queryAt < 0 ? request.url : request.url.slice(0, queryAt);
  const route = parseRoute(path);
  if (route.kind === 'ping') {
    request.shoalKind = 'ping';
    return reply.header(API_VERSION_HEADER, API_VERSION).send({});
  }
  request.shoalKind = route.kind;
  const ns = new URLSearchParams(queryAt < 0 ? '' : request.url.slice(queryAt + 1)).get('ns');
  if (ns === null || ns === '') throw new MirrorNamespaceMissingError();
  const registry = parseRegistryHost(ns);
  if (route.kind === 'manifest') {
    return serveManifest(ctx, request, reply, { registry, repository: route.repository, reference: route.reference, digest: route.digest });
  }
  return serveBlob(ctx, request, reply, { registry, repository: route.repository, digest: route.digest });
}
