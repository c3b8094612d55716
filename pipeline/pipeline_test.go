package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"
	"go.uber.org/fx/fxtest"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Toy values: A → B → C, A → D, and a skipped E that needs nothing.
type (
	valA struct{}
	valB struct{}
	valC struct{}
	valD struct{}
	valE struct{ reason string }
)

func (e *valE) SkipReason() string { return e.reason }

// journal records the order in which hooks and constructors ran.
type journal struct {
	mu  sync.Mutex
	got []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.got = append(j.got, s)
}

func (j *journal) String() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return strings.Join(j.got, " ")
}

type toy struct {
	j      *journal
	failB  error
	failOn string // stage name whose OnStart fails
}

func (t *toy) newA(lc fx.Lifecycle) *valA {
	t.j.add("new:a")
	lc.Append(fx.StartStopHook(func() { t.j.add("start:a") }, func() { t.j.add("stop:a") }))
	return &valA{}
}

func (t *toy) newB(_ *valA, lc fx.Lifecycle) (*valB, error) {
	t.j.add("new:b")
	if t.failB != nil {
		return nil, t.failB
	}
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error { t.j.add("start:b"); return nil },
		OnStop:  func(context.Context) error { t.j.add("stop:b"); return nil },
	})
	return &valB{}, nil
}

func (t *toy) newC(_ *valB) *valC { t.j.add("new:c"); return &valC{} }

type dParams struct {
	fx.In
	A *valA
	C *valC `optional:"true"`
}

func (t *toy) newD(p dParams, lc fx.Lifecycle) *valD {
	t.j.add("new:d")
	lc.Append(fx.Hook{OnStart: func(context.Context) error {
		t.j.add("start:d")
		if t.failOn == "d" {
			return errors.New("boom in d")
		}
		return nil
	}, OnStop: func(context.Context) error { t.j.add("stop:d"); return nil }})
	return &valD{}
}

func (t *toy) newE() *valE { return &valE{reason: "not on this host"} }

func (t *toy) mods() []Mod {
	return []Mod{
		Module("first",
			Stage{Step: "1.1", Name: "a", Doc: "root", Ctor: t.newA},
			Stage{Step: "1.2", Name: "b", Doc: "needs a", Ctor: t.newB},
		),
		Module("second",
			Stage{Step: "2.1", Name: "c", Doc: "needs b", Ctor: t.newC},
			Stage{Step: "2.2", Name: "d", Doc: "needs a, c optional", Ctor: t.newD},
			Stage{Step: "2.3", Name: "e", Doc: "skips", Ctor: t.newE},
		),
	}
}

func boot(t *testing.T, tt *toy) (*fx.App, *Recorder, *observer.ObservedLogs, error) {
	t.Helper()
	g, err := NewGraph(tt.mods())
	if err != nil {
		t.Fatalf("NewGraph: %v", err)
	}
	core, logs := observer.New(zap.InfoLevel)
	rec := NewRecorder(g, zap.New(core))
	rec.OnProgress(func(id string, n, total int) {
		tt.j.add(fmt.Sprintf("progress:%s:%d/%d", strings.Fields(id)[1], n, total))
	})
	app := fx.New(fx.WithLogger(func() fxevent.Logger { return rec }), g.Options(rec), fx.Invoke(g.Root(rec)))
	err = app.Start(context.Background())
	return app, rec, logs, rec.Err(err)
}

func TestGraphEdgesAndOrder(t *testing.T) {
	g, err := NewGraph((&toy{j: &journal{}}).mods())
	if err != nil {
		t.Fatal(err)
	}
	var edges []string
	for _, e := range g.Edges {
		s := e.From + "->" + e.To + ":" + e.Label
		if e.Optional {
			s += "?"
		}
		edges = append(edges, s)
	}
	want := "1.1 a->1.2 b:*pipeline.valA 1.1 a->2.2 d:*pipeline.valA 1.2 b->2.1 c:*pipeline.valB 2.1 c->2.2 d:*pipeline.valC?"
	if got := strings.Join(edges, " "); got != want {
		t.Errorf("edges:\n got %s\nwant %s", got, want)
	}
	if got, want := strings.Join(g.Order(), ","), "1.1 a,1.2 b,2.1 c,2.2 d,2.3 e"; got != want {
		t.Errorf("order = %s, want %s", got, want)
	}
	if got, want := strings.Join(g.Dependents("1.2 b"), ","), "2.1 c,2.2 d"; got != want {
		t.Errorf("dependents of b = %s, want %s", got, want)
	}
}

