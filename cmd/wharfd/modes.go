package main

import (
	"fmt"
	"io"

	"github.com/wharfd/wharfd/graphviz"
	"github.com/wharfd/wharfd/modules/config"
	"github.com/wharfd/wharfd/version"
)

// printVersion prints "wharfd version X, build Y", as dockerd prints its own.
func printVersion(w io.Writer) {
	fmt.Fprintf(w, "wharfd version %s, build %s\n", version.Version, version.GitCommit)
}

// validate loads and checks the configuration, TLS files included, without
// root and without creating or writing any file; "configuration OK" goes to
// stderr, as dockerd's --validate does.
func validate(flags *config.Flags, stderr io.Writer) error {
	cfg, err := config.Load(flags)
	if err != nil {
		return err
	}
	if _, err := config.Verify(cfg); err != nil {
		return err
	}
	fmt.Fprintln(stderr, "configuration OK")
	return nil
}

// dumpGraph prints the boot graph for these flags and configuration as DOT
// or JSON, running no stage.
func dumpGraph(flags *config.Flags, stdout io.Writer) error {
	if _, err := config.Load(flags); err != nil {
		return err
	}
	g, err := bootGraph(flags)
	if err != nil {
		return err
	}
	switch flags.DumpGraph {
	case "dot":
		return graphviz.DOT(stdout, g, nil)
	case "json":
		return graphviz.JSON(stdout, g, nil)
	}
	return &usageError{err: fmt.Errorf("invalid --dump-graph format %q: want dot or json", flags.DumpGraph)}
}
