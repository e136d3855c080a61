/**
 * What the strategy server does below HTTP routing: timeouts, connection caps, the error
 * envelope for failures Node's HTTP parser answers itself, and the shutdown deadline.
 *
 *   headersTimeoutMs     a connection must deliver a complete request head this soon after it
 *                        opens (or after its previous response): slow or silent clients get 408
 *   requestTimeoutMs     ... and the complete body this soon after the head started: a body
 *                        that never finishes gets 408 and the connection is closed
 *   keepAliveTimeoutMs   an idle keep-alive connection is closed after this
 *   idleSocketTimeoutMs  a connection with no traffic in either direction for this long (a
 *                        client that stops reading its response) is destroyed
 *   maxConnections       open connections in all; one more is answered 503 SERVER_BUSY
 *   maxConnectionsPerAddress  open connections from one remote address (0 = no cap); one more
 *                        is answered 429 TOO_MANY_CONNECTIONS
 *   shutdownDeadlineMs   close() waits at most this long for requests already being handled
 *                        (strategy batches included); then every connection left is closed
 *
 * Node checks the header and request timeouts on a timer (connectionsCheckingInterval), so a slow
 * client is closed between the timeout and the timeout plus that interval (a quarter of the
 * shorter timeout, at most 1 s).
 *
 * Refusals happen before the HTTP parser sees the socket: Node's own `server.maxConnections`
 * drops a socket without a word, which a client cannot tell from a network failure. The refused
 * client gets one raw HTTP response with the JSON envelope and `Connection: close`.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { ApiError, errorBody } from './errors.ts';
import type { ApiErrorCode } from './errors.ts';

export interface ConnectionLimits {
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly idleSocketTimeoutMs: number;
  readonly maxConnections: number;
  readonly maxConnectionsPerAddress: number;
  readonly shutdownDeadlineMs: number;
}

/**
 * Safe defaults for a server on the open internet. A strategy request is a few hundred bytes
 * and its answer a few hundred more, so 10 s for the head and 15 s for the whole request leave
 * any real client ample time; one address can hold at most 64 connections, and 512 in all stay
 * well under the usual 1,024 open files of a process (workers, model files and logs need some).
 * Behind a load balancer every request comes from its address: raise or disable
 * maxConnectionsPerAddress there.
 */
export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 15_000,
  keepAliveTimeoutMs: 5_000,
  idleSocketTimeoutMs: 30_000,
  maxConnections: 512,
  maxConnectionsPerAddress: 64,
  shutdownDeadlineMs: 10_000,
};

/** Fills in defaults and checks every value; throws RangeError naming the bad one. */
export function resolveConnectionLimits(partial: Partial<ConnectionLimits> = {}): ConnectionLimits {
  if (typeof partial !== 'object' || partial === null) throw new RangeError('limits must be an object');
  const limits = { ...DEFAULT_CONNECTION_LIMITS, ...partial };
  for (const [name, value] of Object.entries(limits)) {
    const min = name === 'maxConnectionsPerAddress' ? 0 : 1;
    if (!Number.isInteger(value) || value < min) throw new RangeError(`limits.${name} must be an integer >= ${min}, got ${String(value)}`);
  }
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) {
    throw new RangeError(`limits.headersTimeoutMs (${limits.headersTimeoutMs}) must not exceed requestTimeoutMs (${limits.requestTimeoutMs})`);
  }
  return limits;
}

/** Node's interval for checking header and request timeouts (its default is 30 s). */
export function connectionsCheckingInterval(limits: ConnectionLimits): number {
  return Math.max(50, Math.min(1_000, Math.floor(Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 4)));
}

