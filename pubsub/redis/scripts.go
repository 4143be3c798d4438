package redisbroker

import "github.com/redis/rueidis"

// Lua scripts. Those whose repetition is harmless (history, track,
// untrack, due) are retried by rueidis after a connection error; publish
// and sweep are not, since a repetition could deliver a message twice or
// lose an expiry report.
//
// Each script runs atomically in Redis, so that storing a message and
// publishing it happen in Seq order, and so that exactly one node removes
// (and reports) an expired presence entry. Times are Redis server times
// (TIME), so the nodes' clocks do not matter. Every script touches the
// keys of one hash slot only (one topic's keys, or the shared presence
// keys), so that it runs on a Redis Cluster too.
//
// History keys of a topic: a hash (field e: epoch, s: Seq of the newest
// message, r: replication ID of the server that wrote it) and a stream
// whose entry IDs are "0-<seq>", with fields m (the envelope without
// position) and d (expiry deadline in unix ms, 0: never). Both keys
// expire HistoryTTL after the last publish. The replication ID changes
// when a replica is promoted or a server restarts without a clean
// shutdown: writes acknowledged before may be missing (replication and
// fsync are asynchronous), so the scripts then choose a new epoch, and a
// position handed out before cannot silently name another message. The
// replication ID is only read (ARGV[7] is "1") with Sentinel or a Cluster,
// where a promoted replica is the common way to lose writes; a single
// server keeps its epochs across restarts, so that a server with
// `appendfsync always` (which loses nothing acknowledged) does not send
// every client back to refetch after each restart. A single server that
// loses acknowledged writes in a crash (the default `appendfsync
// everysec`) hands out their Seqs again: a client that saw one of them
// may skip the new message of the same Seq (README: per-fault table).
//
// Presence keys of a topic: a hash id -> encoded entry and a sorted set
// id -> expiry deadline (unix ms). One sorted set for all topics,
// topic -> a lower bound of its earliest deadline, tells sweepers which
// topics to look at; it lives on another slot, so it is kept by separate
// calls in an order that never leaves an entry unindexed: a tracker
// lowers the topic's score before writing its entries, and sets it again
// after creating the topic's set; a sweeper that emptied a topic removes
// it from the index only if its score did not change meanwhile.

// nowMs is the prelude computing the server time in unix milliseconds.
const nowMs = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// currentEpoch is the prelude reading a topic's epoch from KEYS[1]:
// epochOf(new epoch) returns the stored epoch, creating the history (an
// empty stream, KEYS[2]) with the new one if there is none, or switching
// to the new one if the replication ID changed since the last write.
const currentEpoch = `
local function epochOf(fresh)
  local rid = ''
  if ARGV[7] == '1' then
    rid = string.match(redis.call('INFO', 'replication'), 'master_replid:(%w+)') or ''
  end
  local meta = redis.call('HMGET', KEYS[1], 'e', 'r')
  if not meta[1] then
    redis.call('DEL', KEYS[2])
    redis.call('HSET', KEYS[1], 'e', fresh, 's', 0, 'r', rid)
    return fresh, true
  end
  if meta[2] ~= rid then
    redis.call('HSET', KEYS[1], 'e', fresh, 'r', rid)
    return fresh, false
  end
  return meta[1], false
end
`

// publishScript stores and publishes a message.
// KEYS: meta, stream. ARGV: channel, envelope, history size, ttl ms, epoch
// for a new stream, publish command (PUBLISH, or SPUBLISH on a cluster),
// "1" to check the replication ID.
// Returns the position, or false without history.
var publishScript = rueidis.NewLuaScript(currentEpoch + `
local size = tonumber(ARGV[3])
if size <= 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call(ARGV[6], ARGV[1], ARGV[2])
  return false
end
local ttl = tonumber(ARGV[4])
local epoch = epochOf(ARGV[5])
local seq = string.format('%d', redis.call('HINCRBY', KEYS[1], 's', 1))
local deadline = 0
if ttl > 0 then
` + nowMs + `
  deadline = now + ttl
  redis.call('PEXPIRE', KEYS[1], ttl)
else
  redis.call('PERSIST', KEYS[1])
end
redis.call('XADD', KEYS[2], 'MAXLEN', size, '0-' .. seq, 'm', ARGV[2], 'd', string.format('%d', deadline))
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[2], ttl)
else
  redis.call('PERSIST', KEYS[2])
end
local pos = epoch .. ':' .. seq
redis.call(ARGV[6], ARGV[1], ARGV[2] .. pos)
return pos
`)

