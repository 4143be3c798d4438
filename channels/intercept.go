package channels

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
)

// This file holds the configuration side of intercept: the spec, its
// compilation, and the lookup of the intercept of a broadcast. Delivery is
// in intercept_deliver.go, payload editing in intercept_payload.go.

// InterceptSpec intercepts one broadcast event of a channel, as Phoenix's
// intercept/handle_out: for each subscriber of the topic, the steps run in
// order and decide whether the subscriber gets the event and with which
// payload. Survivors receive it as a push carrying their own join_ref
// ([join_ref, null, topic, event, payload]) instead of the broadcast frame
// shared by all. Events that are not intercepted keep the encode-once
// broadcast path.
type InterceptSpec struct {
	// Event is the intercepted event name. Required; "*" and control
	// events are not valid.
	Event string `json:"event"`
	// Steps run in order for each subscriber. None means the event is only
	// turned into a push with the subscriber's join_ref.
	Steps []InterceptStepSpec `json:"steps,omitempty"`
}

// InterceptStepSpec is one step of an intercept. Exactly one of DropIf, Set
// (with Expr) or Remove is set. Every expression sees payload (the
// broadcast payload as published, before any step changed it), event,
// topic, assigns (the subscriber's socket assigns merged with its channel
// assigns) and now. An expression that fails to evaluate skips its step:
// it drops nothing and sets nothing.
type InterceptStepSpec struct {
	// DropIf is a CEL condition: when true the subscriber does not get the
	// event and later steps do not run.
	DropIf string `json:"drop_if,omitempty"`
	// Set is a top-level payload key that Expr's value is written to
	// (added, or replacing the published value).
	Set string `json:"set,omitempty"`
	// Expr is the CEL expression of a Set step; any result that JSON can
	// carry.
	Expr string `json:"expr,omitempty"`
	// Remove is a top-level payload key to delete.
	Remove string `json:"remove,omitempty"`
	// If is an optional CEL condition of a Remove step: the key is removed
	// only when it is true. A condition that fails to evaluate removes the
	// key: remove exists to keep data from subscribers, so it fails
	// closed.
	If string `json:"if,omitempty"`
}

// InterceptOp is what an intercept step does.
type InterceptOp int

// Intercept step operations.
const (
	// InterceptDrop drops the event for subscribers whose condition is true.
	InterceptDrop InterceptOp = iota + 1
	// InterceptSet sets a top-level payload key.
	InterceptSet
	// InterceptRemove removes a top-level payload key.
	InterceptRemove
)

// InterceptStep is one compiled intercept step.
type InterceptStep struct {
	// Op is what the step does.
	Op InterceptOp
	// Key is the payload key of a set or remove step.
	Key string
	// Expr is the condition of a drop step (ExprDrop) or the value of a set
	// step (ExprSet).
	Expr *Expr
	// Cond is the condition of a conditional remove step (ExprDrop); nil
	// removes unconditionally.
	Cond *Expr

	key     int         // index of Key in Intercept.keys
	limiter *logLimiter // evaluation failures of this step
}

// String describes the step in Caddyfile syntax, e.g. `set mine "true"`.
func (s *InterceptStep) String() string {
	switch s.Op {
	case InterceptDrop:
		return fmt.Sprintf("drop if %q", s.Expr.String())
	case InterceptSet:
		return fmt.Sprintf("set %s %q", s.Key, s.Expr.String())
	case InterceptRemove:
		if s.Cond != nil {
			return fmt.Sprintf("remove %s if %q", s.Key, s.Cond.String())
		}
		return "remove " + s.Key
	}
	return fmt.Sprintf("InterceptOp(%d)", int(s.Op))
}

// Intercept is the compiled intercept of one event.
type Intercept struct {
	// Event is the intercepted event.
	Event string
	// Steps run in order for each subscriber.
	Steps []InterceptStep

	keys        []string // distinct keys of set and remove steps, first use first
	usesPayload bool     // some expression reads payload: decode it
}

// edits reports whether some step sets or removes a key.
func (ic *Intercept) edits() bool { return len(ic.keys) > 0 }

// compileIntercepts compiles a channel's intercepts; errors name the event
// and the step.
func compileIntercepts(specs []InterceptSpec) ([]Intercept, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	out := make([]Intercept, 0, len(specs))
	seen := make(map[string]bool, len(specs))
	for i, spec := range specs {
		if spec.Event == "*" {
			return nil, fmt.Errorf("intercept #%d: needs an event name, not \"*\"", i+1)
		}
		if err := validateEventName(spec.Event); err != nil {
			return nil, fmt.Errorf("intercept #%d: %w", i+1, err)
		}
		if seen[spec.Event] {
			return nil, fmt.Errorf("intercept %q: duplicate event", spec.Event)
		}
		seen[spec.Event] = true
		ic, err := compileIntercept(spec)
		if err != nil {
			return nil, fmt.Errorf("intercept %q: %w", spec.Event, err)
		}
		out = append(out, ic)
	}
	return out, nil
}

