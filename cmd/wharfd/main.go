// Command wharfd is a container engine daemon that speaks the Docker Engine
// API, booted as an explicit graph of named stages (see pipeline).
//
// Usage: wharfd [OPTIONS]; `wharfd --help` lists the options, named as
// dockerd's. `wharfd --dump-graph[=dot|json]` prints the boot graph without
// running it; `wharfd --validate` checks the configuration.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"go.podman.io/storage/pkg/reexec"

	"github.com/wharfd/wharfd/modules/config"
	"github.com/wharfd/wharfd/modules/runtime"
)

// init pins the main goroutine to the main thread, which libcontainer's
// namespace-switching goroutines must never run on (see
// runtime.LockMainThread).
func init() { runtime.LockMainThread() }

func main() {
	if runtime.IsInit(os.Args) {
		runtime.Init() // the container init (libcontainer re-exec): never returns
	}
	if reexec.Init() {
		return // a go.podman.io/storage helper (chrooted untar of a layer) ran
	}
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	if err == nil {
		os.Exit(0)
	}
	fmt.Fprintln(os.Stderr, err)
	var ee *exitError
	if errors.As(err, &ee) {
		os.Exit(ee.code)
	}
	os.Exit(1)
}

// exitError is an error that carries its own exit status (a forced exit
// after repeated signals).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// usageError points a user at --help, as dockerd does after a bad flag.
type usageError struct{ err error }

func (e *usageError) Error() string {
	return fmt.Sprintf("wharfd: %v\nSee 'wharfd --help'.", e.err)
}

func (e *usageError) Unwrap() error { return e.err }

// run is the whole command: parse, then help, version, validate,
// dump-graph, or boot the daemon until a signal stops it.
func run(args []string, stdout, stderr io.Writer) error {
	flags, err := config.ParseFlags(args)
	if err != nil {
		return &usageError{err: err}
	}
	switch {
	case flags.Help:
		config.Usage(stdout)
		return nil
	case flags.Version:
		printVersion(stdout)
		return nil
	case flags.Validate:
		return validate(flags, stderr)
	case flags.DumpGraph != "":
		return dumpGraph(flags, stdout)
	}
	return serve(flags, stderr)
}
