package channels

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode"
)

// ReasonUnauthorized is the reason of a refused join when no other reason
// applies.
const ReasonUnauthorized = "unauthorized"

// GateSpec configures a gate: the connect check of a socket or the join check
// of a channel.
type GateSpec struct {
	// Action is what the gate does: "allow" lets everyone through, "deny"
	// refuses everyone, "if" lets through those for whom the CEL
	// expression in expr is true, and "jwt" (a channel's join only) those
	// whose join token verifies (and, when expr is set, for whom it is
	// true too). When empty it is "if" if expr is set and "allow"
	// otherwise.
	Action string `json:"action,omitempty"`
	// Reason is the reason sent to clients a "deny" gate refuses; the default
	// is "unauthorized". Only valid with the "deny" action.
	Reason string `json:"reason,omitempty"`
	// Expr is the CEL condition of an "if" gate. A result of false, or an
	// evaluation error such as a missing key, refuses with reason
	// "unauthorized". Required with, and only valid with, the "if" action.
	Expr string `json:"expr,omitempty"`
	// Reply is a CEL expression evaluated after a successful join; its
	// value, a map, becomes the response of the ok reply. When empty the
	// response is {}. Only valid on a channel's join gate, with the "allow"
	// or "if" action.
	Reply string `json:"reply,omitempty"`
	// Token is, with the "jwt" action, the CEL expression (over topic,
	// subtopic, params (the join payload), assigns and claims) whose string
	// value is the join token; default "params.token".
	Token string `json:"token,omitempty"`
	// Upstream is the URL of the app's webhook that decides, with the
	// "upstream" action (see docs/webhooks.md). Required with, and only
	// valid with, that action.
	Upstream string `json:"upstream,omitempty"`
	// ForwardHeaders names the request headers sent to a connect webhook
	// (lower-cased in the call). Only valid on the connect gate with the
	// "upstream" action.
	ForwardHeaders []string `json:"forward_headers,omitempty"`
}

// AssignSpec sets one socket assign when a socket connects.
type AssignSpec struct {
	// Key is the name of the assign. Required.
	Key string `json:"key"`
	// Expr is the CEL expression computing the value. It sees params,
	// headers, auth_token, now and assigns (the assigns set before it).
	Expr string `json:"expr"`
}

// HandleInSpec says what happens to a message a client pushes on a channel.
type HandleInSpec struct {
	// Event is the event name, or "*" for every event without a rule of its
	// own. A named event wins over "*".
	Event string `json:"event"`
	// Action is one of "broadcast" (send to every subscriber of the topic,
	// the sender included), "broadcast_from" (every subscriber but the
	// sender), "reply" (answer the sender with an ok reply carrying the
	// pushed payload), "noreply" (accept and drop) or "upstream" (forward
	// to the app's webhook at upstream, which answers with replies,
	// broadcasts and pushes).
	Action string `json:"action"`
	// Upstream is the webhook URL of the "upstream" action.
	Upstream string `json:"upstream,omitempty"`
	// Limit caps how often one socket may push this event, as
	// "<n>/<duration>" (see ParseRate), on top of the socket's message
	// limit. Over it, the push gets an error reply {"reason":"rate limited"}.
	Limit string `json:"limit,omitempty"`
}

// LeaveSpec configures the leave notification of a channel.
type LeaveSpec struct {
	// Upstream is the webhook URL notified, fire-and-forget, whenever a
	// socket leaves a channel of this rule (see docs/webhooks.md).
	Upstream string `json:"upstream"`
}