// historyScript reads a stream, creating it if needed.
// KEYS: meta, stream. ARGV: epoch for a new stream, ttl ms, "1" if since
// is given else "0", since epoch, since seq, limit, "1" to check the
// replication ID. Returns
// {epoch, top, recovered 0/1, id1, envelope1, id2, envelope2, ...}.
var historyScript = rueidis.NewLuaScriptRetryable(currentEpoch + `
local ttl = tonumber(ARGV[2])
local epoch, created = epochOf(ARGV[1])
if created then
  if ttl > 0 then
    redis.call('PEXPIRE', KEYS[1], ttl)
  end
elseif ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl, 'GT')
  redis.call('PEXPIRE', KEYS[2], ttl, 'GT')
end
local top = tonumber(redis.call('HGET', KEYS[1], 's'))
` + nowMs + `
while true do
  local batch = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 32)
  if #batch == 0 then
    break
  end
  local keep = nil
  for i, item in ipairs(batch) do
    local d = tonumber(item[2][4])
    if d == 0 or now < d then
      keep = i
      break
    end
  end
  if keep then
    if keep > 1 then
      redis.call('XTRIM', KEYS[2], 'MINID', batch[keep][1])
    end
    break
  end
  for _, item in ipairs(batch) do
    redis.call('XDEL', KEYS[2], item[1])
  end
end
local n = redis.call('XLEN', KEYS[2])
local first = top - n + 1
local limit = tonumber(ARGV[6])
local function limited(avail)
  if limit < 0 then
    return 0
  end
  if limit > 0 and limit < avail then
    return limit
  end
  return avail
end
local out = {epoch, top, 0}
local entries = {}
if ARGV[3] == '0' then
  out[3] = 1
  local count = limited(n)
  if count > 0 then
    local rev = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', count)
    for i = #rev, 1, -1 do
      entries[#entries + 1] = rev[i]
    end
  end
else
  local since = tonumber(ARGV[5])
  if ARGV[4] ~= epoch or since > top then
    return out
  end
  if since == top then
    out[3] = 1
    return out
  end
  if since + 1 < first then
    return out
  end
  out[3] = 1
  local count = limited(top - since)
  if count > 0 then
    entries = redis.call('XRANGE', KEYS[2], '0-' .. string.format('%d', since + 1), '+', 'COUNT', count)
  end
end
for _, item in ipairs(entries) do
  out[#out + 1] = item[1]
  out[#out + 1] = item[2][2]
end
return out
`)

// indexScript lowers the index score of topics to a deadline ARGV[1] ms
// ahead, before their entries are written. KEYS: topic index. ARGV: ttl
// ms, then topics.
var indexScript = rueidis.NewLuaScriptRetryable(nowMs + `
local deadline = now + tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'LT', deadline, ARGV[i])
end
return deadline
`)

// trackScript stores presence entries and (re)sets their deadline.
// KEYS: entries hash, deadlines zset. ARGV: ttl ms, key ttl ms, then id,
// encoded entry pairs. Returns {deadline, 1 if it created the deadlines
// zset else 0}: the tracker then sets the topic's index score.
var trackScript = rueidis.NewLuaScriptRetryable(nowMs + `
local deadline = now + tonumber(ARGV[1])
local created = redis.call('EXISTS', KEYS[2]) == 0 and 1 or 0
for i = 3, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[2], deadline, ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return {deadline, created}
`)

// untrackScript removes a presence entry. KEYS: entries hash, deadlines
// zset. ARGV: id.
var untrackScript = rueidis.NewLuaScriptRetryable(`
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
`)

// sweepPaused is the prelude of the due script. Every sweep of every node
// stamps the server time in a clock key; when the clock shows a gap
// longer than ARGV gap ms (or is missing: first sweep, or data lost),
// Redis was paused or unreachable for all nodes, so the deadlines of live
// nodes' entries may have lapsed without their fault: sweeping then waits
// for ARGV grace ms (a key with that expiry), long enough for every live
// node to refresh. paused(clock, grace, gap, grace ms) reports whether
// sweeping must wait.
const sweepPaused = nowMs + `
local function paused(clock, grace, gap, gracems)
  local prev = tonumber(redis.call('GET', clock) or '0')
  redis.call('SET', clock, now, 'PX', 86400000)
  if now - prev > tonumber(gap) then
    redis.call('SET', grace, now, 'PX', gracems)
    return true
  end
  return redis.call('EXISTS', grace) == 1
end
`

// dueScript returns up to ARGV[1] topics of the index whose earliest
// deadline may have passed, with their scores, or none while sweeping
// waits. KEYS: topic index, sweep clock, sweep grace. ARGV: limit, gap
// ms, grace ms.
var dueScript = rueidis.NewLuaScriptRetryable(sweepPaused + `
if paused(KEYS[2], KEYS[3], ARGV[2], ARGV[3]) then
  return {}
end
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[1]))
`)

// sweepScript removes up to ARGV[1] expired entries of a topic and
// returns {earliest remaining deadline or -1, id, encoded entry, ...};
// it deletes the topic's keys when no entry remains. KEYS: entries hash,
// deadlines zset. ARGV: limit.
var sweepScript = rueidis.NewLuaScript(nowMs + `
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local out = {-1}
for _, id in ipairs(ids) do
  local v = redis.call('HGET', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[1], id)
  if v then
    out[#out + 1] = id
    out[#out + 1] = v
  end
end
local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if #first == 0 then
  redis.call('DEL', KEYS[1])
else
  out[1] = tonumber(first[2])
end
return out
`)

// reindexScript updates a swept topic's index score, unless a tracker
// changed it since the sweeper read it. KEYS: topic index. ARGV: topic,
// score read, new score or -1 to remove the topic.
var reindexScript = rueidis.NewLuaScriptRetryable(`
local cur = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not cur or tonumber(cur) ~= tonumber(ARGV[2]) then
  return 0
end
if tonumber(ARGV[3]) < 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
end
return 1
`)
