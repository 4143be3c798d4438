package caddychannels

import (
	"strings"
	"testing"

	"go.uber.org/zap"

	redisbroker "github.com/caddy-channels/caddy-channels/pubsub/redis"
)

func TestRedisEngineCaddyfile(t *testing.T) {
	t.Parallel()
	checkEngineParses(t, []engineCase{
		{"redis", `{}`},
		{"redis redis://10.0.0.1:6379/2 {\n\tkey_prefix app:\n}", `{"url":"redis://10.0.0.1:6379/2","key_prefix":"app:"}`},
		{"redis sentinel 10.0.0.1:26379 10.0.0.2:26379 {\n\tmaster_name mymaster\n\tsentinel_password s\n\tpassword {env.REDIS_PW}\n\tdb 3\n}",
			`{"sentinel":{"addrs":["10.0.0.1:26379","10.0.0.2:26379"],"master_name":"mymaster","password":"s"},"password":"{env.REDIS_PW}","db":3}`},
		{"redis cluster 10.0.0.1:7000 10.0.0.2:7000 {\n\tusername u\n\tpassword p\n\ttls\n\tpresence_ttl 10s\n}",
			`{"cluster":["10.0.0.1:7000","10.0.0.2:7000"],"username":"u","password":"p","tls":true,"presence_ttl":10000000000}`},
	}, func(e *RedisEngine) error {
		_, err := redisbroker.New(e.options(zap.NewNop()))
		return err
	})
}

func TestRedisEngineCaddyfileErrors(t *testing.T) {
	t.Parallel()
	checkEngineRefuses[RedisEngine](t, []engineCase{
		{"redis sentinel", "no sentinel address"},
		{"redis cluster", "no node address"},
		{"redis sentinel 10.0.0.1:26379", "master_name is required"},
		{"redis redis://h:6379 extra", "wrong argument count"},
		{"redis cluster 10.0.0.1:7000 {\n\tmaster_name m\n}", "needs the sentinel form"},
		{"redis redis://h:6379 {\n\tdb 2\n}", "needs the sentinel form"},
		{"redis redis://h:6379 {\n\tpassword p\n}", "put them in the URL"},
		{"redis sentinel a:1 {\n\tmaster_name m\n\tdb x\n}", "invalid database"},
		{"redis cluster a:1 {\n\tbogus 1\n}", "unrecognized option"},
	})
}

// TestRedisEngineOptionsErrors checks the combinations only the JSON form
// can express.
func TestRedisEngineOptionsErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		e    RedisEngine
		want string
	}{
		{RedisEngine{URL: "redis://h:1", Cluster: []string{"a:1"}}, "a URL and Sentinel or Cluster"},
		{RedisEngine{Cluster: []string{"a:1"}, Sentinel: &RedisSentinel{Addrs: []string{"b:1"}, MasterName: "m"}}, "both Sentinel and Cluster"},
		{RedisEngine{Cluster: []string{"a:1"}, DB: 1}, "only database 0"},
		{RedisEngine{Cluster: []string{"a:1"}, KeyPrefix: "{app}:"}, "no { or }"},
		{RedisEngine{URL: "redis://h:1?master_set=m"}, "use the Sentinel options"},
	} {
		_, err := redisbroker.New(tc.e.options(zap.NewNop()))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one containing %q", tc.e, err, tc.want)
		}
	}
}
