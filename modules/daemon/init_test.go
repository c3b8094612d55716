package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"

	"github.com/wharfd/wharfd/modules/config"
	"github.com/wharfd/wharfd/modules/runtime"
)

// fakeInit writes an executable script named name in dir that prints out
// for --version.
func fakeInit(t *testing.T, dir, name, out string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\necho '"+out+"'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLookupInit(t *testing.T) {
	dir := t.TempDir()
	tini := fakeInit(t, dir, "tini", "tini version 0.19.0")
	static := fakeInit(t, dir, "tini-static", "tini version 0.19.0")
	notExec := filepath.Join(dir, "plain")
	if err := os.WriteFile(notExec, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	only := t.TempDir()
	onlyTini := fakeInit(t, only, "tini", "tini version 0.19.0")
	tests := []struct {
		name           string
		givePath       string // PATH
		giveConfigured string
		want           string
		wantErr        string
	}{
		{name: "tini-static before tini", givePath: dir, want: static},
		{name: "tini when alone", givePath: only, want: onlyTini},
		{name: "configured absolute path", givePath: "", giveConfigured: tini, want: tini},
		{name: "configured name in PATH", givePath: dir, giveConfigured: "tini", want: tini},
		{name: "none", givePath: t.TempDir(), wantErr: "init binary docker-init, tini-static, tini not found"},
		{name: "configured path missing", givePath: dir, giveConfigured: "/nonexistent/docker-init", wantErr: `init-path "/nonexistent/docker-init" does not exist`},
		{name: "configured path not executable", givePath: dir, giveConfigured: notExec, wantErr: "is not an executable file"},
		{name: "configured name missing", givePath: dir, giveConfigured: "my-init", wantErr: "init binary my-init not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PATH", tt.givePath)
			got, err := LookupInit(tt.giveConfigured)
			if tt.wantErr != "" {
				var nf InitNotFoundError
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.As(err, &nf) {
					t.Fatalf("LookupInit(%q) = %q, %v; want error %q", tt.giveConfigured, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("LookupInit(%q) = %q, %v; want %q", tt.giveConfigured, got, err, tt.want)
			}
		})
	}
}

func TestParseInitVersion(t *testing.T) {
	tests := []struct {
		name        string
		give        string
		wantVersion string
		wantCommit  string
	}{
		{name: "with commit", give: "tini version 0.19.0 - git.de40ad0\n", wantVersion: "0.19.0", wantCommit: "de40ad0"},
		{name: "debian", give: "tini version 0.19.0\n", wantVersion: "0.19.0"},
		{name: "bad git part", give: "tini version 0.13.0 - git.a.b", wantVersion: "0.13.0"},
		{name: "not tini", give: "something else"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, c := parseInitVersion(tt.give)
			if v != tt.wantVersion || c != tt.wantCommit {
				t.Errorf("parseInitVersion(%q) = %q, %q; want %q, %q", tt.give, v, c, tt.wantVersion, tt.wantCommit)
			}
		})
	}
}

func TestInitBinary(t *testing.T) {
	dir := t.TempDir()
	fakeInit(t, dir, "tini-static", "tini version 0.19.0")
	withCommit := fakeInit(t, t.TempDir(), "docker-init", "tini version 0.19.0 - git.de40ad0")
	tests := []struct {
		name           string
		givePath       string
		giveConfigured string
		wantBinary     string
		wantCommit     string
	}{
		{name: "found in PATH", givePath: dir, wantBinary: "tini-static", wantCommit: "0.19.0"},
		{name: "configured", givePath: dir, giveConfigured: withCommit, wantBinary: withCommit, wantCommit: "de40ad0"},
		{name: "none", givePath: t.TempDir(), wantBinary: "docker-init"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PATH", tt.givePath+":/usr/bin:/bin")
			if tt.name == "none" {
				t.Setenv("PATH", tt.givePath)
			}
			d := &Daemon{o: Options{Config: &config.Config{InitPath: tt.giveConfigured}}}
			b, c := d.InitBinary()
			if b != tt.wantBinary || c != tt.wantCommit {
				t.Errorf("InitBinary() = %q, %q; want %q, %q", b, c, tt.wantBinary, tt.wantCommit)
			}
		})
	}
}

func TestWithInit(t *testing.T) {
	bin := fakeInit(t, t.TempDir(), "docker-init", "tini version 0.19.0")
	yes, no := true, false
	tests := []struct {
		name       string
		giveInit   *bool
		wantArgs   []string
		wantMounts int
	}{
		{name: "unset", wantArgs: []string{"sh", "-c", "x"}},
		{name: "false", giveInit: &no, wantArgs: []string{"sh", "-c", "x"}},
		{name: "true", giveInit: &yes, wantArgs: []string{"/sbin/docker-init", "--", "sh", "-c", "x"}, wantMounts: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &Daemon{o: Options{Config: &config.Config{InitPath: bin}}}
			o := runtime.SpecOptions{Args: []string{"sh", "-c", "x"}}
			if err := d.withInit(&o, &container.HostConfig{Init: tt.giveInit}); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(o.Args, tt.wantArgs) || len(o.Mounts) != tt.wantMounts {
				t.Fatalf("Args %q, Mounts %+v", o.Args, o.Mounts)
			}
			if tt.wantMounts == 1 {
				m := o.Mounts[0]
				if m.Destination != InContainerInitPath || m.Source != bin || m.Type != "bind" || !slices.Contains(m.Options, "ro") {
					t.Errorf("mount %+v", m)
				}
			}
		})
	}
	t.Run("missing binary", func(t *testing.T) {
		d := &Daemon{o: Options{Config: &config.Config{InitPath: "/nonexistent/docker-init"}}}
		o := runtime.SpecOptions{Args: []string{"true"}}
		err := d.withInit(&o, &container.HostConfig{Init: &yes})
		if err == nil || !strings.Contains(err.Error(), "/nonexistent/docker-init") || len(o.Args) != 1 {
			t.Errorf("withInit = %v, Args %q", err, o.Args)
		}
	})
}
