package channels

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/ext"
	"google.golang.org/protobuf/types/known/structpb"
)

// ExprCostLimit is the runtime cost budget of one evaluation of a CEL
// expression (cel.CostLimit). The unit is CEL's abstract cost: about one per
// operation, plus a share proportional to the size of the strings, lists and
// maps an operation works on. An evaluation that exceeds it stops with an
// error. Intercept expressions (ExprDrop, ExprSet) without a comprehension
// run without cost tracking: see untrackedKind.
const ExprCostLimit = 1_000_000

// ExprIterationLimit is the number of comprehension iterations (all, exists,
// exists_one, map, filter; nested loops count every inner iteration) one
// evaluation may run. An evaluation that reaches it stops with an error.
//
// It exists because the runtime cost tracker of cel-go v0.32.0 pushes values
// on an internal stack on every iteration without popping them and scans
// that stack on every variable access: the time spent tracking cost grows
// with the square of the iteration count (about 0.1 s for 10,000 iterations
// and several seconds for 50,000, long before the cost limit stops the
// evaluation). Capping iterations keeps the worst case in the tens of
// milliseconds; the cap is enforced by cel-go's interrupt check, a counter
// increment per iteration.
const ExprIterationLimit = 2_000

// ExprKind is the place a CEL expression appears in the rules. It decides
// which variables the expression sees and which result types it may have.
type ExprKind int

// Expression kinds.
const (
	// ExprConnect is the condition of the connect gate. It sees params,
	// headers, auth_token, claims and now, and yields a bool.
	ExprConnect ExprKind = iota
	// ExprAssign computes a socket assign. It sees params, headers,
	// auth_token, claims, assigns (those set before it) and now, and yields any value.
	ExprAssign
	// ExprID computes the socket id. It sees the same variables as
	// ExprAssign and yields a string, or null for an anonymous socket.
	ExprID
	// ExprJoin is the condition of a channel's join gate. It sees topic,
	// subtopic, params (the join payload), assigns, claims, join_claims and
	// now, and yields a bool.
	ExprJoin
	// ExprReply computes the response of a successful join. It sees the same
	// variables as ExprJoin and yields a map.
	ExprReply
	// ExprPresenceKey computes the presence key of a joining socket. It sees
	// the same variables as ExprJoin and yields a string.
	ExprPresenceKey
	// ExprPresenceMeta computes the presence meta of a joining socket. It
	// sees the same variables as ExprJoin and yields a map.
	ExprPresenceMeta
	// ExprDrop is the condition of an intercept's "drop if" step. It sees
	// payload (the broadcast payload), event, topic, assigns and claims (the
	// subscriber's) and now, and yields a bool.
	ExprDrop
	// ExprSet computes the value of an intercept's "set" step. It sees the
	// same variables as ExprDrop and yields any value.
	ExprSet
	// ExprToken finds the token an auth rule verifies. It sees params,
	// headers and auth_token, and yields a string, or null when the
	// connect carries no token.
	ExprToken
	// ExprJoinToken finds the join token of a channel's jwt gate. It sees
	// topic, subtopic, params (the join payload), assigns and claims, and
	// yields a string, or null when the join carries no token.
	ExprJoinToken

	exprKindCount
)

// String returns the kind's name as used in error messages.
func (k ExprKind) String() string {
	switch k {
	case ExprConnect:
		return "connect"
	case ExprAssign:
		return "assign"
	case ExprID:
		return "id"
	case ExprJoin:
		return "join"
	case ExprReply:
		return "reply"
	case ExprPresenceKey:
		return "presence key"
	case ExprPresenceMeta:
		return "presence meta"
	case ExprDrop:
		return "drop"
	case ExprSet:
		return "set"
	case ExprToken:
		return "token"
	case ExprJoinToken:
		return "join token"
	}
	return fmt.Sprintf("ExprKind(%d)", int(k))
}

