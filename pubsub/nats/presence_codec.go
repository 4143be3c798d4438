package natsbroker

import "fmt"

// Presence record kinds.
const (
	// presEntry is a tracked entry, on its entry subject.
	presEntry byte = 1
	// presTombstone marks an entry removed by expiry, on its entry
	// subject, until the subject is purged.
	presTombstone byte = 2
	// presAlive is a node's heartbeat, on its heartbeat subject.
	presAlive byte = 3
	// presClosed is the last heartbeat of a node closed cleanly.
	presClosed byte = 4
	// presClaimed replaces the heartbeat of a dead node while a
	// surviving node (node) removes its entries.
	presClaimed byte = 5
)

// presenceVersion is the first byte of every presence record.
const presenceVersion = 1

// presRecord is one presence record. Entries and tombstones carry topic,
// id and owner (the manager that tracked them); entries also key, node and
// meta. Heartbeats carry owner, and claims the claiming owner in node.
type presRecord struct {
	kind                        byte
	topic, id, key, node, owner string
	meta                        []byte
}

// encodePresence returns the wire form of r: version, kind, then topic,
// id, key, node and owner (each a uvarint length and the bytes), then meta
// up to the end.
func encodePresence(r *presRecord) []byte {
	b := make([]byte, 0, 2+5*3+len(r.topic)+len(r.id)+len(r.key)+len(r.node)+len(r.owner)+len(r.meta))
	b = append(b, presenceVersion, r.kind)
	for _, s := range []string{r.topic, r.id, r.key, r.node, r.owner} {
		b = appendString(b, s)
	}
	return append(b, r.meta...)
}

// decodePresence parses a record in the canonical form encodePresence
// produces. The returned meta aliases b.
func decodePresence(b []byte) (presRecord, error) {
	d := decoder{b: b}
	var r presRecord
	version := d.byte()
	r.kind = d.byte()
	r.topic, r.id, r.key, r.node, r.owner = d.string(), d.string(), d.string(), d.string(), d.string()
	if d.err != nil {
		return presRecord{}, d.err
	}
	if version != presenceVersion {
		return presRecord{}, fmt.Errorf("presence version %d: %w", version, errRecord)
	}
	if rest := b[d.off:]; len(rest) > 0 {
		r.meta = rest
	}
	entryLike := r.topic != "" && r.id != "" && r.owner != ""
	ok := false
	switch r.kind {
	case presEntry:
		ok = entryLike
	case presTombstone:
		ok = entryLike && r.key == "" && r.node == "" && r.meta == nil
	case presAlive, presClosed:
		ok = r.owner != "" && r.topic == "" && r.id == "" && r.key == "" && r.node == "" && r.meta == nil
	case presClaimed:
		ok = r.owner != "" && r.node != "" && r.topic == "" && r.id == "" && r.key == "" && r.meta == nil
	}
	if !ok {
		return presRecord{}, fmt.Errorf("presence record of kind %d with unexpected fields: %w", r.kind, errRecord)
	}
	return r, nil
}
