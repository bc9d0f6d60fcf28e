-- reserve: take a rate slot in every rate scope and reserve every budget hold, all or nothing (atomic).
-- Mirrors MemoryStateBackend.reserve and byok/state/quota.py; the windows are acquire.lua's. Needs lib.lua.
--
-- KEYS[1..nr]  window hashes of the rate scopes (fields r<bucket>, t<bucket>)
-- then per hold: its budget hash (tok, nano spent; rtok, rnano reserved; l:<id> = "tok nano" per lease)
--                and its lease zset (member = reservation id, score = lease end)
-- ARGV: now, tokens, bucket_s, nbuckets, margin_ms, nr, lease_id, lease_until,
--       per rate: rpm|'', tpm|''; per hold: token_limit|'', nano_limit|'', tokens, nanos, reset_at, ttl_ms
-- Returns {ok, reason|'', which (index of the refusing rate, or nr + index of the hold), retry_at|'',
--          used_tok, used_nano, held_tok, held_nano} (figures of a refusing budget).

local now = tonumber(ARGV[1])
local tokens = tonumber(ARGV[2])
local bucket_s = tonumber(ARGV[3])
local nb = tonumber(ARGV[4])
local margin_ms = tonumber(ARGV[5])
local nr = tonumber(ARGV[6])
local lease_id = ARGV[7]
local lease_until = ARGV[8]
local nh = (#KEYS - nr) / 2

local best = nil  -- {at, reason, which, figures...}
local function refuse(at, reason, which, f)
  if best == nil or at > best[1] then best = {at, reason, which, f} end
end

-- rate scopes: the sliding 60 s window of 1 s buckets
local cur = math.floor(now / bucket_s)
for i = 1, nr do
  local rpm, tpm = tonumber(ARGV[8 + 2 * i - 1]), tonumber(ARGV[8 + 2 * i])
  check_window(KEYS[i], now, tokens, rpm, tpm, bucket_s, nb, function(reason, at) refuse(at, reason, i) end)
end

-- budgets: spent + reserved + this request's worst case against each limit
local base = 8 + 2 * nr
for i = 1, nh do
  local bk, lz = KEYS[nr + 2 * i - 1], KEYS[nr + 2 * i]
  local a = base + 6 * (i - 1)
  local tlim, nlim = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local need_t, need_n, reset_at = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
  -- leases that ended (a process gone mid-request) stop holding
  local expired = redis.call('ZRANGEBYSCORE', lz, '-inf', ARGV[1])
  for _, rid in ipairs(expired) do return_lease(bk, rid) end
  if #expired > 0 then redis.call('ZREMRANGEBYSCORE', lz, '-inf', ARGV[1]) end
  local f = redis.call('HMGET', bk, 'tok', 'nano', 'rtok', 'rnano')
  local ut, un, ht, hn = tonumber(f[1]) or 0, tonumber(f[2]) or 0, tonumber(f[3]) or 0, tonumber(f[4]) or 0
  if tlim ~= nil and ut + ht + need_t > tlim then
    refuse(reset_at, 'tokens', nr + i, {ut, un, ht, hn})
  elseif nlim ~= nil and un + hn + need_n > nlim then
    refuse(reset_at, 'spend', nr + i, {ut, un, ht, hn})
  end
end

if best ~= nil then
  local at = ''
  if best[1] ~= INF then at = string.format('%.17g', best[1]) end
  local f = best[4] or {0, 0, 0, 0}
  return {0, best[2], best[3], at, int(f[1]), int(f[2]), int(f[3]), int(f[4])}
end

-- everything fits: count it
for i = 1, nr do
  redis.call('HINCRBY', KEYS[i], 'r' .. int(cur), 1)
  if tokens ~= 0 then redis.call('HINCRBY', KEYS[i], 't' .. int(cur), int(tokens)) end
  redis.call('PEXPIRE', KEYS[i], math.ceil(nb * bucket_s * 1000) + margin_ms)
end
for i = 1, nh do
  local bk, lz = KEYS[nr + 2 * i - 1], KEYS[nr + 2 * i]
  local a = base + 6 * (i - 1)
  redis.call('HINCRBY', bk, 'rtok', ARGV[a + 3])
  redis.call('HINCRBY', bk, 'rnano', ARGV[a + 4])
  redis.call('HSET', bk, 'l:' .. lease_id, ARGV[a + 3] .. ' ' .. ARGV[a + 4])
  redis.call('ZADD', lz, lease_until, lease_id)
  redis.call('PEXPIRE', bk, ARGV[a + 6])
  redis.call('PEXPIRE', lz, ARGV[a + 6])
end
return {1, '', 0, '', '0', '0', '0', '0'}
