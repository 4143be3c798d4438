// Package redisbroker implements pubsub.Broker, pubsub.PresenceManager and
// pubsub.PresenceExpirer on Redis (7.0 or later, or a compatible server),
// so that several nodes serving Phoenix channels share their topics:
// broadcasts, history and presence.
//
// # Client library
//
// It uses github.com/redis/rueidis rather than go-redis: rueidis pipelines
// the commands of concurrent callers on a few shared connections
// automatically (auto-pipelining), which is what a busy node's many
// concurrent Publish calls need, with far fewer allocations and system
// calls per command; it speaks RESP3; it handles pub/sub on dedicated
// connections with explicit hooks, which lets the broker control
// resubscription itself; and it is maintained by the Redis organization.
//
// # Broadcast
//
// A node subscribes to a topic's channel (KeyPrefix + topic; on a Redis
// Cluster the sharded channel KeyPrefix{topic}) only while it has local
// subscribers: Subscribe's count going from 0 to 1 sends
// SUBSCRIBE, Unsubscribe's going from 1 to 0 sends UNSUBSCRIBE, so a node
// receives only the topics it serves (no firehose). All subscriptions of
// a node share one dedicated connection, whose reading goroutine decodes
// each message and calls the Handler: messages reach the Handler one at a
// time, in the order Redis published them. The Handler must not block, or
// it stalls every topic's delivery.
//
// On a Redis Cluster broadcasts use sharded pub/sub (SPUBLISH,
// SSUBSCRIBE): a publish reaches only the shard owning the topic's slot,
// instead of every node of the cluster as PUBLISH does. Each subscribed
// topic has a loop that keeps its SSUBSCRIBE on that shard (rueidis keeps
// one pub/sub connection per node for all of them) and subscribes again
// when the shard's connection is lost, its master changes or the slot
// moves. Messages of different shards reach the Handler one at a time
// too, in publish order per topic. Per-socket topics (disconnect by id)
// and per-node topics (LongPoll relays) are topics like any other, routed
// to their own slot.
//
// A message is encoded once per Publish into a compact binary envelope
// (topic, event, payload, binary flag, exclude, node, position); the same
// bytes are stored in the history stream and published.
//
// # Keys
//
// Every key of a topic carries the hash tag {topic}, so a topic's keys
// share one hash slot and every script runs on one shard:
//
//	<prefix>{<topic>}:hm   history meta (hash: epoch, seq, replication ID)
//	<prefix>{<topic>}:hs   history stream
//	<prefix>{<topic>}:pe   presence entries (hash)
//	<prefix>{<topic>}:pd   presence deadlines (sorted set)
//	<prefix>{presence}:pi  topics by earliest presence deadline
//	<prefix>{presence}:psc, :psg  sweep clock and grace
//
// (a topic that starts with "}" is keyed <prefix>#{x}<topic>:..., all such
// topics on one slot). The layout is the same on a single server, Sentinel
// and Cluster. It replaced "<prefix>hm:<topic>" and the like: history and
// presence written by an older version are not read (a new epoch for
// every topic, and presences come back within PresenceTTL/3 as nodes
// refresh); the classic channel name KeyPrefix + topic is unchanged, so
// old and new nodes still broadcast to each other during a rolling
// upgrade on a single server.
//
// # History
//
// A topic that keeps history has a hash (epoch and Seq of the newest
// message) and a stream whose entry IDs are "0-<seq>", trimmed to
// HistorySize. One Lua script per Publish increments the Seq, appends the
// message, sets the expiry (HistoryTTL) of both keys and publishes the
// envelope with its position, atomically: Seq order is delivery order on
// every node. The epoch is random and chosen whenever the stream is
// created, so it changes whenever the stream was lost (expired, dropped by
// a Publish without history, or lost with Redis's data), and, with
// Sentinel or a Cluster, whenever the server's replication ID changed
// since the topic's last write: a replica was promoted, or the master
// restarted. Replication is asynchronous, so writes acknowledged just
// before may be missing; a new epoch makes a client's older position
// report Recovered false instead of naming a different message with a
// reused Seq. A single server keeps its epochs across a restart that kept
// its data (appendonly yes): with appendfsync always nothing acknowledged
// is lost; with everysec the last second's Seqs may be handed out again.
// History runs one
// script that creates a missing stream, drops expired entries and selects
// messages exactly like the in-memory broker, including Recovered.
//
// # Presence
//
// A topic's entries live in a hash (id -> entry) and a sorted set
// (id -> expiry deadline, Redis server time); a further sorted set indexes
// the topics by their earliest deadline. The index is on another slot
// than the topics, so it is kept by separate calls in an order that
// never leaves an entry out of it (see scripts.go). Track writes an entry with a
// deadline PresenceTTL ahead and keeps a copy on the node, which re-tracks
// all its entries every PresenceTTL/3 (this also restores them after
// Redis lost its data). Every node sweeps: a script removes expired
// entries atomically and returns them, so only the node whose script
// removed an entry reports it through OnExpire, once for the whole
// cluster. A node that dies stops refreshing; its entries are reported
// between PresenceTTL and PresenceTTL plus one sweep interval
// (PresenceTTL/10, at most 1s) after its last refresh. Close leaves the
// node's entries to expire the same way (Untrack them first to remove
// them at once). An entry of a live node whose refresh came late is
// tracked again by its own node instead of being reported.
//
// # Outages
//
// Redis down when the broker starts: Start and NewPresence still succeed
// and log an error; the broker reconnects with exponential backoff
// (ReconnectMin to ReconnectMax). Redis lost or restarted while running:
// the loss is logged as an error, the pub/sub connection is re-established
// with backoff and every subscribed topic is subscribed again; the
// restoration is logged. Meanwhile:
//
//   - Publish, History, Track, Untrack and List fail within about
//     CommandTimeout with an error wrapping ErrUnavailable; they never
//     hang.
//   - Subscribe and Unsubscribe succeed: they only change the count, and
//     the topic is subscribed (or not) when the connection is back.
//   - Messages published by other nodes while this node's pub/sub
//     connection is down are not delivered to it (Redis pub/sub is at
//     most once); nothing is delivered twice. Clients detect the gap
//     through positions and recover from History.
//   - If Redis restarts without its data, all history is lost: the next
//     History or Publish creates streams with new epochs, so a client's
//     old position reports Recovered false instead of a silent gap.
//     Presence entries of live nodes come back within PresenceTTL/3 (or
//     about a second after Redis returns); no leave is reported for them.
//   - Sweeping pauses for PresenceTTL/2 after the node last failed to
//     reach Redis, and for as long cluster-wide when the sweep scripts see
//     that no node swept for PresenceTTL/4 (Redis paused or unreachable
//     for everyone; also on the very first sweep), so that after an outage
//     live nodes refresh their entries before anything is declared
//     expired. Entries of nodes that died during an outage are reported
//     after it.
//   - A node cut off from Redis (but not from its clients) for longer
//     than PresenceTTL has its entries reported expired by the others;
//     when it is back it tracks them again silently, so other nodes'
//     clients do not see them again until the next presence_state.
//
// # Sentinel and Cluster
//
// With Options.Sentinel the client asks the sentinels for the master,
// follows +switch-master events and re-checks every 5s. With
// Options.Cluster it learns the slot map from any node and follows MOVED
// redirections and failovers (slot map refreshed every 5s and on errors).
// When a master dies:
//
//   - Sentinel: nothing is served until a sentinel promotes the replica,
//     down-after-milliseconds plus the election and promotion (1.0-2.0s
//     with down-after 500ms in the tests); Publish, History and presence
//     calls fail with ErrUnavailable meanwhile, and the pub/sub connection
//     reconnects to the new master and restores every subscription.
//   - Cluster: only the topics of the dead master's slots are affected,
//     for cluster-node-timeout plus the replica's election (2.3-3.0s with
//     a 1000ms timeout in the tests), if cluster-require-full-coverage is
//     off (with it on, the whole cluster refuses commands meanwhile).
//     The topics' sharded subscriptions are restored on the new master.
//   - Broadcasts published during the promotion are lost (the publish
//     fails) or, if they reached the new master before a node had
//     subscribed there again, not delivered to that node: at most once,
//     never twice. Writes the old master acknowledged but had not yet
//     replicated are lost; every topic written on the old master gets a
//     new epoch on the new one, so a catch-up from an older position
//     reports Recovered false instead of a silent gap or a repeat.
//   - Presence entries lost with unreplicated writes come back at the next
//     refresh (PresenceTTL/3); a sweep pause follows the outage as above.
package redisbroker