// Vars holds the values CEL expressions are evaluated against. Each kind of
// expression only sees the fields it declares (see ExprKind); the others are
// ignored. Vars is only read during evaluation.
type Vars struct {
	// Params are the connect params (query string values) or, for join
	// expressions, the decoded join payload. JSON-ready values only:
	// map[string]any, []any, string, bool, nil, float64, int64, uint64.
	Params map[string]any
	// Headers are the request headers of the WebSocket upgrade, keyed by
	// lower-case name; a header sent several times is joined with ", ".
	Headers map[string]string
	// AuthToken is the token phoenix.js sends in the Sec-WebSocket-Protocol
	// header, or nil when there is none (CEL sees null).
	AuthToken *string
	// Assigns are the socket assigns set so far; JSON-ready values only.
	Assigns map[string]any
	// Topic is the topic being joined.
	Topic string
	// Subtopic is the part of Topic the "*" of the matching pattern matched.
	Subtopic string
	// Payload is the decoded payload of an intercepted broadcast; JSON-ready
	// values only.
	Payload map[string]any
	// Event is the event of an intercepted broadcast.
	Event string
	// Claims are the claims of the socket's verified connect token (auth
	// jwt), nil when there is none (CEL sees an empty map).
	Claims map[string]any
	// JoinClaims are the claims of the verified join token of a channel
	// with a join jwt rule, nil when there is none (CEL sees an empty map).
	JoinClaims map[string]any
	// Now is the evaluation time; the zero value stands for time.Now() at
	// the moment of evaluation.
	Now time.Time

	payloadVal, assignsVal, claimsVal ref.Val // Payload, Assigns and Claims converted ahead (intercept), when set
}

// Expr is a compiled CEL expression. It is safe for concurrent use.
type Expr struct {
	kind      ExprKind
	src       string
	prg       cel.Program
	untracked bool // evaluated without cost tracking: see untrackedKind
}

// exprVariables lists the variables each kind of expression declares.
var exprVariables = [exprKindCount][]string{
	ExprConnect: {"params", "headers", "auth_token", "claims", "now"},
	ExprAssign:  {"params", "headers", "auth_token", "claims", "assigns", "now"},
	ExprID:      {"params", "headers", "auth_token", "claims", "assigns", "now"},
	ExprJoin:    {"topic", "subtopic", "params", "assigns", "claims", "join_claims", "now"},
	ExprReply:   {"topic", "subtopic", "params", "assigns", "claims", "join_claims", "now"},

	ExprPresenceKey:  {"topic", "subtopic", "params", "assigns", "claims", "join_claims", "now"},
	ExprPresenceMeta: {"topic", "subtopic", "params", "assigns", "claims", "join_claims", "now"},
	ExprDrop:         {"payload", "event", "topic", "assigns", "claims", "now"},
	ExprSet:          {"payload", "event", "topic", "assigns", "claims", "now"},
	ExprToken:        {"params", "headers", "auth_token"},
	ExprJoinToken:    {"topic", "subtopic", "params", "assigns", "claims"},
}

// variableTypes are the CEL types of all variables.
var variableTypes = map[string]*cel.Type{
	"params":      cel.MapType(cel.StringType, cel.DynType),
	"assigns":     cel.MapType(cel.StringType, cel.DynType),
	"headers":     cel.MapType(cel.StringType, cel.StringType),
	"auth_token":  cel.DynType,
	"claims":      cel.MapType(cel.StringType, cel.DynType),
	"join_claims": cel.MapType(cel.StringType, cel.DynType),
	"topic":       cel.StringType,
	"subtopic":    cel.StringType,
	"now":         cel.TimestampType,
	"payload":     cel.MapType(cel.StringType, cel.DynType),
	"event":       cel.StringType,
}

// envs caches one CEL environment per expression kind.
var envs [exprKindCount]struct {
	once sync.Once
	env  *cel.Env
	err  error
}

// envFor returns the CEL environment of kind, building it on first use.
func envFor(kind ExprKind) (*cel.Env, error) {
	e := &envs[kind]
	e.once.Do(func() {
		opts := []cel.EnvOption{
			ext.Strings(),
			cel.CrossTypeNumericComparisons(true),
		}
		for _, name := range exprVariables[kind] {
			opts = append(opts, cel.Variable(name, variableTypes[name]))
		}
		e.env, e.err = cel.NewEnv(opts...)
	})
	return e.env, e.err
}

// CompileExpr parses and type-checks src as an expression of the given kind.
// Referring to a variable the kind does not declare, or producing a result
// that is statically of the wrong type (a condition that is not bool, a reply
// that is not a map, an id that is not a string or null), is an error. The
// error names the expression and includes CEL's message.
func CompileExpr(kind ExprKind, src string) (*Expr, error) {
	if kind < 0 || kind >= exprKindCount {
		return nil, fmt.Errorf("compile expression %q: unknown kind %s", src, kind)
	}
	if strings.TrimSpace(src) == "" {
		return nil, fmt.Errorf("%s expression %q: empty", kind, src)
	}
	env, err := envFor(kind)
	if err != nil {
		return nil, fmt.Errorf("%s expression %q: build environment: %w", kind, src, err)
	}
	ast, iss := env.Compile(src)
	if err := iss.Err(); err != nil {
		return nil, fmt.Errorf("%s expression %q: %w", kind, src, err)
	}
	if err := checkOutputType(kind, ast.OutputType()); err != nil {
		return nil, fmt.Errorf("%s expression %q: %w", kind, src, err)
	}
	untracked := untrackedKind(kind) && !hasComprehension(ast)
	opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	if !untracked {
		opts = append(opts, cel.CostLimit(ExprCostLimit), cel.InterruptCheckFrequency(ExprIterationLimit))
	}
	prg, err := env.Program(ast, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s expression %q: %w", kind, src, err)
	}
	return &Expr{kind: kind, src: src, prg: prg, untracked: untracked}, nil
}