// ChannelSpec is the rule of the channels whose topic matches a pattern.
type ChannelSpec struct {
	// Pattern is an exact topic such as "lobby", or a prefix followed by a
	// trailing "*" such as "room:*" (what "*" matches is the subtopic). A
	// lone "*" matches every topic. The first channel, in order, whose
	// pattern matches a topic handles it.
	Pattern string `json:"pattern"`
	// Join decides who may join. A channel without it refuses every join
	// with reason "unauthorized".
	Join *GateSpec `json:"join,omitempty"`
	// HandleIn lists what to do with the events clients push. Events without
	// a matching entry are not handled.
	HandleIn []HandleInSpec `json:"handle_in,omitempty"`
	// Leave notifies the app when a socket leaves such a channel.
	Leave *LeaveSpec `json:"leave,omitempty"`
	// Presence tracks who is joined to such a channel and announces it
	// with presence_state and presence_diff. Nothing is tracked without it.
	Presence *PresenceSpec `json:"presence,omitempty"`
	// History keeps the last broadcasts of each matching topic, so that a
	// client rejoining with "_since" catches up without a gap.
	History *HistorySpec `json:"history,omitempty"`
	// Intercept lists the broadcast events filtered or rewritten for each
	// subscriber before delivery (see InterceptSpec and docs/intercept.md).
	Intercept []InterceptSpec `json:"intercept,omitempty"`
}

// RulesSpec is the declarative configuration of sockets and channels.
type RulesSpec struct {
	// Connect decides whether a socket may connect. The default allows
	// every socket. The reply field is not valid here.
	Connect *GateSpec `json:"connect,omitempty"`
	// Assign lists the socket assigns computed at connect time, in order;
	// each sees the assigns set before it.
	Assign []AssignSpec `json:"assign,omitempty"`
	// ID is a CEL expression computing the socket id from params, headers,
	// auth_token, now and assigns. A null result, or no id expression,
	// makes the socket anonymous.
	ID string `json:"id,omitempty"`
	// Channels lists the channel rules; the first whose pattern matches a
	// topic wins. A topic no rule matches cannot be joined.
	Channels []ChannelSpec `json:"channels,omitempty"`
}

// MapUpstreams returns a copy of spec in which every webhook URL is
// replaced by fn(URL); the Caddy adapter uses it to resolve placeholders.
func (spec RulesSpec) MapUpstreams(fn func(string) string) RulesSpec {
	if spec.Connect != nil {
		c := *spec.Connect
		if c.Upstream != "" {
			c.Upstream = fn(c.Upstream)
		}
		spec.Connect = &c
	}
	spec.Channels = slices.Clone(spec.Channels)
	for i := range spec.Channels {
		c := &spec.Channels[i]
		if c.Join != nil {
			j := *c.Join
			if j.Upstream != "" {
				j.Upstream = fn(j.Upstream)
			}
			c.Join = &j
		}
		c.HandleIn = slices.Clone(c.HandleIn)
		for k := range c.HandleIn {
			if c.HandleIn[k].Upstream != "" {
				c.HandleIn[k].Upstream = fn(c.HandleIn[k].Upstream)
			}
		}
		if c.Leave != nil {
			c.Leave = &LeaveSpec{Upstream: fn(c.Leave.Upstream)}
		}
	}
	return spec
}

// GateAction is what a gate does. The zero value denies.
type GateAction int

// Gate actions.
const (
	// GateDeny refuses everyone.
	GateDeny GateAction = iota
	// GateAllow lets everyone through.
	GateAllow
	// GateIf lets through those for whom a CEL condition is true.
	GateIf
	// GateUpstream asks the app's webhook.
	GateUpstream
	// GateJWT lets through joins carrying a valid join token (a channel's
	// join gate only): verified with the connect auth's keys, bound to the
	// topic by its "channel" claim, its claims are join_claims. An
	// optional condition must hold too.
	GateJWT
)

// String returns the action's configuration name.
func (a GateAction) String() string {
	switch a {
	case GateDeny:
		return "deny"
	case GateAllow:
		return "allow"
	case GateIf:
		return "if"
	case GateUpstream:
		return "upstream"
	case GateJWT:
		return "jwt"
	}
	return fmt.Sprintf("GateAction(%d)", int(a))
}

// ParseGateAction parses a gate action name: allow, deny, if, upstream or
// jwt.
func ParseGateAction(s string) (GateAction, error) {
	switch s {
	case "allow":
		return GateAllow, nil
	case "deny":
		return GateDeny, nil
	case "if":
		return GateIf, nil
	case "upstream":
		return GateUpstream, nil
	case "jwt":
		return GateJWT, nil
	}
	return 0, fmt.Errorf("unknown action %q (want allow, deny, if, upstream or jwt)", s)
}