func TestBootOrderTimingsAndReverseStop(t *testing.T) {
	tt := &toy{j: &journal{}}
	app, rec, logs, err := boot(t, tt)
	if err != nil {
		t.Fatalf("boot: %v", err)
	}
	if err := app.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := "progress:a:1/5 new:a progress:b:2/5 new:b progress:c:3/5 new:c progress:d:4/5 new:d progress:e:5/5 " +
		"start:a start:b start:d stop:d stop:b stop:a"
	if got := tt.j.String(); got != want {
		t.Errorf("journal:\n got %s\nwant %s", got, want)
	}
	rep := rec.Report()
	if !rep.Done {
		t.Fatal("report not done after boot")
	}
	for _, s := range rep.Stages {
		wantState := OK
		if s.Name == "e" {
			wantState = Skipped
		}
		if s.State != wantState {
			t.Errorf("stage %s state = %s (%s), want %s", s.ID, s.State, s.Reason, wantState)
		}
		if s.Start.IsZero() || s.End.Before(s.Start) {
			t.Errorf("stage %s: start %v end %v", s.ID, s.Start, s.End)
		}
		if s.Constructor <= 0 {
			t.Errorf("stage %s: constructor runtime %v, want > 0", s.ID, s.Constructor)
		}
	}
	for _, name := range []string{"1.1 a", "1.2 b", "2.2 d"} {
		s, _ := rep.Stage(name)
		if s.OnStart <= 0 || s.OnStop <= 0 {
			t.Errorf("stage %s: OnStart %v OnStop %v, want both > 0", name, s.OnStart, s.OnStop)
		}
	}
	if e, _ := rep.Stage("2.3 e"); e.Reason != "not on this host" {
		t.Errorf("skip reason = %q", e.Reason)
	}
	// The critical path is a chain along edges ending at a sink.
	if len(rep.CriticalPath) == 0 || rep.CriticalPath[0] != "1.1 a" {
		t.Errorf("critical path = %v, want it to start at 1.1 a", rep.CriticalPath)
	}
	for i := 1; i < len(rep.CriticalPath); i++ {
		if !hasEdge(rec.g, rep.CriticalPath[i-1], rep.CriticalPath[i]) {
			t.Errorf("critical path %v: no edge %s → %s", rep.CriticalPath, rep.CriticalPath[i-1], rep.CriticalPath[i])
		}
	}
	lines := logs.FilterMessage("boot complete").All()
	if len(lines) != 1 || !strings.HasPrefix(lines[0].ContextMap()["critical_path"].(string), "critical path ") {
		t.Errorf("boot complete log lines = %v", lines)
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Errorf("report is not JSON-serialisable: %v", err)
	}
}

func hasEdge(g *Graph, from, to string) bool {
	for _, e := range g.Edges {
		if e.From == from && e.To == to {
			return true
		}
	}
	return false
}

func TestConstructorFailureNamesStageAndDependents(t *testing.T) {
	tt := &toy{j: &journal{}, failB: errors.New("disk on fire")}
	_, rec, logs, err := boot(t, tt)
	se, ok := AsStageError(err)
	if !ok {
		t.Fatalf("error %v is not a StageError", err)
	}
	if se.Stage != "1.2 b" || se.Cause.Error() != "disk on fire" {
		t.Errorf("StageError = %+v", se)
	}
	if got := strings.Join(se.NotStarted, ","); got != "2.1 c,2.2 d" {
		t.Errorf("not started = %s", got)
	}
	want := "stage 1.2 b failed: disk on fire (not started because of it: 2.1 c, 2.2 d)"
	if err.Error() != want {
		t.Errorf("error:\n got %s\nwant %s", err, want)
	}
	if strings.Contains(tt.j.String(), "start:") {
		t.Errorf("hooks ran after a constructor failure: %s", tt.j)
	}
	rep := rec.Report()
	if b, _ := rep.Stage("1.2 b"); b.State != Failed {
		t.Errorf("b state = %s", b.State)
	}
	if c, _ := rep.Stage("2.1 c"); c.State != Pending {
		t.Errorf("c state = %s, want pending", c.State)
	}
	if rep.Failed != "1.2 b" {
		t.Errorf("report.Failed = %q", rep.Failed)
	}
	if n := logs.FilterMessage("stage failed").Len(); n != 1 {
		t.Errorf("%d 'stage failed' lines, want 1", n)
	}
}