// checkOutputType rejects result types that can never be right for kind.
// Dynamic results are accepted and checked at evaluation time.
func checkOutputType(kind ExprKind, t *cel.Type) error {
	k := t.Kind()
	if k == types.DynKind || k == types.AnyKind || k == types.TypeParamKind {
		return nil
	}
	switch kind {
	case ExprConnect, ExprJoin, ExprDrop:
		if k != types.BoolKind {
			return fmt.Errorf("result type is %s, want bool", t)
		}
	case ExprReply, ExprPresenceMeta:
		if k != types.MapKind {
			return fmt.Errorf("result type is %s, want map", t)
		}
	case ExprPresenceKey:
		if k != types.StringKind {
			return fmt.Errorf("result type is %s, want string", t)
		}
	case ExprID, ExprToken, ExprJoinToken:
		if k != types.StringKind && k != types.NullTypeKind {
			return fmt.Errorf("result type is %s, want string or null", t)
		}
	}
	return nil
}

// Kind returns the kind the expression was compiled as.
func (e *Expr) Kind() ExprKind { return e.kind }

// String returns the expression's source.
func (e *Expr) String() string { return e.src }

// eval runs the program against v. The program runs under a context that
// is already done, with an interrupt check frequency of ExprIterationLimit:
// comprehensions count their iterations and only look at the context when
// the count reaches the limit, which then stops the evaluation.
func (e *Expr) eval(v *Vars) (ref.Val, error) {
	if v == nil {
		v = &Vars{}
	}
	var (
		out ref.Val
		err error
	)
	if e.untracked {
		out, _, err = e.prg.Eval(activation{v})
	} else {
		out, _, err = e.prg.ContextEval(exhaustedContext{}, activation{v})
	}
	if err != nil {
		if errors.Is(err, errIterationLimit) {
			return nil, fmt.Errorf("evaluate %q: %w", e.src, errIterationLimit)
		}
		return nil, fmt.Errorf("evaluate %q: %w", e.src, err)
	}
	return out, nil
}

// errIterationLimit reports an evaluation stopped by ExprIterationLimit.
var errIterationLimit = fmt.Errorf("iteration limit of %d exceeded", ExprIterationLimit)

// closedChan is a channel that is always closed.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// exhaustedContext is a context.Context that is done from the start. See
// Expr.eval for why.
type exhaustedContext struct{}

// Deadline implements context.Context; there is none.
func (exhaustedContext) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done implements context.Context; the channel is closed.
func (exhaustedContext) Done() <-chan struct{} { return closedChan }

// Err implements context.Context.
func (exhaustedContext) Err() error { return errIterationLimit }

// Value implements context.Context; there are no values.
func (exhaustedContext) Value(any) any { return nil }

// EvalBool evaluates a condition. A result that is not a bool is an error,
// as is any evaluation error (a missing map key, a wrong operand type,
// ExprCostLimit or ExprIterationLimit).
func (e *Expr) EvalBool(v *Vars) (bool, error) {
	out, err := e.eval(v)
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("evaluate %q: result is %s, want bool", e.src, out.Type().TypeName())
	}
	return bool(b), nil
}

// EvalValue evaluates the expression and returns its result as a JSON-ready
// Go value: map[string]any, []any, string, bool, nil, int64, uint64 or
// float64. Timestamps become RFC 3339 strings in UTC with up to nanosecond
// precision, durations Go duration strings (such as "1m30s"), bytes base64
// strings, and map keys that are not strings their fmt-formatted value.
// Doubles that are NaN or infinite are an error, as JSON cannot carry them.
// For ExprReply a result that is not a map is an error, and for ExprID a
// result that is neither a string nor null.
func (e *Expr) EvalValue(v *Vars) (any, error) {
	out, err := e.eval(v)
	if err != nil {
		return nil, err
	}
	switch e.kind {
	case ExprReply:
		if _, ok := out.(traits.Mapper); !ok {
			return nil, fmt.Errorf("evaluate %q: result is %s, want map", e.src, out.Type().TypeName())
		}
	case ExprID:
		if out != types.NullValue {
			if _, ok := out.(types.String); !ok {
				return nil, fmt.Errorf("evaluate %q: result is %s, want string or null", e.src, out.Type().TypeName())
			}
		}
	}
	val, err := jsonValue(out)
	if err != nil {
		return nil, fmt.Errorf("evaluate %q: %w", e.src, err)
	}
	return val, nil
}