// Gate is a compiled connect or join check. The zero Gate denies with reason
// "unauthorized".
type Gate struct {
	// Action is what the gate does.
	Action GateAction
	// Reason is the refusal reason of a deny gate; empty means
	// "unauthorized".
	Reason string
	// Cond is the condition of an if gate, or the extra condition of a
	// jwt gate (nil: none).
	Cond *Expr
	// Token finds the join token of a jwt gate.
	Token *Expr
	// Reply computes the response of a successful join; nil means an empty
	// {} response.
	Reply *Expr
	// Upstream is the webhook URL of an upstream gate.
	Upstream string
	// ForwardHeaders are the lower-case names of the request headers a
	// connect webhook receives.
	ForwardHeaders []string
}

// Decide runs the gate against v. An allow gate lets through; a deny gate
// refuses with its reason. An if gate lets through when its condition is
// true; when it is false, or its evaluation fails, it refuses with reason
// "unauthorized" and, for a failure, also returns the error so the caller
// can log it. A jwt gate, whose token the caller has verified (v carries
// its claims), lets through when its optional condition holds.
func (g *Gate) Decide(v *Vars) (ok bool, reason string, err error) {
	switch g.Action {
	case GateAllow:
		return true, "", nil
	case GateDeny:
		if g.Reason != "" {
			return false, g.Reason, nil
		}
		return false, ReasonUnauthorized, nil
	case GateJWT: // the token was verified by the caller; the condition is optional
		if g.Cond == nil {
			return true, "", nil
		}
		fallthrough
	case GateIf:
		if g.Cond == nil {
			return false, ReasonUnauthorized, errors.New("if gate without condition")
		}
		pass, err := g.Cond.EvalBool(v)
		if err != nil || !pass {
			return false, ReasonUnauthorized, err
		}
		return true, "", nil
	}
	return false, ReasonUnauthorized, fmt.Errorf("gate action %s cannot be decided here", g.Action)
}

// String describes the gate for logs, in Caddyfile syntax, e.g.
// `if "assigns.role == 'admin'" reply "{'ok': true}"`.
func (g *Gate) String() string {
	var b strings.Builder
	b.WriteString(g.Action.String())
	switch g.Action {
	case GateDeny:
		if g.Reason != "" {
			fmt.Fprintf(&b, " %q", g.Reason)
		}
	case GateIf:
		if g.Cond != nil {
			fmt.Fprintf(&b, " %q", g.Cond.String())
		}
	case GateJWT:
		if g.Token != nil {
			fmt.Fprintf(&b, " token %q", g.Token.String())
		}
		if g.Cond != nil {
			fmt.Fprintf(&b, " if %q", g.Cond.String())
		}
	case GateUpstream:
		fmt.Fprintf(&b, " %s", g.Upstream)
	}
	if g.Reply != nil {
		fmt.Fprintf(&b, " reply %q", g.Reply.String())
	}
	return b.String()
}

