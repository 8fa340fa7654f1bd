import { createHash, createHmac, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A local stand-in for QStash, speaking its REST protocol to the real @upstash/qstash client:
 * `POST /v2/publish/{destination URL}` (`Upstash-Delay`, `Upstash-Not-Before`,
 * `Upstash-Deduplication-Id`, `Upstash-Retries`, `Upstash-Method`, `Upstash-Forward-*`) answering
 * `{messageId, url, deduplicated}`; `DELETE /v2/messages/{id}` cancelling a pending message;
 * `GET /v2/messages/{id}`; `Authorization: Bearer <token>` on all of them.
 *
 * Once its delay is over, a message is delivered the way QStash delivers it: the original body and
 * Content-Type, forwarded headers, `Upstash-Message-Id`, `Upstash-Retried`, and `Upstash-Signature`,
 * an HS256 JWT signed with the current signing key whose claims are iss "Upstash", sub = the
 * destination URL, iat/nbf = now, exp = now + 5 min, a jti, and body = base64url(SHA-256(raw body)).
 * A non-2xx answer is retried after `retryDelayMs` until the retries run out.
 */
export type QStashMessage = {
  messageId: string;
  url: string;
  method: string;
  body: string;
  headers: Record<string, string>;
  notBefore: number;
  deduplicationId: string | undefined;
  maxRetries: number;
  state: "pending" | "delivering" | "delivered" | "failed" | "cancelled";
};

export type QStashDelivery = { messageId: string; url: string; status: number; retried: number; at: number };

export type SignOptions = { key?: string; issuer?: string; issuedAt?: number; lifetimeSeconds?: number };

export type QStashStandIn = {
  url: string;
  token: string;
  currentSigningKey: string;
  nextSigningKey: string;
  /** Every message accepted, in publish order (a deduplicated publish adds none). */
  messages: QStashMessage[];
  /** Every delivery attempt with the destination's status (0: it could not be reached). */
  deliveries: QStashDelivery[];
  /** An `Upstash-Signature` for `url` and `body`, as QStash makes it; options forge bad ones for tests. */
  sign(url: string, body: string, options?: SignOptions): string;
  /** The next key becomes the current one and a new next key is drawn, as a rotation in the console does. */
  rotateSigningKeys(): void;
  /** Resolves once `messageId` has had a delivery attempt answered with a 2xx, or rejects after `timeoutMs`. */
  waitForDelivery(messageId: string, timeoutMs?: number): Promise<QStashDelivery>;
  close(): Promise<void>;
};

const SIGNATURE_LIFETIME_SECONDS = 300;

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString("base64url");
}

/** base64url of the body's SHA-256 with its `=` padding, as QStash writes the `body` claim. */
function bodyHash(body: string): string {
  return createHash("sha256").update(body).digest("base64").replaceAll("+", "-").replaceAll("/", "_");
}

function signingKey(): string {
  return `sig_${randomBytes(21).toString("base64url")}`;
}

/** `Upstash-Delay`: a number and a unit (ms, s, m, h, d); `Upstash-Not-Before`: unix seconds. */
function notBeforeOf(request: IncomingMessage, now: number): number {
  const delay = request.headers["upstash-delay"];
  if (typeof delay === "string" && delay !== "") {
    const match = /^(\d+)(ms|s|m|h|d)$/.exec(delay.trim());
    if (!match) throw new Error(`invalid Upstash-Delay: ${delay}`);
    const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as "ms"];
    return now + Number(match[1]) * unit;
  }
  const notBefore = request.headers["upstash-not-before"];
  if (typeof notBefore === "string" && notBefore !== "") return Number(notBefore) * 1000;
  return now;
}

