-- settle: turn a reservation into the real usage (atomic). Mirrors MemoryStateBackend.settle. Needs lib.lua.
--
-- KEYS[1..nr]  window hashes of the rate scopes the reservation counted in (see reserve.lua)
-- then per hold: its budget hash and lease zset; then the budget hashes of `also` (no reservation)
-- ARGV: at (the reservation's time), delta (real - reserved tokens), now, bucket_s, nbuckets, nr, nh,
--       lease_id, tokens, nanos, then one ttl_ms per budget hash (holds, then also)

local at, delta, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local bucket_s, nb = tonumber(ARGV[4]), tonumber(ARGV[5])
local nr, nh = tonumber(ARGV[6]), tonumber(ARGV[7])
local lease_id, tokens, nanos = ARGV[8], ARGV[9], ARGV[10]

-- the rate windows: only the bucket the request was counted in, while it is still in the window
local b = math.floor(at / bucket_s)
if delta ~= 0 and b >= math.floor(now / bucket_s) - nb + 1 then
  for i = 1, nr do
    if redis.call('HEXISTS', KEYS[i], 'r' .. int(b)) == 1 then
      redis.call('HINCRBY', KEYS[i], 't' .. int(b), int(delta))
    end
  end
end

local function add(bk, ttl)
  if tokens ~= '0' then redis.call('HINCRBY', bk, 'tok', tokens) end
  if nanos ~= '0' then redis.call('HINCRBY', bk, 'nano', nanos) end
  redis.call('PEXPIRE', bk, ttl)
end

-- the holds: return the reservation (unless its lease ended and was swept), add the real usage
for i = 1, nh do
  local bk, lz = KEYS[nr + 2 * i - 1], KEYS[nr + 2 * i]
  if return_lease(bk, lease_id) then redis.call('ZREM', lz, lease_id) end
  add(bk, ARGV[10 + i])
end
for i = nr + 2 * nh + 1, #KEYS do
  add(KEYS[i], ARGV[10 + nh + (i - nr - 2 * nh)])
end
return 1
