package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"go.uber.org/goleak"
	"go.uber.org/zap"
)

func TestCheckHealthConfig(t *testing.T) {
	tests := []struct {
		name    string
		give    *container.HealthConfig
		wantErr string
	}{
		{name: "none"},
		{name: "zero values inherit", give: &container.HealthConfig{Test: []string{"CMD", "true"}}},
		{name: "one millisecond", give: &container.HealthConfig{Interval: time.Millisecond, Timeout: time.Millisecond, StartPeriod: time.Millisecond, StartInterval: time.Millisecond}},
		{name: "interval too short", give: &container.HealthConfig{Interval: time.Microsecond}, wantErr: "Interval in Healthcheck cannot be less than 1ms"},
		{name: "negative timeout", give: &container.HealthConfig{Timeout: -time.Second}, wantErr: "Timeout in Healthcheck cannot be less than 1ms"},
		{name: "start period too short", give: &container.HealthConfig{StartPeriod: 10}, wantErr: "StartPeriod in Healthcheck cannot be less than 1ms"},
		{name: "start interval too short", give: &container.HealthConfig{StartInterval: 10}, wantErr: "StartInterval in Healthcheck cannot be less than 1ms"},
		{name: "negative retries", give: &container.HealthConfig{Retries: -1}, wantErr: "Retries in Healthcheck cannot be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkHealthConfig(tt.give)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr || !errdefs.IsInvalidArgument(err) {
				t.Errorf("checkHealthConfig = %v, want InvalidArgument %q", err, tt.wantErr)
			}
		})
	}
}

func TestMergeHealthConfig(t *testing.T) {
	image := &container.HealthConfig{Test: []string{"CMD-SHELL", "check"}, Interval: time.Minute, Timeout: 5 * time.Second, Retries: 4}
	tests := []struct {
		name      string
		giveUser  *container.HealthConfig
		giveImage *container.HealthConfig
		want      *container.HealthConfig
	}{
		{name: "neither"},
		{name: "image only", giveImage: image, want: image},
		{name: "user only", giveUser: &container.HealthConfig{Test: []string{"NONE"}}, want: &container.HealthConfig{Test: []string{"NONE"}}},
		{
			name: "user overrides some", giveImage: image,
			giveUser: &container.HealthConfig{Interval: time.Second, Retries: 1},
			want:     &container.HealthConfig{Test: []string{"CMD-SHELL", "check"}, Interval: time.Second, Timeout: 5 * time.Second, Retries: 1},
		},
		{
			name: "user test kept", giveImage: image,
			giveUser: &container.HealthConfig{Test: []string{"CMD", "true"}},
			want:     &container.HealthConfig{Test: []string{"CMD", "true"}, Interval: time.Minute, Timeout: 5 * time.Second, Retries: 4},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &container.Config{Healthcheck: tt.giveUser}
			mergeHealthConfig(cfg, tt.giveImage)
			got, want := fmt.Sprintf("%+v", cfg.Healthcheck), fmt.Sprintf("%+v", tt.want)
			if (cfg.Healthcheck == nil) != (tt.want == nil) || cfg.Healthcheck != nil && got != want {
				t.Errorf("merged %s, want %s", got, want)
			}
			if cfg.Healthcheck != nil && cfg.Healthcheck == tt.giveImage {
				t.Error("merged config shares the image's")
			}
		})
	}
}