// compileIntercept compiles the steps of one intercept.
func compileIntercept(spec InterceptSpec) (Intercept, error) {
	ic := Intercept{Event: spec.Event, Steps: make([]InterceptStep, 0, len(spec.Steps))}
	keyIndex := map[string]int{}
	for i, ss := range spec.Steps {
		st, err := compileInterceptStep(ss)
		if err != nil {
			return Intercept{}, fmt.Errorf("step #%d: %w", i+1, err)
		}
		if st.Op != InterceptDrop {
			k, ok := keyIndex[st.Key]
			if !ok {
				k = len(ic.keys)
				keyIndex[st.Key] = k
				ic.keys = append(ic.keys, st.Key)
			}
			st.key = k
		}
		for _, e := range []*Expr{st.Expr, st.Cond} {
			if e == nil {
				continue
			}
			uses, err := exprReads(e, "payload")
			if err != nil {
				return Intercept{}, fmt.Errorf("step #%d: %w", i+1, err)
			}
			ic.usesPayload = ic.usesPayload || uses
		}
		ic.Steps = append(ic.Steps, st)
	}
	return ic, nil
}

// compileInterceptStep compiles one step.
func compileInterceptStep(ss InterceptStepSpec) (InterceptStep, error) {
	n := 0
	for _, set := range []bool{ss.DropIf != "", ss.Set != "", ss.Remove != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return InterceptStep{}, errors.New("want exactly one of drop_if, set or remove, with a non-empty value")
	}
	st := InterceptStep{limiter: new(logLimiter)}
	if ss.If != "" && ss.Remove == "" {
		return InterceptStep{}, errors.New("if is only valid with remove")
	}
	switch {
	case ss.DropIf != "":
		if ss.Expr != "" {
			return InterceptStep{}, errors.New("expr is only valid with set")
		}
		e, err := CompileExpr(ExprDrop, ss.DropIf)
		if err != nil {
			return InterceptStep{}, err
		}
		st.Op, st.Expr = InterceptDrop, e
	case ss.Set != "":
		if strings.TrimSpace(ss.Expr) == "" {
			return InterceptStep{}, fmt.Errorf("set %q needs an expression", ss.Set)
		}
		e, err := CompileExpr(ExprSet, ss.Expr)
		if err != nil {
			return InterceptStep{}, fmt.Errorf("set %q: %w", ss.Set, err)
		}
		st.Op, st.Key, st.Expr = InterceptSet, ss.Set, e
	default:
		if ss.Expr != "" {
			return InterceptStep{}, errors.New("expr is only valid with set")
		}
		st.Op, st.Key = InterceptRemove, ss.Remove
		if ss.If != "" {
			cond, err := CompileExpr(ExprDrop, ss.If)
			if err != nil {
				return InterceptStep{}, fmt.Errorf("remove %q if: %w", ss.Remove, err)
			}
			st.Cond = cond
		}
	}
	return st, nil
}

// exprReads reports whether e refers to the variable name. It type-checks
// the source again, once, at compile time.
func exprReads(e *Expr, name string) (bool, error) {
	env, err := envFor(e.kind)
	if err != nil {
		return false, fmt.Errorf("%s expression %q: build environment: %w", e.kind, e.src, err)
	}
	checked, iss := env.Compile(e.src)
	if err := iss.Err(); err != nil {
		return false, fmt.Errorf("%s expression %q: %w", e.kind, e.src, err)
	}
	for _, r := range checked.NativeRep().ReferenceMap() {
		if r.Name == name {
			return true, nil
		}
	}
	return false, nil
}

// interceptFor returns the channel rule of topic and its intercept of
// event, or nil when the event is not intercepted there. Without any
// intercept in the rules it costs one field check.
func (r *Rules) interceptFor(topic, event string) (*ChannelRule, *Intercept) {
	if !r.hasIntercepts {
		return nil, nil
	}
	rule, _, ok := r.Route(topic)
	if !ok {
		return nil, nil
	}
	for i := range rule.Intercepts {
		if rule.Intercepts[i].Event == event {
			return rule, &rule.Intercepts[i]
		}
	}
	return nil, nil
}

// logLimiter lets one log entry through per logEvery and counts the ones
// it holds back, so that an expression failing for every subscriber of
// every broadcast does not flood the log.
type logLimiter struct {
	next       atomic.Int64 // unix nanoseconds before which entries are held back
	suppressed atomic.Uint64
}

// logEvery is the minimum interval between two log entries of one limiter.
const logEvery = time.Second

// allow reports whether an entry may be logged at now and, if so, how many
// were held back since the last one.
func (l *logLimiter) allow(now time.Time) (bool, uint64) {
	n := now.UnixNano()
	next := l.next.Load()
	if n < next || !l.next.CompareAndSwap(next, n+int64(logEvery)) {
		l.suppressed.Add(1)
		return false, 0
	}
	return true, l.suppressed.Swap(0)
}

// untrackedKind reports whether expressions of kind run without runtime
// cost tracking when they contain no comprehension. Intercept expressions
// run once per subscriber of every intercepted broadcast, and tracking
// (with the context that enforces ExprIterationLimit) roughly doubles
// their cost. Without a comprehension an expression runs a fixed number
// of steps, and cel-go checks the cost limit only after a step has run,
// so the limit could not stop any step of it earlier anyway.
func untrackedKind(kind ExprKind) bool { return kind == ExprDrop || kind == ExprSet }

// hasComprehension reports whether a checked expression contains a
// comprehension (all, exists, exists_one, map, filter).
func hasComprehension(a *cel.Ast) bool {
	return len(ast.MatchDescendants(ast.NavigateAST(a.NativeRep()), ast.KindMatcher(ast.ComprehensionKind))) > 0
}
