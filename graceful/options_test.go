package graceful

import (
	"strings"
	"testing"
	"time"
)

func TestFromEnv(t *testing.T) {
	cases := []struct {
		env     map[string]string
		want    Options
		wantErr string
	}{
		{env: nil, want: DefaultOptions()},
		{env: map[string]string{"DRAIN_DELAY": "20s", "SHUTDOWN_TIMEOUT": "1m", "IDLE_TIMEOUT": "90"},
			want: Options{DrainDelay: 20 * time.Second, ShutdownTimeout: time.Minute, IdleTimeout: 90 * time.Second}},
		{env: map[string]string{"DRAIN_DELAY": "0"}, want: Options{DrainDelay: 0, ShutdownTimeout: DefaultShutdownTimeout, IdleTimeout: DefaultIdleTimeout}},
		{env: map[string]string{"DRAIN_DELAY": " "}, want: DefaultOptions()},
		{env: map[string]string{"DRAIN_DELAY": "abc"}, wantErr: `DRAIN_DELAY="abc": not a duration`},
		{env: map[string]string{"SHUTDOWN_TIMEOUT": "-5s"}, wantErr: `SHUTDOWN_TIMEOUT="-5s": negative duration`},
		{env: map[string]string{"IDLE_TIMEOUT": "10parsecs"}, wantErr: `IDLE_TIMEOUT="10parsecs"`},
	}
	for _, c := range cases {
		got, err := fromLookup(DefaultOptions(), func(k string) (string, bool) { v, ok := c.env[k]; return v, ok })
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("env %v: err = %v, want %q", c.env, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("env %v: %v", c.env, err)
			continue
		}
		if got.DrainDelay != c.want.DrainDelay || got.ShutdownTimeout != c.want.ShutdownTimeout || got.IdleTimeout != c.want.IdleTimeout {
			t.Errorf("env %v: got %+v, want %+v", c.env, got, c.want)
		}
	}
}

func TestWithDefaultsKeepsExplicitZeroDrain(t *testing.T) {
	o := Options{}.withDefaults()
	if o.DrainDelay != 0 || o.ShutdownTimeout != DefaultShutdownTimeout || o.IdleTimeout != DefaultIdleTimeout {
		t.Fatalf("zero Options → %+v", o)
	}
	if DefaultIdleTimeout <= 60*time.Second {
		t.Fatalf("DefaultIdleTimeout %v must exceed the ALB's default idle timeout of 60s", DefaultIdleTimeout)
	}
}
