package pipeline

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/fx/fxevent"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Recorder is the fxevent.Logger of a boot. It times each stage's
// constructor from fx's BeforeRun/Run events (matched by the stage's
// fx.Module name) and each stage's hooks through the fx.Lifecycle the
// stage's constructor is given (see Mod.Fx), so a hook counts for the
// stage whose constructor appended it, from wherever in that constructor.
// It keeps the boot Report and can undo a failed boot (Abort). fx's own
// events go to the zap logger at debug level.
//
// It is safe for concurrent use: the API reads the report while fx writes.
type Recorder struct {
	g   *Graph
	log *zap.Logger
	fx  *fxevent.ZapLogger
	now func() time.Time

	mu      sync.Mutex
	started time.Time
	stages  map[string]*StageReport
	hooks   []*hook                         // in the order appended
	begun   int                             // stages whose constructor has begun
	watch   []func(id string, n, total int) // see OnProgress
	done    bool
	total   time.Duration
	failed  *StageError
}

var _ fxevent.Logger = (*Recorder)(nil)

// NewRecorder returns a Recorder for a boot of g that starts now. log
// receives one info line when the boot completes (total time and critical
// path) and one error line naming the stage when it fails.
func NewRecorder(g *Graph, log *zap.Logger) *Recorder {
	return newRecorder(g, log, time.Now)
}

func newRecorder(g *Graph, log *zap.Logger, now func() time.Time) *Recorder {
	zl := &fxevent.ZapLogger{Logger: log.Named("fx")}
	zl.UseLogLevel(zapcore.DebugLevel)
	zl.UseErrorLevel(zapcore.DebugLevel)
	r := &Recorder{
		g: g, log: log, fx: zl, now: now,
		started: now(),
		stages:  make(map[string]*StageReport, len(g.Nodes)),
	}
	for _, n := range g.Nodes {
		r.stages[n.ID()] = &StageReport{ID: n.ID(), Step: n.Step, Name: n.Name, Module: n.Module(), State: Pending}
	}
	return r
}

// OnProgress registers fn to be called as each stage's constructor begins,
// with the stage's ID, its 1-based position in the order stages begin, and
// the number of stages (systemd's STATUS= lines use it). fn is called
// outside the recorder's lock, on fx's goroutine; it must not block.
func (r *Recorder) OnProgress(fn func(id string, n, total int)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.watch = append(r.watch, fn)
}

// LogEvent records one fx event.
func (r *Recorder) LogEvent(event fxevent.Event) {
	r.fx.LogEvent(event)
	if e, ok := event.(*fxevent.BeforeRun); ok && e.Kind == "provide" {
		r.begin(e.ModuleName)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	switch e := event.(type) {
	case *fxevent.Run:
		s := r.stages[e.ModuleName]
		if s == nil || e.Kind != "provide" {
			return
		}
		s.Constructor, s.End = e.Runtime, now
		if e.Err != nil {
			cause := unwrapDig(e.Err)
			s.State, s.Reason = Failed, cause.Error()
			r.fail(s.ID, "", cause)
			return
		}
		s.State = OK
	case *fxevent.Started:
		r.finish(now, e.Err)
	}
}

// begin marks a stage running and tells the OnProgress watchers.
func (r *Recorder) begin(id string) {
	r.mu.Lock()
	s := r.stages[id]
	if s == nil {
		r.mu.Unlock()
		return
	}
	s.State, s.Start = Running, r.now()
	r.begun++
	n, watch := r.begun, slices.Clone(r.watch)
	r.mu.Unlock()
	for _, fn := range watch {
		fn(id, n, len(r.stages))
	}
}

// unwrapDig strips dig's "received non-nil error from function …"
// wrappers, leaving the constructor's own error.
func unwrapDig(err error) error {
	for {
		t := reflect.TypeOf(err)
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		inner := errors.Unwrap(err)
		if t.PkgPath() != "go.uber.org/dig" || inner == nil {
			return err
		}
		err = inner
	}
}

// skip marks a stage skipped with its reason (from Graph.Root).
func (r *Recorder) skip(id, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.stages[id]; s != nil {
		s.State, s.Reason = Skipped, reason
		r.log.Info("stage skipped", zap.String("stage", id), zap.String("reason", reason))
	}
}

// fail records the first failing stage; r.mu is held.
func (r *Recorder) fail(id, hook string, cause error) {
	if r.failed != nil {
		return
	}
	r.failed = &StageError{Stage: id, Hook: hook, Cause: cause, NotStarted: r.g.Dependents(id)}
	r.log.Error("stage failed",
		zap.String("stage", id),
		zap.String("hook", hook),
		zap.Error(cause),
		zap.Strings("not_started", r.failed.NotStarted))
}

// finish closes the report; r.mu is held.
func (r *Recorder) finish(now time.Time, err error) {
	if r.done {
		return
	}
	r.done = true
	r.total = now.Sub(r.started)
	if err != nil {
		return
	}
	r.total = r.lastEnd().Sub(r.started)
	rep := r.snapshot()
	r.log.Info("boot complete",
		zap.Duration("total", rep.Total),
		zap.String("critical_path", rep.CriticalPathLine()))
}

func (r *Recorder) lastEnd() time.Time {
	last := r.started
	for _, s := range r.stages {
		if s.End.After(last) {
			last = s.End
		}
	}
	return last
}

// snapshot builds a Report from the current state; r.mu is held.
func (r *Recorder) snapshot() Report {
	rep := Report{Started: r.started, Done: r.done, Total: r.total}
	rep.Stages = make([]StageReport, 0, len(r.g.order))
	for _, id := range r.g.order {
		rep.Stages = append(rep.Stages, *r.stages[id])
	}
	rep.CriticalPath = r.criticalPath()
	if r.failed != nil {
		rep.Failed = r.failed.Stage
		rep.Error = r.failed.Cause.Error()
		rep.NotStarted = r.failed.NotStarted
	}
	if !r.done {
		rep.Total = r.now().Sub(r.started)
	}
	return rep
}

// criticalPath is the heaviest chain of stages along the graph's edges,
// weighing each stage by its constructor and OnStart runtime; r.mu is held.
func (r *Recorder) criticalPath() []string {
	best := make(map[string]time.Duration, len(r.g.order))
	prev := map[string]string{}
	var end string
	for _, id := range r.g.order {
		var from string
		var w time.Duration
		for _, e := range r.g.Edges {
			if e.To == id && best[e.From] > w {
				w, from = best[e.From], e.From
			}
		}
		best[id] = w + r.stages[id].Duration()
		if from != "" {
			prev[id] = from
		}
		if end == "" || best[id] > best[end] {
			end = id
		}
	}
	var path []string
	for id := end; id != ""; id = prev[id] {
		path = append([]string{id}, path...)
	}
	return path
}

// Report returns a snapshot of the boot report: complete once the boot is
// done (OnStop runtimes are added as the daemon stops), partial while it
// runs.
func (r *Recorder) Report() Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.snapshot()
}

// Err turns the error of a failed fx boot (from fx.New or App.Start) into
// the StageError naming the failed stage, its cause and the stages that did
// not start because of it. An error no stage accounts for (fx's own wiring
// errors) is returned as it is; nil stays nil.
func (r *Recorder) Err(err error) error {
	if err == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finish(r.now(), err)
	if r.failed == nil {
		return err
	}
	if errors.Is(err, r.failed.Cause) || strings.Contains(err.Error(), r.failed.Cause.Error()) {
		return r.failed
	}
	return errors.Join(r.failed, err)
}
