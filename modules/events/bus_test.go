package events

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/modules/config"
	"github.com/wharfd/wharfd/modules/host"
)

// clock is a fake time source advancing one second per event.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

func newTestBus(history, buffer int) *Bus {
	b := New(history, buffer)
	c := &clock{t: time.Unix(1000, 500)}
	b.now = c.now
	return b
}

func logN(b *Bus, ids ...string) {
	for _, id := range ids {
		b.Log(events.ContainerEventType, events.ActionStart, events.Actor{ID: id})
	}
}

func ids(ms []events.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Actor.ID)
	}
	return out
}

func TestLogStamps(t *testing.T) {
	b := New(4, 4)
	before := time.Now()
	_, live, cancel := b.Subscribe(time.Time{}, time.Time{}, Filter{})
	defer cancel()
	b.Log(events.VolumeEventType, events.ActionCreate, events.Actor{ID: "data", Attributes: map[string]string{"driver": "local"}})
	m := <-live
	if m.Type != events.VolumeEventType || m.Action != events.ActionCreate || m.Actor.ID != "data" || m.Actor.Attributes["driver"] != "local" {
		t.Errorf("event %+v", m)
	}
	if m.Scope != "local" {
		t.Errorf("scope %q, want local", m.Scope)
	}
	if m.TimeNano < before.UnixNano() || m.Time != m.TimeNano/int64(time.Second) {
		t.Errorf("time %d / %d not stamped now", m.Time, m.TimeNano)
	}
}

func TestSubscribePast(t *testing.T) {
	b := newTestBus(3, 8)
	logN(b, "a", "b", "c", "d", "e") // at 1001..1005 s; the ring keeps c, d, e
	tests := []struct {
		name      string
		giveSince time.Time
		giveUntil time.Time
		giveArgs  map[string][]string
		want      []string
	}{
		{name: "neither since nor until: no past", want: nil},
		{name: "since the epoch: the whole ring", giveSince: time.Unix(1, 0), want: []string{"c", "d", "e"}},
		{name: "since", giveSince: time.Unix(1004, 0), want: []string{"d", "e"}},
		{name: "since is inclusive to the nanosecond", giveSince: time.Unix(1004, 500), want: []string{"d", "e"}},
		{name: "until only", giveUntil: time.Unix(1004, 500), want: []string{"c", "d"}},
		{name: "since and until", giveSince: time.Unix(1004, 0), giveUntil: time.Unix(1004, 999), want: []string{"d"}},
		{name: "filtered", giveSince: time.Unix(1, 0), giveArgs: map[string][]string{"container": {"d"}}, want: []string{"d"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseFilter(tt.giveArgs)
			if err != nil {
				t.Fatal(err)
			}
			past, _, cancel := b.Subscribe(tt.giveSince, tt.giveUntil, f)
			defer cancel()
			if got := ids(past); !equal(got, tt.want) {
				t.Errorf("past %v, want %v", got, tt.want)
			}
		})
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSubscribeLive(t *testing.T) {
	b := newTestBus(8, 8)
	logN(b, "before")
	f, _ := ParseFilter(map[string][]string{"type": {"container"}})
	past, live, cancel := b.Subscribe(time.Unix(1, 0), time.Time{}, f)
	if got := ids(past); !equal(got, []string{"before"}) {
		t.Errorf("past %v", got)
	}
	b.Log(events.VolumeEventType, events.ActionCreate, events.Actor{ID: "vol"})
	logN(b, "after")
	if m := <-live; m.Actor.ID != "after" {
		t.Errorf("live got %q, want the container event only", m.Actor.ID)
	}
	cancel()
	cancel() // twice is fine
	if _, ok := <-live; ok {
		t.Error("channel open after cancel")
	}
	if n := b.Subscribers(); n != 0 {
		t.Errorf("%d subscribers after cancel", n)
	}
}

func TestSubscribeUntilStopsLive(t *testing.T) {
	b := newTestBus(8, 8)
	_, live, cancel := b.Subscribe(time.Time{}, time.Unix(1002, 0), Filter{})
	defer cancel()
	logN(b, "in", "late") // 1001.0000005 and 1002.0000005
	if m := <-live; m.Actor.ID != "in" {
		t.Fatalf("got %q", m.Actor.ID)
	}
	if len(live) != 0 {
		t.Errorf("event after until sent")
	}
}

func TestSlowSubscriberDropped(t *testing.T) {
	b := newTestBus(16, 2)
	_, slow, cancelSlow := b.Subscribe(time.Time{}, time.Time{}, Filter{})
	defer cancelSlow()
	_, fast, cancelFast := b.Subscribe(time.Time{}, time.Time{}, Filter{})
	defer cancelFast()

	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 5 {
			logN(b, string(rune('a'+i)))
			// The fast reader keeps up.
			<-fast
		}
	}()
	<-done // Log never blocked on the slow reader
	var got []string
	for m := range slow {
		got = append(got, m.Actor.ID)
	}
	if !equal(got, []string{"a", "b"}) {
		t.Errorf("slow subscriber got %v before being dropped, want [a b]", got)
	}
	if n := b.Subscribers(); n != 1 {
		t.Errorf("%d subscribers, want the fast one only", n)
	}
}

func TestCloseEndsSubscriptions(t *testing.T) {
	b := newTestBus(8, 8)
	_, live, cancel := b.Subscribe(time.Time{}, time.Time{}, Filter{})
	b.Close()
	if _, ok := <-live; ok {
		t.Error("channel open after Close")
	}
	cancel()
	logN(b, "kept")
	past, late, _ := b.Subscribe(time.Unix(1, 0), time.Time{}, Filter{})
	if _, ok := <-late; ok || !equal(ids(past), []string{"kept"}) {
		t.Errorf("after Close: past %v, channel open %v", ids(past), ok)
	}
}

func TestConcurrentLogAndSubscribe(t *testing.T) {
	b := New(64, 1024)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				b.Log(events.ContainerEventType, events.ActionStart, events.Actor{ID: string(rune('a' + w))})
			}
		}()
	}
	_, live, cancel := b.Subscribe(time.Time{}, time.Time{}, Filter{})
	wg.Wait()
	cancel()
	for range live {
	}
}