func TestStartFailureRollsBackInReverse(t *testing.T) {
	tt := &toy{j: &journal{}, failOn: "d"}
	_, rec, _, err := boot(t, tt)
	se, ok := AsStageError(err)
	if !ok || se.Stage != "2.2 d" || se.Hook != "OnStart" {
		t.Fatalf("error = %v, want a StageError for 2.2 d OnStart", err)
	}
	want := "progress:a:1/5 new:a progress:b:2/5 new:b progress:c:3/5 new:c progress:d:4/5 new:d progress:e:5/5 " +
		"start:a start:b start:d stop:b stop:a"
	if got := tt.j.String(); got != want {
		t.Errorf("journal:\n got %s\nwant %s", got, want)
	}
	if d, _ := rec.Report().Stage("2.2 d"); d.State != Failed || d.Reason != "boom in d" {
		t.Errorf("d = %+v", d)
	}
}

type (
	cyc1 struct{}
	cyc2 struct{}
	cyc3 struct{}
)

func TestGraphErrors(t *testing.T) {
	tests := []struct {
		name    string
		giveMod []Mod
		wantErr string
	}{
		{
			name: "missing provider",
			giveMod: []Mod{Module("m",
				Stage{Step: "1", Name: "x", Ctor: func(*valA) *valB { return nil }})},
			wantErr: "stage 1 x needs *pipeline.valA, which no stage provides",
		},
		{
			name: "cycle",
			giveMod: []Mod{Module("m",
				Stage{Step: "1", Name: "x", Ctor: func(*cyc3) *cyc1 { return nil }},
				Stage{Step: "2", Name: "y", Ctor: func(*cyc1) *cyc2 { return nil }},
				Stage{Step: "3", Name: "z", Ctor: func(*cyc2) *cyc3 { return nil }},
			)},
			wantErr: "cycle: 1 x → 2 y → 3 z → 1 x",
		},
		{
			name: "two providers",
			giveMod: []Mod{Module("m",
				Stage{Step: "1", Name: "x", Ctor: func() *valA { return nil }},
				Stage{Step: "2", Name: "y", Ctor: func() *valA { return nil }},
			)},
			wantErr: "*pipeline.valA is provided by two stages: 1 x and 2 y",
		},
		{
			name:    "provides nothing",
			giveMod: []Mod{Module("m", Stage{Step: "1", Name: "x", Ctor: func() error { return nil }})},
			wantErr: "stage 1 x: provides nothing",
		},
		{
			name:    "not a function",
			giveMod: []Mod{Module("m", Stage{Step: "1", Name: "x", Ctor: 42})},
			wantErr: "stage 1 x: constructor must be a function",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewGraph(tt.giveMod)
			if !errors.Is(err, ErrGraph) {
				t.Fatalf("err = %v, want ErrGraph", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v\nwant it to contain %q", err, tt.wantErr)
			}
		})
	}
}

type grouped struct{ n int }

