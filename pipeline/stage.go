package pipeline

import (
	"fmt"
	"reflect"
	"strings"

	"go.uber.org/fx"
)

// Stage is one named step of the daemon's boot.
//
// Ctor is a plain Go constructor as fx takes it: its parameters are the
// values the stage needs (or one fx.In struct), its results the values it
// provides (or one fx.Out struct) and optionally a trailing error. A stage
// with nothing to hand on still returns a small token type, so that every
// ordering constraint is a visible edge.
type Stage struct {
	// Step is the number of dockerd's boot step this stage stands for,
	// such as "3.11"; "" for stages with no seed step (shown as "—").
	Step string
	// Name is the stage's short name, such as "graphdriver".
	Name string
	// Doc is a one-line description.
	Doc string
	// Ctor is the constructor fx runs.
	Ctor any

	module string
}

// ID returns the stage's identifier, "<step> <name>" ("3.11 graphdriver"),
// or the bare name when the stage has no step.
func (s Stage) ID() string {
	if s.Step == "" {
		return s.Name
	}
	return s.Step + " " + s.Name
}

// Module returns the name of the module the stage belongs to.
func (s Stage) Module() string { return s.module }

// Mod is a named set of stages: one wharfd module.
type Mod struct {
	// Name is the module name ("storage", "host", …).
	Name string
	// Stages are the module's stages in declaration order.
	Stages []Stage
}

// Module declares a module of stages. Each stage's constructor is provided
// to fx inside an fx.Module named by the stage's ID, itself inside an
// fx.Module named name, so fx's events carry the stage that ran.
func Module(name string, stages ...Stage) Mod {
	m := Mod{Name: name, Stages: make([]Stage, len(stages))}
	for i, s := range stages {
		s.module = name
		m.Stages[i] = s
	}
	return m
}

// Fx returns the module as an fx option, providing every stage's
// constructor. With a Recorder, each stage's constructor sees an
// fx.Lifecycle that reports its hooks to the recorder (timings, and the
// undo of a failed boot: see Recorder.Abort); module tests pass nil.
func (m Mod) Fx(rec *Recorder) fx.Option {
	opts := make([]fx.Option, 0, len(m.Stages))
	for _, s := range m.Stages {
		stage := []fx.Option{fx.Provide(s.Ctor)}
		if rec != nil {
			stage = append(stage, fx.Decorate(rec.lifecycle(s.ID())))
		}
		opts = append(opts, fx.Module(s.ID(), stage...))
	}
	return fx.Module(m.Name, opts...)
}

// validate checks the stage's declaration (not its wiring).
func (s Stage) validate() error {
	if s.Name == "" || strings.ContainsAny(s.Name, " \t\n") {
		return fmt.Errorf("stage %q: name must be one non-empty word", s.ID())
	}
	if s.Ctor == nil || reflect.TypeOf(s.Ctor).Kind() != reflect.Func {
		return fmt.Errorf("stage %s: constructor must be a function, got %T", s.ID(), s.Ctor)
	}
	return nil
}
