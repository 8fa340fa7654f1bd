import { lockScripts } from "./scripts.ts";
import {
  DEFAULT_KEY_PREFIX,
  type LockAttempt,
  type SeatClaim,
  type SeatLock,
  type SeatRelease,
  seatLockKey,
} from "./seat-lock.ts";

/**
 * The one Redis seat lock, over whatever speaks to Redis: the Upstash REST client or a TCP
 * connection. Adapters only run scripts and answer pings; keys, tokens and replies are handled here.
 */
export type ScriptClient = {
  evalsha(sha1: string, keys: string[], args: string[]): Promise<unknown>;
  eval(source: string, keys: string[], args: string[]): Promise<unknown>;
  ping(): Promise<void>;
};

export type RedisSeatLock = SeatLock & {
  readonly backend: "upstash" | "redis";
  /** Rejects when Redis does not answer. */
  ping(): Promise<void>;
};

export class SeatLockReplyError extends Error {
  override name = "SeatLockReplyError";
}

export function createRedisSeatLock(
  client: ScriptClient,
  backend: "upstash" | "redis",
  keyPrefix = DEFAULT_KEY_PREFIX,
): RedisSeatLock {
  const keysOf = (seats: SeatRelease) =>
    seats.seatIds.map((id) => seatLockKey(keyPrefix, seats.sessionId, id));

  // EVALSHA first; a server that has not seen the script yet (NOSCRIPT) ran nothing, so EVAL is safe.
  async function run(
    name: "acquire" | "release" | "extend",
    keys: string[],
    args: string[],
  ): Promise<unknown> {
    const script = (await lockScripts())[name];
    try {
      return await client.evalsha(script.sha1, keys, args);
    } catch (error) {
      if (!(error instanceof Error && error.message.includes("NOSCRIPT"))) throw error;
      return client.eval(script.source, keys, args);
    }
  }

  async function release(seats: SeatRelease): Promise<void> {
    if (seats.seatIds.length === 0) return;
    await run("release", keysOf(seats), [seats.owner]);
  }

  return {
    backend,
    keyedBySession: true,
    ping: () => client.ping(),
    release,
    async extend(seats: SeatRelease, ttlMs: number) {
      if (seats.seatIds.length === 0) return;
      await run("extend", keysOf(seats), [seats.owner, String(Math.ceil(ttlMs))]);
    },
    async acquire(claim: SeatClaim): Promise<LockAttempt> {
      const reply = await run("acquire", keysOf(claim), [claim.owner, String(Math.ceil(claim.ttlMs))]);
      if (!Array.isArray(reply)) throw new SeatLockReplyError(`unexpected acquire reply: ${String(reply)}`);
      if (reply.length > 0) {
        const seatIds = reply.map((position) => claim.seatIds[Number(position) - 1]);
        if (seatIds.some((id) => id === undefined)) {
          throw new SeatLockReplyError(`unexpected acquire reply: ${JSON.stringify(reply)}`);
        }
        return { acquired: false, backend, seatIds: seatIds as string[] };
      }
      return {
        acquired: true,
        lease: {
          backend,
          transactionLocks: [],
          // Best effort: a lock we fail to delete ends with its TTL.
          release: () => release(claim).catch(() => undefined),
        },
      };
    },
  };
}
