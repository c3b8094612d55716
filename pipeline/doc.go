// Package pipeline is wharfd's staged-boot framework on go.uber.org/fx.
//
// A Stage is a plain constructor with a step number (the step of dockerd's
// boot it stands for, "3.11") and a name ("graphdriver"). Module groups the
// stages of one wharfd module. NewGraph computes, by reflection over the
// constructors' signatures and without running any of them, which stage
// needs which other: an edge wherever a stage takes a value another
// provides, labelled with the Go type. NewGraph refuses a graph with a need
// no stage provides, a cycle, or two providers of one type.
//
// Recorder is the fxevent.Logger that times each stage as fx runs it
// (constructor, OnStart and OnStop hooks), marks stages ok, failed or
// skipped, derives the critical path when the boot completes, and turns a
// failed boot into a StageError naming the stage, its step and every stage
// that did not start because of it.
//
// Hooks follow one rule, on which undoing a failed boot rests: what a
// constructor itself makes (an open store, a written pidfile, a bound
// socket) is undone by a hook with only an OnStop; what an OnStart makes
// is undone by the same hook's OnStop. fx runs no hook when a constructor
// fails, so Recorder.Abort runs the stop-only hooks fx did not run.
package pipeline
