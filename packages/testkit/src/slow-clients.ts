/**
 * Clients that misbehave on purpose, for the slow-client tests, and a
 * server-side record of how long each connection lived: a client that does
 * not read cannot tell when the server hung up, the server can.
 */
import type { Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

/** Sends `request` one byte every `intervalMs` and never the final blank line. */
export function slowloris(port: number, request: string, intervalMs: number): Socket {
  const socket = connect(port, '127.0.0.1');
  let at = 0;
  const ticker = setInterval(() => {
    if (at < request.length && socket.writable) socket.write(request[at++] ?? '');
  }, intervalMs);
  socket.on('close', () => clearInterval(ticker));
  socket.on('error', () => {});
  socket.resume(); // read (and drop) whatever the server answers
  return socket;
}

/** Sends a complete GET for `path`, then never reads: once the kernel buffers fill, the server's writes stall. */
export function neverReads(port: number, path: string): Socket {
  const socket = connect(port, '127.0.0.1', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`));
  socket.on('error', () => {});
  socket.pause();
  return socket;
}

export interface ConnectionLog {
  /** Connections accepted and not yet closed. */
  readonly open: number;
  /** Lifetimes of the closed connections, milliseconds. */
  readonly lifetimesMs: readonly number[];
  readonly accepted: number;
}

/** Records every connection the server accepts from now on. */
export function logConnections(server: Server): ConnectionLog {
  const lifetimesMs: number[] = [];
  let open = 0;
  let accepted = 0;
  server.on('connection', (socket: Socket) => {
    const started = performance.now();
    open++;
    accepted++;
    socket.once('close', () => {
      open--;
      lifetimesMs.push(performance.now() - started);
    });
  });
  return {
    get open() {
      return open;
    },
    get accepted() {
      return accepted;
    },
    lifetimesMs,
  };
}

/** Resolves once `condition` holds (checked every 50 ms), or rejects after `timeoutMs`. */
export async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