func TestProbeCommand(t *testing.T) {
	tests := []struct {
		name      string
		giveTest  []string
		giveShell []string
		want      []string
	}{
		{name: "no healthcheck"},
		{name: "empty test", giveTest: []string{}},
		{name: "none", giveTest: []string{"NONE"}},
		{name: "unknown kind", giveTest: []string{"HTTP", "/"}},
		{name: "cmd without command", giveTest: []string{"CMD"}},
		{name: "cmd", giveTest: []string{"CMD", "cat", "/ready"}, want: []string{"cat", "/ready"}},
		{name: "cmd-shell", giveTest: []string{"CMD-SHELL", "test -f /ready"}, want: []string{"/bin/sh", "-c", "test -f /ready"}},
		{name: "cmd-shell with SHELL", giveTest: []string{"CMD-SHELL", "x"}, giveShell: []string{"/bin/bash", "-ec"}, want: []string{"/bin/bash", "-ec", "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &container.Config{Shell: tt.giveShell}
			if tt.giveTest != nil {
				cfg.Healthcheck = &container.HealthConfig{Test: tt.giveTest}
			}
			if got := probeCommand(cfg); !slices.Equal(got, tt.want) {
				t.Errorf("probeCommand = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNextHealth(t *testing.T) {
	tests := []struct {
		name          string
		giveCodes     []int
		giveRetries   int
		giveInStart   bool
		wantStatus    container.HealthStatus
		wantStreak    int
		wantLogCodes  []int
		wantStatusLog []container.HealthStatus
	}{
		{name: "first success", giveCodes: []int{0}, wantStatus: container.Healthy, wantLogCodes: []int{0}},
		{name: "failures under the default retries", giveCodes: []int{1, 1}, wantStatus: container.Starting, wantStreak: 2, wantLogCodes: []int{1, 1}},
		{name: "three failures", giveCodes: []int{1, 2, -1}, wantStatus: container.Unhealthy, wantStreak: 3, wantLogCodes: []int{1, 2, -1}},
		{name: "one retry", giveCodes: []int{1}, giveRetries: 1, wantStatus: container.Unhealthy, wantStreak: 1, wantLogCodes: []int{1}},
		{name: "success resets the streak", giveCodes: []int{1, 1, 0}, wantStatus: container.Healthy, wantLogCodes: []int{1, 1, 0}},
		{name: "healthy stays healthy until retries", giveCodes: []int{0, 1, 1}, wantStatus: container.Healthy, wantStreak: 2, wantLogCodes: []int{0, 1, 1}},
		{name: "failures in the start period do not count", giveCodes: []int{1, 1, 1, 1}, giveInStart: true, wantStatus: container.Starting, wantLogCodes: []int{1, 1, 1, 1}},
		{name: "only the last five kept", giveCodes: []int{1, 2, 3, 4, 5, 0, 7}, wantStatus: container.Unhealthy, wantStreak: 1, wantLogCodes: []int{3, 4, 5, 0, 7},
			giveRetries: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &container.Health{Status: container.Starting}
			for _, code := range tt.giveCodes {
				prev := h
				prevLog := slices.Clone(prev.Log)
				h = nextHealth(h, &container.HealthcheckResult{ExitCode: code}, tt.giveRetries, tt.giveInStart)
				if !slices.Equal(prev.Log, prevLog) {
					t.Fatal("nextHealth changed the Health it was given")
				}
			}
			var codes []int
			for _, r := range h.Log {
				codes = append(codes, r.ExitCode)
			}
			if h.Status != tt.wantStatus || h.FailingStreak != tt.wantStreak || !slices.Equal(codes, tt.wantLogCodes) {
				t.Errorf("health %s streak %d log %v; want %s %d %v", h.Status, h.FailingStreak, codes, tt.wantStatus, tt.wantStreak, tt.wantLogCodes)
			}
		})
	}
}

func TestHealthDisplay(t *testing.T) {
	tests := []struct {
		name        string
		give        *container.Health
		wantStatus  container.HealthStatus
		wantSuffix  string
		wantMatches []string
	}{
		{name: "no healthcheck", wantStatus: "none", wantMatches: []string{"none"}},
		{name: "starting", give: &container.Health{Status: container.Starting}, wantStatus: "starting", wantSuffix: " (health: starting)", wantMatches: []string{"starting"}},
		{name: "healthy", give: &container.Health{Status: container.Healthy}, wantStatus: "healthy", wantSuffix: " (healthy)", wantMatches: []string{"healthy", "none"}},
		{name: "not set is unhealthy", give: &container.Health{}, wantStatus: "unhealthy", wantSuffix: " (unhealthy)", wantMatches: []string{"unhealthy"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := healthStatus(tt.give); got != tt.wantStatus {
				t.Errorf("healthStatus = %q", got)
			}
			if got := healthSuffix(tt.give); got != tt.wantSuffix {
				t.Errorf("healthSuffix = %q", got)
			}
			if !matchHealth(tt.wantMatches, tt.give) || matchHealth([]string{"other"}, tt.give) || !matchHealth(nil, tt.give) {
				t.Errorf("matchHealth wrong for %v", tt.wantMatches)
			}
		})
	}
	if err := checkHealthFilter([]string{"healthy", "none", "starting", "unhealthy"}); err != nil {
		t.Error(err)
	}
	if err := checkHealthFilter([]string{"sick"}); err == nil || !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "sick") {
		t.Errorf("checkHealthFilter(sick) = %v", err)
	}
	running := &State{Running: true, Health: &container.Health{Status: container.Unhealthy, FailingStreak: 4}}
	if s := healthSummary(running); s.Status != container.Unhealthy || s.FailingStreak != 4 {
		t.Errorf("summary of a running unhealthy container %+v", s)
	}
	if s := healthSummary(&State{Health: running.Health}); s.Status != container.NoHealthcheck {
		t.Errorf("summary of a stopped container %+v, want none", s)
	}
}

func TestLimitedBuffer(t *testing.T) {
	b := &limitedBuffer{max: 8}
	for _, p := range []string{"abc", "defgh", "ijk"} {
		if n, err := b.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", p, n, err)
		}
	}
	if got := b.String(); got != "abcdefgh..." {
		t.Errorf("String() = %q", got)
	}
	exact := &limitedBuffer{max: 3}
	exact.Write([]byte("abc")) //nolint:errcheck // never fails
	if got := exact.String(); got != "abc" {
		t.Errorf("String() = %q, want no mark when nothing was cut", got)
	}
}

// eventRecorder is an EventLogger keeping the actions in order.
type eventRecorder struct {
	mu      sync.Mutex
	actions []string
	changed chan struct{}
}

func (r *eventRecorder) Log(_ events.Type, action events.Action, _ events.Actor) {
	r.mu.Lock()
	r.actions = append(r.actions, string(action))
	r.mu.Unlock()
	r.changed <- struct{}{}
}

// waitFor waits for an event with the action, for up to 10 seconds.
func (r *eventRecorder) waitFor(t *testing.T, action string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		seen := slices.Contains(r.actions, action)
		r.mu.Unlock()
		if seen {
			return
		}
		select {
		case <-r.changed:
		case <-timeout:
			t.Fatalf("no %q event; got %q", action, r.actions)
		}
	}
}

// scriptedProbe answers with the exit codes in turn, then the last one
// forever.
type scriptedProbe struct {
	mu    sync.Mutex
	codes []int
	cmds  [][]string
}

func (p *scriptedProbe) run(_ context.Context, _ *Container, cmd []string, _ time.Duration) (*container.HealthcheckResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cmds = append(p.cmds, cmd)
	code := p.codes[0]
	if len(p.codes) > 1 {
		p.codes = p.codes[1:]
	}
	return &container.HealthcheckResult{ExitCode: code, Output: fmt.Sprintf("exit %d\n", code), End: time.Now()}, nil
}

// healthTestContainer is a running container with a healthcheck, in a
// daemon that records its events.
func healthTestContainer(t *testing.T, hc *container.HealthConfig) (*Daemon, *Container, *eventRecorder) {
	rec := &eventRecorder{changed: make(chan struct{}, 1000)}
	d := &Daemon{o: Options{Events: rec}, log: zap.NewNop()}
	id := strings.Repeat("ab", 32)
	dir := filepath.Join(t.TempDir(), id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	c := newContainer(dir, Record{
		ID: id, Name: "/probed", Config: &container.Config{Healthcheck: hc},
		State: State{Running: true, StartedAt: time.Now(), Health: &container.Health{Status: container.Starting}},
	}, &container.HostConfig{})
	return d, c, rec
}

func TestHealthLoop(t *testing.T) {
	defer goleak.VerifyNone(t)
	hc := &container.HealthConfig{Test: []string{"CMD", "check"}, Interval: 5 * time.Millisecond, Retries: 2}
	d, c, events := healthTestContainer(t, hc)
	probe := &scriptedProbe{codes: []int{1, 0, 1, 1, 1}}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.healthLoop(c, stop, []string{"check"}, *hc, time.Now(), probe.run)
	}()
	events.waitFor(t, "health_status: healthy")
	events.waitFor(t, "health_status: unhealthy")
	close(stop)
	<-done

	rec, _ := c.snapshot()
	h := rec.State.Health
	if h.Status != container.Unhealthy || h.FailingStreak < 2 || len(h.Log) > healthMaxLog || len(h.Log) < 4 {
		t.Errorf("health %+v", h)
	}
	last := h.Log[len(h.Log)-1]
	if last.Output != "exit 1\n" || last.Start.IsZero() || last.End.IsZero() {
		t.Errorf("last result %+v", last)
	}
	events.mu.Lock()
	defer events.mu.Unlock()
	if want := []string{"health_status: healthy", "health_status: unhealthy"}; !slices.Equal(events.actions, want) {
		t.Errorf("events %q, want %q (one per change of status)", events.actions, want)
	}
	if b, err := loadContainer(c.dir); err != nil || b.rec.State.Health == nil || b.rec.State.Health.Status != container.Unhealthy {
		t.Errorf("saved record: %v, %+v", err, b)
	}
}

func TestHealthLoopStopCancelsProbe(t *testing.T) {
	defer goleak.VerifyNone(t)
	hc := &container.HealthConfig{Test: []string{"CMD", "hang"}, Interval: time.Millisecond}
	d, c, _ := healthTestContainer(t, hc)
	started := make(chan struct{})
	probe := func(ctx context.Context, _ *Container, _ []string, _ time.Duration) (*container.HealthcheckResult, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.healthLoop(c, stop, []string{"hang"}, *hc, time.Now(), probe)
	}()
	<-started
	close(stop)
	<-done
	rec, _ := c.snapshot()
	if h := rec.State.Health; h.Status != container.Starting || len(h.Log) != 0 {
		t.Errorf("a probe cut by stop was recorded: %+v", h)
	}
}

func TestHealthStartPeriod(t *testing.T) {
	defer goleak.VerifyNone(t)
	// Failures within a long start period never make it unhealthy.
	hc := &container.HealthConfig{Test: []string{"CMD", "check"}, Interval: time.Hour, StartInterval: 2 * time.Millisecond, StartPeriod: time.Hour, Retries: 1}
	d, c, _ := healthTestContainer(t, hc)
	var calls int
	third := make(chan struct{})
	probe := func(context.Context, *Container, []string, time.Duration) (*container.HealthcheckResult, error) {
		if calls++; calls == 3 {
			close(third)
		}
		return &container.HealthcheckResult{ExitCode: 1, End: time.Now()}, nil
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.healthLoop(c, stop, []string{"check"}, *hc, time.Now(), probe)
	}()
	select {
	case <-third:
	case <-time.After(10 * time.Second):
		t.Fatal("fewer than 3 probes at the start interval")
	}
	close(stop)
	<-done
	rec, _ := c.snapshot()
	if h := rec.State.Health; h.Status != container.Starting || h.FailingStreak != 0 {
		t.Errorf("failures in the start period counted: %+v", h)
	}
}

func TestUpdateHealthLocked(t *testing.T) {
	defer goleak.VerifyNone(t)
	hc := &container.HealthConfig{Test: []string{"CMD", "check"}, Interval: time.Hour}
	d, c, _ := healthTestContainer(t, hc)
	c.mu.Lock()
	d.initHealthLocked(c)
	first := c.health
	c.rec.State.Paused = true
	d.updateHealthLocked(c)
	paused := c.health
	c.rec.State.Paused = false
	d.updateHealthLocked(c)
	resumed := c.health
	c.stopHealthLocked()
	c.mu.Unlock()
	d.bg.Wait()
	if first == nil || paused != nil || resumed == nil || resumed == first {
		t.Errorf("monitor: started %v, paused %v, resumed %v", first != nil, paused != nil, resumed != nil)
	}

	none := &container.Config{Healthcheck: &container.HealthConfig{Test: []string{"NONE"}}}
	c2 := newContainer(t.TempDir(), Record{ID: strings.Repeat("cd", 32), Config: none, State: State{Running: true}}, &container.HostConfig{})
	c2.mu.Lock()
	d.initHealthLocked(c2)
	c2.mu.Unlock()
	if c2.health != nil || c2.rec.State.Health != nil {
		t.Error("a NONE healthcheck started a monitor")
	}
}
