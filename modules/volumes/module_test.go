package volumes

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/modules/events"
	"github.com/wharfd/wharfd/modules/host"
)

func TestModule(t *testing.T) {
	root := t.TempDir()
	bus := events.New(16, 16)
	defer bus.Close()
	var s *Service
	app := fxtest.New(t,
		fx.NopLogger,
		Module.Fx(nil),
		fx.Supply(zap.NewNop(), host.DataRoot{Path: root}, host.Identity{}, bus),
		fx.Populate(&s),
	)
	app.RequireStart()
	if want := filepath.Join(root, "volumes"); s.Root() != want {
		t.Errorf("root = %s, want %s", s.Root(), want)
	}
	if st, err := os.Stat(s.Root()); err != nil || st.Mode().Perm() != 0o701 {
		t.Errorf("volumes directory: %v, %v", st, err)
	}
	if _, _, err := s.Create(context.Background(), CreateOptions{Name: "wired"}); err != nil {
		t.Fatal(err)
	}
	past, _, cancel := bus.Subscribe(time.Unix(1, 0), time.Time{}, events.Filter{})
	cancel()
	var actions []string
	for _, m := range past {
		actions = append(actions, string(m.Type)+" "+string(m.Action)+" "+m.Actor.ID)
	}
	if !slices.Contains(actions, "volume create wired") {
		t.Errorf("events on the bus = %q", actions)
	}
	app.RequireStop()
}