func TestGroupsNamesAndExternals(t *testing.T) {
	type outA struct {
		fx.Out
		G grouped `group:"g"`
		N *valA   `name:"special"`
	}
	type outB struct {
		fx.Out
		G []grouped `group:"g,flatten"`
	}
	type inC struct {
		fx.In
		Gs []grouped `group:"g"`
		N  *valA     `name:"special"`
		L  *zap.Logger
	}
	mods := []Mod{Module("m",
		Stage{Step: "1", Name: "a", Ctor: func() outA { return outA{G: grouped{1}, N: &valA{}} }},
		Stage{Step: "2", Name: "b", Ctor: func() outB { return outB{G: []grouped{{2}, {3}}} }},
		Stage{Step: "3", Name: "c", Ctor: func(p inC) *valC {
			if len(p.Gs) != 3 || p.N == nil || p.L == nil {
				panic("bad injection")
			}
			return &valC{}
		}},
	)}
	if _, err := NewGraph(mods); err == nil || !strings.Contains(err.Error(), "*zap.Logger") {
		t.Fatalf("without the logger supplied: err = %v, want missing *zap.Logger", err)
	}
	g, err := NewGraph(mods, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	for _, e := range g.Edges {
		labels = append(labels, e.From+">"+e.To+":"+e.Label)
	}
	want := "1 a>3 c:*pipeline.valA[name=special] 1 a>3 c:pipeline.grouped[group=g] 2 b>3 c:pipeline.grouped[group=g]"
	if got := strings.Join(labels, " "); got != want {
		t.Errorf("edges:\n got %s\nwant %s", got, want)
	}
	rec := NewRecorder(g, zap.NewNop())
	app := fxtest.New(t, fx.WithLogger(func() fxevent.Logger { return rec }), fx.Supply(zap.NewNop()), g.Options(rec), fx.Invoke(g.Root(rec)))
	app.RequireStart().RequireStop()
	for _, s := range rec.Report().Stages {
		if s.State != OK {
			t.Errorf("stage %s = %s", s.ID, s.State)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		name string
		give time.Duration
		want string
	}{
		{name: "zero", give: 0, want: "0s"},
		{name: "microseconds", give: 12345 * time.Nanosecond, want: "12µs"},
		{name: "milliseconds", give: 30249 * time.Microsecond, want: "30.2ms"},
		{name: "seconds", give: 1234567 * time.Microsecond, want: "1.2346s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FormatDuration(tt.give); got != tt.want {
				t.Errorf("FormatDuration(%v) = %q, want %q", tt.give, got, tt.want)
			}
		})
	}
}

// undoToy: stage "open" makes something in its constructor and appends a
// stop-only hook to undo it; stage "serve" starts in OnStart; stage "late"
// fails, in its constructor or its OnStart.
type (
	opened struct{}
	served struct{}
	late   struct{}
)

func undoMods(j *journal, failCtor, failStart bool) []Mod {
	return []Mod{Module("m",
		Stage{Step: "1", Name: "open", Ctor: func(lc fx.Lifecycle) *opened {
			j.add("make:open")
			lc.Append(fx.StopHook(func() { j.add("undo:open") }))
			return &opened{}
		}},
		Stage{Step: "2", Name: "serve", Ctor: func(_ *opened, lc fx.Lifecycle) *served {
			lc.Append(fx.StartStopHook(func() { j.add("start:serve") }, func() { j.add("stop:serve") }))
			return &served{}
		}},
		Stage{Step: "3", Name: "late", Ctor: func(_ *served, lc fx.Lifecycle) (*late, error) {
			if failCtor {
				return nil, errors.New("ctor failed")
			}
			lc.Append(fx.StartHook(func() error {
				if failStart {
					return errors.New("start failed")
				}
				return nil
			}))
			return &late{}, nil
		}},
	)}
}

func TestAbortUndoesConstructorWork(t *testing.T) {
	tests := []struct {
		name          string
		giveFailCtor  bool
		giveFailStart bool
		wantJournal   string
	}{
		{
			name:         "constructor failure: fx runs no hook, Abort undoes open",
			giveFailCtor: true,
			wantJournal:  "make:open undo:open",
		},
		{
			name:          "start failure: fx rolls back, Abort adds nothing twice",
			giveFailStart: true,
			wantJournal:   "make:open start:serve stop:serve undo:open",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := &journal{}
			g, err := NewGraph(undoMods(j, tt.giveFailCtor, tt.giveFailStart))
			if err != nil {
				t.Fatal(err)
			}
			rec := NewRecorder(g, zap.NewNop())
			app := fx.New(fx.WithLogger(func() fxevent.Logger { return rec }), g.Options(rec), fx.Invoke(g.Root(rec)))
			if err := app.Start(context.Background()); err == nil {
				t.Fatal("boot succeeded, want a failure")
			}
			if err := rec.Abort(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := rec.Abort(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := j.String(); got != tt.wantJournal {
				t.Errorf("journal:\n got %s\nwant %s", got, tt.wantJournal)
			}
		})
	}
}