// compileGate compiles spec with condKind as the kind of its condition. A
// reply is only accepted when allowReply is set.
func compileGate(spec *GateSpec, condKind ExprKind, allowReply bool) (Gate, error) {
	var action GateAction
	switch {
	case spec.Action != "":
		a, err := ParseGateAction(spec.Action)
		if err != nil {
			return Gate{}, err
		}
		action = a
	case spec.Expr != "":
		action = GateIf
	default:
		action = GateAllow
	}
	g := Gate{Action: action}
	if spec.Reason != "" {
		if action != GateDeny {
			return Gate{}, fmt.Errorf("reason is only valid with action deny, not %s", action)
		}
		g.Reason = spec.Reason
	}
	switch {
	case action == GateIf:
		if strings.TrimSpace(spec.Expr) == "" {
			return Gate{}, errors.New("action if needs an expression")
		}
		cond, err := CompileExpr(condKind, spec.Expr)
		if err != nil {
			return Gate{}, err
		}
		g.Cond = cond
	case action == GateJWT:
		if condKind != ExprJoin {
			return Gate{}, errors.New("action jwt is only valid on a channel's join (the connect token is auth jwt)")
		}
		if spec.Expr != "" {
			cond, err := CompileExpr(condKind, spec.Expr)
			if err != nil {
				return Gate{}, err
			}
			g.Cond = cond
		}
		src := spec.Token
		if src == "" {
			src = DefaultJoinToken
		}
		tok, err := CompileExpr(ExprJoinToken, src)
		if err != nil {
			return Gate{}, fmt.Errorf("token: %w", err)
		}
		g.Token = tok
	case spec.Expr != "":
		return Gate{}, fmt.Errorf("an expression is only valid with action if or jwt, not %s", action)
	}
	if spec.Token != "" && action != GateJWT {
		return Gate{}, fmt.Errorf("token is only valid with action jwt, not %s", action)
	}
	if action == GateUpstream {
		if err := ValidateUpstreamURL(spec.Upstream); err != nil {
			return Gate{}, err
		}
		g.Upstream = spec.Upstream
		for _, h := range spec.ForwardHeaders {
			if err := ValidateHeaderName(h); err != nil {
				return Gate{}, fmt.Errorf("forward_headers: %w", err)
			}
			g.ForwardHeaders = append(g.ForwardHeaders, strings.ToLower(h))
		}
		if len(g.ForwardHeaders) > 0 && condKind != ExprConnect {
			return Gate{}, errors.New("forward_headers is only valid on connect")
		}
	} else if spec.Upstream != "" || len(spec.ForwardHeaders) > 0 {
		return Gate{}, fmt.Errorf("upstream and forward_headers are only valid with action upstream, not %s", action)
	}
	if spec.Reply != "" {
		if !allowReply {
			return Gate{}, errors.New("reply is only allowed on a channel's join gate")
		}
		if action == GateDeny {
			return Gate{}, errors.New("reply is not allowed with action deny")
		}
		if action == GateUpstream {
			return Gate{}, errors.New("reply is not allowed with action upstream (the webhook answers with its own response)")
		}
		reply, err := CompileExpr(ExprReply, spec.Reply)
		if err != nil {
			return Gate{}, err
		}
		g.Reply = reply
	}
	return g, nil
}

// HandleInAction is what happens to an event a client pushes on a channel.
type HandleInAction int

// Handle-in actions.
const (
	// HandleInBroadcast sends the event to every subscriber of the topic,
	// the sender included.
	HandleInBroadcast HandleInAction = iota + 1
	// HandleInBroadcastFrom sends the event to every subscriber of the topic
	// except the sender.
	HandleInBroadcastFrom
	// HandleInReply answers the sender with an ok reply whose response is
	// the pushed payload.
	HandleInReply
	// HandleInNoReply accepts the event and does nothing.
	HandleInNoReply
	// HandleInUpstream forwards the event to the app's webhook.
	HandleInUpstream
)

// String returns the action's configuration name.
func (a HandleInAction) String() string {
	switch a {
	case HandleInBroadcast:
		return "broadcast"
	case HandleInBroadcastFrom:
		return "broadcast_from"
	case HandleInReply:
		return "reply"
	case HandleInNoReply:
		return "noreply"
	case HandleInUpstream:
		return "upstream"
	}
	return fmt.Sprintf("HandleInAction(%d)", int(a))
}

// ParseHandleInAction parses a handle_in action name: broadcast,
// broadcast_from, reply, noreply or upstream.
func ParseHandleInAction(s string) (HandleInAction, error) {
	switch s {
	case "broadcast":
		return HandleInBroadcast, nil
	case "broadcast_from":
		return HandleInBroadcastFrom, nil
	case "reply":
		return HandleInReply, nil
	case "noreply":
		return HandleInNoReply, nil
	case "upstream":
		return HandleInUpstream, nil
	}
	return 0, fmt.Errorf("unknown action %q (want broadcast, broadcast_from, reply, noreply or upstream)", s)
}

// HandleInRule is one compiled handle_in entry of a channel.
type HandleInRule struct {
	// Event is the event name, or "*" for every other event.
	Event string
	// Action is what to do with the event.
	Action HandleInAction
	// Upstream is the webhook URL of an upstream action.
	Upstream string
	// Limit caps how often one socket may push the event; the zero Rate
	// is no limit.
	Limit Rate
}

