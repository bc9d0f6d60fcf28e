-- acquire: check every limit of one key and, if all fit, count one request (atomic).
-- Mirrors MemoryStateBackend.acquire and byok/state/windows.py; keep them in step. Needs lib.lua.
--
-- KEYS[1] window hash   fields r<bucket> = requests, t<bucket> = tokens (1 s buckets)
-- KEYS[2] quota hash    fields idx, win, used (aligned quota window)
-- KEYS[3] steer hash    fields rr, rt, reset (provider remaining-* headers)
-- KEYS[4] disabled mark (exists = the key was revoked: refused, never retried)
-- KEYS[5..] cooldown strings (until, as a float string)
-- ARGV: now, tokens, rpm|'', tpm|'', quota|'', quota_window_s|'', bucket_s, nbuckets, margin_ms
-- Returns {ok (1|0), reason|'', retry_at|'' ('' = never), now}.

local now = tonumber(ARGV[1])
local tokens = tonumber(ARGV[2])
local rpm = tonumber(ARGV[3])
local tpm = tonumber(ARGV[4])
local quota = tonumber(ARGV[5])
local qwin = tonumber(ARGV[6])
local bucket_s = tonumber(ARGV[7])
local nb = tonumber(ARGV[8])
local margin_ms = tonumber(ARGV[9])

-- The refusal that keeps the request out longest wins; ties keep the first (priority order).
local reason, retry_at = nil, nil
local function refuse(r, at)
  if reason == nil or at > retry_at then reason, retry_at = r, at end
end

-- a revoked key, whatever any process's cached configuration says
if redis.call('EXISTS', KEYS[4]) == 1 then
  return {0, 'disabled', '', ARGV[1]}
end

-- cooldowns
for i = 5, #KEYS do
  local v = tonumber(redis.call('GET', KEYS[i]))
  if v and v > now then refuse('cooldown', v) end
end

-- steering on the provider's remaining-* headers
local sv = redis.call('HMGET', KEYS[3], 'rr', 'rt', 'reset')
local s_rr, s_rt, s_reset = tonumber(sv[1]), tonumber(sv[2]), tonumber(sv[3])
local steering = s_reset ~= nil and s_reset > now
if steering and ((s_rr and s_rr <= 0) or (s_rt and s_rt < tokens)) then
  refuse('steer', s_reset)
end

-- sliding 60 s window of 1 s buckets
local use_window = rpm ~= nil or tpm ~= nil
local cur = math.floor(now / bucket_s)
if use_window then check_window(KEYS[1], now, tokens, rpm, tpm, bucket_s, nb, refuse) end

-- aligned quota window
local q_idx, q_end, q_used = 0, 0, 0
if quota ~= nil then
  q_idx = math.floor(now / qwin)
  q_end = (q_idx + 1) * qwin
  local qv = redis.call('HMGET', KEYS[2], 'idx', 'win', 'used')
  if tonumber(qv[1]) == q_idx and tonumber(qv[2]) == qwin then q_used = tonumber(qv[3]) or 0 end
  if q_used + tokens > quota then
    if tokens > quota then refuse('quota', INF) else refuse('quota', q_end) end
  end
end

if reason ~= nil then
  local at = ''
  if retry_at ~= INF then at = string.format('%.17g', retry_at) end
  return {0, reason, at, ARGV[1]}
end

-- everything fits: count it
if use_window then
  redis.call('HINCRBY', KEYS[1], 'r' .. string.format('%d', cur), 1)
  if tokens ~= 0 then redis.call('HINCRBY', KEYS[1], 't' .. string.format('%d', cur), tokens) end
  redis.call('PEXPIRE', KEYS[1], math.ceil(nb * bucket_s * 1000) + margin_ms)
end
if quota ~= nil then
  redis.call('HSET', KEYS[2], 'idx', string.format('%d', q_idx), 'win', ARGV[6],
    'used', string.format('%d', q_used + tokens))
  redis.call('PEXPIRE', KEYS[2], math.ceil((q_end - now) * 1000) + margin_ms)
end
if steering then
  if s_rr then redis.call('HINCRBY', KEYS[3], 'rr', -1) end
  if s_rt and tokens ~= 0 then redis.call('HINCRBY', KEYS[3], 'rt', -tokens) end
end
return {1, '', '', ARGV[1]}
