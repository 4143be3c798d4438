// Package pubsubtest is a conformance suite for implementations of the
// pubsub.Broker, pubsub.PresenceManager and pubsub.PresenceExpirer
// interfaces.
//
// The suite checks the contracts documented in package pubsub: delivery to
// subscribed topics only, counted Subscribe/Unsubscribe, per-topic ordering
// with contiguous Seq, history paging and Recovered, epoch changes when a
// stream expires or is dropped, the error values, Close, and behaviour under
// concurrency (run it with -race). Networked implementations deliver
// asynchronously, so the suite waits for deliveries with bounded timeouts
// and checks that nothing arrives by waiting for a short quiet period.
//
// A test of an implementation calls the Run functions with a factory:
//
//	func TestConformance(t *testing.T) {
//		pubsubtest.RunBroker(t, func(t *testing.T) pubsub.Broker { return newMyBroker(t) })
//		pubsubtest.RunPresence(t, func(t *testing.T) pubsub.PresenceManager { return newMyPresence(t) })
//	}
//
// Each subtest calls the factory for a fresh instance and closes it when
// done; the factory registers the cleanup of anything else it creates
// (databases, key prefixes) with t.Cleanup. RunCluster checks brokers and
// presence managers that share one backend, as several nodes do.
//
// Server runs a broker server private to one test; NATSCluster runs
// several nats-servers as one JetStream cluster, whose servers a test may
// kill and restart to check failover.
package pubsubtest
