-- record_tokens: correct a key's tpm window and quota from the estimate to the real count.
-- Mirrors MemoryStateBackend.record_tokens.
--
-- KEYS[1] window hash, KEYS[2] quota hash (see acquire.lua)
-- ARGV: at (the acquire's time), delta, now, bucket_s, nbuckets

local at = tonumber(ARGV[1])
local delta = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local bucket_s = tonumber(ARGV[4])
local nb = tonumber(ARGV[5])

-- Only the bucket the request was counted in, and only while it is still in the window.
local b = math.floor(at / bucket_s)
if b >= math.floor(now / bucket_s) - nb + 1 then
  local sb = string.format('%d', b)
  if redis.call('HEXISTS', KEYS[1], 'r' .. sb) == 1 then
    redis.call('HINCRBY', KEYS[1], 't' .. sb, delta)
  end
end

-- Only the quota window the request was counted in.
local qv = redis.call('HMGET', KEYS[2], 'idx', 'win')
local idx, win = tonumber(qv[1]), tonumber(qv[2])
if idx ~= nil and win ~= nil and math.floor(at / win) == idx then
  redis.call('HINCRBY', KEYS[2], 'used', delta)
end
return 1
