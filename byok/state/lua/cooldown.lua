-- cooldown: extend a scope's cooldown to ARGV[1], never shorten it; return the effective until.
-- Mirrors MemoryStateBackend.cooldown.
--
-- KEYS[1] cooldown string; ARGV: until, now, margin_ms

local current = redis.call('GET', KEYS[1])
local until_ = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
if current and tonumber(current) >= until_ then return current end
if until_ > now then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', math.ceil((until_ - now) * 1000) + tonumber(ARGV[3]))
end
return ARGV[1]
