package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/fx"
)

// stageLifecycle is the fx.Lifecycle one stage's constructor sees: it
// appends the stage's hooks to fx's lifecycle, wrapped so the recorder
// times them against the right stage (wherever they were appended from)
// and knows which undo work a failed boot leaves to Abort.
type stageLifecycle struct {
	fx  fx.Lifecycle
	rec *Recorder
	id  string
}

var _ fx.Lifecycle = (*stageLifecycle)(nil)

// lifecycle returns the decorator giving stage id its own fx.Lifecycle.
func (r *Recorder) lifecycle(id string) func(fx.Lifecycle) fx.Lifecycle {
	return func(lc fx.Lifecycle) fx.Lifecycle { return &stageLifecycle{fx: lc, rec: r, id: id} }
}

// hook is one appended hook, as the recorder tracks it.
type hook struct {
	stage   string
	onStop  func(context.Context) error
	undo    bool // OnStop only: it undoes what the constructor made
	stopped bool // OnStop has run (through fx or Abort)
}

// Append implements fx.Lifecycle.
func (l *stageLifecycle) Append(h fx.Hook) {
	rec, id := l.rec, l.id
	tracked := rec.track(id, h.OnStart == nil && h.OnStop != nil)
	var w fx.Hook
	if h.OnStart != nil {
		start := h.OnStart
		w.OnStart = func(ctx context.Context) error {
			rec.hookStarting(id)
			t0 := time.Now()
			err := start(ctx)
			rec.hookStarted(id, time.Since(t0), err)
			return err
		}
	}
	if h.OnStop != nil {
		tracked.onStop = h.OnStop
		w.OnStop = func(ctx context.Context) error { return rec.runStop(tracked, ctx) }
	}
	l.fx.Append(w)
}

// track records a newly appended hook.
func (r *Recorder) track(id string, undo bool) *hook {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := &hook{stage: id, undo: undo}
	r.hooks = append(r.hooks, h)
	return h
}

// runStop runs a hook's OnStop once, timing it against its stage.
func (r *Recorder) runStop(h *hook, ctx context.Context) error {
	r.mu.Lock()
	if h.stopped {
		r.mu.Unlock()
		return nil
	}
	h.stopped = true
	r.mu.Unlock()
	t0 := time.Now()
	err := h.onStop(ctx)
	r.mu.Lock()
	if s := r.stages[h.stage]; s != nil {
		s.OnStop += time.Since(t0)
	}
	r.mu.Unlock()
	return err
}

// Abort undoes what the constructors of a failed boot made and no stop
// hook undid: after a constructor failed, fx runs no hook at all, and
// after an OnStart failed, fx stops only the hooks before it. Abort runs,
// newest first, the OnStop of every hook that has no OnStart (by the house
// rule, such a hook undoes its constructor's work: an open store, a
// written pidfile, a bound socket) and has not run yet. Hooks with an
// OnStart that never ran have nothing to undo. Call it once the boot has
// failed; it returns the hooks' errors joined, each naming its stage.
func (r *Recorder) Abort(ctx context.Context) error {
	r.mu.Lock()
	var todo []*hook
	for i := len(r.hooks) - 1; i >= 0; i-- {
		if h := r.hooks[i]; h.undo && !h.stopped {
			todo = append(todo, h)
		}
	}
	r.mu.Unlock()
	var errs []error
	for _, h := range todo {
		if err := r.runStop(h, ctx); err != nil {
			errs = append(errs, fmt.Errorf("undo stage %s: %w", h.stage, err))
		}
	}
	return errors.Join(errs...)
}

// hookStarting marks a stage running while its OnStart hook runs.
func (r *Recorder) hookStarting(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.stages[id]; s != nil && s.State != Skipped {
		s.State = Running
	}
}

// hookStarted records an OnStart hook's runtime and outcome.
func (r *Recorder) hookStarted(id string, d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stages[id]
	if s == nil {
		return
	}
	s.OnStart += d
	s.End = r.now()
	if err != nil {
		s.State, s.Reason = Failed, err.Error()
		r.fail(s.ID, "OnStart", err)
		return
	}
	if s.State != Skipped {
		s.State = OK
	}
}
