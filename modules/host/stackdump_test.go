package host

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestStackDumpOnSIGUSR1(t *testing.T) {
	exec := t.TempDir()
	lc := fxtest.NewLifecycle(t)
	core, logs := observer.New(zap.InfoLevel)
	d := NewStackDumper(StackDumperParams{Lifecycle: lc, ExecRoot: ExecRoot{Path: exec}, Logger: zap.New(core)})
	dumped := make(chan string, 1)
	d.dumped = func(p string) { dumped <- p }
	lc.RequireStart()
	defer lc.RequireStop()

	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	path := <-dumped
	if filepath.Dir(path) != exec || !strings.HasPrefix(filepath.Base(path), "goroutine-stacks-") || !strings.HasSuffix(path, ".log") {
		t.Errorf("stacks written to %s, want <exec-root>/goroutine-stacks-*.log", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "goroutine ") || !strings.Contains(string(b), "TestStackDumpOnSIGUSR1") {
		t.Errorf("file does not hold all goroutines' stacks:\n%.500s", b)
	}
	entries := logs.FilterMessage("goroutine stacks written").All()
	if len(entries) != 1 || entries[0].ContextMap()["path"] != path {
		t.Errorf("path not logged: %v", logs.All())
	}
}