export async function startQStashStandIn(
  options: { token?: string; retryDelayMs?: number; defaultRetries?: number } = {},
): Promise<QStashStandIn> {
  const token = options.token ?? `qstash-stand-in-${crypto.randomUUID()}`;
  const retryDelayMs = options.retryDelayMs ?? 500;
  const keys = { current: signingKey(), next: signingKey() };
  const messages: QStashMessage[] = [];
  const deliveries: QStashDelivery[] = [];
  const byId = new Map<string, QStashMessage>();
  const byDeduplicationId = new Map<string, QStashMessage>();
  const timers = new Map<string, ReturnType<typeof setTimeout>>();
  const waiters: (() => void)[] = [];

  function sign(url: string, body: string, sign: SignOptions = {}): string {
    const now = sign.issuedAt ?? Math.floor(Date.now() / 1000);
    const header = base64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
    const payload = base64url(
      JSON.stringify({
        iss: sign.issuer ?? "Upstash",
        sub: url,
        exp: now + (sign.lifetimeSeconds ?? SIGNATURE_LIFETIME_SECONDS),
        nbf: now,
        iat: now,
        jti: `jwt_${randomBytes(16).toString("hex")}`,
        body: bodyHash(body),
      }),
    );
    const signature = createHmac("sha256", sign.key ?? keys.current)
      .update(`${header}.${payload}`)
      .digest("base64url");
    return `${header}.${payload}.${signature}`;
  }

  function schedule(message: QStashMessage, at: number): void {
    const timer = setTimeout(() => void deliver(message), Math.max(0, at - Date.now()));
    timers.set(message.messageId, timer);
  }

  async function deliver(message: QStashMessage, retried = 0): Promise<void> {
    timers.delete(message.messageId);
    if (message.state !== "pending") return;
    message.state = "delivering";
    let status = 0;
    try {
      const response = await fetch(message.url, {
        method: message.method,
        headers: {
          ...message.headers,
          "User-Agent": "Upstash-QStash",
          "Upstash-Message-Id": message.messageId,
          "Upstash-Retried": String(retried),
          "Upstash-Signature": sign(message.url, message.body),
        },
        body: message.method === "GET" || message.method === "HEAD" ? undefined : message.body,
      });
      status = response.status;
      await response.arrayBuffer();
    } catch {
      status = 0;
    }
    deliveries.push({ messageId: message.messageId, url: message.url, status, retried, at: Date.now() });
    if (status >= 200 && status < 300) message.state = "delivered";
    else if (retried >= message.maxRetries) message.state = "failed";
    else {
      message.state = "pending";
      timers.set(
        message.messageId,
        setTimeout(() => void deliver(message, retried + 1), retryDelayMs),
      );
    }
    for (const wake of waiters.splice(0)) wake();
  }

  function publish(request: IncomingMessage, body: string, destination: string) {
    const existing = request.headers["upstash-deduplication-id"];
    const deduplicationId = typeof existing === "string" && existing !== "" ? existing : undefined;
    const known = deduplicationId ? byDeduplicationId.get(deduplicationId) : undefined;
    if (known) return { messageId: known.messageId, url: known.url, deduplicated: true };
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(request.headers)) {
      if (typeof value !== "string") continue;
      if (name.startsWith("upstash-forward-")) headers[name.slice("upstash-forward-".length)] = value;
    }
    const contentType = request.headers["content-type"];
    if (contentType) headers["content-type"] = contentType;
    const retries = request.headers["upstash-retries"];
    const message: QStashMessage = {
      messageId: `msg_${randomBytes(18).toString("base64url")}`,
      url: destination,
      method: String(request.headers["upstash-method"] ?? "POST").toUpperCase(),
      body,
      headers,
      notBefore: notBeforeOf(request, Date.now()),
      deduplicationId,
      maxRetries: typeof retries === "string" ? Number(retries) : (options.defaultRetries ?? 3),
      state: "pending",
    };
    messages.push(message);
    byId.set(message.messageId, message);
    if (deduplicationId) byDeduplicationId.set(deduplicationId, message);
    schedule(message, message.notBefore);
    return { messageId: message.messageId, url: message.url, deduplicated: false };
  }

  function cancel(messageId: string): boolean {
    const message = byId.get(messageId);
    if (message?.state !== "pending") return false;
    message.state = "cancelled";
    clearTimeout(timers.get(messageId));
    timers.delete(messageId);
    return true;
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const reply = (status: number, payload: unknown) => {
      response.writeHead(status, { "content-type": "application/json" });
      response.end(JSON.stringify(payload));
    };
    if (request.headers.authorization !== `Bearer ${token}`) return reply(401, { error: "Unauthorized" });
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    const path = request.url ?? "/";
    if (request.method === "POST" && path.startsWith("/v2/publish/")) {
      const destination = path.slice("/v2/publish/".length);
      if (!/^https?:\/\//.test(destination))
        return reply(400, { error: `invalid destination: ${destination}` });
      try {
        return reply(201, publish(request, body, destination));
      } catch (error) {
        return reply(400, { error: error instanceof Error ? error.message : String(error) });
      }
    }
    const single = /^\/v2\/messages\/([^/?]+)$/.exec(path);
    if (single && request.method === "DELETE") {
      const messageId = decodeURIComponent(single[1] as string);
      return cancel(messageId) ? reply(200, { cancelled: 1 }) : reply(404, { error: "message not found" });
    }
    if (single && request.method === "GET") {
      const message = byId.get(decodeURIComponent(single[1] as string));
      if (message?.state !== "pending") return reply(404, { error: "message not found" });
      const { messageId, url, method, body: messageBody, notBefore, maxRetries } = message;
      return reply(200, { messageId, url, method, body: messageBody, notBefore, maxRetries });
    }
    return reply(404, { error: `no route for ${request.method} ${path}` });
  }

  const server = createServer((request, response) => {
    handle(request, response).catch((error) => {
      response.writeHead(500, { "content-type": "application/json" });
      response.end(JSON.stringify({ error: String(error) }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    token,
    get currentSigningKey() {
      return keys.current;
    },
    get nextSigningKey() {
      return keys.next;
    },
    messages,
    deliveries,
    sign,
    rotateSigningKeys() {
      keys.current = keys.next;
      keys.next = signingKey();
    },
    async waitForDelivery(messageId, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const done = deliveries.find((d) => d.messageId === messageId && d.status >= 200 && d.status < 300);
        if (done) return done;
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`message ${messageId} was not delivered within ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(left, 250));
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    },
    close: async () => {
      for (const timer of timers.values()) clearTimeout(timer);
      timers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