func TestReloadEvent(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "daemon.json")
	os.WriteFile(cfgFile, []byte(`{}`), 0o644)
	flags, err := config.ParseFlags([]string{"--config-file", cfgFile})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(flags)
	if err != nil {
		t.Fatal(err)
	}
	live := config.NewLive(config.LiveParams{Flags: flags, Config: cfg, Logger: zap.NewNop(), Lifecycle: fxtest.NewLifecycle(t)})
	lc := fxtest.NewLifecycle(t)
	b := NewBus(BusParams{Lifecycle: lc, Logger: zap.NewNop(), EngineID: host.EngineID{ID: "engine-1"}, Live: live})
	lc.RequireStart()
	f, _ := ParseFilter(map[string][]string{"type": {"daemon"}, "event": {"reload"}})
	_, sub, cancel := b.Subscribe(time.Time{}, time.Time{}, f)
	defer cancel()

	os.WriteFile(cfgFile, []byte(`{"debug": true, "labels": ["a=b"], "max-concurrent-downloads": 7}`), 0o644)
	if err := live.Reload(); err != nil {
		t.Fatal(err)
	}
	m := <-sub
	if m.Actor.ID != "engine-1" {
		t.Errorf("actor %q, want the engine ID", m.Actor.ID)
	}
	want := map[string]string{
		"debug": "true", "labels": `["a=b"]`, "max-concurrent-downloads": "7", "max-concurrent-uploads": "5",
		"registry-mirrors": "[]", "live-restore": "false", "shutdown-timeout": "15", "default-runtime": "runc",
	}
	for k, v := range want {
		if m.Actor.Attributes[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, m.Actor.Attributes[k], v)
		}
	}
	if host, _ := os.Hostname(); m.Actor.Attributes["name"] != host {
		t.Errorf("name attribute %q, want the host name %q", m.Actor.Attributes["name"], host)
	}
	lc.RequireStop()
	if _, ok := <-sub; ok {
		t.Error("subscription open after the bus stopped")
	}
}

func TestReloadAttributesRuntimes(t *testing.T) {
	cfg := &config.Config{DefaultRuntime: "runc", Runtimes: map[string]config.Runtime{"youki": {Path: "/usr/bin/youki"}, "crun": {Path: "crun"}}}
	if got := ReloadAttributes(cfg, "")["runtimes"]; got != "runc:runc crun:crun youki:/usr/bin/youki" {
		t.Errorf("runtimes %q", got)
	}
	if _, ok := ReloadAttributes(cfg, "")["name"]; ok {
		t.Error("name attribute without a host name")
	}
}
