package channels

// Join tokens (a channel's "join jwt"): access to one topic signed by the
// app, as Centrifugo's subscription tokens. The token is verified with
// the connect auth's keys and must name the topic in its "channel" claim.

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"
)

// DefaultJoinToken is where a jwt join gate finds its token by default:
// the join payload's "token" (phoenix.js: socket.channel(topic, {token})).
const DefaultJoinToken = "params.token"

// errJoinTokenChannel refuses a join token issued for another topic.
var errJoinTokenChannel = errors.New(`the token's "channel" claim is not the topic`)

// errJoinTokenSub refuses a join token issued to another user.
var errJoinTokenSub = errors.New(`the token's "sub" is not the connect token's`)

// verifyJoinToken checks the join token of a jwt gate and returns its
// claims. The token must carry the joined topic as its "channel" claim,
// and, when both tokens have a "sub", the connect token's sub. A refusal
// is counted and logged at info with the reason (never the token).
func (s *Socket) verifyJoinToken(cfg *Config, g *Gate, vars *Vars) (map[string]any, bool) {
	claims, err := s.joinTokenClaims(cfg, g, vars)
	if err != nil {
		s.hub.stats.refusals[RefusedJoinToken].Add(1)
		if c := cfg.Logger.Check(zap.InfoLevel, "join refused: join token not accepted"); c != nil {
			c.Write(zap.String("topic", vars.Topic), zap.String("socket_id", s.id), zap.Error(err))
		}
		return nil, false
	}
	return claims, true
}

func (s *Socket) joinTokenClaims(cfg *Config, g *Gate, vars *Vars) (map[string]any, error) {
	v, err := g.Token.EvalValue(vars)
	if err != nil {
		return nil, fmt.Errorf("token expression: %w", err)
	}
	token, _ := v.(string)
	if token == "" {
		return nil, errNoToken
	}
	claims, _, err := cfg.Auth.verify(context.Background(), token) // exp is checked at the join only
	if err != nil {
		return nil, err
	}
	if ch, _ := claims["channel"].(string); ch != vars.Topic {
		return nil, errJoinTokenChannel
	}
	if sub, ok := claims["sub"]; ok {
		if connSub, ok := s.claims["sub"]; ok && connSub != sub {
			return nil, errJoinTokenSub
		}
	}
	return claims, nil
}
