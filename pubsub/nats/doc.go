// Package natsbroker implements pubsub.Broker, pubsub.PresenceManager and
// pubsub.PresenceExpirer on NATS, so that several nodes share one set of
// topics. It needs a NATS server (2.9 or later) with JetStream enabled.
//
//	b, err := natsbroker.New(natsbroker.Options{URLs: []string{"nats://10.0.0.5:4222"}})
//	err = b.Start(handler)
//	p, err := natsbroker.NewPresence(natsbroker.Options{URLs: []string{"nats://10.0.0.5:4222"}})
//	p.OnExpire(announceLeave)
//
// # Broadcast
//
// A topic's messages travel on the core NATS subject
// "<prefix>.m.<base64url(topic)>", so any topic string is safe. A node
// subscribes to that subject while it has local subscribers (the first
// Subscribe subscribes, the last Unsubscribe unsubscribes): no node
// receives the traffic of topics it does not serve. Each message is
// encoded once per publish into a compact binary record (topic, event,
// node, exclude, binary flag, history position, payload) and decoded once
// per receiving node. Every topic is delivered by one of a few dispatcher
// goroutines, always the same one, so that a topic's messages reach the
// Handler one at a time and in order. A node's own broadcasts reach it
// through the server too, after Publish returns.
//
// # History
//
// One JetStream stream, "<prefix>_history", stores the records of every
// topic that keeps history, on "<prefix>.h.<base64url(topic)>". Each record
// carries the topic's epoch and its own per-topic seq, contiguous from 1,
// which the stream sequence (global to the stream) cannot give. A publish
// with history is written only if the topic's newest record is still the
// one the publisher knows (Nats-Expected-Last-Subject-Sequence); a writer
// that lost the race reloads the newest record and tries again, so two
// nodes never give out the same seq. The stream republishes each stored
// record to the topic's broadcast subject: storing and sending are one
// step, subscribers see records in seq order, exactly once per node, and a
// write that lost its race is never sent.
//
// The epoch changes whenever the topic's records are gone: never written,
// dropped by a publish without history, removed with the stream, expired
// by HistoryMaxAge, or expired by HistoryTTL. History on a topic without
// a live stream writes a marker record that starts an empty stream with a
// new epoch (seq 0), conditional like a publish, so that all nodes agree
// on it.
//
// JetStream 2.9 has no per-message TTL and a stream's MaxAge applies to
// all its topics, so HistoryTTL is enforced by the broker: each record
// carries its expiry (the publisher's clock, in milliseconds); History
// hides expired messages and treats a stream whose newest record has
// expired as gone (new epoch). Clock skew between nodes shifts expiries by
// the skew. A History call with a TTL extends the stream's life by writing
// a marker when that moves its end by more than TTL/4, so at most about
// four markers per TTL. Storage is reclaimed by trimming each topic to its
// HistorySize (plus a little slack) every max(HistorySize/2, 16) publishes,
// by purging the records of an expired epoch when a new one starts, and by
// the stream-wide limits Options.HistoryMaxAge and Options.MaxHistorySize.
//
// A publish without history drops the topic's stream, as the contract
// requires, when this node knows the topic may have one: it published or
// read the topic's history, or received one of its records. A node that
// never saw the topic's history does not look it up before each broadcast
// (that would cost a round trip per broadcast). Nodes that share one
// configuration never publish one topic both ways, so this does not arise.
//
// History reads the newest record (one direct get), then the messages
// asked for: up to eight by walking the chain of records back (each record
// names the stream sequence of the previous one), more through a
// short-lived consumer on the topic's subject, started at a record at most
// 65 seqs before the first one wanted (each record names such a record, so
// a read jumps back 65 seqs per direct get, up to four times; further back
// it scans the whole topic). After a reconnect, or when the stream was
// lost, a node reloads a topic's newest record before its next append.
//
// # Presence
//
// A second stream, "<prefix>_presence", keeps one record per subject:
// each tracked entry on "<prefix>.p.e.<topic>.<owner>.<id>" (topic and id
// in base64url, owner a random id of the presence manager) and each
// manager's heartbeat on "<prefix>.p.n.<owner>". Track writes the entry,
// Untrack purges it, List reads the newest record of each entry of the
// topic through a short-lived consumer. Entry ids must be unique per topic
// across nodes, as Phoenix's phx_refs are: Track replaces an entry tracked
// with the same id by the same node only.
//
// Each manager rewrites its heartbeat every PresenceTTL/3. Every manager
// with an OnExpire callback reads all heartbeats every PresenceTTL/10 and
// treats a heartbeat that has not changed for PresenceTTL (timed on its own
// clock) as a dead node, and one marked closed by Close at once. It then
// replaces that heartbeat by a claim, conditional on it being unchanged,
// so that only one node cleans up; replaces each of the dead node's
// entries by a tombstone, again conditional, calls OnExpire for each entry
// it removed, and purges them. Each expired entry is therefore reported
// once in the cluster. The entries of a crashed node are reported between
// 2/3 and 1.2 times PresenceTTL after the crash; those of a node that
// called Close at the next check. A node whose claimer dies midway is
// claimed again after PresenceTTL.
//
// Each manager keeps its own entries, and writes them again when its
// heartbeat shows that the server lost them (a restart with memory
// storage) or that another node expired it (it was cut off from NATS for
// longer than PresenceTTL). Those entries reappear in List without a join
// being announced. The engine need not re-Track entries periodically.
//
// # Clusters
//
// Options.URLs may list several servers of one NATS cluster (the client
// also learns the others from it), and Options.Replicas makes JetStream
// keep each stream on that many servers, which must all be up to create
// the streams; with three, the streams survive the loss of any one. Each
// write is then stored on a majority before it is acknowledged, and:
//
//   - Reads go to each stream's leader: direct gets are turned off, since
//     followers answer them too and may not have applied the newest
//     records yet (a History right after another node's publish would miss
//     it, an append would start from a stale newest record).
//   - Every conditional write carries a message id naming the record it
//     expects to follow ("<subject>/<stream seq>"), within a 30 s duplicate
//     window: servers before 2.9.21 check the expected last subject
//     sequence only before proposing a write, so two concurrent writes
//     expecting the same record could both be stored (nats-server issue
//     4320); the leader does track the ids of writes in flight, so the
//     second is answered as a duplicate and retried like a lost race.
//     Writes expecting no record carry no id (a purged subject starts from
//     none again): on those servers two nodes writing a topic's first
//     record at the same moment may both succeed.
//   - A stream just created answers nothing until its replicas elected a
//     leader: creating it waits for one. Concurrent creations of one
//     stream leave all but one unanswered in JetStream 2.9, so a creation
//     gives up after half the request timeout and looks the stream up.
//   - After a reconnect the stream is looked up rather than created again,
//     so that a lookup answered by the stream's leader is enough.
//   - The short-lived consumers of scans (long History reads, List, the
//     expiry checks) are placed by JetStream 2.9 on any server holding the
//     stream, a dead one included, which then never answers: each attempt
//     waits 50 ms, then half as long again each time, and an unanswered
//     consumer is deleted and created again, within the request timeout
//     (a read fails only if every attempt was placed on the dead server).
//   - Time during which a presence manager could neither read the other
//     nodes' heartbeats nor write its own (a stream without a leader) does
//     not count toward PresenceTTL.
//
// A subscription reaches the other servers of the cluster a moment
// (under a millisecond on a quiet LAN, more under load) after Subscribe
// returns: a broadcast published through another server in that moment
// is not delivered to the new subscriber. On a history topic its clients
// see the gap at the next message and catch up; without history it is
// lost, as with any broadcast sent just before a join.
//
// When a server dies, the clients connected to it reconnect to another one
// at once (the server list is tried in turn before any backoff) and
// restore their subscriptions; what they miss meanwhile is what any
// disconnect loses (below). When it led a stream, writes to that stream
// fail (after RequestTimeout) until the survivors elect a new leader,
// 4–10 s with nats-server 2.9 after a SIGKILL; when it was the JetStream
// meta leader, consumers cannot be created (scans fail) until a new one
// is elected, 4–6 s. Reads and writes of the other streams go on.
//
// # Faults
//
// New, Start and NewPresence succeed while NATS is down: the connection is
// retried in the background with backoff (Options.ReconnectWait up to
// Options.MaxReconnectWait), and the outage is logged as an error. While
// disconnected, Publish, History, Track and List fail at once with an
// error wrapping ErrUnavailable; Subscribe and Unsubscribe succeed and
// take effect when the connection is back (nats.go restores
// subscriptions); Untrack is queued and done then. Messages are never
// delivered twice: deliveries come from core subscriptions, which the
// server does not replay. A server that vanishes without closing the
// connection (a network partition) is noticed after three unanswered pings
// (Options.PingInterval); until then requests fail after
// Options.RequestTimeout and broadcasts are lost.
//
// What an outage loses: broadcasts published while a node is
// disconnected never reach it (clients of history topics see the gap in
// positions and catch up with History; broadcasts without history are
// lost), including the node's own broadcasts, since Publish fails; presence
// changes made meanwhile fail (Track) or wait (Untrack); and a node cut off
// for longer than PresenceTTL while others are connected has its entries
// reported expired by them. A server restart with file storage (the
// default) keeps history and presence; with memory storage, history
// restarts with new epochs and each node tracks its entries again. A
// history publish whose acknowledgement is lost returns an error although
// the message may have been stored and delivered.
package natsbroker
