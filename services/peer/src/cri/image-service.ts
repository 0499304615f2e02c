import { fileURLToPath } from 'node:url';
import { credentials, loadPackageDefinition, Metadata, status as GrpcStatus, type Client, type ServiceError, type ClientUnaryCall, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { RuntimeCallError } from '../errors.js';

/** services/peer/proto/cri.proto: the CRI messages and fields this client uses, with CRI's field numbers. */
const PROTO_PATH = fileURLToPath(new URL('../../../proto/cri.proto', import.meta.url));
/** Largest answer read from the runtime (an ImageStatus or PullImage reply is a few hundred bytes). Bytes: 4 MiB. */
const MAX_RECEIVE_BYTES = 4 * 1024 * 1024;

/** CRI AuthConfig (fields 1-3 of CRI's message). */
export interface CriAuth {
  username?: string;
  password?: string;
  /** base64 `user:password`. */
  auth?: string;
}

export interface CriPullRequest {
  image: string;
  auth?: CriAuth | undefined;
  /** Labels of the PodSandboxConfig sent with the pull (some runtimes crash on a nil one). */
  sandboxLabels: Readonly<Record<string, string>>;
  sandboxName: string;
  sandboxUid: string;
  sandboxNamespace: string;
}

interface RawImage {
  id?: string;
  repo_tags?: string[];
  repo_digests?: string[];
  size?: string | number;
}

type Unary<Req, Res> = (request: Req, metadata: Metadata, options: { deadline?: Date }, callback: (err: ServiceError | null, response?: Res) => void) => ClientUnaryCall;

interface ImageServiceStub extends Client {
  ImageStatus: Unary<{ image: { image: string }; verbose: boolean }, { image?: RawImage | null }>;
  PullImage: Unary<
    {
      image: { image: string };
      auth?: CriAuth;
      sandbox_config: { metadata: { name: string; uid: string; namespace: string; attempt: number }; labels: Record<string, string> };
    },
    { image_ref?: string }
  >;
}

let serviceConstructor: ServiceClientConstructor | undefined;

function imageServiceConstructor(): ServiceClientConstructor {
  if (serviceConstructor === undefined) {
    const definition = loadSync(PROTO_PATH, { keepCase: true, longs: String, enums: String, defaults: false, oneofs: false });
    const loaded = loadPackageDefinition(definition) as unknown as { runtime: { v1: { ImageService: ServiceClientConstructor } } };
    serviceConstructor = loaded.runtime.v1.ImageService;
  }
  return serviceConstructor;
}

/** An image the runtime holds, as CRI ImageStatus describes it. */
export interface RuntimeImage {
  id: string;
  repoTags: string[];
  repoDigests: string[];
  sizeBytes: number;
}

/**
 * A CRI runtime.v1 ImageService client on a unix socket (containerd's
 * `/run/containerd/containerd.sock`). Every call takes `{ signal }`: an
 * abort cancels the call.
 */
export class CriImageService {
  private readonly stub: ImageServiceStub;

  constructor(readonly socketPath: string) {
    const Ctor = imageServiceConstructor();
    this.stub = new Ctor(`unix://${socketPath}`, credentials.createInsecure(), {
      'grpc.max_receive_message_length': MAX_RECEIVE_BYTES,
      // A runtime restarting mid-prewarm: fail the call rather than wait for the socket.
      'grpc.enable_retries': 0,
    }) as unknown as ImageServiceStub;
  }

  /** The image as the runtime holds it, or undefined when it has none by that name. */
  async imageStatus(image: string, options: { signal?: AbortSignal } = {}): Promise<RuntimeImage | undefined> {
    const response = await this.call<{ image?: RawImage | null }>('ImageStatus', (cb) => this.stub.ImageStatus({ image: { image }, verbose: false }, new Metadata(), {}, cb), options.signal);
    const raw = response.image;
    if (raw === undefined || raw === null || typeof raw.id !== 'string' || raw.id === '') return undefined;
    return { id: raw.id, repoTags: raw.repo_tags ?? [], repoDigests: raw.repo_digests ?? [], sizeBytes: Number(raw.size ?? 0) };
  }

  /** Pulls (and unpacks) the image; resolves to the runtime's image reference (its id). */
  async pullImage(request: CriPullRequest, options: { signal?: AbortSignal } = {}): Promise<string> {
    const body = {
      image: { image: request.image },
      ...(request.auth === undefined ? {} : { auth: request.auth }),
      sandbox_config: {
        metadata: { name: request.sandboxName, uid: request.sandboxUid, namespace: request.sandboxNamespace, attempt: 0 },
        labels: { ...request.sandboxLabels },
      },
    };
    const response = await this.call<{ image_ref?: string }>('PullImage', (cb) => this.stub.PullImage(body, new Metadata(), {}, cb), options.signal);
    return response.image_ref ?? '';
  }

  close(): void {
    this.stub.close();
  }

  private call<Res>(method: string, start: (cb: (err: ServiceError | null, response?: Res) => void) => ClientUnaryCall, signal: AbortSignal | undefined): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      if (signal?.aborted === true) return reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      const onAbort = (): void => call.cancel();
      const call = start((err, response) => {
        signal?.removeEventListener('abort', onAbort);
        if (err !== null) {
          if (err.code === GrpcStatus.CANCELLED && signal?.aborted === true) reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
          else reject(new RuntimeCallError(method, err));
        } else resolve(response as Res);
      });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