// activation resolves variable names from a *Vars without building a map.
// Its single pointer field keeps it allocation-free when boxed.
type activation struct{ v *Vars }

// ResolveName implements cel.Activation.
func (a activation) ResolveName(name string) (any, bool) {
	switch name {
	case "params":
		return a.v.Params, true
	case "assigns":
		if a.v.assignsVal != nil {
			return a.v.assignsVal, true
		}
		return a.v.Assigns, true
	case "headers":
		return a.v.Headers, true
	case "auth_token":
		if a.v.AuthToken == nil {
			return types.NullValue, true
		}
		return types.String(*a.v.AuthToken), true
	case "claims":
		if a.v.claimsVal != nil {
			return a.v.claimsVal, true
		}
		if a.v.Claims == nil {
			return emptyCELMap, true
		}
		return a.v.Claims, true
	case "join_claims":
		if a.v.JoinClaims == nil {
			return emptyCELMap, true
		}
		return a.v.JoinClaims, true
	case "topic":
		return types.String(a.v.Topic), true
	case "subtopic":
		return types.String(a.v.Subtopic), true
	case "payload":
		if a.v.payloadVal != nil {
			return a.v.payloadVal, true
		}
		return a.v.Payload, true
	case "event":
		return types.String(a.v.Event), true
	case "now":
		if a.v.Now.IsZero() {
			return types.Timestamp{Time: time.Now()}, true
		}
		return types.Timestamp{Time: a.v.Now}, true
	}
	return nil, false
}

// Parent implements cel.Activation; there is none.
func (activation) Parent() cel.Activation { return nil }

// structValueType is the type CEL values are converted to when jsonValue has
// no direct rule for them.
var structValueType = reflect.TypeFor[*structpb.Value]()

// jsonValue converts a CEL value to a JSON-ready Go value.
func jsonValue(v ref.Val) (any, error) {
	switch t := v.(type) {
	case types.Null:
		return nil, nil
	case types.Bool:
		return bool(t), nil
	case types.Int:
		return int64(t), nil
	case types.Uint:
		return uint64(t), nil
	case types.Double:
		f := float64(t)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("double %v cannot be represented in JSON", f)
		}
		return f, nil
	case types.String:
		return string(t), nil
	case types.Bytes:
		return base64.StdEncoding.EncodeToString(t), nil
	case types.Timestamp:
		return t.UTC().Format(time.RFC3339Nano), nil
	case types.Duration:
		return t.Duration.String(), nil
	case *types.Err:
		return nil, t
	case traits.Mapper:
		return jsonMap(t)
	case traits.Lister:
		return jsonList(t)
	case ref.Type:
		return t.TypeName(), nil
	}
	if types.IsUnknown(v) {
		return nil, errors.New("result is unknown")
	}
	native, err := v.ConvertToNative(structValueType)
	if err != nil {
		return nil, fmt.Errorf("convert %s to JSON: %w", v.Type().TypeName(), err)
	}
	sv, ok := native.(*structpb.Value)
	if !ok {
		return nil, fmt.Errorf("convert %s to JSON: got %T", v.Type().TypeName(), native)
	}
	return sv.AsInterface(), nil
}

// jsonMap converts a CEL map; keys that are not strings are fmt-formatted.
func jsonMap(m traits.Mapper) (map[string]any, error) {
	size, ok := m.Size().(types.Int)
	if !ok || size < 0 {
		size = 0
	}
	out := make(map[string]any, int(size))
	for it := m.Iterator(); it.HasNext() == types.True; {
		k := it.Next()
		var key string
		if s, ok := k.(types.String); ok {
			key = string(s)
		} else {
			kv, err := jsonValue(k)
			if err != nil {
				return nil, fmt.Errorf("map key: %w", err)
			}
			key = fmt.Sprint(kv)
		}
		val, err := jsonValue(m.Get(k))
		if err != nil {
			return nil, fmt.Errorf("map value %q: %w", key, err)
		}
		out[key] = val
	}
	return out, nil
}

// jsonList converts a CEL list.
func jsonList(l traits.Lister) ([]any, error) {
	size, ok := l.Size().(types.Int)
	if !ok || size < 0 {
		return nil, errors.New("list has no size")
	}
	out := make([]any, int(size))
	for i := range out {
		val, err := jsonValue(l.Get(types.Int(i)))
		if err != nil {
			return nil, fmt.Errorf("list element %d: %w", i, err)
		}
		out[i] = val
	}
	return out, nil
}
