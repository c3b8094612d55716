package pipeline

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// State is a stage's state in a boot.
type State string

// The states of a stage. A stage is pending until fx runs its constructor,
// running while the constructor or its OnStart hooks run, ok once they
// returned, failed when one returned an error, skipped when its value says
// it does not apply on this host (see Skipper).
const (
	Pending State = "pending"
	Running State = "running"
	OK      State = "ok"
	Failed  State = "failed"
	Skipped State = "skipped"
)

// StageReport is what one boot did with one stage. Durations are
// nanoseconds in Go and in JSON.
type StageReport struct {
	ID     string `json:"id"`
	Step   string `json:"step,omitempty"`
	Name   string `json:"name"`
	Module string `json:"module"`
	State  State  `json:"state"`
	// Reason is why the stage was skipped, or the error it failed with.
	Reason string `json:"reason,omitempty"`
	// Start and End are the wall-clock times the constructor started and
	// the last OnStart hook (or the constructor) returned; zero if never.
	Start time.Time `json:"start,omitzero"`
	End   time.Time `json:"end,omitzero"`
	// Constructor, OnStart and OnStop are the runtimes of the constructor
	// and of the stage's hooks (summed when there are several).
	Constructor time.Duration `json:"constructor"`
	OnStart     time.Duration `json:"onStart"`
	OnStop      time.Duration `json:"onStop"`
}

// Duration is the stage's share of the boot: constructor plus OnStart.
func (s StageReport) Duration() time.Duration { return s.Constructor + s.OnStart }

// Report is the record of one boot, JSON-serialisable for the API
// (GET /debug/startup).
type Report struct {
	// Stages in the graph's topological order.
	Stages []StageReport `json:"stages"`
	// Started is when the recorder was created (the boot began); Total the
	// time from then to the end of the last OnStart hook, or to the
	// failure. Zero while booting.
	Started time.Time     `json:"started"`
	Total   time.Duration `json:"total"`
	// Done is true once the boot completed, successfully or not.
	Done bool `json:"done"`
	// CriticalPath is the chain of stages, each needing the one before,
	// whose durations add up to the most: the stages that bound the boot.
	CriticalPath []string `json:"criticalPath"`
	// Failed names the stage whose failure stopped the boot, if any, and
	// NotStarted the stages that did not start because of it.
	Failed     string   `json:"failed,omitempty"`
	Error      string   `json:"error,omitempty"`
	NotStarted []string `json:"notStarted,omitempty"`
}

// Stage returns the report of the stage with the given ID.
func (r Report) Stage(id string) (StageReport, bool) {
	for _, s := range r.Stages {
		if s.ID == id {
			return s, true
		}
	}
	return StageReport{}, false
}

// CriticalPathLine renders the critical path as the boot's summary log
// line shows it: "critical path 41ms: config 2ms → data-root 1ms → …".
func (r Report) CriticalPathLine() string {
	var total time.Duration
	parts := make([]string, 0, len(r.CriticalPath))
	for _, id := range r.CriticalPath {
		s, _ := r.Stage(id)
		total += s.Duration()
		parts = append(parts, fmt.Sprintf("%s %s", s.Name, FormatDuration(s.Duration())))
	}
	return fmt.Sprintf("critical path %s: %s", FormatDuration(total), strings.Join(parts, " → "))
}

// FormatDuration renders a stage duration for people, as the boot log, the
// API and the drawn graph all show it: whole microseconds below a
// millisecond ("412µs"), else tenths of a millisecond ("30.2ms").
func FormatDuration(d time.Duration) string {
	if d < time.Millisecond {
		return d.Round(time.Microsecond).String()
	}
	return d.Round(100 * time.Microsecond).String()
}

// StageError is a failed boot: the stage that failed, its cause, and the
// stages that did not start because of it.
type StageError struct {
	// Stage is the failed stage's ID ("3.11 graphdriver").
	Stage string
	// Hook is "OnStart" when the stage's start hook failed, "" when its
	// constructor did.
	Hook string
	// Cause is the stage's own error.
	Cause error
	// NotStarted are the stages that needed the failed one, in order.
	NotStarted []string
}

// Error reads "stage 3.11 graphdriver failed: <cause> (not started because
// of it: 3.14 imagedb, …)".
func (e *StageError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "stage %s failed", e.Stage)
	if e.Hook != "" {
		fmt.Fprintf(&b, " in %s", e.Hook)
	}
	fmt.Fprintf(&b, ": %v", e.Cause)
	if len(e.NotStarted) > 0 {
		fmt.Fprintf(&b, " (not started because of it: %s)", strings.Join(e.NotStarted, ", "))
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *StageError) Unwrap() error { return e.Cause }

// AsStageError returns the StageError inside err, if any.
func AsStageError(err error) (*StageError, bool) {
	var se *StageError
	ok := errors.As(err, &se)
	return se, ok
}
