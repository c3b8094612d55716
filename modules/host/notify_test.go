package host

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/modules/config"
	"github.com/wharfd/wharfd/pipeline"
)

// notifySocket opens a unixgram socket standing in for systemd's, points
// NOTIFY_SOCKET at it, and returns a function reading the next message.
func notifySocket(t *testing.T) func() string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return func() string {
		t.Helper()
		// Messages are sent synchronously before the call returns; the
		// deadline only keeps a broken test from hanging.
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		buf := make([]byte, 4096)
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(buf[:n])
	}
}

// afterNotifier is a stage that begins after the notifier.
type afterNotifier struct{}

func TestNotifierBootReadyStop(t *testing.T) {
	next := notifySocket(t)
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
	// The reload stage's own hooks (SIGHUP) are not started: the test
	// reloads by hand.
	live := config.NewLive(config.LiveParams{Flags: flags, Config: cfg, Logger: zap.NewNop(), Lifecycle: fxtest.NewLifecycle(t)})

	mod := pipeline.Module("test",
		pipeline.Stage{Name: "systemd-notify", Ctor: NewNotifier},
		pipeline.Stage{Name: "after", Ctor: func(*Notifier) afterNotifier { return afterNotifier{} }},
	)
	g, err := pipeline.NewGraph([]pipeline.Mod{mod}, zap.NewNop(), (*pipeline.Recorder)(nil), (*config.Live)(nil))
	if err != nil {
		t.Fatal(err)
	}
	rec := pipeline.NewRecorder(g, zap.NewNop())
	var n *Notifier
	app := fxtest.New(t,
		fx.WithLogger(func() fxevent.Logger { return rec }),
		fx.Supply(zap.NewNop(), rec, live),
		g.Options(rec),
		fx.Invoke(g.Root(rec)),
		fx.Populate(&n),
	)
	app.RequireStart()

	if got := next(); got != "STATUS=starting after (2/2)" {
		t.Errorf("first notification %q, want the boot status", got)
	}
	// A reload before the daemon is ready says nothing: READY=1 is
	// still to come.
	os.WriteFile(cfgFile, []byte(`{"debug": true}`), 0o644)
	if err := live.Reload(); err != nil {
		t.Fatal(err)
	}
	n.Ready()
	if got := next(); !strings.HasPrefix(got, "READY=1\n") {
		t.Errorf("after Ready: %q, want READY=1", got)
	}
	os.WriteFile(cfgFile, []byte(`{"debug": false}`), 0o644)
	if err := live.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := next(); !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Errorf("reload: %q, want RELOADING=1 with MONOTONIC_USEC", got)
	}
	if got := next(); !strings.HasPrefix(got, "READY=1\n") {
		t.Errorf("after reload: %q, want READY=1", got)
	}
	app.RequireStop()
	if got := next(); !strings.HasPrefix(got, "STOPPING=1\n") {
		t.Errorf("on stop: %q, want STOPPING=1", got)
	}
}

func TestNotifierWithoutSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	os.Unsetenv("NOTIFY_SOCKET")
	var sent []string
	n := newNotifier(zap.NewNop(), func(_ bool, state string) (bool, error) {
		sent = append(sent, state)
		return false, nil
	})
	n.Status("x")
	n.Ready()
	n.Stopping()
	if len(sent) != 3 {
		t.Errorf("sent %q", sent)
	}
	// The real sender is a no-op without NOTIFY_SOCKET.
	real := NewNotifier(NotifierParams{Lifecycle: fxtest.NewLifecycle(t), Logger: zap.NewNop()})
	real.Ready()
	real.Stopping()
}
