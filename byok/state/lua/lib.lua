-- lib: helpers that byok/state/redis.py puts in front of acquire.lua, reserve.lua and settle.lua.

local INF = math.huge
local function int(x) return string.format('%d', x) end

-- One sliding 60 s window of 1 s buckets (hash fields r<bucket> = requests, t<bucket> = tokens):
-- drop the buckets that left it, then call refuse(reason, at) for each of rpm / tpm that one more
-- request of `tokens` would exceed (at = when enough leaves the window; INF = never).
-- Mirrors byok/state/windows.py and MemoryStateBackend.
local function check_window(key, now, tokens, rpm, tpm, bucket_s, nb, refuse)
  local oldest = math.floor(now / bucket_s) - nb + 1
  local flat = redis.call('HGETALL', key)
  local rs, ts, order, seen, stale = {}, {}, {}, {}, {}
  local R, T = 0, 0
  for i = 1, #flat, 2 do
    local f = flat[i]
    local b = tonumber(string.sub(f, 2))
    local v = tonumber(flat[i + 1])
    if b < oldest then
      stale[#stale + 1] = f
    else
      if not seen[b] then seen[b] = true; order[#order + 1] = b end
      if string.sub(f, 1, 1) == 'r' then rs[b] = v; R = R + v else ts[b] = v; T = T + v end
    end
  end
  if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
  table.sort(order)
  local function retry(counts, need)
    local freed, last = 0, 0
    for _, b in ipairs(order) do
      freed = freed + (counts[b] or 0)
      last = (b + nb) * bucket_s
      if freed >= need then return last end
    end
    return last
  end
  if rpm ~= nil and R + 1 > rpm then
    if 1 > rpm then refuse('rpm', INF) else refuse('rpm', retry(rs, R + 1 - rpm)) end
  end
  if tpm ~= nil and T + tokens > tpm then
    if tokens > tpm then refuse('tpm', INF) else refuse('tpm', retry(ts, T + tokens - tpm)) end
  end
end

-- Give back what reservation `rid` holds in budget hash `bk` (field l:<rid> = "tokens nanos") and forget it.
local function return_lease(bk, rid)
  local v = redis.call('HGET', bk, 'l:' .. rid)
  if not v then return false end
  local t, n = string.match(v, '^(%-?%d+) (%-?%d+)$')
  redis.call('HINCRBY', bk, 'rtok', int(-tonumber(t)))
  redis.call('HINCRBY', bk, 'rnano', int(-tonumber(n)))
  redis.call('HDEL', bk, 'l:' .. rid)
  return true
end