// ChannelRule is the compiled rule of the channels whose topic matches
// Pattern.
type ChannelRule struct {
	// Pattern selects the topics of the rule.
	Pattern Pattern
	// Join decides who may join. A channel configured without a join gate
	// has the zero Gate, which refuses every join with "unauthorized".
	Join Gate
	// HandleIns are the handle_in entries in configuration order.
	HandleIns []HandleInRule
	// LeaveUpstream is the webhook notified when a socket leaves; empty
	// means none.
	LeaveUpstream string
	// Presence is non-nil when joins of the channel are tracked.
	Presence *PresenceRule
	// History is non-nil when the channel's topics keep history.
	History *HistoryRule
	// Intercepts are the intercepted broadcast events of the channel.
	Intercepts []Intercept
}

// HandleIn returns the entry for a pushed event: the entry naming the event
// if there is one, else the "*" entry. ok is false when neither exists.
func (c *ChannelRule) HandleIn(event string) (*HandleInRule, bool) {
	var wild *HandleInRule
	for i := range c.HandleIns {
		h := &c.HandleIns[i]
		if h.Event == event {
			return h, true
		}
		if h.Event == "*" {
			wild = h
		}
	}
	return wild, wild != nil
}

// Assign is a compiled socket assign.
type Assign struct {
	// Key is the name of the assign.
	Key string
	// Expr computes its value (an ExprAssign expression).
	Expr *Expr
}

// Rules is a compiled RulesSpec. It is read-only after CompileRules and safe
// for concurrent use.
type Rules struct {
	// Connect decides whether a socket may connect.
	Connect Gate
	// Assigns are the socket assigns, in evaluation order.
	Assigns []Assign
	// ID computes the socket id; nil means every socket is anonymous.
	ID *Expr
	// Channels are the channel rules in matching order.
	Channels []ChannelRule

	hasIntercepts bool // some channel intercepts an event
}

// Route returns the first channel rule whose pattern matches topic, and the
// part of topic its "*" matched.
func (r *Rules) Route(topic string) (rule *ChannelRule, subtopic string, ok bool) {
	if isReservedTopic(topic) {
		return nil, "", false // the gateway's own traffic: no rule matches it
	}
	for i := range r.Channels {
		if sub, ok := r.Channels[i].Pattern.Match(topic); ok {
			return &r.Channels[i], sub, true
		}
	}
	return nil, "", false
}

// reservedEvents are the control events a handle_in entry cannot name, as
// they never reach it.
var reservedEvents = map[string]bool{
	EventJoin:  true,
	EventLeave: true,
	EventReply: true,
	EventClose: true,
	EventError: true,
}

// CompileRules validates spec and compiles its expressions. Errors name the
// offending element, e.g.
// `channel "room:*": handle_in "typing": unknown action "broadcastt" (...)`.
func CompileRules(spec RulesSpec) (*Rules, error) {
	r := &Rules{Connect: Gate{Action: GateAllow}}
	if spec.Connect != nil {
		g, err := compileGate(spec.Connect, ExprConnect, false)
		if err != nil {
			return nil, fmt.Errorf("connect: %w", err)
		}
		r.Connect = g
	}
	for i, as := range spec.Assign {
		if as.Key == "" {
			return nil, fmt.Errorf("assign #%d: empty key", i+1)
		}
		e, err := CompileExpr(ExprAssign, as.Expr)
		if err != nil {
			return nil, fmt.Errorf("assign %q: %w", as.Key, err)
		}
		r.Assigns = append(r.Assigns, Assign{Key: as.Key, Expr: e})
	}
	if spec.ID != "" {
		e, err := CompileExpr(ExprID, spec.ID)
		if err != nil {
			return nil, fmt.Errorf("id: %w", err)
		}
		r.ID = e
	}
	seen := make(map[string]int, len(spec.Channels))
	for i, cs := range spec.Channels {
		c, err := compileChannel(cs)
		if err != nil {
			if c.Pattern.String() == "" {
				return nil, fmt.Errorf("channel #%d: %w", i+1, err)
			}
			return nil, fmt.Errorf("channel %q: %w", cs.Pattern, err)
		}
		if j, dup := seen[cs.Pattern]; dup {
			return nil, fmt.Errorf("channel %q: duplicate pattern (already used by channel #%d)", cs.Pattern, j+1)
		}
		seen[cs.Pattern] = i
		r.Channels = append(r.Channels, c)
		r.hasIntercepts = r.hasIntercepts || len(c.Intercepts) > 0
	}
	return r, nil
}

