"""The Lua scripts of the live courier index, run only by `geo.live.CourierIndex`.

They are the only code that touches the index's keys inside Redis, and geo owns them: no other
package runs a script over these keys (docs/EVENTS.md). The keys come in as KEYS (their region's
hash tag puts them on one Redis Cluster shard); cell keys are built from the region's cell prefix.
"""

# KEYS: the GEO set, the state hash, the seen set, cellof, the per-cell counts (LiveKeys.script_keys).
FLUSH = """
local geo, state, seen, cellof, counts = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local cellp = ARGV[1]
-- ARGV[2]: one msgpack array, 7 values per courier (see CourierIndex.flush_args)
local rows = cmsgpack.unpack(ARGV[2])
local g, z, h, gone = {}, {}, {}, {}
local function leave(cid, prev)
  if redis.call('SREM', cellp .. prev, cid) == 1 then
    if redis.call('HINCRBY', counts, prev, -1) <= 0 then redis.call('HDEL', counts, prev) end
  end
end
for i = 1, #rows, 7 do
  local cid, avail, cell = rows[i], rows[i + 1], rows[i + 2]
  local prev = redis.call('HGET', cellof, cid)
  if avail then
    if cell ~= '' then
      if prev ~= cell then
        if prev then leave(cid, prev) end
        if redis.call('SADD', cellp .. cell, cid) == 1 then redis.call('HINCRBY', counts, cell, 1) end
        redis.call('HSET', cellof, cid, cell)
      end
      g[#g + 1] = rows[i + 3]; g[#g + 1] = rows[i + 4]; g[#g + 1] = cid
    end
  else
    if prev then
      leave(cid, prev)
      redis.call('HDEL', cellof, cid)
    end
    gone[#gone + 1] = cid
  end
  z[#z + 1] = rows[i + 5]; z[#z + 1] = cid
  h[#h + 1] = cid; h[#h + 1] = rows[i + 6]
end
local function bulk(cmd, key, list)
  for s = 1, #list, 6000 do
    redis.call(cmd, key, unpack(list, s, math.min(s + 5999, #list)))
  end
end
bulk('GEOADD', geo, g)
bulk('ZREM', geo, gone)
bulk('ZADD', seen, z)
bulk('HSET', state, h)
return #z / 2
"""

# KEYS: as FLUSH. ARGV: the cell key prefix, the cutoff (unix s), the most couriers to remove.
# Returns the couriers whose status it changed to `stale`.
# Lua shared by SWEEP and FORGET (after their `local geo, state, seen, cellof, counts` and `cellp`): take a
# courier out of the position set, last-seen set, its cell and the cell's count.
_LEAVE_INDEX = """
local function leave_index(cid)
  local prev = redis.call('HGET', cellof, cid)
  if prev then
    if redis.call('SREM', cellp .. prev, cid) == 1 then
      if redis.call('HINCRBY', counts, prev, -1) <= 0 then redis.call('HDEL', counts, prev) end
    end
    redis.call('HDEL', cellof, cid)
  end
  redis.call('ZREM', geo, cid)
  redis.call('ZREM', seen, cid)
end
"""

SWEEP = """
local geo, state, seen, cellof, counts = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local cellp, cutoff, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
""" + _LEAVE_INDEX + """
local ids = redis.call('ZRANGEBYSCORE', seen, '-inf', cutoff, 'LIMIT', 0, limit)
local staled = {}
for _, cid in ipairs(ids) do
  leave_index(cid)
  local raw = redis.call('HGET', state, cid)
  if raw then
    local ok, st = pcall(cjson.decode, raw)
    if ok and type(st) == 'table' and st.status ~= 'offline' and st.status ~= 'stale' then
      st.status = 'stale'
      redis.call('HSET', state, cid, cjson.encode(st))
      staled[#staled + 1] = cid
    end
  end
end
return staled
"""


# KEYS: as FLUSH. ARGV: the cell key prefix, the courier. Removes every trace of the courier from the index
# (position, state, last seen, cell membership and count): a courier's erasure (docs/PRIVACY.md).
FORGET = """
local geo, state, seen, cellof, counts = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local cellp, cid = ARGV[1], ARGV[2]
""" + _LEAVE_INDEX + """
leave_index(cid)
return redis.call('HDEL', state, cid)
"""
# KEYS: the GEO set, the state hash. ARGV: k, radius m, then lng, lat per point. Replies one string
# per point (the ids found, nearest first, joined by spaces), then the distinct ids of all points
# (joined by spaces) and their states (JSON, one line each, empty if none) read with one HMGET. A
# courier found by ten points is read and sent once, and the client parses a few bulk strings
# instead of a nested reply (redis-py's pure-Python parser costs more than the searches); the
# positions come from the states, so no coordinates are formatted here.
NEAREST = """
local k, radius = ARGV[1], ARGV[2]
local out, seen, ids = {}, {}, {}
for i = 3, #ARGV, 2 do
  local rows = redis.call('GEOSEARCH', KEYS[1], 'FROMLONLAT', ARGV[i], ARGV[i + 1], 'BYRADIUS', radius, 'm',
                          'ASC', 'COUNT', k)
  for _, cid in ipairs(rows) do
    if not seen[cid] then
      seen[cid] = true
      ids[#ids + 1] = cid
    end
  end
  out[#out + 1] = table.concat(rows, ' ')
end
local states = {}
for s = 1, #ids, 5000 do
  local part = redis.call('HMGET', KEYS[2], unpack(ids, s, math.min(s + 4999, #ids)))
  for j = 1, #part do states[#states + 1] = part[j] or '' end
end
out[#out + 1] = table.concat(ids, ' ')
out[#out + 1] = table.concat(states, '\\n')
return out
"""