/** A complete HTTP/1.1 response carrying the JSON envelope, for writing straight to a socket. */
export function rawErrorResponse(status: number, code: ApiErrorCode, message: string, headers: Record<string, string> = {}): string {
  const body = JSON.stringify(errorBody(code, message));
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

/** The envelope for an error Node's HTTP layer raised on a connection (no request object exists). */
export function clientErrorToApiError(error: Error & { code?: string }): ApiError {
  switch (error.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new ApiError(408, 'REQUEST_TIMEOUT', 'the request did not arrive in time; connection closed');
    case 'HPE_HEADER_OVERFLOW':
      return new ApiError(431, 'HEADERS_TOO_LARGE', 'the request line and headers exceed the server limit');
    default:
      // llhttp's codes (HPE_INVALID_METHOD, HPE_INVALID_HEADER_TOKEN, ...) name what was wrong.
      return new ApiError(400, 'MALFORMED_REQUEST', `malformed HTTP request (${error.code ?? 'parse error'})`);
  }
}

/** IPv4 clients of a dual-stack listener appear as ::ffff:a.b.c.d; count them as a.b.c.d. */
function addressKey(address: string | undefined): string {
  if (address === undefined) return 'unknown';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

export interface ConnectionCounts {
  /** Connections handed to HTTP and not yet closed. */
  readonly open: number;
  readonly refusedBusy: number;
  readonly refusedPerAddress: number;
}

/**
 * Counts connections globally and per address, refuses those over a cap with an enveloped
 * response, writes the envelope for Node-level client errors, and closes what is left at
 * shutdown.
 */
export class ConnectionGuard {
  readonly #server: Server;
  readonly #limits: ConnectionLimits;
  readonly #perAddress = new Map<string, number>();
  readonly #open = new Set<Socket>();
  /** Refused sockets still flushing their answer. */
  readonly #refused = new Set<Socket>();
  /** The response in progress on a socket: once its head is out, raw bytes would corrupt it. */
  readonly #responses = new WeakMap<Socket, ServerResponse>();
  readonly #onRefused: (reason: 'busy' | 'per-address') => void;
  #refusedBusy = 0;
  #refusedPerAddress = 0;

  constructor(server: Server, limits: ConnectionLimits, onRefused: (reason: 'busy' | 'per-address') => void = () => undefined) {
    this.#server = server;
    this.#limits = limits;
    this.#onRefused = onRefused;
    // node:http registers one 'connection' listener that attaches its parser. It is called here
    // only for admitted sockets, so a refused one never reaches HTTP parsing.
    const listeners = server.listeners('connection');
    if (listeners.length !== 1) throw new Error(`expected node:http's one 'connection' listener, found ${listeners.length}`);
    const httpConnection = listeners[0] as (socket: Socket) => void;
    server.removeListener('connection', httpConnection);
    server.on('connection', (socket: Socket) => {
      if (this.#admit(socket)) httpConnection.call(server, socket);
    });
    server.on('request', (request: IncomingMessage, response: ServerResponse) => {
      const socket = request.socket;
      this.#responses.set(socket, response);
      response.once('finish', () => {
        if (this.#responses.get(socket) === response) this.#responses.delete(socket);
      });
    });
  }

  get counts(): ConnectionCounts {
    return { open: this.#open.size, refusedBusy: this.#refusedBusy, refusedPerAddress: this.#refusedPerAddress };
  }

  /** For Fastify's clientErrorHandler: answers with the envelope where that is still possible. */
  onClientError(error: Error & { code?: string }, socket: Socket): void {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const response = this.#responses.get(socket);
    if (socket.writable && !(response?.headersSent ?? false)) {
      const api = clientErrorToApiError(error);
      socket.end(rawErrorResponse(api.statusCode, api.code, api.message));
      // A peer that neither reads its answer nor hangs up does not keep the socket.
      socket.setTimeout(1_000, () => socket.destroy());
    } else {
      socket.destroy();
    }
  }

  /**
   * At shutdown, once the requests being handled are answered: closes idle connections, tells
   * those still sending a request (503 SHUTTING_DOWN) and closes them, lets answers still in a
   * socket's write buffer (a slow download) drain, and at `deadlineMs` destroys whatever is left.
   */
  async closeAll(deadlineMs: number): Promise<void> {
    this.#server.closeIdleConnections();
    const waits: Promise<void>[] = [];
    for (const socket of this.#open) {
      if (socket.destroyed) continue;
      if (socket.writableLength > 0) {
        waits.push(
          new Promise<void>((resolve) => {
            socket.once('drain', resolve);
            socket.once('close', resolve);
          }).then(() => void socket.destroy()),
        );
      } else if (socket.writable && !(this.#responses.get(socket)?.headersSent ?? false)) {
        const answer = rawErrorResponse(503, 'SHUTTING_DOWN', 'the server is shutting down; retry on another replica');
        waits.push(new Promise<void>((resolve) => socket.end(answer, resolve)).then(() => void socket.destroy()));
      } else {
        socket.destroy();
      }
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(waits), new Promise((resolve) => (timer = setTimeout(resolve, deadlineMs)))]);
    clearTimeout(timer);
    this.#server.closeAllConnections();
    for (const s of [...this.#open, ...this.#refused]) s.destroy();
  }

  #admit(socket: Socket): boolean {
    const key = addressKey(socket.remoteAddress);
    const fromAddress = this.#perAddress.get(key) ?? 0;
    if (this.#open.size >= this.#limits.maxConnections) {
      this.#refusedBusy++;
      this.#onRefused('busy');
      this.#refuse(socket, 503, 'SERVER_BUSY', `the server holds its maximum of ${this.#limits.maxConnections} connections; retry later`);
      return false;
    }
    const perAddress = this.#limits.maxConnectionsPerAddress;
    if (perAddress > 0 && fromAddress >= perAddress) {
      this.#refusedPerAddress++;
      this.#onRefused('per-address');
      this.#refuse(socket, 429, 'TOO_MANY_CONNECTIONS', `more than ${perAddress} open connections from one address; reuse or close some`);
      return false;
    }
    this.#open.add(socket);
    this.#perAddress.set(key, fromAddress + 1);
    socket.once('close', () => {
      this.#open.delete(socket);
      const left = (this.#perAddress.get(key) ?? 1) - 1;
      if (left > 0) this.#perAddress.set(key, left);
      else this.#perAddress.delete(key);
    });
    return true;
  }

  #refuse(socket: Socket, status: number, code: ApiErrorCode, message: string): void {
    this.#refused.add(socket);
    socket.once('close', () => this.#refused.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.on('end', () => socket.destroy());
    socket.setTimeout(1_000, () => socket.destroy());
    socket.resume(); // read and drop whatever the client sends meanwhile
    socket.end(rawErrorResponse(status, code, message, { 'Retry-After': '1' }));
  }
}
