package natsbroker

import (
	"encoding/base64"
	"strings"
)

// names are the subjects and streams derived from Options.Prefix.
type names struct {
	live     string // prefix of broadcast subjects: "<prefix>.m."
	hist     string // prefix of history subjects: "<prefix>.h."
	presence string // prefix of presence subjects: "<prefix>.p."

	historyStream  string
	presenceStream string
}

// newNames derives the names of a (validated) prefix.
func newNames(prefix string) names {
	base := strings.ReplaceAll(prefix, ".", "_")
	return names{
		live:           prefix + ".m.",
		hist:           prefix + ".h.",
		presence:       prefix + ".p.",
		historyStream:  base + "_history",
		presenceStream: base + "_presence",
	}
}

// token returns s as one subject token: unpadded base64url, which holds no
// '.', '*', '>' or white space whatever s holds.
func token(s string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

// withToken returns prefix followed by the token of s, in one allocation.
func withToken(prefix, s string) string {
	b := make([]byte, len(prefix), len(prefix)+base64.RawURLEncoding.EncodedLen(len(s)))
	copy(b, prefix)
	return string(base64.RawURLEncoding.AppendEncode(b, []byte(s)))
}

// liveSubject is the subject topic's broadcasts are delivered on.
func (n *names) liveSubject(topic string) string { return withToken(n.live, topic) }

// historySubject is the subject topic's history records are stored on.
func (n *names) historySubject(topic string) string { return withToken(n.hist, topic) }

// entrySubject is the subject of a presence entry tracked by owner.
func (n *names) entrySubject(topic, owner, id string) string {
	return n.presence + "e." + token(topic) + "." + owner + "." + token(id)
}

// topicEntries is the filter of all presence entries of topic.
func (n *names) topicEntries(topic string) string {
	return n.presence + "e." + token(topic) + ".*.*"
}

// entriesOfID is the filter of the entries with this id on topic, whoever
// tracked them.
func (n *names) entriesOfID(topic, id string) string {
	return n.presence + "e." + token(topic) + ".*." + token(id)
}

// ownerEntries is the filter of all presence entries tracked by owner.
func (n *names) ownerEntries(owner string) string {
	return n.presence + "e.*." + owner + ".*"
}

// heartbeatSubject is the subject of owner's heartbeat.
func (n *names) heartbeatSubject(owner string) string { return n.presence + "n." + owner }

// heartbeats is the filter of every node's heartbeat.
func (n *names) heartbeats() string { return n.presence + "n.*" }

// decodeToken returns the string a subject token was made from.
func decodeToken(tok string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	return string(b), err
}
