/**
 * The Lua scripts every Redis adapter runs, so Upstash and TCP Redis behave identically. Both act
 * on all keys of one claim in one round trip; the keys share a hash tag, so they also run on
 * Redis Cluster.
 */

export type LockScript = { name: string; source: string; sha1: string };

/**
 * KEYS: the claim's seat keys. ARGV[1]: owner token, ARGV[2]: TTL in ms.
 * Answers the 1-based positions of keys another owner holds; sets nothing unless that list is
 * empty. A key the same owner already holds counts as free, so a request re-sent after a lost
 * reply finds its own lock instead of a conflict.
 */
const ACQUIRE = `
local taken = {}
for i, key in ipairs(KEYS) do
  local holder = redis.call('GET', key)
  if holder and holder ~= ARGV[1] then taken[#taken + 1] = i end
end
if #taken > 0 then return taken end
for _, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
end
return taken
`;

/** KEYS: seat keys. ARGV[1]: owner token. Deletes only keys this owner holds; answers how many. */
const RELEASE = `
local released = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('DEL', key)
    released = released + 1
  end
end
return released
`;

/**
 * KEYS: seat keys. ARGV[1]: owner token, ARGV[2]: TTL in ms. Gives the keys this owner holds a new
 * TTL (a hold extended); a key someone else took since is left alone. Answers how many.
 */
const EXTEND = `
local extended = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
    extended = extended + 1
  end
end
return extended
`;

async function sha1Hex(source: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(source));
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

type Scripts = { acquire: LockScript; release: LockScript; extend: LockScript };

let loaded: Promise<Scripts> | undefined;

/** The scripts with their SHA-1, computed once (crypto.subtle is asynchronous everywhere). */
export function lockScripts(): Promise<Scripts> {
  loaded ??= Promise.all([sha1Hex(ACQUIRE), sha1Hex(RELEASE), sha1Hex(EXTEND)]).then(
    ([acquire, release, extend]) => ({
      acquire: { name: "acquire", source: ACQUIRE, sha1: acquire },
      release: { name: "release", source: RELEASE, sha1: release },
      extend: { name: "extend", source: EXTEND, sha1: extend },
    }),
  );
  return loaded;
}