// compileChannel compiles one channel rule. On error the returned rule's
// Pattern is set only if the pattern itself was valid.
func compileChannel(cs ChannelSpec) (ChannelRule, error) {
	p, err := ParsePattern(cs.Pattern)
	if err != nil {
		return ChannelRule{}, err
	}
	c := ChannelRule{Pattern: p}
	if cs.Join != nil {
		g, err := compileGate(cs.Join, ExprJoin, true)
		if err != nil {
			return c, fmt.Errorf("join: %w", err)
		}
		c.Join = g
	}
	events := make(map[string]bool, len(cs.HandleIn))
	for i, hs := range cs.HandleIn {
		if err := validateEventName(hs.Event); err != nil {
			return c, fmt.Errorf("handle_in #%d: %w", i+1, err)
		}
		a, err := ParseHandleInAction(hs.Action)
		if err != nil {
			return c, fmt.Errorf("handle_in %q: %w", hs.Event, err)
		}
		if events[hs.Event] {
			return c, fmt.Errorf("handle_in %q: duplicate event", hs.Event)
		}
		if a == HandleInUpstream {
			if err := ValidateUpstreamURL(hs.Upstream); err != nil {
				return c, fmt.Errorf("handle_in %q: %w", hs.Event, err)
			}
		} else if hs.Upstream != "" {
			return c, fmt.Errorf("handle_in %q: upstream is only valid with action upstream, not %s", hs.Event, a)
		}
		var limit Rate
		if hs.Limit != "" {
			if limit, err = ParseRate(hs.Limit); err != nil {
				return c, fmt.Errorf("handle_in %q: limit: %w", hs.Event, err)
			}
		}
		events[hs.Event] = true
		c.HandleIns = append(c.HandleIns, HandleInRule{Event: hs.Event, Action: a, Upstream: hs.Upstream, Limit: limit})
	}
	if cs.Leave != nil {
		if err := ValidateUpstreamURL(cs.Leave.Upstream); err != nil {
			return c, fmt.Errorf("leave: %w", err)
		}
		c.LeaveUpstream = cs.Leave.Upstream
	}
	if cs.Presence != nil {
		p, err := compilePresence(cs.Presence)
		if err != nil {
			return c, fmt.Errorf("presence: %w", err)
		}
		c.Presence = p
	}
	if cs.History != nil {
		h, err := compileHistory(cs.History)
		if err != nil {
			return c, fmt.Errorf("history: %w", err)
		}
		c.History = h
	}
	if c.Intercepts, err = compileIntercepts(cs.Intercept); err != nil {
		return c, err
	}
	return c, nil
}

// ValidateHeaderName checks a forward_headers entry: an HTTP token.
func ValidateHeaderName(h string) error {
	if h == "" {
		return errors.New("empty header name")
	}
	for _, c := range h {
		if c > 0x7e || c <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, c) {
			return fmt.Errorf("invalid header name %q", h)
		}
	}
	return nil
}

// ValidateUpstreamURL checks a webhook URL: absolute http or https with a
// host. Placeholders must have been replaced before.
func ValidateUpstreamURL(s string) error {
	if s == "" {
		return errors.New("upstream needs a URL")
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("upstream URL %q: %w", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("upstream URL %q must be an absolute http:// or https:// URL", s)
	}
	return nil
}

// validateEventName checks a handle_in event name: "*" or a non-empty name
// without whitespace or control characters that is not a control event.
func validateEventName(s string) error {
	if s == "" {
		return errors.New("empty event")
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == '\uFFFD' {
			return fmt.Errorf("invalid event %q", s)
		}
	}
	if reservedEvents[s] {
		return fmt.Errorf("event %q is a control event and cannot be handled", s)
	}
	return nil
}
